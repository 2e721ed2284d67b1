"""The ingest gateway, Meta and generic webhooks, file ingest and replay on the real stack: a
real `socialpulse gateway` writes to the real Kafka, a real worker counts what it accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from socialpulse.settings import Settings, load_settings
from socialpulse.stack.services import build_services
from streams.topics import ensure_topics
from tests.conftest import ROOT, Worker, free_port, run_cli, start_worker, stop_worker, write_config
from tests.gateway_process import Gateway, start_gateway
from tests.test_pipeline_e2e import interaction, kpi, mention, value, wait_until

TOKEN = "listening-" + uuid.uuid4().hex  # made up per run: the test's own secret
META_SECRET, VERIFY = "meta-" + uuid.uuid4().hex, "verify-" + uuid.uuid4().hex
HOOK_SECRET = "hook-" + uuid.uuid4().hex
IG_ACCOUNT = "17841400000000002"


@pytest.fixture(scope="module")
def ingest_stack(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Gateway]]:
    """A worker and a gateway on their own topics; the gateway allows 10 events in flight (and
    a batch) and waits 4 s for Kafka's acknowledgement."""
    run = uuid.uuid4().hex[:10]
    folder = write_config(tmp_path_factory.mktemp("config"), run)
    port = free_port()
    shipped = yaml.safe_load((ROOT / "config/ingest.yaml").read_text())
    (folder / "ingest.yaml").write_text(
        yaml.safe_dump(
            {
                "gateway": {
                    "port": port,
                    "max_body_bytes": 64 * 1024,
                    "max_in_flight": 10,
                    "max_batch_events": 10,
                    "produce_timeout": "4s",
                    "sources": ["listening"],
                },
                "meta": {"accounts": {IG_ACCOUNT: "acme"}},
                "webhooks": {
                    "helpdesk": {
                        "secret_env": "TEST_HELPDESK_SECRET",
                        "signature_header": "X-Helpdesk-Signature",
                        "prefix": "",
                        "mapping": "ticket",
                    }
                },
                "mappings": {
                    **shipped["mappings"],
                    "ticket": {
                        "type": "mention",
                        "records": "tickets",
                        "fields": {
                            "id": "ticket.id",
                            "ts": {"from": "ticket.created_at", "format": "epoch"},
                            "platform": {"value": "x"},
                            "brand": {"value": "acme"},
                            "author": "ticket.requester",
                            "text": "ticket.subject",
                            "needs_reply": {"value": True},
                        },
                    },
                },
            }
        )
    )
    settings = load_settings(folder)
    ensure_topics(settings)
    logs = tmp_path_factory.mktemp("logs")
    worker = start_worker(folder, logs / "worker.log")
    gateway = start_gateway(
        folder,
        logs / "gateway.log",
        TOKEN,
        {
            "META_APP_SECRET": META_SECRET,
            "META_VERIFY_TOKEN": VERIFY,
            "TEST_HELPDESK_SECRET": HOOK_SECRET,
        },
    )
    yield worker, gateway
    gateway.stop()
    stop_worker(worker)
    secrets = (TOKEN, META_SECRET, VERIFY, HOOK_SECRET)
    logged = gateway.log.read_text() + worker.log_text()
    assert not [s for s in secrets if s in logged], "secret logged"


def counted(worker: Worker, topic: str) -> float:
    return value(worker.metrics_url, "socialpulse_events_counted_total", topic=topic) or 0


def gateway_metric(gateway: Gateway, name: str, **labels: str) -> float | None:
    return value(gateway.url + "/metrics", name, **labels)


