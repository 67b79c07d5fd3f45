"""acts: see docs/architecture.md."""
