"""The stream side: event schemas, sentiment, windows, the Redis counts and the Faust app."""
