"""The worker's side of the alert evaluation process: what it relays from the process' reports
is what /metrics serves, its rule states and window gauges for the brands this worker exports
only, and it tells the process those brands."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import socket
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from socialpulse.app.evaluator import Evaluator, _Exported, _Reporter
from socialpulse.app.settings import load_settings
from socialpulse.core.brand_partitions import OwnedBrands, brand_partition
from socialpulse.core.exposition import ByBrand, Family, Rendered
from tests.conftest import write_config

REGISTRY_TEXT = (
    "# HELP sp_evaluations_total Rounds.\n# TYPE sp_evaluations_total counter\n"
    'sp_evaluations_total{brand="acme"} 4.0\nsp_evaluations_total{brand="globex"} 3.0\n'
)


def rule_states(value: float) -> ByBrand:
    firing = Family("sp_firing", "Firing.", "gauge", ("brand", "platform"))
    for brand in ("acme", "globex", "initech"):
        firing.add((brand, "x"), value)
    return ByBrand([firing])


def gauges(value: float) -> ByBrand:
    reach = Family("sp_reach", "Reach.", "gauge", ("brand", "platform", "window"))
    for brand in ("acme", "globex", "initech"):
        reach.add((brand, "x", "1h"), value)
    return ByBrand([reach])


def served(evaluator: Evaluator) -> dict[tuple[str, str], float]:
    text = evaluator().text(False)
    return {
        (s.name, s.labels["brand"]): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def told(child: Connection) -> tuple[str, ...]:
    """The brands the worker last told the process it exports."""
    assert child.poll(5), "the worker told the process nothing"
    brands: tuple[str, ...] = pickle.loads(child.recv_bytes())
    while child.poll(0.2):
        brands = pickle.loads(child.recv_bytes())
    return brands


def wait_reports(evaluator: Evaluator, count: int) -> None:
    deadline = time.monotonic() + 5
    while evaluator._reports < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert evaluator._reports == count


def test_the_rule_states_and_gauges_served_are_those_of_the_brands_this_worker_exports(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_config(tmp_path, "relay"))
    owned = OwnedBrands(["acme", "globex", "initech"])
    evaluator = Evaluator(settings, owned=owned)
    receive, child = multiprocessing.Pipe(duplex=True)
    relay = threading.Thread(target=evaluator._relay, args=(receive,))
    relay.start()
    # It is told the brands the worker exports from the start: every one, unassigned.
    assert told(child) == ("acme", "globex", "initech")
    child.send_bytes(pickle.dumps((REGISTRY_TEXT, REGISTRY_TEXT, rule_states(1.0), gauges(5.0))))
    assert evaluator.wait_ready(5)
    every = {(name, b): value for b in ("acme", "globex", "initech")
             for name, value in (("sp_firing", 1.0), ("sp_reach", 5.0))}  # fmt: skip
    # The process' own counters are this worker's doings: served whoever owns the brand.
    counters = {("sp_evaluations_total", "acme"): 4.0, ("sp_evaluations_total", "globex"): 3.0}
    assert served(evaluator) == {**counters, **every}  # before any assignment: every brand

    mine = [p for p in range(6) if p != brand_partition("globex", 6)]
    owned.assign(mine, 6)
    # Told when the partitions move, without waiting for a report.
    assert told(child) == ("acme", "initech")
    shown = {**counters, ("sp_firing", "acme"): 1.0, ("sp_firing", "initech"): 1.0,
             ("sp_reach", "acme"): 5.0, ("sp_reach", "initech"): 5.0}  # fmt: skip
    assert served(evaluator) == shown

    # A report without new rule states or gauges keeps the last ones; a new tick's and
    # computation's replace them.
    child.send_bytes(pickle.dumps((REGISTRY_TEXT, REGISTRY_TEXT, None, None)))
    wait_reports(evaluator, 2)
    assert served(evaluator) == shown
    child.send_bytes(pickle.dumps((REGISTRY_TEXT, REGISTRY_TEXT, rule_states(0.0), None)))
    wait_reports(evaluator, 3)
    assert not child.poll(0.2)  # nothing changed: nothing told
    child.send_bytes(pickle.dumps((REGISTRY_TEXT, REGISTRY_TEXT, None, gauges(6.0))))
    wait_reports(evaluator, 4)
    assert served(evaluator) == {**counters, ("sp_firing", "acme"): 0.0,
                                 ("sp_firing", "initech"): 0.0, ("sp_reach", "acme"): 6.0,
                                 ("sp_reach", "initech"): 6.0}  # fmt: skip
    # The process gone: its gauges are not served as current meanwhile, its rule states are.
    child.close()
    relay.join(5)
    assert not relay.is_alive()
    assert served(evaluator) == {**counters, ("sp_firing", "acme"): 0.0,
                                 ("sp_firing", "initech"): 0.0}  # fmt: skip


class _Gauges:
    """What the process' BoardGauges offers the reporter: the last computed gauges."""

    latest: ByBrand | None = None


