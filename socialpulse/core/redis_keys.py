"""The Redis key layout: every key family under one prefix, in one place.

A brand's keys carry the brand as a hash tag (``{acme}``), so all of them live in one Redis
Cluster slot: a brand's batch is one atomic script call, its incident transactions stay on one
node, and brands spread over the nodes. The few keys shared by all brands (the evaluation lock,
lenient mode's tracked set) are single keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """Key names under one prefix (tests use their own prefix so they never collide)."""

    prefix: str

    def brand_base(self, brand: str) -> str:
        """What every key of one brand starts with: the prefix and the brand's hash tag."""
        return f"{self.prefix}:{{{brand}}}"

    def bucket(self, brand: str, tier: int, start: int) -> str:
        """Hash of one brand's counters in the ``tier``-second bucket starting at ``start``."""
        return f"{self.prefix}:{{{brand}}}:b{tier}:{start}"

    def unique(self, brand: str, tier: int, start: int, field: str) -> str:
        """HyperLogLog of one distinct count (``<counter>|<platform>``) in one bucket."""
        return f"{self.prefix}:{{{brand}}}:u{tier}:{start}:{field}"

    def author_rate(self, brand: str, minute: int) -> str:
        """Hash author -> mentions counted in the minute starting at ``minute``."""
        return f"{self.prefix}:{{{brand}}}:rate:{minute}"

    def gauges(self, brand: str) -> str:
        """Hash of one brand's last known gauges: ``<gauge>|<platform>`` -> value, and
        ``<gauge>|<platform>@ts`` -> the event time it was reported at."""
        return f"{self.prefix}:{{{brand}}}:gauges"

    def totals(self, brand: str) -> str:
        """Hash of one brand's running totals since it was first counted: ``<counter>|<platform>``
        -> every increment ever added (what /metrics exports as counters)."""
        return f"{self.prefix}:{{{brand}}}:totals"

    def poll_state(self, account: str) -> str:
        """Hash of one poller account's state: its cursor, when it is next due, its failures
        in a row and the last outcome (the account as the hash tag: accounts spread)."""
        return f"{self.prefix}:{{poll:{account}}}:state"

    def poll_budgets(self) -> str:
        """Hash rate-limit budget name -> the unix time before which no poller uses it."""
        return f"{self.prefix}:poll-budgets"

    def day(self, brand: str, day: int) -> str:
        """Hash of one brand's counters over the UTC day starting at ``day`` (the long view:
        ``<counter>|<platform>``, and ``_rolled:<bucket start>`` markers)."""
        return f"{self.prefix}:{{{brand}}}:day:{day}"

    def dimension_day(self, brand: str, day: int) -> str:
        """Hash of one brand's counters per campaign and content item over a UTC day."""
        return f"{self.prefix}:{{{brand}}}:dday:{day}"

    def history_imports(self) -> str:
        """Hash file digest -> what ``socialpulse ingest --history`` imported from it (JSON)."""
        return f"{self.prefix}:history-imports"

    def tiers_since(self) -> str:
        """Hash bucket tier -> from when the workers write it (not per brand: one for all)."""
        return f"{self.prefix}:tiers-since"

    def dimension_bucket(self, brand: str, tier: int, start: int) -> str:
        """Hash of one brand's counters per campaign and content item (``<counter>|campaign:<id>``,
        ``<counter>|content:<id>``, all platforms) in one ``tier``-second bucket."""
        return f"{self.prefix}:{{{brand}}}:d{tier}:{start}"

    def care_seen(self, brand: str, minute: int) -> str:
        """Set of the ids of care events in the event-time minute ``minute`` already applied."""
        return f"{self.prefix}:{{{brand}}}:care-seen:{minute}"

    def waiting(self, brand: str, platform: str) -> str:
        """Sorted set of unanswered conversations on a platform, by inbound event time."""
        return f"{self.prefix}:{{{brand}}}:care:waiting:{platform}"

    def care_platforms(self, brand: str) -> str:
        """Set of the platforms that have had waiting conversations."""
        return f"{self.prefix}:{{{brand}}}:care:platforms"

    def response_times(self, brand: str, tier: int, start: int, platform: str) -> str:
        """Sorted set of one bucket's responses on a platform, scored by seconds to reply."""
        return f"{self.prefix}:{{{brand}}}:rt{tier}:{start}:{platform}"

    def seen(self, brand: str, minute: int, event_type: str) -> str:
        """Set of the ids of one brand's events of one type (``mention``, ``interaction``: a
        source may use one id for both), in the event-time minute ``minute``, counted."""
        return f"{self.prefix}:{{{brand}}}:seen:{event_type}:{minute}"

    def snapshot_object(self, brand: str, platform: str, object_id: str) -> str:
        """Hash of one object's last snapshot state (streams.snapshots): ``v`` its version,
        ``s`` the state; the object id is a whole part of the name, whatever it holds."""
        return f"{self.prefix}:{{{brand}}}:obj:{platform}:{object_id}"

    def detection(self, brand: str) -> str:
        """Hash of one brand's detection state: rule states, baselines, tick cursor, delivery."""
        return f"{self.prefix}:{{{brand}}}:detection"

    def alert_events(self, brand: str) -> str:
        """Stream of one brand's alert firings and clearings, oldest first."""
        return f"{self.prefix}:{{{brand}}}:alert-events"

    def target_starts(self, brand: str) -> str:
        """Hash of one brand's SMART targets' start values: target -> JSON {value, at}."""
        return f"{self.prefix}:{{{brand}}}:targets"

    def context_counts(self, brand: str, minute: int) -> str:
        """Hash of one event-time minute's term and language counts (streams.post_context)."""
        return f"{self.prefix}:{{{brand}}}:ctx:{minute}"

    def context_posts(self, brand: str, minute: int, platform: str) -> str:
        """Sorted set of one minute's top posts on a platform by reach (JSON samples)."""
        return f"{self.prefix}:{{{brand}}}:posts:{minute}:{platform}"

    def lenient_brands(self) -> str:
        """Set of the brands and brand/platform pairs outside brands.yaml that a lenient worker
        counts (``cleaning.strict: false``), at most ``cleaning.max_unknown`` of them."""
        return f"{self.prefix}:lenient-tracked"

    def silences(self) -> str:
        """Hash silence id -> the silence (JSON). All brands' silences in one small hash: a
        silence may match any brand. Its keys share one hash tag (one Cluster slot)."""
        return f"{self.prefix}:{{silences}}:all"

    def silence_seq(self) -> str:
        """Counter of the silence ids made (``s-<n>``)."""
        return f"{self.prefix}:{{silences}}:seq"

    def silence_notices(self) -> str:
        """Hash silence id -> when its channel was told that it ends soon (told once)."""
        return f"{self.prefix}:{{silences}}:told"

    def evaluation_lock(self) -> str:
        """Which worker evaluates the rules now (one at a time, so each tick is judged once)."""
        return f"{self.prefix}:evaluation-lock"


