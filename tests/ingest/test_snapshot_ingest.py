"""Snapshots through ingest (validation, topics, replay) and the mapping features platform
payloads need: nested targets, list items by key, paths from the payload, templates, sums,
times of mapping and shifted times, regular expressions."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from ingest.config import FieldMapping
from ingest.files import ingest_stream
from ingest.kafka_writer import KafkaWriter
from ingest.mapping import apply_mapping, records_of
from ingest.paths import MISSING, lookup, parse_path
from ingest.replay import Recorded, replay, replayed
from ingest.validation import Accepted, Rejected, event_type, validate_item
from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
SETTINGS = load_settings(project_home() / "config")
TOPICS = SETTINGS.pipeline.topics
SNAPSHOT: dict[str, Any] = {
    "ts": "2026-11-30T11:00:00Z",
    "platform": "instagram",
    "brand": "acme",
    "object_id": "https://www.instagram.com/p/C1a2b3c4d5/",
    "published_at": "2026-11-30T09:00:00Z",
    "metrics": {"impressions": 1200, "likes": 40},
}


def mapping(**fields: Any) -> FieldMapping:
    """A snapshot mapping of ``fields`` (brand and platform fixed)."""
    base = {"brand": {"value": "acme"}, "platform": {"value": "instagram"}}
    return FieldMapping.model_validate({"type": "snapshot", "fields": base | fields})


# Paths


def test_paths_select_list_items_by_key_and_take_values_from_the_record() -> None:
    record = {
        "author_id": "7",
        "insights": {"data": [{"name": "views", "values": [{"value": 5}]}, {"name": "reach"}]},
        "actions": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"}],
    }
    root = {"includes": {"users": [{"id": "6", "n": "a"}, {"id": "7", "n": "b"}]}}
    assert lookup(record, "insights.data[name=views].values.0.value") == 5
    assert lookup(record, "insights.data[name=saved].values.0.value") is MISSING
    assert lookup(record, "actions[action_type=offsite_conversion.fb_pixel_purchase].value") == "3"
    assert lookup(record, "$.includes.users[id={author_id}].n", root) == "b"
    assert lookup(record, "$.includes.users[id={nobody}].n", root) is MISSING
    assert lookup(record, "insights.data[1].name") == "reach"
    assert records_of({"data": [{"values": [1, 2]}, {"values": [3]}]}, "data[*].values") == [
        1,
        2,
        3,
    ]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("a..b", "an empty step"),
        ("data[name=x", "a [ without its ]"),
        ("data]", "a ] without its ["),
        ("data[name]", "[name] selects nothing (use [key=value], [*] or [0])"),
    ],
)
def test_a_bad_path_is_refused_at_load_naming_it(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"path {path!r}: ")) as raised:
        parse_path(path)
    assert problem in str(raised.value)
    with pytest.raises(ValidationError, match=r"metrics\.likes") as refused:
        mapping(**{"metrics.likes": path})
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"object_id": {"now": True}}, "object_id: now and shift are for times"),
        ({"Metrics.Likes": "x"}, "'Metrics.Likes' is not an event field"),
        ({"object_id": {"from": "id", "match": "("}}, "match: '(' is not a regular expression"),
        ({"object_id": {"type": "str"}}, "give from (a column or path), template, sum, now"),
    ],
)
def test_mapping_mistakes_are_refused_at_load(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match="fields") as refused:
        mapping(**fields)
    assert problem in str(refused.value)


# Mapping features


def test_nested_targets_templates_sums_now_and_shift() -> None:
    rules = mapping(
        ts={"now": True},
        published_at={"from": "day", "format": "%Y-%m-%d", "shift": "-1d"},
        object_id={"template": "{ad}@{day}"},
        campaign={"template": "{missing}", "default": "none"},
        **{
            "metrics.shares": {"sum": ["rt", "quotes", "absent"], "type": "int"},
            "metrics.impressions": {"from": ["organic", "public"], "type": "int"},
            "metrics.spend": {"from": "spend", "type": "float"},
        },
    )
    record = {"ad": "ad-1", "day": "2026-11-30", "rt": "1,200", "quotes": 3, "public": "77"}
    event = apply_mapping("m", rules, record | {"spend": "41.20"}, now=NOW)
    assert event == {
        "type": "snapshot",
        "brand": "acme",
        "platform": "instagram",
        "ts": "2026-11-30T12:00:00+00:00",
        "published_at": "2026-11-29T00:00:00+00:00",
        "object_id": "ad-1@2026-11-30",
        "campaign": "none",
        "metrics": {"shares": 1203, "impressions": 77, "spend": 41.2},
    }
    # Snapshots get no derived id: the schema's <object_id>@<ts> names them.
    accepted = validate_item(event, NOW, 300)
    assert isinstance(accepted, Accepted)
    assert accepted.id == "ad-1@2026-11-30@2026-11-30T12:00:00+00:00"


def test_match_keeps_its_groups_and_rejects_what_it_does_not_match() -> None:
    rules = mapping(object_id={"from": "id", "match": r"^(\d+)/.*(@.+)$"})
    event = apply_mapping("m", rules, {"id": "104/insights/views/day@2026-11-30"})
    assert isinstance(event, dict) and event["object_id"] == "104@2026-11-30"
    rejected = apply_mapping("m", rules, {"id": "page"})
    assert rejected == Rejected(
        "invalid_fields", r"object_id (from 'id'): 'page' does not match '^(\\d+)/.*(@.+)$'"
    )


def test_object_ids_are_kept_when_the_schema_takes_them_else_digested() -> None:
    rules = mapping(object_id="url")
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=1"  # '?' and '=' are fine here
    kept = apply_mapping("m", rules, {"url": url})
    spaced = apply_mapping("m", rules, {"url": "my post 1"})
    assert isinstance(kept, dict) and kept["object_id"] == url
    assert isinstance(spaced, dict) and spaced["object_id"].startswith("m-")
    assert apply_mapping("m", rules, {"url": "my post 1"}) == spaced  # stable


def test_a_metric_that_is_not_a_number_names_the_field_and_the_source() -> None:
    rules = mapping(
        ts={"now": True}, object_id="id", **{"metrics.likes": {"from": "l", "type": "int"}}
    )
    assert apply_mapping("m", rules, {"id": "p", "l": "many"}, now=NOW) == Rejected(
        "invalid_fields", "metrics.likes (from 'l'): could not convert string to float: 'many'"
    )


# Validation and routing


def test_snapshots_are_inferred_from_object_id_and_metrics() -> None:
    assert event_type({"object_id": "p", "metrics": {}}) == "snapshot"
    assert event_type({"kind": "like", "object_id": "p", "metrics": {}}) == "interaction"
    accepted = validate_item(SNAPSHOT, NOW, 300)
    assert isinstance(accepted, Accepted) and accepted.type == "snapshot"
    assert accepted.id == "https://www.instagram.com/p/C1a2b3c4d5/@2026-11-30T11:00:00Z"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"metrics": {"views": 5}}, "metrics: none of 'views' is a snapshot metric"),
        ({"metrics": {"likes": "five"}}, "metrics: likes: a number, not text 'five'"),
        ({"metrics": {"likes": [5]}}, "metrics: likes: a number, not list"),
        ({"metrics": {"likes": 1.5}}, "metrics: likes: 1.5 is not a whole number"),
        ({"metrics": {}}, "metrics"),
        (
            {"published_at": "2026-11-30T11:30:00Z"},  # half an hour after ts: not clock skew
            "published_at: 2026-11-30T11:30:00+00:00 is after",
        ),
        ({"object_id": None}, "object_id"),
    ],
)
def test_a_bad_snapshot_is_rejected_naming_the_field(change: dict[str, Any], detail: str) -> None:
    item = {k: v for k, v in (SNAPSHOT | change).items() if v is not None} | {"type": "snapshot"}
    result = validate_item(item, NOW, 300)
    assert isinstance(result, Rejected) and result.reason == "invalid_fields"
    assert result.detail.startswith(detail), result.detail


class Recorder:
    """Stands in for EventProducer."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, event: dict[str, Any]) -> None:
        self.sent.append((topic, event))

    def send_due(self) -> None:
        pass


