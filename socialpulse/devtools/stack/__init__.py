"""The local stack (Kafka, Redis, Prometheus, Slack stub) for machines without Docker."""
