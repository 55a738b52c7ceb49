"""One router per concern; the write routes are declared as a table (api.routers.writes)."""