def test_the_process_reports_new_rule_states_and_gauges_once_and_takes_the_brands_told() -> None:
    worker, child = multiprocessing.Pipe(duplex=True)
    exported = _Exported(["acme", "globex", "initech"], child)
    states = Rendered([])
    computed = _Gauges()
    reporter = _Reporter(child, CollectorRegistry(), lambda: states, gauges=computed,
                         exported=exported)  # fmt: skip

    def report() -> tuple[str, str, ByBrand | None, ByBrand | None] | None:
        assert reporter.report()
        return pickle.loads(worker.recv_bytes()) if worker.poll(0.3) else None

    first = report()  # the rule states, no gauges computed yet
    assert first is not None and first[2] is not None and first[3] is None
    assert report() is None  # nothing new (the registry waits REGISTRY_EVERY)
    computed.latest = gauges(7.0)
    sent = report()
    assert sent is not None and sent[2] is None and sent[3] is not None
    assert sent[3].text(False, ["globex"]) == computed.latest.text(False, ["globex"])
    assert 'sp_reach{brand="globex",platform="x",window="1h"} 7.0' in sent[3].text(False)
    assert report() is None
    # The brands the worker tells it are taken as they come, the newest last.
    assert exported() == ("acme", "globex", "initech")
    worker.send_bytes(pickle.dumps(("globex",)))
    worker.send_bytes(pickle.dumps(("acme", "initech")))
    deadline = time.monotonic() + 5
    while exported() != ("acme", "initech") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exported() == ("acme", "initech")
    # The worker gone: the report says so.
    worker.close()
    deadline = time.monotonic() + 5
    while not exported.gone and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reporter.report()


def test_a_brand_list_and_a_report_larger_than_the_pipe_pass_each_other() -> None:
    # 20,000 brands told while the process sends a report of 4 MB: both over the pipe's
    # buffers at once. Were the brands read only between reports, each end would wait for
    # the other to read, for ever.
    worker, child = multiprocessing.Pipe(duplex=True)
    try:
        exported = _Exported(["acme"], child)
        brands = tuple(f"brand-{n:05d}-of-an-agency" for n in range(20_000))
        told, report = pickle.dumps(brands), pickle.dumps(("x" * 4_000_000, "", None, None))
        with socket.socket(fileno=os.dup(worker.fileno())) as end:
            buffers = end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            buffers += end.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert min(len(told), len(report)) > buffers  # neither fits in the pipe
        sending = threading.Thread(target=child.send_bytes, args=(report,), daemon=True)
        sending.start()
        telling = threading.Thread(target=worker.send_bytes, args=(told,), daemon=True)
        telling.start()
        telling.join(10)
        assert not telling.is_alive()  # told, with the report still unread
        assert worker.poll(10)
        assert len(worker.recv_bytes()) == len(report)
        sending.join(10)
        deadline = time.monotonic() + 5
        while exported() != brands and time.monotonic() < deadline:
            time.sleep(0.01)
        assert exported() == brands
    finally:
        worker.close()
        child.close()


def test_brands_the_process_cannot_read_stop_it_for_the_worker_to_start_a_new_one() -> None:
    worker, child = multiprocessing.Pipe(duplex=True)
    try:
        exported = _Exported(["acme"], child)
        reporter = _Reporter(child, CollectorRegistry(), lambda: Rendered([]), exported=exported)
        assert reporter.report()
        worker.send_bytes(b"not a pickle")
        deadline = time.monotonic() + 5
        while not exported.gone and time.monotonic() < deadline:
            time.sleep(0.01)
        assert exported.gone and exported() == ("acme",)
        assert not reporter.report()
    finally:
        worker.close()
        child.close()
