"""Read models: deterministic, idempotent, position-tracked functions of the event sequence."""
