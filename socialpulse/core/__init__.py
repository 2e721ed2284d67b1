"""The core every layer may use: the shared config models and file reading, connections, the
Redis key layout, the dead-letter record, topics, the HTTP server limits, bounded stops."""
