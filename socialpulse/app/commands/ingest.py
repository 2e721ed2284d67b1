"""``socialpulse gateway``, ``socialpulse ingest`` and ``socialpulse replay``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialpulse.app.settings import Settings
from socialpulse.core.config import ConfigError
from socialpulse.core.config_files import shown_path

if TYPE_CHECKING:
    from ingest.config import FieldMapping
    from ingest.event_producer import EventProducer

log = logging.getLogger(__name__)

SettingsOf = Callable[[argparse.Namespace], Settings]


def _producer(settings: Settings, client_id: str, envelope: int) -> EventProducer:
    """The event topics made sure of and a producer batching ``envelope`` events a message;
    raises KafkaError when Kafka cannot be reached."""
    from ingest.event_producer import EventProducer, kafka_producer
    from socialpulse.core.topics import ensure_topics

    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    return EventProducer(kafka_producer(settings.pipeline.kafka, client_id), envelope=envelope)


def _kafka_unreachable(command: str, settings: Settings, exc: Exception) -> int:
    """Say which Kafka could not be reached (exit 1); a re-run counts nothing twice."""
    print(
        f"socialpulse {command}: Kafka at {settings.pipeline.kafka.bootstrap_servers} did not "
        f"take the events ({exc}); start it (socialpulse stack up) or "
        "fix kafka.bootstrap_servers, then run again: events already written count once",
        file=sys.stderr,
    )
    return 1


def mapping_named(settings: Settings, name: str | None) -> tuple[str, FieldMapping] | None:
    """The ingest mapping called ``name`` (None: no mapping); ConfigError naming the file and
    the mappings it has when there is none of that name."""
    from ingest.config import INGEST_FILE, load_ingest

    if name is None:
        return None
    mappings = load_ingest(settings.config_dir, settings.brands).mappings
    if name not in mappings:
        raise ConfigError(
            f"--mapping {name!r} is not a mapping of "
            f"{shown_path(settings.config_dir / INGEST_FILE)} "
            f"(mappings: {', '.join(mappings) or 'none'})"
        )
    return name, mappings[name]


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _open_files_for(connections: int) -> None:
    """Make sure the process may hold ``connections`` sockets (and its own files): raise the
    soft limit when the hard one allows, else refuse to start with the fix."""
    import resource

    need = connections + 64  # Kafka, logs, the listening socket, Python's own
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise ConfigError(
            f"gateway.max_connections ({connections}) needs {need} open files, and this process "
            f"may open {hard}; lower gateway.max_connections or raise the limit (ulimit -n)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def gateway_server(config: Any, writer: Any, on_stop: Callable[[], None]) -> Any:
    """uvicorn's server for the gateway, with a bounded stop.

    On the first SIGTERM or SIGINT, ``on_stop`` runs (e.g. removing the Prometheus target) and
    a watchdog (socialpulse.core.shutdown) is armed to end the process STOP_WITHIN seconds later,
    whatever Kafka is doing. Then, in order:

    1. uvicorn stops accepting; idle connections close (a request arriving on one in the
       next half second gets 503 with Retry-After, socialpulse.core.http_server);
    2. one second before uvicorn's graceful time (HttpLimits.shutdown_timeout) would cancel
       them with no answer at all, requests still waiting for Kafka and requests whose body is
       still arriving get 503 with Retry-After;
    3. the Kafka producer's final flush gets STOP_PRODUCER_WITHIN seconds (the app's
       lifespan), and is abandoned after that: nothing it held was reported as accepted.
    """
    import asyncio

    import uvicorn

    from socialpulse.core.shutdown import STOP_WITHIN, end_within

    class GatewayServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                try:
                    on_stop()
                finally:
                    end_within(STOP_WITHIN, "gateway")
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets: Any = None) -> None:
            grace = max((self.config.timeout_graceful_shutdown or 5) - 1.0, 0.5)
            asyncio.get_running_loop().call_later(grace, self.answer_the_unfinished)
            await super().shutdown(sockets)

        def answer_the_unfinished(self) -> None:
            writer.refuse_waiting()  # waiting for Kafka's ack: 503 kafka_unavailable
            for connection in list(self.server_state.connections):
                if hasattr(connection, "stop_receiving"):  # body still arriving: 503
                    connection.stop_receiving()

    return GatewayServer(config)


def cmd_gateway(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """socialpulse gateway: serve the HTTP ingest gateway until SIGTERM or SIGINT (exit 0,
    within socialpulse.core.shutdown.STOP_WITHIN seconds whatever Kafka is doing)."""
    from functools import partial

    from ingest.config import load_ingest
    from ingest.gateway import create_app
    from ingest.kafka_writer import KafkaWriter
    from socialpulse.core.http_server import server_config
    from socialpulse.core.scrape_targets import register_gateway
    from socialpulse.core.topics import ensure_topics

    settings = settings_of(args)
    ingest = load_ingest(settings.config_dir, settings.brands)
    options = ingest.gateway
    host = args.host or options.host
    port = options.port if args.port is None else args.port
    if not ingest.tokens():
        names = ", ".join(ingest.token_env(s) for s in options.sources)
        raise ConfigError(
            f"gateway: no source has a bearer token; export {names} (a long random string, "
            "e.g. from `openssl rand -hex 32`) and send it as Authorization: Bearer <token>"
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("gateway: listening on %s, reachable from other machines", host)
    _open_files_for(options.max_connections)
    # kafka-python (topic creation) logs every failed connection as an error; while Kafka is
    # away, the writer's own warning says so once a minute instead.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    writer = KafkaWriter(
        settings.pipeline.kafka,
        settings.pipeline.topics,
        options.max_in_flight,
        float(options.produce_timeout),
        # Created in the background with the connection: a Kafka that is down must not keep
        # the gateway from starting (it answers 503 until Kafka is there).
        prepare=partial(ensure_topics, settings.pipeline.kafka, settings.pipeline.topics),
    )
    app = create_app(settings, ingest, writer)
    target = register_gateway(host, port)
    if target is not None:
        log.info("gateway: metrics scraped by the local Prometheus (%s)", target)

    def remove_target() -> None:
        if target is not None:
            target.unlink(missing_ok=True)

    # uvicorn stops on SIGTERM or SIGINT and then raises the signal again for these handlers:
    # exit 0 through the finally below, not a kill by the default handler (or a traceback).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    server = gateway_server(
        server_config(app, host, port, options.limits(), log_level="warning"),
        writer,
        remove_target,
    )
    print(f"gateway: http://{host}:{port}/v1/events (OpenAPI at /docs)", flush=True)
    try:
        server.run()
    finally:
        remove_target()
    return 0


def cmd_ingest(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """socialpulse ingest FILE|-: exit 0 when every record was accepted, 3 when some were
    rejected (see the rejects file)."""
    from kafka.errors import KafkaError

    from ingest.files import ingest_file

    settings = settings_of(args)
    mapping = mapping_named(settings, args.mapping)
    if args.history:
        return _ingest_history(args, settings, mapping)
    try:
        producer = _producer(settings, "socialpulse-ingest", 100)
    except KafkaError as exc:
        return _kafka_unreachable("ingest", settings, exc)
    try:
        try:
            summary = ingest_file(
                args.file,
                settings,
                producer,
                time.time(),
                fmt=args.format,
                mapping=mapping,
                default_type=args.type,
                rejects_path=Path(args.rejects) if args.rejects else None,
            )
        finally:
            producer.close(60)  # acknowledged by Kafka before the summary says accepted
    except FileNotFoundError as exc:
        print(f"socialpulse ingest: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        return _kafka_unreachable("ingest", settings, exc)
    print(summary.text(settings.pipeline.windows.allowed_lateness))
    return 3 if summary.rejected else 0


def _ingest_history(
    args: argparse.Namespace, settings: Settings, mapping: tuple[str, FieldMapping] | None
) -> int:
    """socialpulse ingest FILE --history (socialpulse.app.history_import): 0 when imported or
    imported before, 1 when it could not be (the reason and the fix printed)."""
    from kafka.errors import KafkaError

    from alerts.detection.backtest import BacktestError
    from alerts.detection.configured import detector_for
    from socialpulse.app.history_import import HistoryImportError, import_history
    from socialpulse.core.connections import redis_client
    from socialpulse.core.paths import state_dir

    path = Path(args.file)
    if args.file == "-" or not path.is_file():
        print(
            f"socialpulse ingest: {args.file}: --history reads a file (not stdin) that exists",
            file=sys.stderr,
        )
        return 1
    local = state_dir() / "prometheus" / "data"
    blocks_dir = (
        Path(args.prometheus_data)
        if args.prometheus_data
        else (local if local.is_dir() else Path(f"{path}.blocks"))
    )
    try:
        producer = _producer(settings, "socialpulse-ingest", 100)
    except KafkaError as exc:
        return _kafka_unreachable("ingest", settings, exc)
    try:
        done = import_history(
            path,
            settings,
            detector_for(settings.alerts, settings.kpis.kpis),
            redis_client(settings.pipeline.redis),
            producer,
            blocks_dir,
            args.format,
            mapping,
            args.type,
        )
    except (HistoryImportError, BacktestError, OSError, ValueError) as exc:
        print(f"socialpulse ingest: {exc}", file=sys.stderr)
        return 1
    finally:
        producer.close(60)
    if done.already is not None:
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(str(done.already["at"]))))
        print(
            f"{path}: imported already at {at} (history {done.already['history']} events); "
            "nothing changed"
        )
        return 0
    span = (
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(done.first))} to "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(done.last))} UTC"
        if done.history
        else "none"
    )
    print(f"history: {done.history} events ({span}); {done.recent} recent events sent to Kafka")
    for brand, handed in done.handed.items():
        print(
            f"  {brand}: {handed.baselines} baselines learned ({handed.kept} warm ones kept), "
            f"{handed.calibrations} rule calibrations"
        )
    rejected = sum(done.rejected.values())
    if rejected:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(done.rejected.items()))
        print(f"  {rejected} rejected ({reasons})")
    if done.blocks:
        upto = time.strftime("%Y-%m-%d %H:%M", time.gmtime(done.until))
        print(
            f"prometheus: {done.series} running totals, {done.samples} samples up to {upto} "
            f"UTC in {len(done.blocks)} blocks written to {done.blocks_dir}; the live totals "
            f"of {done.carried} brands go on from them"
        )
        if done.blocks_dir != local:
            print(
                "  copy them into Prometheus' data folder, e.g. with docker compose: "
                f"docker compose cp {done.blocks_dir}/. prometheus:/prometheus/ (Prometheus "
                "loads new blocks within a minute or two)"
            )
    return 0


def cmd_replay(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """socialpulse replay FILE: re-emit a recording with times shifted to now."""
    from kafka.errors import KafkaError
    from tqdm import tqdm

    from ingest.replay import RecordingError, load_recording, replay

    settings = settings_of(args)
    try:
        events = load_recording(Path(args.file))
    except (OSError, RecordingError) as exc:
        print(f"socialpulse replay: {exc}", file=sys.stderr)
        return 1
    span = events[-1].ts - events[0].ts
    print(
        f"replay: {len(events)} events over {span:.0f} s of recorded time, at {args.speed:g}x: "
        f"{span / args.speed:.0f} s",
        flush=True,
    )
    try:
        producer = _producer(settings, "socialpulse-replay", 50)
    except KafkaError as exc:
        return _kafka_unreachable("replay", settings, exc)
    bar: Any = tqdm(total=len(events), unit="ev", desc="replay", disable=None)
    try:
        sent = replay(
            events,
            settings.pipeline.topics,
            producer,
            args.speed,
            args.keep_ids,
            progress=lambda done, _: bar.update(done - bar.n),
        )
    except KeyboardInterrupt:
        sent = bar.n
    finally:
        bar.close()
        producer.close(60)
    print(f"replay: sent {sent} events")
    return 0


def cmd_poll(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """socialpulse poll: poll the accounts of ingest.yaml's pollers when due, until SIGTERM or
    SIGINT (exit 0). --once: poll the due ones once and exit, 0 when every poll succeeded, 3
    when one failed (its reason printed)."""
    import threading

    import httpx
    from kafka.errors import KafkaError
    from prometheus_client import CollectorRegistry, start_http_server

    from ingest.config import INGEST_FILE, load_ingest
    from ingest.poller import Poller, PollMetrics
    from socialpulse.core.connections import redis_client
    from socialpulse.core.redis_keys import RedisKeys
    from socialpulse.core.scrape_targets import register_poller

    settings = settings_of(args)
    ingest = load_ingest(settings.config_dir, settings.brands)
    options = ingest.pollers
    # httpx logs every request at INFO; the poller's own lines say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    chosen = args.account or list(options.accounts)
    unknown = [a for a in chosen if a not in options.accounts]
    if unknown or not chosen:
        shown = shown_path(settings.config_dir / INGEST_FILE)
        raise ConfigError(
            f"{shown}: pollers.accounts: "
            + (f"no account {', '.join(map(repr, unknown))} " if unknown else "no account ")
            + f"(accounts: {', '.join(options.accounts) or 'none'}); add one as docs/ingest.md "
            "(Pollers) shows"
        )
    ingest = ingest.model_copy(
        update={
            "pollers": options.model_copy(
                update={"accounts": {a: options.accounts[a] for a in chosen}}
            )
        }
    )
    try:
        producer = _producer(settings, "socialpulse-poll", 100)
    except KafkaError as exc:
        return _kafka_unreachable("poll", settings, exc)
    registry = CollectorRegistry()
    stop = threading.Event()
    with httpx.Client(follow_redirects=False) as client:
        poller = Poller(
            settings,
            ingest,
            client,
            producer,
            redis_client(settings.pipeline.redis),
            RedisKeys(settings.pipeline.redis.key_prefix),
            PollMetrics(registry),
        )
        for name in chosen:
            account = options.accounts[name]
            if poller.token(account) is None:
                log.warning(
                    "poll %s: %s is not set: polling the local API stub at %s",
                    name,
                    account.token_env,
                    options.stub_url,
                )
        if args.once:
            results = poller.poll_due()
            producer.close(60)
            for r in results:
                print(
                    f"poll {r.account}: {r.outcome}{' (' + r.reason + ')' if r.reason else ''}, "
                    f"{r.requests} requests, {r.accepted} events, {r.rejected} dead-lettered"
                )
            if not results:
                print("poll: no account is due")
            return 0 if all(r.outcome in ("ok", "waiting") for r in results) else 3
        start_http_server(options.metrics_port, options.metrics_host, registry)
        target = register_poller(options.metrics_host, options.metrics_port)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        print(
            f"poll: {len(chosen)} accounts; /metrics on "
            f"http://{options.metrics_host}:{options.metrics_port}/metrics",
            flush=True,
        )
        try:
            _poll_until(poller, stop)
        finally:
            if target is not None:
                target.unlink(missing_ok=True)
            producer.close(10)
    return 0


def _poll_until(poller: Any, stop: Any) -> None:
    """Poll due accounts until ``stop`` is set; Redis or Kafka away is waited out, logged."""
    import redis

    while not stop.is_set():
        try:
            poller.poll_due()
            wait = poller.next_due() - time.time()
        except redis.RedisError as exc:
            log.warning("poll: Redis did not answer (%s); trying again in 5 s", exc)
            wait = 5.0
        stop.wait(min(max(wait, 0.2), 5.0))


def add_commands(sub: Any, settings_of: SettingsOf) -> None:
    """Add the gateway, ingest, replay and poll subcommands."""
    gateway = sub.add_parser("gateway", help="HTTP ingest gateway (events, Meta and webhooks)")
    gateway.add_argument("--host", help="listen address (default: ingest.yaml gateway.host)")
    gateway.add_argument("--port", type=int, help="port (default: ingest.yaml gateway.port)")
    gateway.set_defaults(func=lambda a: cmd_gateway(a, settings_of))

    ingest = sub.add_parser(
        "ingest", help="produce events from a JSONL, JSON or CSV file (- is stdin)"
    )
    ingest.add_argument("file", help="JSONL, JSON (a saved API response) or CSV file, or -")
    ingest.add_argument("--format", choices=["jsonl", "json", "csv"], help="default: from the name")
    ingest.add_argument("--mapping", help="a mapping of config/ingest.yaml (tool exports)")
    ingest.add_argument(
        "--type",
        choices=["mention", "interaction", "snapshot"],
        help="event type of records without a type field (default: inferred per record)",
    )
    ingest.add_argument("--rejects", help="rejects file (default: FILE.rejects.jsonl)")
    ingest.add_argument(
        "--history",
        action="store_true",
        help="an export of any age: warm the baselines, backfill Prometheus with its running "
        "totals, send what is within the allowed lateness to Kafka; once per file",
    )
    ingest.add_argument(
        "--prometheus-data",
        metavar="DIR",
        help="--history: where the TSDB blocks go (default: the local stack's Prometheus data, "
        "else FILE.blocks to copy into yours)",
    )
    ingest.set_defaults(func=lambda a: cmd_ingest(a, settings_of))

    replay = sub.add_parser("replay", help="re-emit a recorded JSONL file with times shifted")
    replay.add_argument("file", help="JSON lines of events, as recorded")
    replay.add_argument("--speed", type=float, default=1.0, help="N times the recorded pace")
    replay.add_argument(
        "--keep-ids",
        action="store_true",
        help="keep event ids (a second replay then counts nothing again)",
    )
    replay.set_defaults(func=lambda a: cmd_replay(a, settings_of))

    poll = sub.add_parser(
        "poll", help="poll the platforms' APIs for the accounts of ingest.yaml (pollers)"
    )
    poll.add_argument("--account", action="append", help="poll only this account (repeatable)")
    poll.add_argument(
        "--once", action="store_true", help="poll the accounts that are due once, then exit"
    )
    poll.set_defaults(func=lambda a: cmd_poll(a, settings_of))
