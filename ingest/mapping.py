"""Turn a record of someone else's format (a CSV row, a webhook's JSON, a polled API response)
into a SocialPulse event with a mapping of config/ingest.yaml (pure, no I/O).

A record without an id gets one derived from its content and the mapping's name, so the
same row ingested twice is the same event and the worker counts it once; an id with characters
event ids do not allow (a URL with a query) is replaced by a digest of it, just as stable.
A snapshot without an id keeps none: the schema gives it ``<object_id>@<ts>``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.config import TIME_FIELDS, FieldMapping, FieldRule
from ingest.paths import MISSING, fill, select
from ingest.paths import lookup as path_lookup
from ingest.validation import REFERENCES, Rejected, capped, json_kind
from streams.events import is_event_id

_MISSING = MISSING
# The event id pattern mappings were written against. streams.events now takes any printable
# id, but ids outside this one stay digests: a record mapped again must get the id it got
# before, or a re-run would count it twice.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}$")


def lookup(record: Mapping[str, Any], path: str, root: Any = None) -> Any:
    """A value of ``record`` by column name, or by path into nested objects and lists
    (``entry.0.id``, ``data[name=reach].values.0.value``, ``$.includes...`` from ``root``);
    ``_MISSING`` when absent. An exact key wins over a path."""
    return path_lookup(record, path, root)


def records_of(payload: Any, path: str) -> list[Any]:
    """The records of a payload: the values at ``path`` (the payload itself when empty), a
    list's items each a record; a lone object is one record."""
    if not path or not isinstance(payload, Mapping):
        found = [payload]
    else:
        found = list(select(payload, path))
    out: list[Any] = []
    for value in found:
        if isinstance(value, list):
            out.extend(value)
        elif value is not None and value is not _MISSING:
            out.append(value)
    return out


def _timestamp(value: Any, rule: FieldRule) -> str:
    if rule.format in ("epoch", "epoch_ms"):
        seconds = float(value) / (1000 if rule.format == "epoch_ms" else 1)
        parsed = datetime.fromtimestamp(seconds, UTC)
    else:
        text = str(value).strip()
        if rule.format == "iso":
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            parsed = datetime.strptime(text, rule.format)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(rule.timezone))
    if rule.shift:
        parsed += timedelta(seconds=rule.shift)
    return parsed.isoformat()


def _number(value: Any) -> float:
    # Platforms send counts as text ("1234", "1,234", "41.20"); bool is no count.
    if isinstance(value, bool | dict | list):
        raise ValueError(f"a number, not {json_kind(value)}")
    return float(str(value).replace(",", ""))


def _convert(name: str, value: Any, rule: FieldRule) -> Any:
    converting = (
        rule.values is not None or name in TIME_FIELDS or rule.scale or rule.type or rule.match
    )
    if converting and isinstance(value, dict | list):
        # str() of a container is no value of a field (and of a deep one raises).
        raise ValueError(f"a string or a number, not {json_kind(value)}")
    if rule.match is not None:
        found = re.search(rule.match, str(value))
        if found is None:
            raise ValueError(f"{capped(str(value), 60)!r} does not match {rule.match!r}")
        # Its groups joined: "^(\d+)/.*(@.*)$" keeps a page id and a day of a longer id.
        value = "".join(g or "" for g in found.groups()) if found.groups() else found.group(0)
    if rule.values is not None:
        table = {str(k).casefold(): v for k, v in rule.values.items()}
        key = str(value).strip().casefold()
        if key in table:
            value = table[key]
        elif rule.default is not None:
            value = rule.default
        else:
            raise ValueError(f"{value!r} is not in its values table ({', '.join(rule.values)})")
    if name in TIME_FIELDS:
        return _timestamp(value, rule)
    if rule.scale is not None:
        low, high = rule.scale
        value = -1 + 2 * (_number(value) - low) / (high - low)
    if rule.type == "int":
        return int(_number(value))
    if rule.type == "float":
        return _number(value)
    if rule.type == "bool":
        return str(value).strip().casefold() in ("1", "true", "yes", "y")
    if rule.type == "str":
        return str(value)
    return value


