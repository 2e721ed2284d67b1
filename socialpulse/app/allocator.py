"""The worker's memory allocator: jemalloc for every allocation when the machine has it.

Why: the worker's live heap stays flat under a steady stream, but every /metrics scrape (about
600 KB of text, built in prometheus-client's server thread beside the event loop) is a burst
of short-lived objects interleaved with the event loop's longer-lived ones. With Python's
small-object allocator and glibc's malloc that leaves free holes in their arenas, and RSS
creeps up (soak figures in the README). jemalloc packs and returns such memory better; with
``PYTHONMALLOC=malloc`` Python's own objects go through it too, and with a background thread
and a one-second decay (``MALLOC_CONF``, unless set already) freed pages go back quickly.

The worker re-executes itself once (same pid, same command line) with ``LD_PRELOAD`` and
``PYTHONMALLOC`` set, unless ``SOCIALPULSE_ALLOCATOR=system`` or no libjemalloc is installed
(Debian: ``apt-get install libjemalloc2``); then it runs on the default allocators.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Mapping

ALLOCATOR_ENV = "SOCIALPULSE_ALLOCATOR"  # "jemalloc" (default) or "system"
MALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000"
# Debian and Ubuntu's multiarch paths of libjemalloc2, first match wins.
JEMALLOC_GLOBS = ("/usr/lib/*-linux-gnu/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2")


def jemalloc_library() -> str | None:
    """Path of the installed libjemalloc, or None."""
    for pattern in JEMALLOC_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def jemalloc_environment(environ: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment to run the worker on jemalloc (``library``), or None when it should run
    as it is: already on jemalloc, ``SOCIALPULSE_ALLOCATOR=system``, or no library."""
    if environ.get(ALLOCATOR_ENV, "jemalloc") == "system" or library is None:
        return None
    preload = environ.get("LD_PRELOAD", "")
    if "libjemalloc" in preload:
        return None
    return {
        # Freed pages go back to the system within about a second, by jemalloc's own thread,
        # instead of the default 10 s decay that lets a scrape's burst pile up.
        "MALLOC_CONF": MALLOC_CONF,
        **environ,
        "LD_PRELOAD": f"{library}:{preload}" if preload else library,
        "PYTHONMALLOC": "malloc",
    }


def running_on_jemalloc() -> bool:
    """Whether this process has libjemalloc mapped."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as maps:
            return any("libjemalloc" in line for line in maps)
    except OSError:
        return False


def reexec_on_jemalloc() -> None:
    """Replace this process with itself on jemalloc (same pid and command line), when
    :func:`jemalloc_environment` says so; otherwise return."""
    environment = jemalloc_environment(os.environ, jemalloc_library())
    if environment is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)


__all__ = [
    "ALLOCATOR_ENV",
    "MALLOC_CONF",
    "jemalloc_environment",
    "jemalloc_library",
    "reexec_on_jemalloc",
    "running_on_jemalloc",
]
