"""The Faust worker: agents count mentions and interactions into Redis; a process of its own
(socialpulse.app.evaluator) evaluates the alert rules.

Each topic's messages come a batch at a time (``streams.fetched_batches``, past Faust's
per-message path); a batch goes to plain functions (``plan_batch``), its result to Redis in one
round trip, what could not be decoded to the dead-letter topic. Its messages are acknowledged
only after its effects are in Redis, so committed offsets never pass an uncounted event.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import Message
from prometheus_client import REGISTRY

from alerts.detection.metrics import DetectionCollector
from alerts.incidents.metrics import IncidentCounts
from alerts.notify import metrics as notify_metrics
from alerts.notify.interactivity import ButtonServer, serve_interactivity
from alerts.notify.slack_message import uses_stub
from socialpulse.app.allocator import ALLOCATOR_ENV, running_on_jemalloc
from socialpulse.app.config_reload import ConfigReload
from socialpulse.app.evaluator import OWNED, Evaluator
from socialpulse.app.garbage_collection import tune_for_batches
from socialpulse.app.settings import Settings
from socialpulse.core.brand_partitions import OwnedBrands
from socialpulse.core.connections import (
    async_redis_client,
    faust_credentials,
    redis_client,
    redis_unavailable,
)
from socialpulse.core.dead_letter import dead_letter_headers
from socialpulse.core.paths import state_dir
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.scrape_targets import register_extra_worker
from socialpulse.core.shutdown import STOP_WITHIN, end_within
from streams import metrics, sentiment
from streams.batch import BatchPlan, EventType, RawMessage, plan_batch, plan_snapshots
from streams.campaign_metrics import CampaignCollector
from streams.consumer_lag import ConsumerLag, partition_lag
from streams.counted import AppliedBatch, CountedEvent, Failed
from streams.decoding import InvalidEvent
from streams.fetched_batches import BatchingApp
from streams.lenient import LenientBound
from streams.snapshots import Step
from streams.store.context_store import record_context
from streams.store.day_rollups import DayRollups
from streams.store.redis_store import AsyncCountStore, mark_tiers_written, snapshot_event

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_BACKOFF_MAX = 10.0


def create_app(
    settings: Settings, lag: ConsumerLag | None = None, owned: OwnedBrands | None = None
) -> faust.App:
    """Build the Faust app for these settings: the counting agents (the rules are evaluated in
    a process of their own, socialpulse.app.evaluator); ``lag`` (exported by /metrics) is kept
    up to date when given, and so is ``owned`` (the brands /metrics shows) at each rebalance."""
    pipeline = settings.pipeline
    datadir = state_dir() / "faust" / pipeline.worker.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = BatchingApp(
        pipeline.worker.app_id,
        broker=f"kafka://{pipeline.kafka.bootstrap_servers}",
        store="memory://",
        datadir=str(datadir),
        topic_partitions=pipeline.kafka.partitions,
        topic_replication_factor=pipeline.kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=float(pipeline.worker.session_timeout),
        broker_heartbeat_interval=pipeline.worker.session_timeout / 4,
        broker_commit_interval=pipeline.worker.commit_interval,
        web_enabled=False,
        broker_credentials=faust_credentials(),
    )

    def raw_topic(name: str) -> faust.TopicT:
        # Raw bytes in and out: decoding is ours, so a malformed message is dead-lettered with
        # a reason instead of crashing Faust's deserializer.
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=pipeline.kafka.partitions,
        )

    mentions_topic = raw_topic(pipeline.topics.mentions)
    interactions_topic = raw_topic(pipeline.topics.interactions)
    snapshots_topic = raw_topic(pipeline.topics.snapshots)
    dead_letter_topic = raw_topic(pipeline.topics.dead_letter)

    client = async_redis_client(settings.pipeline.redis, decode_responses=True)
    keys = RedisKeys(pipeline.redis.key_prefix)
    window_plan = settings.window_plan
    cleaning = pipeline.cleaning
    bot_authors = frozenset(cleaning.bot_authors)
    known = settings.strict_known
    store = AsyncCountStore(client, keys, window_plan, cleaning.max_mentions_per_author_per_minute)
    lenient = (
        None
        if cleaning.strict
        else LenientBound(client, keys, settings.known, cleaning.max_unknown)
    )
    lag = lag or ConsumerLag()

    async def dead_letter(topic: str, rejected: list[tuple[RawMessage, InvalidEvent]]) -> None:
        """Count, log and dead-letter a batch's rejects (acknowledged by the broker)."""
        for message, invalid in rejected:
            metrics.EVENTS_INVALID.labels(topic, invalid.reason).inc()
            where = "" if message.index is None else f" #{message.index}"
            log.warning(
                "dead-lettered %s[%d]@%d%s: %s: %s",
                message.topic,
                message.partition,
                message.offset,
                where,
                invalid.reason,
                # Event text is untrusted: shown as a repr, so no control characters or
                # line breaks of its own reach the log.
                ascii(invalid.detail)[1:-1],
            )
        await _dead_letter_with_retry(dead_letter_topic, rejected)

    def process(events: Sequence[Message], event_type: EventType) -> Awaitable[None]:
        """Plan a batch now; return its writes (the order of a commit):

        1. plan: decode and check every event (pure; an event whose processing raises is a
           reject of its own, never the batch's);
        2. count in Redis, one atomic script call per brand, retried while Redis is away; a
           call refused is narrowed down to the events at fault, which become rejects;
        3. dead-letter every reject and wait for the broker's acknowledgement (retried while
           Kafka is away);
        4. return: only then are the batch's messages acknowledged (fetched_batches), so the
           offsets Faust commits never pass an event neither counted nor dead-lettered.
        """
        messages = [RawMessage(m.topic, m.partition, m.offset, m.key, m.value) for m in events]
        topic = messages[0].topic
        plan = plan_batch(
            messages,
            event_type,
            window_plan,
            time.time(),
            bot_authors=bot_authors,
            limit_author_rate=cleaning.max_mentions_per_author_per_minute > 0,
            known=known,
        )
        metrics.EVENTS_CONSUMED.labels(topic).inc(plan.events)
        metrics.MESSAGES_CONSUMED.labels(topic).inc(len(messages))
        metrics.EVENTS_TOO_LATE.labels(topic).inc(len(plan.too_late))
        return write(events, topic, plan)

    async def write(events: Sequence[Message], topic: str, plan: BatchPlan) -> None:
        """Steps 2-4 of ``process``: the batch's writes to Redis and Kafka."""
        applied, untracked = await _apply_with_retry(store, plan.counted, lenient)
        metrics.EVENTS_UNTRACKED.labels(topic).inc(len(untracked))
        rejected = list(plan.rejected)
        rejected += [(plan.source_of(event), invalid) for event, invalid in untracked]
        for failed in applied.failed:
            rejected.append(
                (plan.source_of(failed.event), InvalidEvent("processing_error", failed.error))
            )
        visible = time.time()
        latency = metrics.EVENT_TO_VISIBLE.labels(topic)
        for event in applied.counted:
            latency.observe(max(visible - event.ts, 0.0))
        arrival = metrics.ARRIVAL_TO_VISIBLE.labels(topic)
        for m in events:
            arrival.observe(max(visible - m.timestamp, 0.0))
            lag.note_processed(m.topic, m.partition, m.offset)
        try:
            await record_context(client, keys, applied.counted)
        except Exception as exc:
            # Only what an incident message shows as the cause; the counts are in.
            log.warning("post context not recorded: %s: %s", type(exc).__name__, exc)
        bots = [event for event in applied.counted if event.excluded]
        metrics.EVENTS_COUNTED.labels(topic).inc(len(applied.counted) - len(bots))
        metrics.EVENTS_FILTERED.labels(topic, "bot").inc(len(bots))
        metrics.EVENTS_FILTERED.labels(topic, "author_rate").inc(len(applied.filtered))
        new = len(applied.counted) + len(applied.filtered) + len(applied.failed) + len(untracked)
        metrics.EVENTS_DUPLICATE.labels(topic).inc(len(plan.counted) - new)
        sources = Counter(e.sentiment_source for e in applied.counted if e.sentiment_source)
        for source, n in sources.items():
            metrics.SENTIMENT_SOURCE.labels(source).inc(n)
        await dead_letter(topic, rejected)

    track_for = int(pipeline.snapshots.track_for)

    async def process_snapshots(events: Sequence[Message]) -> None:
        """Count a batch of metric snapshots, in the order of ``process``: plan (pure), count
        in Redis (each object's state and increments together, retried while Redis is away),
        dead-letter the rejects, then return, so offsets never pass an uncounted snapshot."""
        messages = [RawMessage(m.topic, m.partition, m.offset, m.key, m.value) for m in events]
        topic = messages[0].topic
        plan = plan_snapshots(messages, window_plan, time.time(), known=known)
        metrics.EVENTS_CONSUMED.labels(topic).inc(plan.events)
        metrics.MESSAGES_CONSUMED.labels(topic).inc(len(messages))
        rejected = list(plan.rejected)
        kept = list(range(len(plan.snapshots)))
        if lenient is not None:
            proxies = [snapshot_event(s) for s in plan.snapshots]
            _, over = await _while_redis_away("lenient bound", lambda: lenient.split(proxies))
            position = {id(proxy): i for i, proxy in enumerate(proxies)}
            dropped = {position[id(event)] for event, _ in over}
            kept = [i for i in kept if i not in dropped]
            for event, invalid in over:
                rejected.append((plan.sources[position[id(event)]], invalid))
            metrics.EVENTS_UNTRACKED.labels(topic).inc(len(over))
        snapshots = [plan.snapshots[i] for i in kept]
        results = await _snapshots_with_retry(store, snapshots, track_for)
        for i, result in zip(kept, results, strict=True):
            if isinstance(result, Failed):
                rejected.append((plan.sources[i], InvalidEvent("processing_error", result.error)))
                continue
            metrics.SNAPSHOTS.labels(result.outcome).inc()
            for metric in result.corrections:
                metrics.SNAPSHOT_CORRECTIONS.labels(metric).inc()
        visible = time.time()
        for m in events:
            metrics.ARRIVAL_TO_VISIBLE.labels(topic).observe(max(visible - m.timestamp, 0))
            lag.note_processed(m.topic, m.partition, m.offset)
        counted = [r for r in results if isinstance(r, Step) and r.outcome == "counted"]
        metrics.EVENTS_COUNTED.labels(topic).inc(len(counted))
        await dead_letter(topic, rejected)

    worker = pipeline.worker

    def stop_for(events: Sequence[Message]) -> None:
        # A fault of ours outside what is contained per event: nothing of this batch is
        # acknowledged, so the worker stops (within STOP_WITHIN) and its events are
        # delivered again, rather than going on with a gap that no offset passes.
        log.exception("a batch of %d events failed; stopping the worker", len(events))
        os.kill(os.getpid(), signal.SIGTERM)

    async def or_stop(events: Sequence[Message], work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            stop_for(events)
            raise

    # A topic's batches are written one at a time, in the order fetched (fetched_batches).
    def process_or_stop(events: Sequence[Message], event_type: EventType) -> Awaitable[None]:
        try:
            if event_type == "snapshot":
                return or_stop(events, process_snapshots(events))
            return or_stop(events, process(events, event_type))
        except Exception:
            stop_for(events)
            raise

    @app.batches(mentions_topic, worker.batch_size, worker.batch_within, worker.batch_bytes)
    def count_mentions(messages: Sequence[Message]) -> Awaitable[None]:
        return process_or_stop(messages, "mention")

    @app.batches(interactions_topic, worker.batch_size, worker.batch_within, worker.batch_bytes)
    def count_interactions(messages: Sequence[Message]) -> Awaitable[None]:
        return process_or_stop(messages, "interaction")

    @app.batches(snapshots_topic, worker.batch_size, worker.batch_within, worker.batch_bytes)
    def count_snapshots(messages: Sequence[Message]) -> Awaitable[None]:
        return process_or_stop(messages, "snapshot")

    own_topics = {pipeline.topics.mentions, pipeline.topics.interactions, pipeline.topics.snapshots}

    rollups = DayRollups(client, keys, window_plan, pipeline.rollups.keep_days)

    @app.timer(interval=60.0)
    async def roll_up_days() -> None:
        # Every worker rolls every brand: the script marks a bucket rolled, so a second roll
        # of it adds nothing, and no brand waits on one worker's partitions.
        try:
            await rollups.roll(settings.brand_ids, time.time())
        except Exception as exc:  # the long view must never stop the counting
            log.warning("daily rollups not written (tried again in a minute): %s", exc)

    @app.timer(interval=5.0)
    async def measure_lag() -> None:
        try:
            await _measure_lag()
        except Exception as exc:  # a gauge must never stop the worker (broker down, rebalance)
            log.warning("consumer lag not measured: %s", exc)

    async def _measure_lag() -> None:
        assigned = [tp for tp in app.consumer.assignment() if tp.topic in own_topics]
        if not assigned:
            lag.lag = {}
            return
        highwaters = await app.consumer.highwaters(*assigned)
        positions = {}
        for tp in assigned:
            if (tp.topic, tp.partition) not in lag.processed:
                position = await app.consumer.position(tp)
                if position is not None:
                    positions[(tp.topic, tp.partition)] = position
        lag.lag = partition_lag(
            [(tp.topic, tp.partition) for tp in assigned],
            {(tp.topic, tp.partition): n for tp, n in highwaters.items()},
            lag.processed,
            positions,
        )

    @app.on_partitions_assigned.connect
    async def export_owned_brands(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # The full new assignment (Faust's eager rebalance): /metrics shows the brands keyed to
        # this worker's partitions of the mentions topic from now on (brand_partitions).
        if owned is None or pipeline.metrics.export_brands == "all":
            return  # every configured brand, as OwnedBrands shows until assigned
        reference = pipeline.topics.mentions
        assigned = args[0] if args else kwargs.get("assigned", ())
        held = sorted(tp.partition for tp in assigned if tp.topic == reference)
        count = _partition_count(app, reference)
        if count is None:
            count = pipeline.kafka.partitions
            log.warning("metrics: no metadata for %s yet; taking its partitions as %d "
                        "(kafka.partitions)", reference, count)  # fmt: skip
        elif count != pipeline.kafka.partitions:
            log.warning("metrics: %s has %d partitions, kafka.partitions says %d; brands are "
                        "shared by the topic's", reference, count,
                        pipeline.kafka.partitions)  # fmt: skip
        owned.assign(held, count)
        log.info("metrics: exporting %d of %d brands (partitions %s of %s)",
                 len(owned.brands), len(owned.configured), held, reference)  # fmt: skip

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        lag.forget([(tp.topic, tp.partition) for tp in revoked])

    @app.task
    async def announce() -> None:
        target = "local Slack stub " + settings.alerts.slack.stub_url if uses_stub() else "Slack"
        log.info(
            "worker %s consuming %s, %s and %s; alerts to %s in %s",
            worker.app_id,
            pipeline.topics.mentions,
            pipeline.topics.interactions,
            pipeline.topics.snapshots,
            target,
            settings.alerts.slack.channel,
        )

    return app


def _partition_count(app: faust.App, topic: str) -> int | None:
    """The partitions of ``topic`` as the cluster metadata every member of the group holds
    (Faust's own topic_partitions() reads what only the group's leader fills in)."""
    consumer = app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
    partitions = consumer.partitions_for_topic(topic)
    return len(partitions) if partitions else None


async def _dead_letter_with_retry(
    topic: faust.TopicT, rejected: Sequence[tuple[RawMessage, InvalidEvent]]
) -> None:
    """Write the dead letters and wait for the broker's acknowledgement: the batch's offsets
    are committed right after, so a dead letter must not be lost to a crash or an absent
    broker in between. While Kafka is away, retried with backoff (a letter written twice is
    shown once: dead letters are known by their source position)."""
    delay = 0.5
    while True:
        at = time.time()
        try:
            deliveries = [
                await topic.send(
                    key=message.key,
                    value=message.value or b"",
                    headers=dead_letter_headers(
                        invalid.reason,
                        invalid.detail,
                        message.topic,
                        message.partition,
                        message.offset,
                        message.index,
                        at,
                    ),
                )
                for message, invalid in rejected
            ]
            await asyncio.gather(*deliveries)
            return
        except (KafkaError, ProducerSendError, TimeoutError) as exc:
            log.warning("dead letters not acknowledged (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_BACKOFF_MAX)


async def _while_redis_away(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, retried with backoff while Redis is unreachable: a batch's offsets are not
    committed until its counts are in Redis, so nothing is lost, and ids and object states
    make a retry change nothing twice. Any other error raises."""
    delay = 0.5
    while True:
        try:
            return await call()
        except Exception as exc:
            if not redis_unavailable(exc):
                raise
            metrics.REDIS_RETRIES.inc()
            log.warning("Redis unavailable (%s); retrying %s in %.1fs", exc, what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_BACKOFF_MAX)


async def _apply_with_retry(
    store: AsyncCountStore, counted: Sequence[CountedEvent], lenient: LenientBound | None
) -> tuple[AppliedBatch, list[tuple[CountedEvent, InvalidEvent]]]:
    """Apply a batch (what lenient mode's bound keeps of it) while Redis is away; also returns
    the events over lenient mode's bound."""

    async def apply() -> tuple[AppliedBatch, list[tuple[CountedEvent, InvalidEvent]]]:
        kept, over = await lenient.split(counted) if lenient else (counted, [])
        with metrics.REDIS_ROUNDTRIP.labels("count_batch").time():
            return await store.apply(kept), over

    return await _while_redis_away("batch", apply)


async def _snapshots_with_retry(
    store: AsyncCountStore, snapshots: Sequence[Any], track_for: int
) -> list[Step | Failed]:
    """Count snapshots while Redis is away."""

    async def apply() -> list[Step | Failed]:
        with metrics.REDIS_ROUNDTRIP.labels("count_snapshots").time():
            return await store.apply_snapshots(snapshots, track_for)

    return await _while_redis_away("snapshots", apply)


def run_worker(settings: Settings, loglevel: str = "info", register: bool = False) -> None:
    """Run the worker until interrupted: topics, /metrics, then the Faust worker loop. With
    ``register``, the local stack's Prometheus is told to scrape it (an extra worker)."""
    from socialpulse.core.topics import ensure_topics

    if running_on_jemalloc():
        log.info("memory: jemalloc for every allocation (%s=system to opt out)", ALLOCATOR_ENV)
    else:
        log.info("memory: the default allocators (apt-get install libjemalloc2 for jemalloc)")
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    # Started first: it loads while the models below do. The alert evaluation runs beside
    # this process and reports its metrics to it, so they leave this registry (each family
    # exported once).
    # The brands this worker's /metrics shows: its partitions' (every configured brand until
    # it is first assigned some, and always with metrics.export_brands: all).
    owned = OwnedBrands(settings.brand_ids)
    evaluator = Evaluator(settings, loglevel, owned).start()
    for metric in OWNED:
        REGISTRY.unregister(metric)
    # Seconds of model files, loaded before anything starts: not during a batch (which would
    # stall the event loop and every batch in flight), nor beside /metrics (which it would
    # slow down, holding the interpreter).
    sentiment.load_models()
    tune_for_batches()  # the models are loaded: frozen out of the collector's walks
    sync_client = redis_client(settings.pipeline.redis, decode_responses=True, socket_timeout=5)
    mark_tiers_written(sync_client, RedisKeys(settings.pipeline.redis.key_prefix),
                       settings.window_plan)  # fmt: skip
    lag = ConsumerLag()
    # Every known series at 0 before the first scrape can come (as the stream stage's are).
    notify_metrics.initialize_label_sets([(r.name, r.severity) for r in settings.alerts.rules])
    evaluator.wait_ready()
    metrics.serve_metrics(
        settings,
        sync_client,
        sources=[
            evaluator,
            IncidentCounts(
                lambda: owned.brands,
                RedisKeys(settings.pipeline.redis.key_prefix),
                sync_client,
                [rule.name for rule in settings.alerts.rules],
            ),
        ],
        owned=owned,
        # With metrics.gauges: all every window gauge is read at each scrape; with boards the
        # boards' own come from the evaluation process (socialpulse.app.board_gauges).
        windows=settings.pipeline.metrics.gauges == "all",
        collectors=[
            DetectionCollector(settings, sync_client),
            CampaignCollector(settings, sync_client),
            lag,
        ],
    )
    buttons = serve_interactivity(settings, sync_client)
    worker = settings.pipeline.worker
    target = register_extra_worker(worker.metrics_host, worker.metrics_port) if register else None
    if target is not None:
        log.info("metrics: registered with the local Prometheus in %s", target)
        atexit.register(target.unlink, missing_ok=True)
    app = create_app(settings, lag, owned)
    reload = ConfigReload(settings)

    @app.task
    async def reload_on_sighup() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload.on_sighup)

    try:
        stopping = BoundedStopWorker(app, reload, buttons, evaluator, loglevel=loglevel)
        stopping.execute_from_commandline()
    finally:
        if buttons is not None:
            buttons.stop()
        evaluator.stop()  # before a config reload's exec, which would orphan it
        reload.exec_if_requested()


class BoundedStopWorker(faust.Worker):
    """Faust's worker, with a bound on stopping: a SIGTERM or Ctrl-C ends the process within
    STOP_WITHIN seconds even when the graceful stop hangs on a broker, Redis or Slack that has
    gone away (safe: nothing uncounted is acknowledged, see fetched_batches)."""

    def __init__(
        self,
        app: faust.App,
        reload: ConfigReload,
        buttons: ButtonServer | None,
        evaluator: Evaluator,
        **options: Any,
    ):
        super().__init__(app, **options)
        self.reload = reload
        self.buttons = buttons
        self.evaluator = evaluator

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        log.info("stopping (signal %s): at most %.0f s", signal.name, STOP_WITHIN)
        # A config reload stops the same way, then starts afresh in this process.
        end_within(STOP_WITHIN, "worker", last=self.reload.exec_if_requested)
        if self.buttons is not None:
            # Clicks in progress get a moment; the button server stops in its own thread, so
            # Faust's stop goes on meanwhile.
            threading.Thread(target=self.buttons.stop, name="stop-buttons", daemon=True).start()
        # The evaluation process ends its round and gives the lock back meanwhile.
        threading.Thread(target=self.evaluator.stop, name="stop-evaluator", daemon=True).start()
        super()._schedule_shutdown(signal)
