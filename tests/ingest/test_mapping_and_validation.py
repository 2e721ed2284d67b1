"""Field mappings and item validation: exact events out, exact reasons for what is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.config import FieldMapping, IngestFile, load_ingest
from ingest.json_body import parse_lines
from ingest.mapping import apply_mapping, derived_id, lookup, records_of
from ingest.validation import Accepted, Rejected, event_type, validate_item
from socialpulse.app.settings import load_settings
from socialpulse.core.config import ConfigError
from socialpulse.core.http_server import HttpLimits
from socialpulse.core.paths import project_home

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
MENTION = {
    "id": "m-1",
    "ts": "2026-11-30T11:59:00Z",
    "platform": "x",
    "brand": "acme",
    "author": "jo",
    "text": "love it",
}


def shipped_mapping(name: str) -> FieldMapping:
    return load_ingest(config_dir=project_home() / "config").mappings[name]


def test_brandwatch_row_maps_to_a_mention() -> None:
    row = {
        "Resource Id": "1862000000000000001",
        "Date": "2026-11-30 11:58:07.0",
        "Page Type": "Twitter",
        "Author": "coffee_fan",
        "Full Text": "Acme's new latte is great",
        "Sentiment": "Positive",
        "Twitter Followers": "1,204",
        "Url": "https://x.com/coffee_fan/status/1862000000000000001",
        "Language": "en",
    }
    event = apply_mapping("brandwatch", shipped_mapping("brandwatch"), row)
    assert event == {
        "type": "mention",
        "id": "1862000000000000001",
        "ts": "2026-11-30T11:58:07+00:00",
        "platform": "x",
        "brand": "acme",
        "author": "coffee_fan",
        "text": "Acme's new latte is great",
        "sentiment": "positive",
        "author_followers": 1204,
        "url": "https://x.com/coffee_fan/status/1862000000000000001",
        "lang": "en",
    }
    accepted = validate_item(event, NOW, 300)
    assert isinstance(accepted, Accepted) and accepted.type == "mention"
    assert "type" not in accepted.body


def test_unmapped_platform_and_bad_date_are_rejected_with_the_column() -> None:
    mapping = shipped_mapping("brandwatch")
    row = {"Resource Id": "1", "Date": "2026-11-30 11:58:07.0", "Page Type": "Myspace"}
    rejected = apply_mapping("brandwatch", mapping, row)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "invalid_fields"
    assert rejected.detail.startswith("platform (from 'Page Type'): 'Myspace' is not in its")
    bad_date = apply_mapping("brandwatch", mapping, row | {"Page Type": "x", "Date": "yesterday"})
    assert isinstance(bad_date, Rejected)
    assert bad_date.detail.startswith("ts (from 'Date'): time data 'yesterday' does not match")


def test_talkwalker_payload_scales_sentiment_and_hashes_url_ids() -> None:
    payload = {
        "chunk_result": {
            "data": [
                {
                    "data": {
                        "url": "https://www.instagram.com/p/abc/?utm=1",
                        "published": 1796040000000,
                        "content": "Not happy with Acme today",
                        "sentiment": -3,
                        "source_type": ["SOCIALMEDIA_INSTAGRAM", "SOCIALMEDIA"],
                        "extra_author_attributes": {"name": "Mia"},
                        "reach": 5300,
                        "lang": "en",
                    }
                }
            ]
        }
    }
    mapping = shipped_mapping("talkwalker")
    [record] = records_of(payload, mapping.records)
    event = apply_mapping("talkwalker", mapping, record)
    assert isinstance(event, dict)
    assert event["platform"] == "instagram"
    assert event["ts"] == "2026-11-30T12:00:00+00:00"
    assert event["sentiment"] == pytest.approx(-0.6)
    assert event["author"] == "Mia" and event["author_followers"] == 5300
    # The URL has characters ids do not allow: a stable digest instead.
    assert event["id"].startswith("talkwalker-") and len(event["id"]) == len("talkwalker-") + 24
    assert apply_mapping("talkwalker", mapping, record)["id"] == event["id"]  # type: ignore[index]


def test_records_without_id_get_the_same_derived_id_every_time() -> None:
    mapping = FieldMapping.model_validate(
        {"type": "mention", "fields": {"text": "body", "author": "who", "brand": {"value": "acme"}}}
    )
    row = {"body": "hello", "who": "ann"}
    first, again = apply_mapping("tool", mapping, row), apply_mapping("tool", mapping, dict(row))
    assert isinstance(first, dict) and isinstance(again, dict)
    assert first["id"] == again["id"] == derived_id("tool", row)
    other = apply_mapping("tool", mapping, row | {"body": "hello!"})
    assert isinstance(other, dict) and other["id"] != first["id"]


def test_lookup_by_column_then_path() -> None:
    record = {"a.b": 1, "a": {"b": 2, "list": [{"x": 3}]}}
    assert lookup(record, "a.b") == 1
    assert lookup(record, "a.list.0.x") == 3
    assert records_of({"a": None}, "a") == []


@pytest.mark.parametrize(
    ("item", "reason", "detail"),
    [
        ([1], "invalid_fields", "an event is a JSON object, not an array"),
        ({"id": "x"}, "invalid_fields", "type: cannot tell a mention from an interaction"),
        (
            MENTION | {"type": "post"},
            "invalid_fields",
            "type: 'post' is not mention, interaction or snapshot",
        ),
        ({k: v for k, v in MENTION.items() if k != "author"}, "invalid_fields", "author: required"),
        (MENTION | {"schema_version": 2}, "unknown_schema_version", "schema_version must be 1"),
        (MENTION | {"ts": "2026-11-30T12:06:00Z"}, "ts_in_future", "ts: 2026-11-30T12:06:00+00:00"),
        (MENTION | {"text": "x" * 300_000}, "oversize", "300"),
    ],
)
def test_validate_item_reasons(item: object, reason: str, detail: str) -> None:
    result = validate_item(item, NOW, 300)
    assert isinstance(result, Rejected)
    assert (result.reason, result.detail[: len(detail)]) == (reason, detail)


def test_strict_mode_refuses_unknown_brand_and_platform() -> None:
    known = {"acme": {"x"}}
    assert isinstance(validate_item(MENTION, NOW, 300, known), Accepted)
    brand = validate_item(MENTION | {"brand": "zeta"}, NOW, 300, known)
    platform = validate_item(MENTION | {"platform": "tiktok"}, NOW, 300, known)
    assert isinstance(brand, Rejected) and brand.reason == "unknown_brand"
    assert isinstance(platform, Rejected) and platform.reason == "unknown_platform"


def test_event_type_inference_and_ndjson() -> None:
    assert event_type({"kind": "like"}) == "interaction"
    assert event_type({"text": ""}) == "mention"
    assert event_type({"kind": "like", "type": "mention"}) == "mention"
    items = parse_lines(b'{"a": 1}\n\nnot json\n[2]\n')
    assert items[0] == {"a": 1} and items[2] == [2]
    assert isinstance(items[1], Rejected) and items[1].reason == "not_json"


def test_ingest_yaml_errors_name_file_key_and_problem(tmp_path) -> None:
    settings = load_settings(project_home() / "config")
    (tmp_path / "ingest.yaml").write_text(
        "gateway: {port: 70000}\nwebhooks: {crm: {secret_env: X, mapping: nope}}\n"
    )
    with pytest.raises(ConfigError) as bad_port:
        load_ingest(config_dir=tmp_path)
    assert "ingest.yaml: gateway.port: Input should be less than or equal to 65535" in str(
        bad_port.value
    )
    (tmp_path / "ingest.yaml").write_text(
        "webhooks: {crm: {secret_env: X, mapping: nope}}\nmeta: {accounts: {'1': zeta}}\n"
    )
    with pytest.raises(ConfigError) as refs:
        load_ingest(tmp_path, settings.brands)
    assert "webhooks.crm.mapping: 'nope' is not a mapping of this file (mappings: none)" in str(
        refs.value
    )
    assert "meta.accounts.1: brand 'zeta' is not in brands.yaml" in str(refs.value)
    assert IngestFile().tokens({"SOCIALPULSE_INGEST_TOKEN_DEFAULT": " t0k "}) == {"default": "t0k"}
    (tmp_path / "ingest.yaml").write_text("gateway: {max_in_flight: 100, max_batch_events: 500}\n")
    with pytest.raises(ConfigError) as small:
        load_ingest(config_dir=tmp_path)
    assert str(small.value) == (
        f"{tmp_path}/ingest.yaml: gateway: max_in_flight (100) must be at least "
        "max_batch_events (500), or a full batch could never be accepted"
    )


def test_gateway_limits_are_read_and_checked(tmp_path) -> None:
    shipped = load_ingest(config_dir=project_home() / "config").gateway
    assert (shipped.request_timeout, shipped.max_connections) == (10, 100)
    assert shipped.limits() == HttpLimits(request_timeout=10.0, max_connections=100)
    (tmp_path / "ingest.yaml").write_text("gateway: {request_timeout: 0s, max_connections: 0}\n")
    with pytest.raises(ConfigError) as bad:
        load_ingest(config_dir=tmp_path)
    assert str(bad.value).splitlines() == [
        f"{tmp_path}/ingest.yaml: gateway.request_timeout: '0s' must be a positive duration",
        f"{tmp_path}/ingest.yaml: gateway.max_connections: Input should be greater than or "
        "equal to 1",
    ]
    (tmp_path / "ingest.yaml").write_text("gateway: {request_timeout: soon}\n")
    with pytest.raises(ConfigError, match=r"gateway\.request_timeout: .*soon"):
        load_ingest(config_dir=tmp_path)
