"""Window sums added up in Redis (streams.store.window_sums) on the real Redis: exactly what
sum_buckets gives on the same buckets, for the counters asked for only; a key of another type
reads as empty and is said, a value that is not a number is left out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from socialpulse.app.settings import Settings
from socialpulse.core.redis_keys import RedisKeys
from streams.counters import sum_buckets
from streams.store.redis_store import read_fine_buckets
from streams.store.window_sums import load_sums, queue_sums, window_counts

pytestmark = pytest.mark.stack

BUCKETS = {
    "b1": {"mentions|x": "3", "mentions|tiktok": "1", "likes|x": "9", "revenue|x": "0.1"},
    "b2": {"mentions|x": "4", "revenue|x": "0.2", "mentions|seen-elsewhere": "2", "odd": "5"},
    "b3": {"revenue|x": "0.30000000000000004", "mentions|x": "1e+15", "likes|x": "oops"},
}


@pytest.fixture
def client(stack: Settings) -> Iterator[redis.Redis]:
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    yield sync
    sync.close()


def test_sums_are_sum_buckets_of_the_counters_asked_for(client: redis.Redis) -> None:
    tag = f"twsum{uuid.uuid4().hex[:8]}:{{acme}}"
    keys = {name: f"{tag}:{name}" for name in [*BUCKETS, "wrong", "missing"]}
    try:
        for name, fields in BUCKETS.items():
            client.hset(keys[name], mapping=fields)
        client.rpush(keys["wrong"], "a list, not a hash")
        only = {"mentions", "revenue", "odd"}
        windows = [["b1", "b2"], ["b2", "b3", "wrong", "missing"], ["b1", "b2", "b3"], []]
        load_sums(client)
        pipe = client.pipeline(transaction=False)
        queue_sums(pipe, [[keys[n] for n in w] for w in windows], only)
        [reply] = pipe.execute()
        counts, refused = window_counts(reply, len(windows))
    finally:
        client.delete(*keys.values())
    expected = [
        {
            key: n
            for key, n in sum_buckets(
                {f: v for f, v in BUCKETS[b].items() if v != "oops"} for b in w if b in BUCKETS
            ).items()
            if key[0] in only
        }
        for w in windows
    ]
    assert counts == expected
    assert counts[0] == {
        ("mentions", "x"): 7,
        ("mentions", "tiktok"): 1,
        ("revenue", "x"): 0.1 + 0.2,
        ("mentions", "seen-elsewhere"): 2,
        ("odd", ""): 5,
    }
    assert type(counts[0][("mentions", "x")]) is int
    assert counts[1][("mentions", "x")] == 4 + 10**15
    assert counts[3] == {}
    assert len(refused) == 1 and refused[0].startswith("WRONGTYPE")


def test_a_reply_that_is_not_the_scripts_reads_as_empty() -> None:
    assert window_counts(None, 2) == ([{}, {}], [])
    assert window_counts([[], []], 2) == ([{}, {}], [])


def test_the_early_look_reads_the_newest_buckets_sums_of_its_counters(client: redis.Redis) -> None:
    keys = RedisKeys(f"twsum{uuid.uuid4().hex[:8]}")
    try:
        client.hset(keys.bucket("acme", 10, 100), mapping=BUCKETS["b1"])
        client.hset(keys.bucket("acme", 10, 110), mapping=BUCKETS["b2"])
        client.hset(keys.bucket("acme", 10, 120), mapping={"mentions|x": "50"})  # not asked
        client.hset(keys.bucket("beta", 10, 110), mapping={"likes|x": "2"})
        read = read_fine_buckets(client, keys, ["acme", "beta", "gamma"], [100, 110], {"mentions"})
    finally:
        client.delete(*client.keys(f"{keys.prefix}:*"))
    assert read == {
        "acme": {
            ("mentions", "x"): 7,
            ("mentions", "tiktok"): 1,
            ("mentions", "seen-elsewhere"): 2,
        },
        "beta": {},
        "gamma": {},
    }
