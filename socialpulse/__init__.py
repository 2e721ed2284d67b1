"""SocialPulse: real-time social-media KPI monitor (CLI, configuration and the local stack)."""

__version__ = "0.1.0"
