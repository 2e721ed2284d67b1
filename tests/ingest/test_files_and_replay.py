"""File ingest and replay logic, with a recording producer (the real Kafka path is in
tests/e2e/test_ingest_e2e.py)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.config import load_ingest
from ingest.files import ingest_file, ingest_stream, records
from ingest.replay import Recorded, RecordingError, load_recording, replay, replayed
from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
SETTINGS = load_settings(project_home() / "config")


class Recorder:
    """Stands in for EventProducer: remembers what was sent, per topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.due_calls = 0

    def send(self, topic: str, event: dict[str, Any]) -> None:
        self.sent.append((topic, event))

    def send_due(self) -> None:
        self.due_calls += 1


def mention(i: int, ts: str = "2026-11-30T11:59:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m-{i}",
        "ts": ts,
        "platform": "x",
        "brand": "acme",
        "author": "a",
        "text": "hi",
    } | extra


def test_jsonl_lines_are_produced_or_rejected_with_line_numbers() -> None:
    lines = [
        json.dumps(mention(1)) + "\n",
        "\n",
        "{broken\n",
        json.dumps(
            {
                "id": "i-1",
                "ts": "2026-11-30T11:00:00Z",
                "platform": "x",
                "brand": "acme",
                "kind": "like",
                "content_id": "p",
                "user_id": "u",
            }
        )
        + "\n",
        json.dumps(mention(2, ts="2026-11-30T13:00:00Z")) + "\n",
    ]
    producer, rejects = Recorder(), io.StringIO()
    summary = ingest_stream(lines, "jsonl", SETTINGS, producer, NOW, rejects=rejects)  # type: ignore[arg-type]
    assert [(t, e["id"]) for t, e in producer.sent] == [
        ("social.mentions", "m-1"),
        ("social.interactions", "i-1"),
    ]
    assert (summary.lines, dict(summary.accepted), dict(summary.rejected)) == (
        4,
        {"mention": 1, "interaction": 1},
        {"not_json": 1, "ts_in_future": 1},
    )
    assert summary.too_old == 1  # the 11:00 like is older than the 10 min lateness
    written = [json.loads(line) for line in rejects.getvalue().splitlines()]
    assert [(r["line"], r["reason"]) for r in written] == [(3, "not_json"), (5, "ts_in_future")]
    assert written[1]["record"]["id"] == "m-2"
    text = summary.text(600)
    assert text.splitlines()[0] == (
        "ingest: 4 records, 2 accepted (1 interactions, 1 mentions), 2 rejected"
    )


def test_csv_with_mapping_skips_report_lines(tmp_path: Path) -> None:
    mapping = (
        load_ingest(SETTINGS.config_dir, SETTINGS.brands)
        .mappings["brandwatch"]
        .model_copy(update={"skip_rows": 2})
    )
    csv_text = (
        "Report:,Acme\nGenerated:,2026-11-30\n"
        "Resource Id,Date,Page Type,Author,Full Text,Sentiment\n"
        'r1,2026-11-30 11:58:07.0,Twitter,ann,"Good, really",positive\n'
        "r2,2026-11-30 11:58:09.0,Geocities,bob,meh,neutral\n"
        ",,,,,\n"
    )
    path = tmp_path / "export.csv"
    path.write_text(csv_text)
    producer = Recorder()
    summary = ingest_file(str(path), SETTINGS, producer, NOW, mapping=("brandwatch", mapping))  # type: ignore[arg-type]
    assert [e["text"] for _, e in producer.sent] == ["Good, really"]
    assert dict(summary.rejected) == {"invalid_fields": 1}
    assert summary.rejects_path == tmp_path / "export.csv.rejects.jsonl"
    [reject] = [json.loads(line) for line in summary.rejects_path.read_text().splitlines()]
    assert reject["line"] == 5 and reject["record"]["Page Type"] == "Geocities"
    # A clean re-run removes the stale rejects file.
    path.write_text(csv_text.replace("Geocities", "Twitter"))
    again = ingest_file(str(path), SETTINGS, Recorder(), NOW, mapping=("brandwatch", mapping))  # type: ignore[arg-type]
    assert not again.rejected and not (tmp_path / "export.csv.rejects.jsonl").exists()


def test_csv_records_line_numbers() -> None:
    rows = list(records(["a,b\n", "1,\n", "\n", "3,4\n"], "csv"))
    assert rows == [(2, {"a": "1"}), (4, {"a": "3", "b": "4"})]


def test_replay_paces_events_and_shifts_times_and_ids(tmp_path: Path) -> None:
    recording = tmp_path / "drill.jsonl"
    events = [
        mention(2, ts="2026-01-01T10:00:10Z", needs_reply=True),
        mention(1, ts="2026-01-01T10:00:00Z"),
        {
            "type": "mention",
            **mention(3, ts="2026-01-01T10:00:30Z"),
            "from_brand": True,
            "reply_to": "m-2",
        },
    ]
    recording.write_text("".join(json.dumps(e) + "\n" for e in events))
    loaded = load_recording(recording)
    assert [e.body["id"] for e in loaded] == ["m-1", "m-2", "m-3"]
    clock = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    producer = Recorder()
    sent = replay(
        loaded, SETTINGS.pipeline.topics, producer, speed=10, clock=lambda: clock[0], sleep=sleep
    )  # type: ignore[arg-type]
    assert sent == 3 and sleeps == [pytest.approx(1.0), pytest.approx(2.0)]
    out = [e for _, e in producer.sent]
    assert [e["ts"] for e in out] == [
        "1970-01-01T00:16:40+00:00",
        "1970-01-01T00:16:41+00:00",
        "1970-01-01T00:16:43+00:00",
    ]
    assert [e["id"] for e in out] == ["m-1-r1000", "m-2-r1000", "m-3-r1000"]
    assert out[2]["reply_to"] == "m-2-r1000"
    assert replayed(loaded[0], 5.0, "")["id"] == "m-1"


def test_bad_recordings_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(mention(1)) + "\n" + json.dumps(mention(2, ts="noon")) + "\n")
    with pytest.raises(RecordingError, match=r"bad.jsonl:2: "):
        load_recording(path)
    path.write_text("\n")
    with pytest.raises(RecordingError, match="no events to replay"):
        load_recording(path)
    assert Recorded("mention", 0.0, {}).type == "mention"
