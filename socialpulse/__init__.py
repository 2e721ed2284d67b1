"""SocialPulse: real-time social-media KPI monitor. core/ (shared by every layer), app/ (the
worker, commands, config loading, boards), devtools/ (local stack, simulator, stubs, benchmarks),
cli.py (the ``socialpulse`` command)."""

__version__ = "0.1.0"