def test_file_ingest_and_the_gateway_writer_route_snapshots_to_their_topic() -> None:
    import json

    producer = Recorder()
    lines = io.StringIO(json.dumps(SNAPSHOT) + "\n")
    summary = ingest_stream(lines, "jsonl", SETTINGS, producer, NOW)  # type: ignore[arg-type]
    assert summary.accepted == {"snapshot": 1}
    assert producer.sent == [(TOPICS.snapshots, SNAPSHOT)]
    writer = KafkaWriter(SETTINGS.pipeline.kafka, TOPICS, 10, 1.0)
    assert writer.topics["snapshot"] == TOPICS.snapshots == "social.snapshots"


def test_replayed_snapshots_move_published_at_and_suffix_the_object() -> None:
    ts = datetime(2026, 11, 30, 11, 0, tzinfo=UTC).timestamp()
    event = Recorded("snapshot", ts, dict(SNAPSHOT))
    body = replayed(event, ts + 3600, "-r1")
    assert body["ts"] == "2026-11-30T12:00:00+00:00"
    assert body["published_at"] == "2026-11-30T10:00:00+00:00"
    assert body["object_id"] == SNAPSHOT["object_id"] + "-r1"
    producer = Recorder()
    replay([event], TOPICS, producer, clock=lambda: ts, sleep=lambda _: None)  # type: ignore[arg-type]
    assert [topic for topic, _ in producer.sent] == [TOPICS.snapshots]


def test_the_gateway_takes_snapshots_and_names_the_field_of_a_bad_one() -> None:
    import orjson

    from tests.ingest.asgi_client import FakeWriter, bearer, gateway_app, recent, run

    good = SNAPSHOT | {"ts": recent(), "published_at": recent(3600)}
    bad = good | {"metrics": {"likes": -1}}
    writer = FakeWriter()
    answer = run(
        gateway_app(writer),
        "POST",
        "/v1/events",
        body=orjson.dumps([good, bad]),
        headers=[*bearer(), (b"content-type", b"application/json")],
    )
    assert answer.status == 200
    assert answer.json()["errors"] == [
        {
            "index": 1,
            "reason": "invalid_fields",
            "detail": "metrics: likes: -1 is outside 0 to 1e12",
        }
    ]
    assert [(e.type, e.body["object_id"]) for e in writer.written] == [
        ("snapshot", SNAPSHOT["object_id"])
    ]
