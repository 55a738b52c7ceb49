"""Bus entry points: what feeds projections and integrations (in-process or from Kafka)."""
