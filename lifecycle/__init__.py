"""The engine that runs any workflow declared in `states/`."""
