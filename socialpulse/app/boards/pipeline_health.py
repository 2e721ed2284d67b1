"""The Pipeline health board. Throughput, lag, latency, dead letters, Redis, Slack, incidents and
the gateway."""

from __future__ import annotations

from socialpulse.app.boards.model import BLUE, GREEN, ORANGE, RED, Board, Panel, Query


def pipeline_health() -> Board:
    """Throughput, lag, latency, dead letters, Redis, Slack, incidents and the gateway."""
    return Board(
        "socialpulse-pipeline",
        "pipeline-health",
        "SocialPulse / Pipeline health",
        "Is SocialPulse itself keeping up: throughput, consumer lag, latency, dead letters, "
        "Redis round trips, Slack delivery, incidents and the ingest gateway. Summed over "
        "every worker.",
        [
            Panel(
                "Events counted per second",
                "Events whose counts reached Redis, per topic, all workers (recorded: "
                "topic:socialpulse_events_counted:rate1m).",
                [Query("sum by (topic) (topic:socialpulse_events_counted:rate1m)", "{{topic}}")],
                unit="ops",
                kind="stat",
                width=6,
                height=4,
                steps=[(None, BLUE)],
            ),
            Panel(
                "Consumer lag",
                "Messages not processed yet, all partitions (each reported by the worker "
                "that owns it).",
                [Query("sum(topic:socialpulse_consumer_lag_messages:sum)", "lag")],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (1000, ORANGE), (10000, RED)],
            ),
            Panel(
                "Arrival to visible, p99 (5m)",
                "From a message's arrival in Kafka to its counts in Redis, 99th percentile over "
                "all workers.",
                [Query("max(topic:socialpulse_arrival_to_visible_seconds:p99_5m)", "p99")],
                unit="s",
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (1, ORANGE), (5, RED)],
            ),
            Panel(
                "Slack outbox",
                "Slack notices waiting to be delivered (retried with backoff while Slack fails).",
                [Query("max(socialpulse_slack_outbox_depth)", "waiting")],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (5, ORANGE), (50, RED)],
            ),
            Panel(
                "Throughput per topic",
                "Events read, counted, duplicates (redeliveries, ignored by id) and too late, "
                "per second, all workers.",
                [
                    Query(
                        "sum by (topic) (topic:socialpulse_events_consumed:rate1m)",
                        "read {{topic}}",
                    ),
                    Query(
                        "sum by (topic) (topic:socialpulse_events_counted:rate1m)",
                        "counted {{topic}}",
                    ),
                    Query(
                        "sum by (topic) (rate(socialpulse_events_duplicate_total[1m]))",
                        "duplicate {{topic}}",
                    ),
                    Query(
                        "sum by (topic) (rate(socialpulse_events_too_late_total[1m]))",
                        "too late {{topic}}",
                    ),
                ],
                unit="ops",
                min=0,
                preview=True,
            ),
            Panel(
                "Consumer lag per partition",
                "Messages behind per partition of the event topics.",
                [
                    Query(
                        "max by (topic, partition) (socialpulse_consumer_lag_messages)",
                        "{{topic}}[{{partition}}]",
                    )
                ],
                min=0,
                steps=[(None, GREEN), (1000, ORANGE), (10000, RED)],
            ),
            Panel(
                "Latency: arrival and event time to visible",
                "p50 and p99 of arrival (Kafka timestamp) to counts in Redis, and p99 of the "
                "event's own time to counts in Redis (includes the source's delay).",
                [
                    Query(
                        "max by (topic) (topic:socialpulse_arrival_to_visible_seconds:p50_5m)",
                        "arrival p50 {{topic}}",
                    ),
                    Query(
                        "max by (topic) (topic:socialpulse_arrival_to_visible_seconds:p99_5m)",
                        "arrival p99 {{topic}}",
                    ),
                    Query(
                        "max by (topic) (topic:socialpulse_event_to_visible_seconds:p99_5m)",
                        "event time p99 {{topic}}",
                    ),
                ],
                unit="s",
                min=0,
                steps=[(None, GREEN), (1, ORANGE), (5, RED)],
                preview=True,
            ),
            Panel(
                "Dead letters and filtered events (5m)",
                "Events sent to the dead-letter topic by reason, and events left out of the "
                "KPIs (bots, over-rate authors), in the last 5 minutes, all workers.",
                [
                    Query(
                        "sum by (reason) (topic_reason:socialpulse_events_invalid:increase5m)",
                        "dead letter: {{reason}}",
                    ),
                    Query(
                        "sum by (reason) (increase(socialpulse_events_filtered_total[5m]))",
                        "filtered: {{reason}}",
                    ),
                ],
                min=0,
                steps=[(None, GREEN), (1, ORANGE)],
            ),
            Panel(
                "Metric snapshots by outcome (5m)",
                "What polled snapshots did, all workers: counted (totals grew or went down), "
                "started (an object's first, without publication time), advanced, unchanged "
                "(duplicates), out_of_order (older than the newest seen), untracked (older "
                "than snapshots.track_for).",
                [
                    Query(
                        "sum by (outcome) (increase(socialpulse_snapshots_total[5m]))",
                        "{{outcome}}",
                    )
                ],
                min=0,
            ),
            Panel(
                "Redis round trip p99",
                "99th percentile of the Redis round trips: a batch's counts, and a scrape's "
                "rolling windows. Retries: batches retried while Redis did not answer.",
                [
                    Query(
                        "max by (operation) (operation:socialpulse_redis_roundtrip_seconds:p99_5m)",
                        "{{operation}}",
                    ),
                    Query("sum(increase(socialpulse_redis_retries_total[5m]))", "retries (5m)"),
                ],
                unit="s",
                min=0,
            ),
            Panel(
                "Slack deliveries",
                "Slack calls per minute by outcome: sent; failed (retried later); refused "
                "(Slack said no for good).",
                [
                    Query(
                        "sum by (outcome) (increase(socialpulse_slack_deliveries_total[1m]))",
                        "{{outcome}}",
                    )
                ],
                min=0,
            ),
            Panel(
                "Open incidents by state and severity",
                "Incidents not resolved yet, all brands.",
                [
                    Query(
                        "sum by (state, severity) (max by (brand, state, severity) "
                        "(socialpulse_incidents))",
                        "{{severity}} {{state}}",
                    )
                ],
                min=0,
            ),
            Panel(
                "Rule evaluations and evaluation delay",
                "Brand evaluations per second (every rule and baseline of a brand at a tick, "
                "done once by the worker holding the evaluation lock), and seconds from a tick "
                "to its evaluation.",
                [
                    Query("sum(rate(socialpulse_rule_evaluations_total[1m]))", "evaluations/s"),
                    Query("max(socialpulse_alert_evaluation_delay_seconds)", "delay (s)"),
                ],
                min=0,
            ),
            Panel(
                "Ingest gateway: items and refusals",
                "Items posted to `socialpulse gateway` per second by outcome (accepted: written "
                "to Kafka; rejected: invalid, with a reason), and whole requests refused in the "
                "last 5 minutes by reason (unauthorized, bad signature, too large, busy, Kafka "
                "unavailable), and events waiting for Kafka's acknowledgement. Empty when no "
                "gateway runs.",
                [
                    Query(
                        "sum by (outcome) (rate(socialpulse_ingest_events_total[1m]))",
                        "{{outcome}}",
                    ),
                    Query(
                        "sum by (reason) (increase(socialpulse_ingest_refused_requests_total[5m]))",
                        "refused (5m): {{reason}}",
                    ),
                    Query("sum(socialpulse_ingest_in_flight_events)", "waiting for Kafka"),
                ],
                min=0,
            ),
            Panel(
                "Ingest gateway: answer time p99",
                "99th percentile of the time to answer a request, per route, Kafka's "
                "acknowledgement included (5 minutes).",
                [
                    Query(
                        "histogram_quantile(0.99, sum by (le, route) "
                        "(rate(socialpulse_ingest_request_duration_seconds_bucket[5m])))",
                        "p99 {{route}}",
                    ),
                ],
                unit="s",
                min=0,
                steps=[(None, GREEN), (1, ORANGE), (5, RED)],
            ),
        ],
        variables=(),
    )
