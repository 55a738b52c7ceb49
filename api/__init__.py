"""HTTP (FastAPI) and CLI entry points: the only place errors are mapped to HTTP."""
