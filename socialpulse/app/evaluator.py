"""The alert evaluation in a process of its own, started and watched by the worker.

An evaluation round at 1,000 brands is seconds of Python: every brand's windows read, every
rule's maths, the save. In the worker's process it held the interpreter lock from the stream's
batches and from the /metrics scrapes (a scrape waited for the round), and they from it. So the
worker runs it here, in a child process (``multiprocessing``, spawned: nothing of the parent's
threads or event loop is copied), which every second:

- evaluates the due ticks when it holds the evaluation lock (alerts.pipeline), then runs the
  incident round, and sends the Slack outbox;
- computes what /metrics shows of the rules (alerts.detection.metrics.RuleStates) and, with
  ``metrics.gauges: boards``, the window gauges the boards read every few seconds
  (socialpulse.app.board_gauges), of the brands the worker exports;
- hands the worker its metrics as exposition text over a pipe (the rule states once per
  tick, the gauges when computed), which the worker's /metrics serves beside its own: one
  endpoint per worker, as before, the same names and labels. The worker answers on the same
  pipe with the brands it exports (socialpulse.core.brand_partitions) whenever they change.

The worker starts it again when it ends (logged, counted, with backoff). It ends with the
worker: told by SIGTERM when the worker stops (it gives the evaluation lock back, so another
worker takes over at once), and by its next write failing when the worker is gone without a
word (kill -9, or the exec of a config reload).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from alerts.detection import metrics as detection_metrics
from alerts.incidents import metrics as incident_metrics
from alerts.notify import metrics as notify_metrics
from socialpulse.app.settings import Settings
from socialpulse.core.brand_partitions import OwnedBrands
from socialpulse.core.exposition import ByBrand, Prerendered, Rendered

if TYPE_CHECKING:  # imported in the evaluation process only (it loads the boards' specs)
    from socialpulse.app.board_gauges import BoardGauges

log = logging.getLogger(__name__)

# The metrics the evaluation process changes: exported from there, so the worker's own
# registry leaves them out (one family under one name on /metrics).
OWNED = (
    detection_metrics.ALERT_EVENTS,
    detection_metrics.EARLY_FIRINGS,
    detection_metrics.RULE_TICKS,
    detection_metrics.EVALUATION_DELAY,
    detection_metrics.EVALUATION_SECONDS,
    detection_metrics.BRAND_EVALUATIONS,
    incident_metrics.INCIDENTS_OPENED,
    incident_metrics.INCIDENT_ACTIONS,
    incident_metrics.SILENCED_FIRINGS,
    notify_metrics.ALERTS_SENT,
    notify_metrics.SLACK_DELIVERIES,
    notify_metrics.OUTBOX_DEPTH,
)
EVERY = 1.0  # seconds between rounds (cheap when no tick is due), outbox sends and reports
FINISH_WITHIN = 3.5  # seconds for the work under way at a stop (the worker kills it after 5)
REGISTRY_EVERY = 5.0  # seconds between reports of its registry when no tick changed anything
READY_WITHIN = 60.0  # for its first report, before the worker serves /metrics without it
RESTART_BACKOFF_MAX = 30.0
TELL_EVERY = 0.5  # seconds between the worker's looks at whether its brands changed

RESTARTS = Counter(
    "socialpulse_alert_evaluator_restarts_total",
    "Times the worker started its alert evaluation process again after it ended (see the "
    "worker's log for its exit code).",
)


class Evaluator:
    """The worker's side: starts the evaluation process, starts it again when it ends, tells it
    the brands in ``owned`` whenever they change (with None it computes every configured
    brand), and is the /metrics source of what it last reported (nothing before its first
    report): the rule states and window gauges of those brands, the rest as it came."""

    def __init__(
        self, settings: Settings, loglevel: str = "info", owned: OwnedBrands | None = None
    ):
        # The worker's own settings, not its folder read again: a restarted evaluator judges by
        # the config the worker runs, whatever was edited on disk since (SIGHUP applies edits).
        self.settings = settings
        self.loglevel = loglevel
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self.owned = owned
        self._report = ("", "")  # its registry's text, in both formats
        self._rules = ByBrand([])
        self._gauges = ByBrand([])
        self._reports = 0  # reports relayed: what _served was composed from
        self._served: tuple[tuple[int, int], Prerendered] = ((-1, -1), Prerendered("", ""))
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()  # stop() is called at the signal and at the end

    def start(self) -> Evaluator:
        """Start the process, and a daemon thread that relays its reports and restarts it."""
        threading.Thread(target=self._supervise, name="alert-evaluator", daemon=True).start()
        return self

    def wait_ready(self, timeout: float = READY_WITHIN) -> bool:
        """Wait for the first report (its metrics at 0, the rule states of the last tick)."""
        ready = self._ready.wait(timeout)
        if not ready:
            log.error("alert evaluator: no report within %.0f s; /metrics goes on without "
                      "its families until it reports", timeout)  # fmt: skip
        return ready

    def __call__(self) -> Rendered:
        """The families last reported, as /metrics serves them (composed once per report and
        change of the brands this worker exports, not per scrape)."""
        owned = self.owned
        key = (self._reports, -1 if owned is None else owned.version)
        at, served = self._served
        if at == key:
            return served
        (plain, openmetrics), rules, gauges = self._report, self._rules, self._gauges
        brands = None if owned is None else owned.brands
        served = Prerendered(
            plain + rules.text(False, brands) + gauges.text(False, brands),
            openmetrics + rules.text(True, brands) + gauges.text(True, brands),
        )
        self._served = (key, served)
        return served

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process (SIGTERM: it ends its round and gives the lock back), and kill it
        if it has not ended within ``timeout`` seconds."""
        self._stopping.set()
        with self._lock:
            process = self._process
        with self._stop_lock:
            if process is None or process.exitcode is not None:
                return
            process.terminate()
            process.join(timeout)
            if process.exitcode is None:
                log.warning("alert evaluator: not stopped after %.0f s; killing it", timeout)
                process.kill()
                process.join(1.0)

    def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            # Reports come this way, the brands this worker exports go the other.
            receive, send = self._context.Pipe(duplex=True)
            process = self._context.Process(
                target=run_evaluator,
                args=(self.settings, send, self.loglevel),
                name="socialpulse-alert-evaluator",
                daemon=True,
            )
            with self._lock:
                if self._stopping.is_set():
                    return
                process.start()
                self._process = process
            send.close()  # the child's end: its EOF is ours once the child is gone
            self._relay(receive)
            process.join(5.0)
            receive.close()
            # One that ended because the whole group was told to stop (a cgroup's SIGTERM) is
            # not started again: the worker's own stop follows within the delay.
            if self._stopping.wait(delay):
                return
            log.error("alert evaluator ended (exit code %s); starting it again (after %.0f s)",
                      process.exitcode, delay)  # fmt: skip
            RESTARTS.inc()
            # A process that ran a while before ending starts again at once the next time.
            ran = time.monotonic() - started
            delay = 1.0 if ran > 60 else min(delay * 2, RESTART_BACKOFF_MAX)

    def _relay(self, receive: Connection) -> None:
        self._told: int | None = None  # the version of the owned brands this process knows
        try:
            while True:
                # Told at once when the partitions move, not at its next report: the brands
                # new to this worker get their rule states and gauges within seconds.
                if not self._tell(receive):
                    return
                try:
                    if not receive.poll(TELL_EVERY):
                        continue
                    report: tuple[str, str, ByBrand | None, ByBrand | None] = pickle.loads(
                        receive.recv_bytes()
                    )
                except (EOFError, OSError):
                    return
                self._received(report)
        finally:
            # Gone: its gauges are not served as current through its restart (its rule states
            # are, until the next process' first tick, as before).
            self._gauges = ByBrand([])
            self._reports += 1

    def _tell(self, receive: Connection) -> bool:
        """Send the process the brands this worker exports, when they changed since it was
        last told; False when it is gone."""
        owned = self.owned
        if owned is None or owned.version == self._told:
            return True
        version = owned.version
        try:
            receive.send_bytes(pickle.dumps(owned.brands))
        except OSError:
            return False
        self._told = version
        return True

    def _received(self, report: tuple[str, str, ByBrand | None, ByBrand | None]) -> None:
        plain, openmetrics, rules, gauges = report
        if rules is not None:
            self._rules = rules
        if gauges is not None:
            self._gauges = gauges
        self._report = (plain, openmetrics)
        self._reports += 1
        self._ready.set()