class IncidentKeys:
    """Key names of one brand's incidents."""

    def __init__(self, keys: RedisKeys, brand: str):
        base = keys.brand_base(brand)
        self.base = base
        self.index = f"{base}:incidents"
        self.open = f"{base}:incidents:open"
        self.seq = f"{base}:incident-seq"
        self.actions = f"{base}:incident-actions"
        self.results = f"{base}:incident-results"
        self.outbox = f"{base}:outbox"
        self.held = f"{base}:outbox-held"
        self.dead = f"{base}:outbox-dead"
        self.slack = f"{base}:incident-slack"
        self.cursors = f"{base}:incident-cursors"
        # The verdicts given: sorted set incident id -> its opening time, and hash incident id
        # -> rule, verdict and reason (what /metrics counts over 30 days).
        self.verdicts = f"{base}:verdicts"
        self.verdict_of = f"{base}:verdict-of"
        self.summaries = f"{base}:weekly-summaries"  # week end -> when its summary was queued

    def incident(self, incident_id: str) -> str:
        """The incident's JSON."""
        return f"{self.base}:incident:{incident_id}"

    def timeline(self, incident_id: str) -> str:
        """The incident's timeline list."""
        return f"{self.base}:incident:{incident_id}:timeline"


__all__ = ["IncidentKeys", "RedisKeys"]
