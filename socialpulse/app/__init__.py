"""The application: the worker wired (worker.py), the runtime commands, the config loader that
composes every component's part, and board generation."""