def evaluator_pids(worker: int) -> list[int]:
    """The pids of the evaluation processes the worker with pid ``worker`` runs (Linux /proc;
    for benchmarks and tests that measure or kill them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # ended while we looked
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == worker and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def run_evaluator(settings: Settings, send: Connection, loglevel: str = "info") -> None:
    """The evaluation process: evaluate, run incidents and the outbox, report, until told to
    stop (SIGTERM, from the worker) or the worker is gone."""
    logging.basicConfig(
        level=loglevel.upper(),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
    )
    # A terminal's Ctrl-C and hang-up reach the whole group: the worker stops this process
    # itself (SIGTERM), also for a config reload, after which a fresh one has the new config.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_evaluate(settings, send))
    finally:
        with contextlib.suppress(OSError):
            send.close()


async def _evaluate(settings: Any, send: Connection) -> None:
    from alerts.detection.metrics import RuleStates
    from alerts.detection.store import DetectionStore
    from alerts.notify.slack_message import slack_client
    from alerts.pipeline import LiveEvaluation
    from socialpulse.app.board_gauges import FAILURES as GAUGE_FAILURES
    from socialpulse.app.board_gauges import BoardGauges
    from socialpulse.core.connections import async_redis_client, redis_client, redis_failed
    from socialpulse.core.redis_keys import RedisKeys

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    redis = settings.pipeline.redis
    rules = [(rule.name, rule.severity) for rule in settings.alerts.rules]
    detection_metrics.initialize_label_sets(settings.brand_ids, rules)
    incident_metrics.initialize_label_sets(
        settings.brand_ids, {s for _, s in rules}, [name for name, _ in rules]
    )
    notify_metrics.initialize_label_sets(rules)
    registry = CollectorRegistry()
    for metric in OWNED:
        registry.register(metric)
    # The worker's process_* metrics describe the worker only; this process holds the
    # detection state, so its memory is exported too (the soak's "RSS flat" sums both).
    memory = Gauge(
        "socialpulse_alert_evaluator_resident_memory_bytes",
        "Resident memory of the worker's alert evaluation process, in bytes.",
        registry=registry,
    )
    memory.set_function(_resident_bytes)
    exported = _Exported(settings.brand_ids, send)
    rule_states = RuleStates(
        settings, redis_client(redis, decode_responses=True, socket_timeout=5), exported
    ).start()
    gauges: BoardGauges | None = None
    if settings.pipeline.metrics.gauges == "boards":
        board = gauges = BoardGauges(
            settings, redis_client(redis, decode_responses=True, socket_timeout=10), exported
        ).start()
        computing = Gauge(
            "socialpulse_board_gauges_seconds",
            "Seconds the last computation of the boards' window gauges took in the worker's "
            "alert evaluation process (metrics.gauges: boards; one every 10 s).",
            registry=registry,
        )
        computing.set_function(lambda: board.seconds)
        registry.register(GAUGE_FAILURES)
    store = DetectionStore(
        async_redis_client(redis, decode_responses=True), RedisKeys(redis.key_prefix)
    )
    evaluation = LiveEvaluation(
        settings,
        store,
        redis_client(redis, decode_responses=True, socket_timeout=5),
        slack_client(settings.alerts.slack),
        rule_states,
    )
    reporter = _Reporter(
        send, registry, rule_states, lambda: evaluation.rounds_with_events, gauges, exported
    )

    def postponed(what: str, work: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        """``work`` that waits for its next turn while Redis is away (any other error ends
        this process, and the worker starts it again)."""

        async def run() -> None:
            try:
                await work()
            except Exception as exc:
                if not redis_failed(exc):
                    raise
                log.warning("%s postponed, Redis unavailable: %s", what, exc)

        return run

    evaluate = postponed("alert evaluation", evaluation.round)
    # The outbox on its own loop: a slow or absent Slack never delays the evaluation.
    deliver = postponed("Slack delivery", evaluation.send)

    async def report() -> None:
        if not await asyncio.to_thread(reporter.report):
            log.info("alert evaluator: the worker is gone; stopping")
            stop.set()

    await report()  # at once: the worker serves /metrics after this first report
    log.info("alert evaluator: evaluating %d brands' rules every %d s",
             len(settings.brand_ids), settings.alerts.evaluation.every)  # fmt: skip
    loops = [
        asyncio.create_task(_every(EVERY, evaluate, stop)),
        # Also at once after a round that fired or cleared something (its posts are queued).
        asyncio.create_task(_every(EVERY, deliver, stop, evaluation.delivery_due)),
        asyncio.create_task(_every(EVERY, report, stop)),
    ]
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([*loops, stopped], return_when=asyncio.FIRST_COMPLETED)
    stop.set()  # also when a loop failed: the others end too
    # What is under way ends as it would (a round saved, a Slack post marked sent), so nothing
    # is done twice by the next evaluator; cancelled only if it takes longer than that.
    await asyncio.wait(loops, timeout=FINISH_WITHIN)
    failed = [task for task in loops if task.done() and not task.cancelled()]
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    stopped.cancel()
    if evaluation.holding:
        with contextlib.suppress(Exception):  # the lock's time to live ends it otherwise
            await store.release_lock(evaluation.owner)
    for task in failed:
        task.result()  # a fault of ours: this process ends with it, the worker restarts it


def _resident_bytes() -> float:
    """This process' resident memory (Linux /proc; 0 where there is none)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


