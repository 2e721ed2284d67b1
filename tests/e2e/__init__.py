"""End-to-end tests: the real stack (Kafka, Redis, Prometheus, the Slack stub) and real workers."""
