"""The stream stage: event schemas and decoding, sentiment, the batch planner, windows and
counters, KPI formulas, the count stores, and the pipeline's metrics."""
