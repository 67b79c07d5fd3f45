"""The funding lifecycle as data: one module per stage, composed into workflows."""
