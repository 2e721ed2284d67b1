"""Board previews: variables and legends filled as Grafana fills them, one PNG per board."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from socialpulse.app.boards.preview import PreviewWindow, legend, panel_series, preview, substitute
from socialpulse.app.boards.specs import Board, Panel, Query


def test_variables_and_legends_are_filled_like_grafana_does() -> None:
    expr = 'max by (platform) (socialpulse_mentions{brand="$brand", platform=~"$platform"})'
    assert substitute(expr, {"brand": "acme", "platform": ".*"}) == (
        'max by (platform) (socialpulse_mentions{brand="acme", platform=~".*"})'
    )
    assert substitute("$unknown", {}) == "$unknown"
    assert legend("baseline {{platform}} ({{ rule }})", {"platform": "x", "rule": "r"}) == (
        "baseline x (r)"
    )


def test_preview_draws_each_preview_panel_from_its_range_queries(tmp_path: Path) -> None:
    asked: list[tuple[str, float, float, float]] = []

    def fake_range(expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        asked.append((expr, start, end, step))
        return [
            {"metric": {"platform": "x"}, "values": [[start, "1"], [end, "3"]]},
            {"metric": {"platform": "tiktok"}, "values": [[start, "2"], [end, "0.5"]]},
        ]

    shown = Panel("Mentions", "d", [Query('m{brand="$brand"}', "{{platform}}")], preview=True)
    hidden = Panel("Other", "d", [Query("other", "")])
    board = Board("uid", "slug", "Title", "d", [shown, hidden])
    window = PreviewWindow(1000.0, 1600.0, 5.0, {"brand": "acme"})
    assert panel_series(shown, window, fake_range) == {
        "x": ([1000.0, 1600.0], [1.0, 3.0]),
        "tiktok": ([1000.0, 1600.0], [2.0, 0.5]),
    }
    path = preview(board, window, fake_range, tmp_path)
    assert path == tmp_path / "slug.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Only the preview panel was queried, with the variables filled in.
    assert {a[0] for a in asked} == {'m{brand="acme"}'}