def test_valid_batch_is_counted_and_invalid_items_are_refused_with_reasons(ingest_stack) -> None:
    worker, gateway = ingest_stack
    topics = worker.settings.pipeline.topics
    before = counted(worker, topics.mentions), counted(worker, topics.interactions)
    negative = [mention("acme", "x", "awful", "negative") for _ in range(3)]
    likes = [interaction("acme", "instagram", "like") | {"type": "interaction"} for _ in range(2)]
    status, answer = gateway.post_events([*negative, *likes])
    assert (status, answer) == (200, {"accepted": 5, "rejected": 0, "skipped": 0, "errors": []})

    # NDJSON with two bad lines among two good ones: the good ones go through.
    good = [mention("acme", "x", "fine", "neutral") for _ in range(2)]
    lines = [
        json.dumps(good[0]),
        "{not json",
        json.dumps(mention("acme", "x", "x") | {"ts": "yesterday"}),
        json.dumps(good[1]),
    ]
    status, answer = gateway.post_events(
        "\n".join(lines).encode(), content_type="application/x-ndjson"
    )
    assert status == 200
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    assert [(e["index"], e["reason"]) for e in answer["errors"]] == [
        (1, "not_json"),
        (2, "invalid_fields"),
    ]
    assert answer["errors"][1]["detail"].startswith("ts: Input should be a valid datetime")

    # All invalid: 422, nothing written.
    status, answer = gateway.post_events([{"id": "x"}])
    assert status == 422 and answer["accepted"] == 0 and answer["rejected"] == 1

    wait_until(
        lambda: (
            counted(worker, topics.mentions) == before[0] + 5
            and counted(worker, topics.interactions) == before[1] + 2
        ),
        what="5 mentions and 2 likes counted",
    )
    assert kpi(worker.metrics_url, "mentions_negative", "acme", "x") == 3
    assert kpi(worker.metrics_url, "mentions", "acme", "x") == 5

    # The same batch again: accepted (written), but the worker counts each id once.
    assert gateway.post_events([*negative, *likes])[1]["accepted"] == 5
    wait_until(
        lambda: (
            value(worker.metrics_url, "socialpulse_events_duplicate_total", topic=topics.mentions)
            == 3
        ),
        what="3 duplicates seen",
    )
    assert kpi(worker.metrics_url, "mentions", "acme", "x") == 5
    assert (
        gateway_metric(
            gateway,
            "socialpulse_ingest_events_total",
            source="listening",
            outcome="accepted",
            reason="",
        )
        == 12
    )
    assert (
        gateway_metric(
            gateway,
            "socialpulse_ingest_events_total",
            source="listening",
            outcome="rejected",
            reason="not_json",
        )
        == 1
    )


def test_bad_tokens_and_oversize_bodies_produce_nothing(ingest_stack) -> None:
    worker, gateway = ingest_stack
    topic = worker.settings.pipeline.topics.mentions
    before = counted(worker, topic), kpi(worker.metrics_url, "mentions", "globex", "x")
    event = mention("globex", "x", "should never count", "negative")
    for token in (None, "wrong-token", TOKEN + "x"):
        status, answer = gateway.post_events([event], token=token)
        assert status == 401 and answer["error"] == "unauthorized"
    status, headers, _ = gateway.request("POST", "/v1/events", b"[]", {"Authorization": "Basic x"})
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    huge = [mention("globex", "x", "y" * 2000) for _ in range(40)]  # ~90 KB > 64 KB
    status, answer = gateway.post_events(huge)
    assert status == 413 and answer["error"] == "too_large"
    status, answer = gateway.post_events(b"\xff\xfe[]")
    assert (status, answer["error"]) == (400, "not_utf8")
    refused = gateway_metric(
        gateway,
        "socialpulse_ingest_refused_requests_total",
        route="/v1/events",
        reason="unauthorized",
    )
    assert refused == 4
    # A marker sent with the right token after them: once it counts, anything written
    # before it on the same partition (globex's key) would have counted too.
    marker = mention("globex", "x", "marker", "neutral")
    assert gateway.post_events([marker])[0] == 200
    wait_until(lambda: counted(worker, topic) == before[0] + 1, what="the marker counted")
    assert kpi(worker.metrics_url, "mentions", "globex", "x") == (before[1] or 0) + 1


