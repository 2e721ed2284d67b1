"""The count stores: one contract (base.py), kept by Redis (the worker's) and in memory (the
backtest's)."""
