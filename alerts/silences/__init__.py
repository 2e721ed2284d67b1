"""Silences: matcher sets that keep planned surges from notifying (model, config, store)."""