def meta_comment(comment_id: str, text: str) -> bytes:
    return json.dumps(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": IG_ACCOUNT,
                    "time": int(time.time()),
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "id": comment_id,
                                "text": text,
                                "from": {"id": "901", "username": "mia"},
                                "media": {"id": "18000000001"},
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def test_meta_handshake_and_signed_notifications(ingest_stack) -> None:
    worker, gateway = ingest_stack
    hub = f"hub.mode=subscribe&hub.challenge=8842&hub.verify_token={VERIFY}"
    assert gateway.request("GET", f"/v1/webhooks/meta?{hub}")[::2] == (200, b"8842")
    wrong = hub.replace(VERIFY, "guess")
    assert gateway.request("GET", f"/v1/webhooks/meta?{wrong}")[0] == 403

    before = kpi(worker.metrics_url, "mentions", "acme", "instagram") or 0
    body = meta_comment("17865799348089039", "This is the worst coffee, terrible")
    signature = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    for header in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}):
        assert gateway.request("POST", "/v1/webhooks/meta", body, header)[0] == 401
    tampered = body.replace(b"worst", b"best!")
    sig = {"X-Hub-Signature-256": signature}
    assert gateway.request("POST", "/v1/webhooks/meta", tampered, sig)[0] == 401
    status, _, answer = gateway.request("POST", "/v1/webhooks/meta", body, sig)
    assert (status, json.loads(answer)["accepted"]) == (200, 2)  # a mention and a comment
    assert (
        gateway_metric(
            gateway,
            "socialpulse_ingest_refused_requests_total",
            route="/v1/webhooks/meta",
            reason="bad_signature",
        )
        == 3
    )
    wait_until(
        lambda: kpi(worker.metrics_url, "mentions", "acme", "instagram") == before + 1,
        what="the Instagram comment counted as a mention",
    )
    assert kpi(worker.metrics_url, "mentions_negative", "acme", "instagram") == 1
    assert kpi(worker.metrics_url, "comments", "acme", "instagram") == 1

    # The generic webhook: its mapping turns a helpdesk ticket into a care message.
    tickets = json.dumps(
        {
            "tickets": [
                {
                    "ticket": {
                        "id": "T-1",
                        "created_at": int(time.time()),
                        "requester": "ann",
                        "subject": "Where is my order?",
                    }
                }
            ]
        }
    ).encode()
    signed = hmac.new(HOOK_SECRET.encode(), tickets, hashlib.sha256).hexdigest()
    status, _, answer = gateway.request(
        "POST", "/v1/webhooks/helpdesk", tickets, {"X-Helpdesk-Signature": signed}
    )
    assert (status, json.loads(answer)["accepted"]) == (200, 1)
    assert gateway.request("POST", "/v1/webhooks/helpdesk", tickets)[0] == 401
    assert gateway.request("POST", "/v1/webhooks/nope", tickets)[0] == 404
    wait_until(
        lambda: kpi(worker.metrics_url, "inbound_needing_reply", "acme", "x") == 1,
        what="the ticket counted as an inbound care message",
    )


def test_openapi_is_served(ingest_stack) -> None:
    _, gateway = ingest_stack
    status, _, body = gateway.request("GET", "/openapi.json")
    spec = json.loads(body)
    assert status == 200 and spec["info"]["title"] == "SocialPulse ingest gateway"
    assert {"/v1/events", "/v1/webhooks/meta", "/v1/webhooks/{name}"} <= set(spec["paths"])
    events = spec["paths"]["/v1/events"]["post"]
    assert set(events["requestBody"]["content"]) == {"application/json", "application/x-ndjson"}
    assert {"200", "401", "413", "422", "429", "503"} <= set(events["responses"])
    assert spec["components"]["schemas"]["Mention"]["required"] == [
        "id",
        "ts",
        "platform",
        "brand",
        "author",
        "text",
    ]