async def _every(
    seconds: float,
    work: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    due: asyncio.Event | None = None,
) -> None:
    """``work()`` every ``seconds`` (from start to start) until ``stop``; at once when ``due``
    is set."""
    while not stop.is_set():
        started = time.monotonic()
        if due is not None:
            due.clear()
        await work()
        waits = [asyncio.create_task(stop.wait())]
        if due is not None:
            waits.append(asyncio.create_task(due.wait()))
        left = max(seconds - (time.monotonic() - started), 0)
        await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()


class _Exported:
    """The brands the worker exports, as it last told this process over the pipe (every
    configured brand until it does): what the rule states and gauges are computed for.

    Read by a thread of its own as soon as they come: were they read only between reports,
    a brand list larger than the pipe's buffer (10,000+ brands) and a report larger than it
    would each wait for the other end to read, both ends writing, for ever."""

    def __init__(self, configured: Sequence[str], pipe: Connection):
        self.brands: Sequence[str] = tuple(configured)
        self.pipe = pipe
        self.gone = False  # the worker closed its end
        self._reader = threading.Thread(
            target=self._read, name="socialpulse-exported-brands", daemon=True
        )
        self._reader.start()

    def __call__(self) -> Sequence[str]:
        """The brands now."""
        return self.brands

    def _read(self) -> None:
        while True:
            try:
                brands = pickle.loads(self.pipe.recv_bytes())
                self.brands = tuple(str(b) for b in brands)
            except (EOFError, OSError):
                self.gone = True
                return
            except Exception:
                # Not what the worker sends: this process ends (its next report sees it
                # gone) and the worker starts a new one, rather than go on with stale brands.
                log.exception("alert evaluator: unreadable brands from the worker; stopping")
                self.gone = True
                return


