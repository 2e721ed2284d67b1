"""Incidents: the lifecycle, the on-call policy, the incident round, what an incident shows, and
their store."""