def test_slow_kafka_gives_429_and_503_never_a_silent_loss(ingest_stack) -> None:
    """The broker frozen (SIGSTOP): a request waits for acks and gets 503 after 4 s; one
    arriving meanwhile passes the in-flight bound and gets 429 at once. Retried after the
    broker is back, every event counts exactly once."""
    worker, gateway = ingest_stack
    [kafka] = [s for s in build_services(worker.settings) if s.name == "kafka"]
    pid = kafka.pid()
    assert pid is not None
    topic = worker.settings.pipeline.topics.mentions
    before = counted(worker, topic)
    first = [mention("acme", "x", "during the freeze", "neutral") for _ in range(8)]
    second = [mention("acme", "x", "also during it", "neutral") for _ in range(5)]
    answers: dict[str, Any] = {}
    os.kill(pid, signal.SIGSTOP)
    try:
        waiting = threading.Thread(target=lambda: answers.update(first=gateway.post_events(first)))
        waiting.start()
        wait_until(
            lambda: gateway_metric(gateway, "socialpulse_ingest_in_flight_events") == 8,
            timeout=5,
            what="8 events in flight",
        )
        status, headers, body = gateway.request(
            "POST",
            "/v1/events",
            json.dumps(second).encode(),
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert (status, headers["retry-after"], json.loads(body)["error"]) == (429, "1", "busy")
        waiting.join(15)
        status, answer = answers["first"]
        assert (status, answer["error"]) == (503, "kafka_unavailable")
    finally:
        os.kill(pid, signal.SIGCONT)
    # The clients retry, as told; events written before the timeout are not counted twice.
    wait_until(lambda: gateway.post_events(first)[0] == 200, timeout=60, what="retry accepted")
    assert gateway.post_events(second)[0] == 200
    wait_until(
        lambda: counted(worker, topic) == before + 13, timeout=90, what="13 mentions counted"
    )
    time.sleep(3)
    assert counted(worker, topic) == before + 13


def test_file_ingest_with_rejects_and_idempotent_rerun(ingest_stack, tmp_path: Path) -> None:
    worker, _ = ingest_stack
    topic = worker.settings.pipeline.topics.mentions
    now = datetime.now(UTC)
    rows = ["Resource Id,Date,Page Type,Author,Full Text,Sentiment"]
    for n in range(6):
        at = (now - timedelta(seconds=30 + n)).strftime("%Y-%m-%d %H:%M:%S.0")
        rows.append(f'bw-{uuid.uuid4().hex[:8]},{at},Twitter,fan{n},"Meh, ok",negative')
    rows.append(f"bw-bad,{now:%Y-%m-%d %H:%M:%S}.0,Friendster,x,y,neutral")
    export = tmp_path / "brandwatch.csv"
    export.write_text("\n".join(rows) + "\n")
    before = counted(worker, topic)
    negative_before = kpi(worker.metrics_url, "mentions_negative", "acme", "x") or 0
    for attempt in range(2):
        done = run_cli(worker.settings, "ingest", str(export), "--mapping", "brandwatch")
        assert done.returncode == 3, done.stderr  # some rejected
        assert done.stdout.splitlines()[0] == (
            "ingest: 7 records, 6 accepted (6 mentions), 1 rejected"
        ), attempt
        rejects = (tmp_path / "brandwatch.csv.rejects.jsonl").read_text().splitlines()
        assert [json.loads(r)["line"] for r in rejects] == [8]
    wait_until(lambda: counted(worker, topic) == before + 6, what="the export's 6 mentions counted")
    time.sleep(3)
    assert counted(worker, topic) == before + 6  # the second run counted nothing again
    assert kpi(worker.metrics_url, "mentions_negative", "acme", "x") == negative_before + 6


def test_replay_shifts_a_recording_to_now(ingest_stack, tmp_path: Path) -> None:
    worker, _ = ingest_stack
    topic = worker.settings.pipeline.topics.mentions
    old = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    recording = tmp_path / "drill.jsonl"
    events = [
        mention("globex", "facebook", "Flight cancelled again!", "negative")
        | {"ts": (old + timedelta(seconds=10 * n)).isoformat()}
        for n in range(4)
    ]
    recording.write_text("".join(json.dumps(e) + "\n" for e in events))
    before = counted(worker, topic)
    started = time.monotonic()
    for _ in range(2):  # each replay is a new drill: counted again
        done = run_cli(worker.settings, "replay", str(recording), "--speed", "10")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "replay: sent 4 events"
    assert time.monotonic() - started >= 2 * 3  # 30 s of recording at 10x, twice
    wait_until(lambda: counted(worker, topic) == before + 8, what="two replays counted")
    assert kpi(worker.metrics_url, "mentions_negative", "globex", "facebook") == 8
