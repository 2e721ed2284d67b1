"""The ingest gateway, Meta and generic webhooks, file ingest and replay on the real stack: a
real `socialpulse gateway` writes to the real Kafka, a real worker counts what it accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import select
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

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools.stack.services import build_services
from tests.conftest import ROOT, Worker, free_port, run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import interaction, mention
from tests.e2e.helpers.gateway import Gateway, SilentBroker, read_answer, start_gateway
from tests.e2e.helpers.reading import kpi, value, wait_until

# It freezes the broker: it runs alone (see the Makefile).
pytestmark = pytest.mark.serial

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
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
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
    assert gateway.stop() == 0  # SIGTERM is an ordinary stop
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


def mentions_on_kafka(settings: Settings, ids: set[str], timeout: float = 30) -> list[bytes]:
    """Every message value on the run's mention topic, read from the start until the events
    ``ids`` have all been seen (a reader of the topic, as the worker is)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.pipeline.topics.mentions,
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            values += [message.value for message in consumer]
            seen = {e["id"] for v in values for e in json.loads(v)}
            if ids <= seen:
                return values
    finally:
        consumer.close()
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {sorted(ids)} on Kafka")


def test_nan_in_an_extra_field_is_refused_per_item_and_never_written(ingest_stack) -> None:
    worker, gateway = ingest_stack
    topic = worker.settings.pipeline.topics.mentions
    before = counted(worker, topic)
    first, bad, last = (mention("acme", "x", "nan test", "neutral") for _ in range(3))
    with_nan = json.dumps(bad)[:-1].encode() + b', "score": NaN}'
    body = b"[" + json.dumps(first).encode() + b", " + with_nan + b", " + json.dumps(last).encode()
    body += b"]"
    at = body.index(b"NaN")
    status, answer = gateway.post_events(body)
    assert (status, answer) == (
        200,
        {
            "accepted": 2,
            "rejected": 1,
            "skipped": 0,
            "errors": [
                {
                    "index": 1,
                    "reason": "not_json",
                    "detail": "not JSON: unexpected character, expected a JSON value at byte "
                    f"{at}; NaN and Infinity are not JSON numbers: send null or leave the field "
                    "out",
                }
            ],
        },
    )
    # One event alone with NaN: refused whole.
    status, answer = gateway.post_events(with_nan)
    assert (status, answer["error"]) == (400, "not_json")
    values = mentions_on_kafka(worker.settings, {first["id"], last["id"]})
    written = [e for v in values for e in json.loads(v)]
    assert bad["id"] not in {e["id"] for e in written}
    assert not [v for v in values if b"NaN" in v or b"Infinity" in v]
    wait_until(lambda: counted(worker, topic) == before + 2, what="the two good mentions counted")


