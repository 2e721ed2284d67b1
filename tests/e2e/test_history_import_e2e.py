"""`socialpulse ingest FILE --history` on the real stack: a 14-day export warms the baselines,
its running totals reach the real Prometheus as TSDB blocks (promtool), exact per hour, the
recent part reaches Kafka, a second import changes nothing, and a live surge right after fires
against the imported normal."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.paths import state_dir
from tests.conftest import ROOT, run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import stub_messages, wait_until

HOUR, DAY = 3600, 86400


def hourly(hour: int) -> int:
    """Mentions in the hour starting at ``hour`` (unix seconds): a daily rhythm, never the same
    twice in a row, so a shifted or summed hour shows."""
    of_day = (hour // HOUR) % 24
    return 2 + (4 if 8 <= of_day <= 21 else 0) + (hour // HOUR) % 3


def export(path: Path, brand: str, end_hour: int, recent: int) -> dict[int, int]:
    """14 days of mentions of ``brand`` on x before ``end_hour``, then ``recent`` mentions of
    the last minutes; the hours' counts."""
    counts: dict[int, int] = {}
    with path.open("w") as out:
        for hour in range(end_hour - 14 * DAY, end_hour, HOUR):
            counts[hour] = n = hourly(hour)
            for k in range(n):
                ts = hour + (k + 0.5) * HOUR / n
                out.write(
                    json.dumps(
                        {
                            "id": f"h-{hour}-{k}",
                            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
                            + f".{int(ts * 1000) % 1000:03d}Z",
                            "platform": "x",
                            "brand": brand,
                            "author": f"@a{k}",
                            "text": "the usual chatter",
                            "sentiment": "neutral",
                        }
                    )
                    + "\n"
                )
        for k in range(recent):
            out.write(json.dumps(mention(brand, "x", "just now", "neutral", ago=60 + k)) + "\n")
        out.write('{"id": "broken"\n')
    return counts


def prometheus_range(settings: Settings, expr: str, start: int, end: int) -> list[list[Any]]:
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": HOUR})
    with urllib.request.urlopen(
        f"{settings.pipeline.prometheus.url}/api/v1/query_range?{query}", timeout=30
    ) as answer:
        result = json.load(answer)["data"]["result"]
    return result[0]["values"] if result else []


@pytest.fixture
def history_config(stack: Settings, tmp_path: Path, run_id: str) -> Settings:
    """A config of a brand of this test's own (Prometheus is shared: its series must not meet
    another run's), with the surge rule."""
    brand = f"h{run_id}"
    rules = yaml.safe_load((ROOT / "config/alerts.yaml").read_text())["rules"]
    [surge] = [r for r in rules if r["name"] == "mention_volume_surge"]
    surge["for"] = "10s"  # what is judged here is the imported normal, not the hold time
    folder = write_config(
        tmp_path / "config",
        run_id,
        brands=[{"id": brand, "name": "History Co", "platforms": ["x", "instagram"]}],
        rules=[surge],
        alerts={"targets": []},  # the shipped target and campaigns are acme's
        campaigns={"brands": []},
    )
    return load_settings(folder)


def test_a_fortnight_of_history_warms_baselines_and_fills_prometheus_exactly_once(
    history_config: Settings, tmp_path: Path
) -> None:
    settings = history_config
    brand = settings.brand_ids[0]
    # Ends before Prometheus' head (the last three hours), where backfilled blocks may not go.
    end_hour = int(time.time() // HOUR) * HOUR - 4 * HOUR
    path = tmp_path / "fortnight.jsonl"
    counts = export(path, brand, end_hour, recent=4)
    done = run_cli(settings, "ingest", str(path), "--history")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    total = sum(counts.values())
    assert lines[0].startswith(f"history: {total} events (")
    assert lines[0].endswith("UTC); 4 recent events sent to Kafka")
    assert lines[1] == f"  {brand}: 2 baselines learned (0 warm ones kept), 2 rule calibrations"
    assert lines[2] == "  1 rejected (not_json: 1)"
    data = state_dir() / "prometheus" / "data"
    # mentions and neutral on x, mentions at 0 on instagram
    assert lines[3].startswith("prometheus: 3 running totals, ")
    assert lines[3].endswith(f"written to {data}; the live totals of 1 brands go on from them")
    # ... from where the imported ones end: the live worker's totals carry the history's.
    import redis as redis_client

    from socialpulse.core.redis_keys import RedisKeys as Keys

    live = redis_client.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    totals_key = Keys(settings.pipeline.redis.key_prefix).totals(brand)
    assert float(live.hget(totals_key, "mentions|x") or 0) == total

    # Prometheus loads the blocks within a minute or two; then every hour of the fortnight is
    # exactly what the export had.
    series = f'socialpulse_counted_mentions_total{{brand="{brand}",platform="x"}}'
    per_hour = f"{series} - {series} offset 1h"
    start, end = end_hour - 14 * DAY + HOUR, end_hour
    values = wait_until(
        lambda: (v := prometheus_range(settings, per_hour, start, end)) and len(v) == 14 * 24 and v,
        timeout=180,
        what="Prometheus to load the imported blocks",
    )
    assert {int(at): int(float(n)) for at, n in values} == {
        hour + HOUR: counts[hour] for hour in range(end_hour - 14 * DAY, end_hour, HOUR)
    }
    zero = f'socialpulse_counted_mentions_total{{brand="{brand}",platform="instagram"}}'
    assert {float(n) for _, n in prometheus_range(settings, zero, start, end)} == {0.0}

    # The same file again: recorded, nothing done.
    again = run_cli(settings, "ingest", str(path), "--history")
    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith(f"(history {total} events); nothing changed\n")
    assert prometheus_range(settings, per_hour, start, end) == values
    assert float(live.hget(totals_key, "mentions|x") or 0) == total  # not added twice

    # A live surge right after: the worker takes the imported normal over and pages on it.
    worker = start_worker(settings.config_dir, tmp_path / "worker.log")
    try:
        import redis

        from socialpulse.core.redis_keys import RedisKeys

        client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
        key = RedisKeys(settings.pipeline.redis.key_prefix).detection(brand)
        wait_until(
            lambda: not [f for f in client.hkeys(key) if f.startswith("backfill")],
            timeout=60,
            what="the worker to take the imported baselines over",
        )
        surge = [
            mention(brand, "x", "everyone is talking about this", "neutral") for _ in range(80)
        ]
        produce(settings, settings.pipeline.topics.mentions, surge)
        posted = wait_until(
            lambda: [m for m in stub_messages(settings) if "mention_volume_surge" in json.dumps(m)],
            timeout=120,
            what="the surge's incident at the Slack stub",
        )
        assert brand in json.dumps(posted[0])
    finally:
        stop_worker(worker)
