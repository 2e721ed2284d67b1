"""``socialpulse boards``: build the Grafana boards from their specs, and draw PNG previews
of them from the running Prometheus."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from socialpulse.app.settings import Settings
from socialpulse.core.paths import project_home, state_dir


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    """Write grafana/dashboards/*.json, or with --check say whether they are up to date."""
    from socialpulse.app.boards.grafana_json import rendered, write_boards

    folder = Path(args.out) if args.out else project_home() / "grafana" / "dashboards"
    if args.check:
        files = rendered(settings)
        stale = [
            name
            for name, text in files.items()
            if not (folder / name).is_file() or (folder / name).read_text() != text
        ]
        extra = sorted(p.name for p in folder.glob("*.json") if p.name not in files)
        if stale or extra:
            print(
                f"boards out of date in {folder}: {', '.join([*stale, *extra])}; "
                "run `socialpulse boards build`"
            )
            return 1
        print(f"boards up to date: {len(files)} in {folder}")
        return 0
    for path in write_boards(settings, folder):
        print(f"wrote {path}")
    return 0


def cmd_preview(args: argparse.Namespace, settings: Settings) -> int:
    """Draw each board's main panels from the running Prometheus into PNG files."""
    from socialpulse.app.boards.preview import PreviewWindow, preview, prometheus_range
    from socialpulse.app.boards.specs import boards

    folder = Path(args.out) if args.out else state_dir() / "boards"
    end = time.time()
    window = PreviewWindow(
        end - args.minutes * 60,
        end,
        max(args.minutes * 60 / 120, 5),
        {"brand": args.brand, "platform": ".*"},
    )
    query = prometheus_range(settings.pipeline.prometheus.url)
    for board in boards(settings):
        print(f"wrote {preview(board, window, query, folder)}")
    return 0


def add_commands(sub: Any, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    """Register ``boards build`` and ``boards preview``."""
    boards = sub.add_parser("boards", help="Grafana boards: build the JSON, draw PNG previews")
    actions = boards.add_subparsers(dest="boards_action", required=True)
    build = actions.add_parser("build", help="write grafana/dashboards/*.json from the specs")
    build.add_argument("--out", help="folder (default: grafana/dashboards)")
    build.add_argument("--check", action="store_true", help="only check they are up to date")
    build.set_defaults(func=lambda a: cmd_build(a, settings_of(a)))
    draw = actions.add_parser("preview", help="PNG of each board's main panels (matplotlib)")
    draw.add_argument("--out", help="folder (default: .stack/boards; the README's: docs/boards)")
    draw.add_argument("--brand", default="acme", help="the brand variable (default acme)")
    draw.add_argument("--minutes", type=float, default=30, help="time range (default 30)")
    draw.set_defaults(func=lambda a: cmd_preview(a, settings_of(a)))


__all__ = ["add_commands"]
