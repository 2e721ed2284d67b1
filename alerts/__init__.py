"""The alert path: detect (negative_spike) -> dedupe (firing_state) -> deliver (slack_delivery)."""