class _Reporter:
    """Renders the process' metrics for the worker: the rule states when a tick changed them,
    the boards' window gauges when computed again, its own registry then, after a round that
    fired or cleared something, or every ``REGISTRY_EVERY`` seconds (it holds a counter per
    brand: rendering it every second was a tenth of this process' time at 1,000 brands). Stops
    (False) once the worker has closed the pipe (``exported``)."""

    def __init__(
        self,
        send: Connection,
        registry: CollectorRegistry,
        rule_states: Any,
        changes: Callable[[], int] = lambda: 0,
        gauges: BoardGauges | None = None,
        exported: _Exported | None = None,
    ):
        self.send = send
        self.registry = registry
        self.rule_states = rule_states
        self.changes = changes  # rounds that fired or cleared something: reported at once
        self.gauges = gauges
        self.exported = exported
        self._gauges_sent: ByBrand | None = None
        self._changes_sent = 0
        self._sent: Rendered | None = None
        self._registry_at = -math.inf  # monotonic
        self._parent = os.getppid()

    def report(self) -> bool:
        """Send what changed, if anything; False when the worker is gone."""
        if os.getppid() != self._parent:  # adopted by another: the worker has ended
            return False
        if self.exported is not None and self.exported.gone:
            return False
        try:
            rendered = self.rule_states()
        except Exception:  # as a failing /metrics source: left out, the evaluation goes on
            log.exception("metrics: computing the rule states failed; left out of this report")
            rendered = self._sent if self._sent is not None else Rendered([])
        fresh = rendered is not self._sent
        gauges = None if self.gauges is None else self.gauges.latest
        new_gauges = gauges is not self._gauges_sent
        changes = self.changes()
        due = fresh or new_gauges or changes != self._changes_sent
        if not due and time.monotonic() - self._registry_at < REGISTRY_EVERY:
            return True
        self._changes_sent = changes
        # Kept per brand: the worker serves the brands it exports (brand_partitions).
        rules = ByBrand(rendered.families) if fresh else None
        self._registry_at = time.monotonic()
        plain = generate_latest(self.registry).decode()
        openmetrics = openmetrics_latest(self.registry).decode().removesuffix("# EOF\n")
        try:
            self.send.send_bytes(
                pickle.dumps((plain, openmetrics, rules, gauges if new_gauges else None))
            )
        except OSError:  # BrokenPipeError: nobody reads any more
            return False
        self._sent = rendered
        self._gauges_sent = gauges
        return True


__all__ = ["OWNED", "RESTARTS", "Evaluator", "evaluator_pids", "run_evaluator"]
