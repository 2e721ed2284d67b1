"""``socialpulse ingest``: events from a JSONL, JSON or CSV file (or stdin) into Kafka.

Each line (JSONL) or row (CSV), or the whole document (JSON: a saved API response), is mapped
with a mapping of config/ingest.yaml when one is named (a JSON line or document gives the
records at the mapping's ``records`` path), validated against the event schemas, and produced
keyed by brand to its type's topic. Rejected lines go to
a rejects file (JSON lines: line number, reason, detail, the record) and are summed by reason.
Event ids make a re-run count nothing twice: the worker counts each id once (records without
an id get one derived from their content, see ingest.mapping).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from tqdm import tqdm

from ingest.config import FieldMapping
from ingest.event_producer import EventProducer
from ingest.json_body import parse_value
from ingest.mapping import apply_mapping, records_of
from ingest.validation import Accepted, EventType, Rejected, event_topics, validate_item
from socialpulse.core.config_types import format_duration
from streams.config import StreamConfig

FileFormat = Literal["jsonl", "json", "csv"]


class Writer(Protocol):
    """Where rejected records go (a text file)."""

    def write(self, text: str, /) -> int:
        """Write a line."""
        ...


@dataclass
class IngestSummary:
    """What an ingest run did."""

    lines: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # by event type
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    too_old: int = 0  # accepted, but older than the allowed lateness: counted as too late
    rejects_path: Path | None = None

    def text(self, lateness: int) -> str:
        """The summary people read at the end of a run."""
        kinds = ", ".join(f"{n} {kind}s" for kind, n in sorted(self.accepted.items()))
        lines = [
            f"ingest: {self.lines} records, {sum(self.accepted.values())} accepted"
            + (f" ({kinds})" if kinds else "")
            + f", {sum(self.rejected.values())} rejected"
        ]
        if self.rejected:
            reasons = ", ".join(f"{reason} {n}" for reason, n in self.rejected.most_common())
            lines.append(f"  rejected by reason: {reasons}; details in {self.rejects_path}")
        if self.too_old:
            lines.append(
                f"  {self.too_old} accepted events are older than the allowed lateness "
                f"({format_duration(lateness)}): the worker counts them as too late, not in "
                "KPIs (use socialpulse replay to re-live a recording)"
            )
        return "\n".join(lines)


def file_format(path: str, given: str | None) -> FileFormat:
    """The format: given, or from the file name (.csv is CSV, .json one JSON document,
    anything else JSONL)."""
    name = (given or path).lower()
    if name == "csv" or (not given and name.endswith(".csv")):
        return "csv"
    if name == "json" or (not given and name.endswith(".json")):
        return "json"
    return "jsonl"


def records(lines: Iterable[str], fmt: FileFormat, skip: int = 0) -> Iterator[tuple[int, Any]]:
    """(line number, record) pairs: a dict per CSV row (empty cells left out; ``skip`` lines
    before the header), a decoded value per JSONL line (a Rejected where a line is not JSON);
    blank lines are skipped; a JSON document is one record (line 1)."""
    if fmt == "json":
        text = "".join(lines)
        if text.strip():
            yield 1, parse_value(text)
        return
    if fmt == "csv":
        rows = iter(lines)
        for _ in range(skip):
            next(rows, None)
        reader = csv.DictReader(rows)
        for row in reader:
            if any(row.values()):
                cells = {k: v for k, v in row.items() if k is not None and v not in ("", None)}
                yield reader.line_num + skip, cells
        return
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        # orjson, as the gateway: NaN, Infinity, overflowing numbers and lone surrogates are
        # refused here instead of reaching Kafka.
        yield number, parse_value(line)


def counting(lines: IO[str], bar: tqdm[Any]) -> Iterator[str]:
    """The lines, each advancing ``bar`` by its size in bytes."""
    for line in lines:
        bar.update(len(line.encode()))
        yield line


def mapped_items(
    record: Any,
    fmt: FileFormat,
    mapping: tuple[str, FieldMapping] | None,
    now: float,
) -> list[tuple[int | None, Any]]:
    """What one line, row or document gives to validate: (index of the record within it, or
    None when it is the only one; the item, or why it cannot be one). A JSON line or
    document is split into the records at the mapping's ``records`` path (a JSON document
    without a mapping, an array of events, into its items)."""
    if isinstance(record, Rejected):
        return [(None, record)]
    if mapping is None:
        if fmt == "json" and isinstance(record, list):
            return list(enumerate(record))
        return [(None, record)]
    name, rules = mapping
    splitting = fmt != "csv" and (bool(rules.records) or fmt == "json")
    found = records_of(record, rules.records) if splitting else [record]
    out: list[tuple[int | None, Any]] = []
    for index, one in enumerate(found):
        where = index if splitting else None
        if isinstance(one, dict):
            out.append((where, apply_mapping(name, rules, one, now, root=record)))
        else:
            out.append((where, Rejected("invalid_fields", "a record is a JSON object")))
    return out


def checked_items(
    record: Any,
    fmt: FileFormat,
    settings: StreamConfig,
    mapping: tuple[str, FieldMapping] | None,
    now: float,
    default_type: EventType | None = None,
) -> Iterator[tuple[int | None, Accepted | Rejected]]:
    """Each record of one line, row or document mapped and validated: (its index within it,
    as in mapped_items; the event to produce, or why not)."""
    known = settings.strict_known
    max_future = settings.pipeline.windows.max_future
    for index, item in mapped_items(record, fmt, mapping, now):
        if isinstance(item, Rejected):
            yield index, item
        else:
            yield index, validate_item(item, now, max_future, known, default_type)


def ingest_stream(
    lines: Iterable[str],
    fmt: FileFormat,
    settings: StreamConfig,
    producer: EventProducer,
    now: float,
    mapping: tuple[str, FieldMapping] | None = None,
    default_type: EventType | None = None,
    rejects: Writer | None = None,
) -> IngestSummary:
    """Map, validate and produce every record of ``lines``; rejected records are written to
    ``rejects`` (JSON lines). ``now`` (epoch seconds) is the time of mapping (``ts: {now:
    true}``) and the reference for event times ahead. The caller flushes the producer."""
    topic = event_topics(settings.pipeline.topics)
    windows = settings.pipeline.windows
    summary = IngestSummary()
    skip = mapping[1].skip_rows if mapping else 0
    for number, record in records(lines, fmt, skip):
        for index, result in checked_items(record, fmt, settings, mapping, now, default_type):
            summary.lines += 1
            if isinstance(result, Accepted):
                producer.send(topic[result.type], result.body)
                summary.accepted[result.type] += 1
                if result.ts < now - windows.allowed_lateness:
                    summary.too_old += 1
                continue
            summary.rejected[result.reason] += 1
            if rejects is not None:
                line: dict[str, Any] = {"line": number}
                if index is not None:
                    line["index"] = index  # the record's place in the line's records list
                line |= {"reason": result.reason, "detail": result.detail, "record": record}
                rejects.write(json.dumps(line, default=str) + "\n")
    return summary


def ingest_file(
    path: str,
    settings: StreamConfig,
    producer: EventProducer,
    now: float,
    fmt: str | None = None,
    mapping: tuple[str, FieldMapping] | None = None,
    default_type: EventType | None = None,
    rejects_path: Path | None = None,
) -> IngestSummary:
    """Ingest a file (``-``: stdin) with a progress bar; rejects go to ``rejects_path``
    (default: next to the file, ``<file>.rejects.jsonl``; a stale one is removed)."""
    kind = file_format(path, fmt)
    if rejects_path is None:
        rejects_path = Path("ingest-rejects.jsonl" if path == "-" else f"{path}.rejects.jsonl")
    rejects_path.unlink(missing_ok=True)
    source: IO[str]
    if path == "-":
        source, size = sys.stdin, None
    else:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
        # Closed by the with below, together with stdin's case.
        source = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        size = Path(path).stat().st_size
    with (
        source,
        tqdm(total=size, unit="B", unit_scale=True, desc="ingest", disable=None) as bar,
        _LazyFile(rejects_path) as rejects,
    ):
        summary = ingest_stream(
            counting(source, bar), kind, settings, producer, now, mapping, default_type, rejects
        )
    summary.rejects_path = rejects_path if summary.rejected else None
    return summary


class _LazyFile:
    """A text file created on the first write, so a clean run leaves no empty rejects file."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def write(self, text: str, /) -> int:
        """Write to the file, creating it first if needed."""
        if self._file is None:
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
        return self._file.write(text)

    def __enter__(self) -> _LazyFile:
        return self

    def __exit__(self, *_: object) -> None:
        if self._file is not None:
            self._file.close()
