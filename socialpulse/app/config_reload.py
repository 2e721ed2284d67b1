"""Config reload on SIGHUP: the worker re-reads its config folder. An invalid folder is refused
with the file, key and problem in the log, and the running config stays; a valid, changed one
is applied by restarting the worker in place (same pid, same command line) after a graceful
stop. A restart is safe: counts are exactly-once by event id, and offsets are committed only
after their counts are in Redis."""

from __future__ import annotations

import logging
import os
import signal
import sys

from prometheus_client import Counter

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.config import ConfigError

log = logging.getLogger(__name__)

RELOADS = Counter(
    "socialpulse_config_reloads_total",
    "SIGHUP config reloads by outcome: refused (invalid; the running config stays), unchanged, "
    "applied (the worker restarts with it).",
    ["outcome"],
)
for _outcome in ("refused", "unchanged", "applied"):
    RELOADS.labels(_outcome)


class ConfigReload:
    """Handles SIGHUP for a worker running ``settings``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.restart = False

    def on_sighup(self) -> None:
        """Validate the config folder again; refuse it, or stop the worker for a restart."""
        try:
            fresh = load_settings(self.settings.config_dir)
        except ConfigError as exc:
            RELOADS.labels("refused").inc()
            log.error("config reload refused, the running config stays:\n%s", exc)
            return
        if fresh == self.settings:
            RELOADS.labels("unchanged").inc()
            log.info("config reload: nothing changed in %s", self.settings.config_dir)
            return
        RELOADS.labels("applied").inc()
        log.warning("config reload: the config changed; restarting the worker to apply it")
        self.restart = True
        os.kill(os.getpid(), signal.SIGTERM)  # Faust's own graceful stop

    def exec_if_requested(self) -> None:
        """After the worker stopped: replace this process by a fresh worker, if asked to."""
        if self.restart:
            log.warning("config reload: starting again: %s", " ".join(sys.orig_argv))
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


__all__ = ["RELOADS", "ConfigReload"]
