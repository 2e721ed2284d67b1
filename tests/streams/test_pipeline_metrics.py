"""Pure parts of the pipeline-health and campaign metrics."""

from __future__ import annotations

from streams.consumer_lag import ConsumerLag, partition_lag
from streams.kpis import busiest_columns

T = "social.mentions"


def test_lag_is_the_log_end_less_the_next_offset_to_process() -> None:
    lag = partition_lag(
        assigned=[(T, 0), (T, 1), (T, 2), (T, 3)],
        highwaters={(T, 0): 100, (T, 1): 50, (T, 2): 7},
        processed={(T, 0): 89, (T, 1): 49},
        positions={(T, 2): 3},
    )
    # 0: offsets 90..99 left; 1: caught up; 2: nothing processed yet, fetch position 3;
    # 3: highwater unknown, so no value rather than a guess.
    assert lag == {(T, 0): 10, (T, 1): 0, (T, 2): 4}


def test_revoked_partitions_leave_the_lag_of_this_worker() -> None:
    lag = ConsumerLag()
    lag.note_processed(T, 0, 5)
    lag.note_processed(T, 0, 3)  # an older offset never moves it back
    lag.note_processed(T, 1, 9)
    assert lag.processed == {(T, 0): 5, (T, 1): 9}
    lag.lag = {(T, 0): 2, (T, 1): 0}
    lag.forget([(T, 1)])
    assert lag.processed == {(T, 0): 5} and lag.lag == {(T, 0): 2}
    [family] = list(lag.collect())
    assert [(s.labels, s.value) for s in family.samples] == [({"topic": T, "partition": "0"}, 2)]


def test_busiest_campaigns_by_events_not_money_ties_by_name() -> None:
    counts = {
        ("clicks", "b"): 5,
        ("impressions", "a"): 3,
        ("clicks", "a"): 2,
        ("spend", "c"): 1_000_000,  # an amount, not events
        ("clicks", "c"): 1,
        ("clicks", "d"): 5,
    }
    assert busiest_columns(counts, 3) == ["a", "b", "d"]
    assert busiest_columns(counts, 10) == ["a", "b", "d", "c"]
