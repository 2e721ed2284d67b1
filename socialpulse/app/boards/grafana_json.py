"""Render board specs (socialpulse.app.boards.specs) as Grafana dashboard JSON for file provisioning
(grafana/dashboards/, mounted by docker-compose)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from socialpulse.app.boards.specs import Board, Panel, boards
from socialpulse.app.settings import Settings

DATASOURCE = {"type": "prometheus", "uid": "socialpulse-prometheus"}  # provisioning's uid
SCHEMA_VERSION = 39  # Grafana 11's dashboard schema
GRID_COLUMNS = 24
REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _variable(name: str) -> dict[str, Any]:
    if name == "brand":
        query = "label_values(socialpulse_mentions, brand)"
        extra: dict[str, Any] = {"includeAll": False, "multi": False}
    else:
        query = 'label_values(socialpulse_mentions{brand="$brand"}, platform)'
        extra = {
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "current": {"text": "All", "value": "$__all"},
        }
    return {
        "name": name,
        "label": name.capitalize(),
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,  # on time range change: new brands and platforms appear
        "sort": 1,
        **extra,
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in panel.steps],
        },
    }
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.kind == "timeseries":
        # Threshold steps drawn as dashed lines when there is more than one.
        style = "dashed" if len(panel.steps) > 1 else "off"
        defaults["custom"] = {"thresholdsStyle": {"mode": style}, "spanNulls": False}
        options: dict[str, Any] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    elif panel.kind == "bargauge":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"]},
            "orientation": "horizontal",
            "displayMode": "gradient",
        }
    else:
        options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
                "refId": REF_IDS[index],
            }
            for index, query in enumerate(panel.queries)
        ],
    }


def dashboard(board: Board) -> dict[str, Any]:
    """One board as Grafana dashboard JSON; panels fill rows of 24 columns left to right."""
    panels = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(board.panels, start=1):
        if x + panel.width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, panel_id, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    annotations = [
        {
            "name": a.name,
            "datasource": DATASOURCE,
            "enable": True,
            "iconColor": a.color,
            "expr": a.expr,
            "step": "30s",
            "titleFormat": a.name,
            "textFormat": a.text,
            "useValueForTime": False,
        }
        for a in board.annotations
    ]
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": ["socialpulse"],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "refresh": "5s",
        "time": {"from": board.time_from, "to": "now"},
        "templating": {"list": [_variable(v) for v in board.variables]},
        "annotations": {"list": annotations},
        "panels": panels,
    }


def rendered(settings: Settings) -> dict[str, str]:
    """File name -> JSON text of every board."""
    return {
        f"{board.slug}.json": json.dumps(dashboard(board), indent=2) + "\n"
        for board in boards(settings)
    }


def write_boards(settings: Settings, folder: Path) -> list[Path]:
    """Write every board into ``folder`` (grafana/dashboards) and remove boards no spec makes."""
    folder.mkdir(parents=True, exist_ok=True)
    files = rendered(settings)
    for stale in folder.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


__all__ = ["DATASOURCE", "dashboard", "rendered", "write_boards"]
