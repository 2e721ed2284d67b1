"""The stream side: event schemas, sentiment, time windows, the Redis KPI store and the Faust app."""
