"""Where the project lives on disk: the checkout (home) and its ignored runtime folder."""

from __future__ import annotations

import os
from pathlib import Path


def project_home() -> Path:
    """The checkout: $SOCIALPULSE_HOME, else the folder holding this package's pyproject.toml,
    else the current directory (for a non-editable install run from a checkout)."""
    env = os.environ.get("SOCIALPULSE_HOME")
    if env:
        return Path(env).resolve()
    source_root = Path(__file__).resolve().parents[1]
    if (source_root / "pyproject.toml").is_file():
        return source_root
    return Path.cwd().resolve()


def state_dir() -> Path:
    """The ignored folder that holds every local service's data, logs, pids and Kafka jars."""
    return project_home() / ".stack"
