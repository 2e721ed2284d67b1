"""The worker's side of the alert evaluation process: what it relays from the process' reports
is what /metrics serves, its rule states for the brands this worker exports only."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from socialpulse.app.evaluator import Evaluator
from socialpulse.app.settings import load_settings
from socialpulse.core.brand_partitions import OwnedBrands, brand_partition
from socialpulse.core.exposition import ByBrand, Family
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


def served(evaluator: Evaluator) -> dict[tuple[str, str], float]:
    text = evaluator().text(False)
    return {
        (s.name, s.labels["brand"]): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_the_rule_states_served_are_those_of_the_brands_this_worker_exports(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_config(tmp_path, "relay"))
    owned = OwnedBrands(["acme", "globex", "initech"])
    evaluator = Evaluator(settings, owned=owned)
    receive, send = multiprocessing.Pipe(duplex=False)
    relay = threading.Thread(target=evaluator._relay, args=(receive,))
    relay.start()
    send.send_bytes(pickle.dumps((REGISTRY_TEXT, REGISTRY_TEXT, rule_states(1.0))))
    assert evaluator.wait_ready(5)
    every = {("sp_firing", b): 1.0 for b in ("acme", "globex", "initech")}
    # The process' own counters are this worker's doings: served whoever owns the brand.
    counters = {("sp_evaluations_total", "acme"): 4.0, ("sp_evaluations_total", "globex"): 3.0}
    assert served(evaluator) == {**counters, **every}  # before any assignment: every brand

    mine = [p for p in range(6) if p != brand_partition("globex", 6)]
    owned.assign(mine, 6)
    assert served(evaluator) == {**counters, ("sp_firing", "acme"): 1.0,
                                 ("sp_firing", "initech"): 1.0}  # fmt: skip

    # A report without new rule states keeps the last ones; a new tick's replace them.
    send.send_bytes(pickle.dumps((REGISTRY_TEXT, REGISTRY_TEXT, None)))
    deadline = time.monotonic() + 5
    while evaluator._reports < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert evaluator._reports == 2
    assert served(evaluator) == {**counters, ("sp_firing", "acme"): 1.0,
                                 ("sp_firing", "initech"): 1.0}  # fmt: skip
    send.send_bytes(pickle.dumps((REGISTRY_TEXT, REGISTRY_TEXT, rule_states(0.0))))
    send.close()
    relay.join(5)
    assert served(evaluator) == {**counters, ("sp_firing", "acme"): 0.0,
                                 ("sp_firing", "initech"): 0.0}  # fmt: skip
