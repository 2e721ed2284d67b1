"""Turn a record of someone else's format (a CSV row, a webhook's JSON) into a SocialPulse
event with a mapping of config/ingest.yaml (pure, no I/O).

A record without an id gets one derived from its content and the mapping's name, so the
same row ingested twice is the same event and the worker counts it once; an id with characters
event ids do not allow (a URL with a query) is replaced by a digest of it, just as stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.config import FieldMapping, FieldRule
from ingest.validation import REFERENCES, Rejected, capped, json_kind

_MISSING = object()
# The event id pattern mappings were written against. streams.events now takes any printable
# id, but ids outside this one stay digests: a record mapped again must get the id it got
# before, or a re-run would count it twice.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}$")


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """A value of ``record`` by column name, or by dotted path into nested objects and lists
    (``entry.0.id``); ``_MISSING`` when absent. An exact key wins over a path."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def records_of(payload: Any, path: str) -> list[Any]:
    """The records of a payload: the list at ``path`` (the payload itself when empty); a lone
    object is one record."""
    found = lookup(payload, path) if path and isinstance(payload, Mapping) else payload
    if found is _MISSING or found is None:
        return []
    return found if isinstance(found, list) else [found]


def _timestamp(value: Any, rule: FieldRule) -> str:
    if rule.format in ("epoch", "epoch_ms"):
        seconds = float(value) / (1000 if rule.format == "epoch_ms" else 1)
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    text = str(value).strip()
    if rule.format == "iso":
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    else:
        parsed = datetime.strptime(text, rule.format)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(rule.timezone))
    return parsed.isoformat()


def _convert(name: str, value: Any, rule: FieldRule) -> Any:
    converting = rule.values is not None or name == "ts" or rule.scale or rule.type
    if converting and isinstance(value, dict | list):
        # str() of a container is no value of a field (and of a deep one raises).
        raise ValueError(f"a string or a number, not {json_kind(value)}")
    if rule.values is not None:
        table = {str(k).casefold(): v for k, v in rule.values.items()}
        key = str(value).strip().casefold()
        if key in table:
            value = table[key]
        elif rule.default is not None:
            value = rule.default
        else:
            raise ValueError(f"{value!r} is not in its values table ({', '.join(rule.values)})")
    if name == "ts":
        return _timestamp(value, rule)
    if rule.scale is not None:
        low, high = rule.scale
        value = -1 + 2 * (float(value) - low) / (high - low)
    if rule.type == "int":
        return int(float(str(value).replace(",", "")))
    if rule.type == "float":
        return float(str(value).replace(",", ""))
    if rule.type == "bool":
        return str(value).strip().casefold() in ("1", "true", "yes", "y")
    if rule.type == "str":
        return str(value)
    return value


def derived_id(mapping_name: str, record: Mapping[str, Any]) -> str:
    """A stable event id for a record that has none: the same record gives the same id."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{mapping_name}\n{canonical}".encode()).hexdigest()[:24]
    return f"{mapping_name}-{digest}"


def apply_mapping(
    name: str, mapping: FieldMapping, record: Mapping[str, Any]
) -> dict[str, Any] | Rejected:
    """The event a record maps to (not yet schema-checked), or why it cannot be mapped."""
    event: dict[str, Any] = {}
    if mapping.type:
        event["type"] = mapping.type
    for field, rule in mapping.rules().items():
        raw = lookup(record, rule.source) if rule.source else _MISSING
        if raw is _MISSING or raw is None or (isinstance(raw, str) and not raw.strip()):
            raw = rule.value if rule.value is not None else rule.default
            if raw is None:
                continue  # absent and optional: the schema says whether it is required
            if rule.value is not None and rule.source is None:
                event[field] = raw
                continue
        try:
            event[field] = _convert(field, raw, rule)
        except (ValueError, TypeError, OverflowError, OSError, ZoneInfoNotFoundError) as exc:
            where = f" (from {rule.source!r})" if rule.source else ""
            return Rejected("invalid_fields", capped(f"{field}{where}: {exc}"))
    if "id" not in event:
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
            digest = hashlib.sha256(str(event[field]).encode()).hexdigest()[:24]
            event[field] = f"{name}-{digest}"
    return event
