"""What the end-to-end tests share: events, reading the system back, streams, processes."""
