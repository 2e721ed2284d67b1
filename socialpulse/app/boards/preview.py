"""PNG previews of the boards' main panels, drawn with matplotlib from the same PromQL the
Grafana panels run (through Prometheus' range-query API), so the README shows what the boards
show without a Grafana."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialpulse.app.boards.specs import Board, Panel

# (timestamps, values) per legend of one query's result.
Series = dict[str, tuple[list[float], list[float]]]
RangeQuery = Callable[[str, float, float, float], list[dict[str, Any]]]


@dataclass(frozen=True)
class PreviewWindow:
    """What time range the preview draws, and the template variables' values."""

    start: float
    end: float
    step: float
    variables: Mapping[str, str]


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """The expression with Grafana's ``$name`` variables replaced (unknown ones left as is)."""
    return re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), expr)


def legend(template: str, labels: Mapping[str, str]) -> str:
    """Grafana's ``{{label}}`` legend format filled from a series' labels."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def prometheus_range(url: str) -> RangeQuery:
    """A range-query function against the Prometheus at ``url``."""

    def query(expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=30) as reply:
            body = json.load(reply)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus refused {expr!r}: {body.get('error')}")
        return list(body["data"]["result"])

    return query


def panel_series(panel: Panel, window: PreviewWindow, query: RangeQuery) -> Series:
    """Every line a panel draws over the window."""
    series: Series = {}
    for q in panel.queries:
        expr = substitute(q.expr, window.variables)
        for result in query(expr, window.start, window.end, window.step):
            name = legend(q.legend, result.get("metric", {})) or expr
            times = [float(t) for t, _ in result["values"]]
            values = [float(v) for _, v in result["values"]]
            series[name] = (times, values)
    return series


def draw(board: Board, panels: list[tuple[Panel, Series]], path: Path) -> Path:
    """Draw a board's preview panels (two per row) into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    columns = 2 if len(panels) > 1 else 1
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 3.2 * rows), squeeze=False)
    for ax, (panel, series) in zip(axes.flat, panels, strict=False):
        scale = 100.0 if panel.unit == "percentunit" else 1.0
        for name, (times, values) in sorted(series.items()):
            dates = [dt.datetime.fromtimestamp(t, dt.UTC) for t in times]
            ax.plot(dates, [v * scale for v in values], label=name, linewidth=1.4)
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if panel.unit == "percentunit":
            ax.set_ylabel("%", fontsize=8)
        elif panel.unit in ("s", "ops"):
            ax.set_ylabel({"s": "seconds", "ops": "per second"}[panel.unit], fontsize=8)
        if series:
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(board.title, fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def preview(board: Board, window: PreviewWindow, query: RangeQuery, folder: Path) -> Path:
    """Query and draw one board's preview panels into ``folder/<slug>.png``."""
    chosen = [p for p in board.panels if p.preview]
    return draw(
        board, [(p, panel_series(p, window, query)) for p in chosen], folder / f"{board.slug}.png"
    )


__all__ = ["PreviewWindow", "legend", "panel_series", "preview", "prometheus_range", "substitute"]
