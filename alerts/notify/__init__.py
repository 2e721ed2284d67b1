"""Notification: the Slack message rendered, delivered in order from the outbox, and the
signed button clicks that act on it."""
