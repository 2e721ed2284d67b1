"""The ``socialpulse`` command, wired in one place: the runtime commands (socialpulse.app.cli)
and the dev tools' (socialpulse.devtools.commands: the local stack, the simulator, the demo,
benchmarks), the one module that may import both."""

from __future__ import annotations

import sys

from socialpulse.app import cli
from socialpulse.devtools import commands as dev_commands


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``socialpulse`` console script."""
    return cli.main(argv, extra=[dev_commands.add_commands])


if __name__ == "__main__":
    sys.exit(main())