def test_healthz_says_ok_and_names_no_source(ingest_stack) -> None:
    _, gateway = ingest_stack
    status, _, body = gateway.request("GET", "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert b"listening" not in body


@pytest.fixture(scope="module")
def limited_gateway(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with tight limits (2 s to send a request, 4 connections), on its own
    SOCIALPULSE_HOME so that the stack's Prometheus does not scrape it (its connection would
    count)."""
    folder = write_config(tmp_path_factory.mktemp("config"), uuid.uuid4().hex[:10])
    gateway_yaml = {"port": free_port(), "request_timeout": "2s", "max_connections": 4}
    (folder / "ingest.yaml").write_text(
        yaml.safe_dump({"gateway": gateway_yaml | {"sources": ["listening"]}})
    )
    pipeline = load_settings(folder).pipeline
    ensure_topics(pipeline.kafka, pipeline.topics)
    home = tmp_path_factory.mktemp("home")
    log = tmp_path_factory.mktemp("logs") / "gateway.log"
    gateway = start_gateway(folder, log, TOKEN, {"SOCIALPULSE_HOME": str(home)})
    yield gateway
    assert gateway.stop() == 0


def test_a_body_sent_at_one_byte_a_second_gets_408_and_others_are_served(
    limited_gateway: Gateway,
) -> None:
    gateway = limited_gateway
    body = json.dumps([mention("acme", "x", "slow")]).encode()
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    slow = gateway.connect()
    opened = time.monotonic()
    slow.sendall(head)
    answer, others = b"", []
    for byte in body:  # 1 byte/s, reading whatever the gateway says in between
        readable, _, _ = select.select([slow], [], [], 1.0)
        if readable:
            answer = read_answer(slow)
            break
        slow.sendall(bytes([byte]))
        if not others:  # the gateway still serves others meanwhile
            others.append(gateway.post_events([mention("acme", "x", "quick", "neutral")]))
    took = time.monotonic() - opened
    slow.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert rest.endswith(b"\r\n\r\nthe request was not received within 2 s")
    assert took <= 2 + 1.0  # request_timeout, plus a second for this client's own pace
    assert [(s, a["accepted"]) for s, a in others] == [(200, 1)]
    assert gateway.post_events([mention("acme", "x", "after", "neutral")])[0] == 200


def test_connections_beyond_max_connections_get_503_at_once(limited_gateway: Gateway) -> None:
    gateway = limited_gateway
    idle = [gateway.connect() for _ in range(4)]  # max_connections, sending nothing
    try:
        time.sleep(0.3)  # accepted by the gateway, not just by the kernel
        extra = gateway.connect(timeout=1.5)  # under request_timeout: not the idle close
        answer = read_answer(extra)
        extra.close()
        for sock in idle:  # still open: none of them was the one refused
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in idle:
            sock.close()
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"retry-after: 1" in head.lower().split(b"\r\n")
    assert text == b"more than 4 open connections; retry shortly"
    wait_until(
        lambda: gateway.request("GET", "/healthz")[0] == 200, timeout=10, what="served again"
    )


@pytest.mark.parametrize(
    ("kafka", "stop"),
    [("absent", signal.SIGTERM), ("silent", signal.SIGTERM), ("silent", signal.SIGINT)],
    ids=["absent-SIGTERM", "silent-SIGTERM", "silent-SIGINT"],
)
def test_sigterm_stops_the_gateway_within_10s_whatever_kafka_does(
    kafka: str, stop: signal.Signals, tmp_path: Path
) -> None:
    """Kafka nowhere (nothing listens) or frozen (a listener that accepts and never answers):
    the gateway serves 503s meanwhile, and SIGTERM (or Ctrl-C's SIGINT) ends it within 10 s,
    exit code 0, its
    Prometheus target file removed; a request still arriving gets 503, not an answer cut off."""
    silent = SilentBroker() if kafka == "silent" else None
    address = f"127.0.0.1:{silent.port if silent else free_port()}"
    folder = write_config(tmp_path / "config", uuid.uuid4().hex[:10])
    pipeline = folder / "socialpulse.yaml"
    pipeline.write_text(pipeline.read_text().replace("127.0.0.1:9092", address))
    port = free_port()
    (folder / "ingest.yaml").write_text(
        yaml.safe_dump(
            {"gateway": {"port": port, "produce_timeout": "4s", "sources": ["listening"]}}
        )
    )
    home = tmp_path / "home"
    (home / ".stack" / "prometheus" / "targets").mkdir(parents=True)  # "a local stack runs"
    target = home / ".stack" / "prometheus" / "gateway-targets" / f"gateway-{port}.json"
    env = {"SOCIALPULSE_HOME": str(home)}
    try:
        gateway = start_gateway(folder, tmp_path / "gateway.log", TOKEN, env, ready=(503,))
        status, _, body = gateway.request("GET", "/healthz")
        assert (status, json.loads(body)) == (503, {"status": "unavailable"})
        status, answer = gateway.post_events([mention("acme", "x", "no kafka")])
        assert (status, answer["error"]) == (503, "kafka_unavailable")
        assert answer["detail"].startswith(f"not connected to Kafka at {address} yet; ")
        assert target.is_file()
        slow = gateway.connect()  # a request in progress when the signal comes
        slow.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n\r\n{{".encode()
        )
        signalled = time.monotonic()
        gateway.process.send_signal(stop)
        code = gateway.process.wait(30)
        took = time.monotonic() - signalled
        unanswered = read_answer(slow)
        slow.close()
    finally:
        if silent:
            silent.close()
    log = (tmp_path / "gateway.log").read_text()
    assert took < 10.0, f"stopped in {took:.1f} s:\n{log}"
    assert code == 0, log
    assert not target.exists()
    # Told to retry before the graceful time ran out: nothing of it was acknowledged.
    head, _, text = unanswered.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
    assert text == b"the server is stopping before the request was received; retry"
    assert "Traceback" not in log, log