def _absent(value: Any) -> bool:
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


def _read(rule: FieldRule, record: Mapping[str, Any], root: Any, now: float) -> Any:
    """The raw value a rule reads from ``record``, before conversion; ``_MISSING`` if none."""
    if rule.now:
        return datetime.fromtimestamp(now, UTC).isoformat()
    if rule.template is not None:
        text = fill(rule.template, record, root)
        return _MISSING if text is None else text
    if rule.sum is not None:
        found = [v for path in rule.sum if not _absent(v := lookup(record, path, root))]
        return sum(_number(v) for v in found) if found else _MISSING
    sources = [rule.source] if isinstance(rule.source, str) else list(rule.source or [])
    for path in sources:
        value = lookup(record, path, root)
        if not _absent(value):
            return value
    return _MISSING


def _place(event: dict[str, Any], field: str, value: Any) -> None:
    """Set ``field`` of ``event``; ``metrics.impressions`` sets ``event["metrics"]`` 's
    ``impressions``."""
    *parents, last = field.split(".")
    target = event
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def derived_id(mapping_name: str, record: Mapping[str, Any]) -> str:
    """A stable event id for a record that has none: the same record gives the same id."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{mapping_name}\n{canonical}".encode()).hexdigest()[:24]
    return f"{mapping_name}-{digest}"


def _digest(mapping_name: str, value: str) -> str:
    return f"{mapping_name}-{hashlib.sha256(value.encode()).hexdigest()[:24]}"


def apply_mapping(
    name: str,
    mapping: FieldMapping,
    record: Mapping[str, Any],
    now: float | None = None,
    root: Any = None,
) -> dict[str, Any] | Rejected:
    """The event a record maps to (not yet schema-checked), or why it cannot be mapped.

    ``root`` is the payload the record came from (for ``$.`` paths; default the record),
    ``now`` the time of mapping in epoch seconds (for ``now`` rules; default the clock).
    """
    event: dict[str, Any] = {}
    if mapping.type:
        event["type"] = mapping.type
    when = time.time() if now is None else now
    for field, rule in mapping.rules().items():
        shown_source = rule.template or rule.sum or rule.source
        where = f" (from {shown_source!r})" if shown_source else ""
        try:
            raw = _read(rule, record, root, when)
            if _absent(raw):
                raw = rule.value if rule.value is not None else rule.default
                if raw is None:
                    continue  # absent and optional: the schema says whether it is required
                if rule.value is not None and not rule.paths() and rule.template is None:
                    _place(event, field, raw)
                    continue
            _place(event, field, _convert(field, raw, rule))
        except (ValueError, TypeError, OverflowError, OSError, ZoneInfoNotFoundError) as exc:
            return Rejected("invalid_fields", capped(f"{field}{where}: {exc}"))
    snapshot = event.get("type") == "snapshot" or (
        "type" not in event and "kind" not in event and {"object_id", "metrics"} <= set(event)
    )
    if "id" not in event and not snapshot:
        try:
            event["id"] = derived_id(name, record)
        except RecursionError:
            return Rejected(
                "invalid_fields",
                "id: the record is nested too deeply to derive an id from it; give it an id",
            )
    for field in REFERENCES:
        # Sources use URLs and other ids with characters event ids do not allow: a stable
        # digest keeps them unique and the same on every run.
        if field in event and not _ID.match(str(event[field])):
            event[field] = _digest(name, str(event[field]))
    if "object_id" in event and not is_event_id(str(event["object_id"])):
        # object_id is newer than the id rule above and had no other form: it is kept as it
        # came whenever the schema takes it as an id (a post URL is fine), digested otherwise.
        event["object_id"] = _digest(name, str(event["object_id"]))
    return event
