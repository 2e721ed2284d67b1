"""The alert path: rules and baselines (rules, baseline) -> one rule's verdict (detector) -> every
rule on a tick (detection) -> state and events in Redis (detection_store) -> live ticks and
Slack (evaluation, slack_delivery); backtest replays history through the same detector."""
