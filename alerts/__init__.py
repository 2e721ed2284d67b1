"""The alert path, by stage: detection (rules, baselines, ticks) -> incidents (lifecycle,
on-call, the round) -> notify (Slack messages, the outbox, button clicks); pipeline.py runs one
tick through them."""
