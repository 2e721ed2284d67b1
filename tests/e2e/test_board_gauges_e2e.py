"""The shipped ``metrics.gauges: boards`` on the real stack: the window gauges the boards read
are computed every few seconds by the worker's alert evaluation process, not at each scrape,
and are exactly what Redis gives for them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import redis

from socialpulse.app.boards.specs import gauges_read
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.config_types import format_duration
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.topics import ensure_topics
from streams.counters import ALL_COUNTERS
from streams.metrics import WindowGauges, metric_name
from tests.conftest import start_worker, stop_worker, write_config
from tests.e2e.helpers.events import interaction, mention, produce
from tests.e2e.helpers.reading import metrics, wait_until

Gauges = dict[tuple[str, str, str, str], float]  # (metric, brand, platform, window): value


def test_the_boards_gauges_come_from_the_evaluation_process_exactly_as_redis_gives_them(
    stack: Settings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:10]
    folder = write_config(tmp_path / "config", run, gauges="boards")
    settings = load_settings(folder)
    assert settings.pipeline.metrics.gauges == "boards"
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    client = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        produce(
            settings,
            settings.pipeline.topics.mentions,
            [mention("acme", "x", "awful", "negative") for _ in range(3)]
            + [mention("globex", "x", "fine", "neutral")],
        )
        produce(
            settings,
            settings.pipeline.topics.interactions,
            [
                interaction("acme", "x", "like"),
                interaction("acme", "x", "like"),
                interaction("acme", "x", "impression"),
                {**interaction("acme", "x", "followers"), "value": 1000},
            ],
        )
        names = _gauge_names(settings)
        expected = {
            ("socialpulse_mentions", "15m"): 3.0,
            ("socialpulse_negative_share_ratio", "15m"): 1.0,
            ("socialpulse_share_of_voice_ratio", "1h"): 0.75,  # 3 / (3 + globex's 1)
            ("socialpulse_followers", "1d"): 1000.0,
            ("socialpulse_applause_rate_ratio", "1h"): 2 / 1000,
            ("socialpulse_reach", "1h"): 1.0,  # the one impression's viewer
        }

        def acme_x() -> dict[tuple[str, str], float] | None:
            shown = _shown(worker.metrics_url, names)
            found = {(m, w): n for (m, b, p, w), n in shown.items() if (b, p) == ("acme", "x")}
            return found if all(found.get(k) == n for k, n in expected.items()) else None

        found = wait_until(acme_x, timeout=60, what="the boards' gauges of acme's 3 mentions")
        assert {k: found[k] for k in expected} == expected

        # Only the gauges the boards read, and each exactly as read from Redis now (nothing
        # more is sent, so the windows hold still).
        wanted = gauges_read(settings)
        from_redis = _as_shown(
            WindowGauges(settings, client, wanted).families(settings.brand_ids), names
        )
        shown = wait_until(
            lambda: (s := _shown(worker.metrics_url, names)) == from_redis and s,
            timeout=30,
            what="the gauges on /metrics to be those computed from Redis",
        )
        # Every one the boards read but customer care's: no care messages, no readings.
        care = {"unanswered", "oldest_unanswered_seconds", "response_rate",
                 "response_time_median_seconds", "response_time_p90_seconds"}  # fmt: skip
        assert {(names[m], w) for m, _, _, w in shown} == {
            (name, format_duration(window)) for name, window in wanted if name not in care
        }
        assert {name for name, _ in wanted} >= care
        assert {b for _, b, _, _ in shown} == set(settings.brand_ids)
        # The scrapes read no window from Redis: the running totals only.
        scrape = metrics(worker.metrics_url)
        read_windows = ("operation", "read_windows")
        assert scrape[("socialpulse_redis_roundtrip_seconds_count", frozenset({read_windows}))] == 0
        read_totals = frozenset({("operation", "read_totals")})
        assert scrape[("socialpulse_redis_roundtrip_seconds_count", read_totals)] > 0
    finally:
        stop_worker(worker)
        keys = RedisKeys(settings.pipeline.redis.key_prefix)
        found_keys = list(client.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found_keys:
            client.delete(*found_keys)


def _gauge_names(settings: Settings) -> dict[str, str]:
    """Metric name -> counter or KPI name, of every window gauge there can be."""
    names = {metric_name(c): c for c in ALL_COUNTERS}
    names.update({k.metric_name: k.name for k in settings.kpis.kpis})
    return names


def _shown(url: str, names: dict[str, str]) -> Gauges:
    """The window gauges on a worker's /metrics."""
    out: Gauges = {}
    for (name, labels), n in metrics(url).items():
        tags = dict(labels)
        if name in names and "window" in tags:
            out[(name, tags["brand"], tags["platform"], tags["window"])] = n
    return out


def _as_shown(families: list[Any], names: dict[str, str]) -> Gauges:
    """Families as computed, in the shape of :func:`_shown`."""
    return {
        (f.name, brand, platform, window): float(n)
        for f in families
        if f.name in names
        for (brand, platform, window), n in f.samples
    }
