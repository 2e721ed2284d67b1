"""Detection: rules and baselines, one rule's check, every rule on a tick, their state in Redis,
the backtest and the targets."""
