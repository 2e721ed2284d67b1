"""``socialpulse ingest FILE --history``: an export of any age into the system, so the first
day starts with warm baselines and boards that show the past.

1. The file is read as ``socialpulse ingest`` reads it (format, mapping, checks); events within
   the allowed lateness go to Kafka as usual, the older ones are the history.
2. The history is counted as the worker counts and replayed through the detector: every
   baseline and calibrated rule is handed over to the worker (socialpulse.app.history).
3. Its running totals, sampled every minute (socialpulse.app.totals_backfill) up to the
   last hour before Prometheus' head (the last three hours, which backfilled blocks must not
   reach), become Prometheus TSDB blocks (``promtool tsdb create-blocks-from openmetrics``)
   moved into Prometheus' data folder, which loads them within a minute or two; the boards
   then show the imported past under the live worker's metric names and labels. The final
   totals are added to the live running totals once, so the live series go on from there.
4. The file's digest is recorded in Redis: a second import of the same file changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from alerts.detection.engine import Detector
from ingest.config import FieldMapping
from ingest.event_producer import EventProducer
from ingest.validation import EventType, event_topics
from socialpulse.app.history import HandedOver, hand_over, learn_from_export
from socialpulse.app.settings import Settings
from socialpulse.app.totals_backfill import HistoryTotals, history_totals, openmetrics
from socialpulse.core.redis_keys import RedisKeys

HEAD = 3 * 3600  # Prometheus' in-memory head: no backfilled block may reach into it


class HistoryImportError(Exception):
    """The import cannot be done: what is missing and the fix."""


@dataclass
class Imported:
    """What an import did."""

    digest: str
    already: dict[str, object] | None = None  # the earlier import of the same file, if any
    history: int = 0
    recent: int = 0
    first: float = 0.0
    last: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)
    handed: dict[str, HandedOver] = field(default_factory=dict)
    series: int = 0
    samples: int = 0
    blocks: list[str] = field(default_factory=list)
    blocks_dir: Path | None = None
    until: int = 0  # the imported totals' last sample (an hour's start)
    carried: int = 0  # brands whose live totals go on from the imported ones


def file_digest(path: Path, mapping: str | None, fmt: str | None) -> str:
    """The import's identity: the file's bytes, and how they are read."""
    digest = hashlib.sha256(f"{mapping or ''}\0{fmt or ''}\0".encode())
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def promtool() -> str:
    """promtool's path; HistoryImportError with the fix when it is not installed."""
    found = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
    )
    if found is None:
        raise HistoryImportError(
            "promtool is not installed: it comes with Prometheus (Debian: apt-get install "
            "prometheus; or the release archive's promtool on the PATH)"
        )
    return found


def write_blocks(text_lines: Iterable[str], folder: Path, timeout: float = 1800) -> list[str]:
    """OpenMetrics text into TSDB blocks in ``folder`` (promtool); the block names made.
    The text is streamed to a file; promtool builds the blocks in a hidden folder inside
    ``folder`` (Prometheus loads only block names), and each is renamed into place whole."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = promtool()
    with tempfile.TemporaryDirectory(prefix=".history-import-", dir=folder) as scratch:
        source = Path(scratch) / "history.om.txt"
        with source.open("w", encoding="utf-8") as out:
            out.writelines(text_lines)
        built = Path(scratch) / "blocks"
        try:
            done = subprocess.run(
                [
                    tool,
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    "--quiet",
                    str(source),
                    str(built),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise HistoryImportError(
                f"promtool did not finish the blocks within {timeout:.0f} s; import the history "
                "in parts (a month a file)"
            ) from None
        if done.returncode != 0:
            raise HistoryImportError(
                f"promtool could not make blocks of the history: {done.stderr.strip()[-500:]}"
            )
        names = []
        for block in sorted(built.iterdir()):
            if block.is_dir() and (block / "meta.json").exists():
                os.rename(block, folder / block.name)  # same file system: whole or not at all
                names.append(block.name)
        return names


# What carries the history's totals on into the live ones, once per brand and file: the
# marker key shares the brand's hash tag with its totals.
_CARRY_ON = """
if redis.call('SET', KEYS[2], 1, 'NX') == false then return 0 end
for i = 1, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
"""


def carry_on(client: redis.Redis, keys: RedisKeys, totals: HistoryTotals, digest: str) -> int:
    """Add the history's final totals to the brands' running totals, once per brand and file:
    the live series then go on from where the imported ones end (the boards' windows across
    the two are right). The brands whose totals were added."""
    by_brand: dict[str, list[str]] = {}
    for key in totals.minutes:
        counter, brand, platform = key
        final = totals.final(key)
        if final:
            by_brand.setdefault(brand, []).extend([f"{counter}|{platform}", repr(final)])
    script = client.register_script(_CARRY_ON)
    added = 0
    for brand, args in sorted(by_brand.items()):
        marker = f"{keys.brand_base(brand)}:history-carried:{digest}"
        added += int(script(keys=[keys.totals(brand), marker], args=args))
    return added


def import_history(
    path: Path,
    settings: Settings,
    detector: Detector,
    client: redis.Redis,
    producer: EventProducer,
    blocks_dir: Path | None,
    fmt: str | None = None,
    mapping: tuple[str, FieldMapping] | None = None,
    default_type: EventType | None = None,
    now: float | None = None,
) -> Imported:
    """Import ``path`` (see the module): Kafka for the recent events, the detection state for
    the history, and TSDB blocks of its running totals into ``blocks_dir`` (Prometheus' data
    folder, or a folder to copy them from). Recorded in Redis by the file's digest."""
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    digest = file_digest(path, mapping[0] if mapping else None, fmt)
    earlier = client.hget(keys.history_imports(), digest)
    if earlier is not None:
        return Imported(digest, already=json.loads(earlier))
    if blocks_dir is not None:
        promtool()  # before anything is sent or handed over: a missing tool changes nothing
    moment = time.time() if now is None else now
    before = moment - settings.pipeline.windows.allowed_lateness
    learned = learn_from_export(
        path, settings, detector, fmt, mapping, default_type, before=before, progress=True
    )
    result = Imported(
        digest,
        history=learned.counted,
        recent=len(learned.recent),
        first=learned.first,
        last=learned.last,
        rejected=dict(learned.rejected),
    )
    topics = event_topics(settings.pipeline.topics)
    for event in learned.recent:
        producer.send(topics[event.type], event.body)
    producer.flush(60)
    if producer.errors:
        raise HistoryImportError(
            f"Kafka did not take the {len(learned.recent)} recent events ({producer.errors[0]}); "
            "nothing was recorded: run the import again once Kafka is there"
        )
    for brand, state in sorted(learned.states.items()):
        result.handed[brand] = hand_over(client, keys, detector, brand, state)
    if learned.counts is not None:
        platforms = {b.id: b.platforms for b in settings.brands.brands}
        # Prometheus' head holds the last three hours: blocks must end before it.
        until = int(moment - HEAD) // 3600 * 3600
        totals = history_totals(learned.counts, platforms, until=until)
        if totals is not None and blocks_dir is not None:
            result.series = len(totals.minutes)
            result.samples = result.series * ((totals.end - totals.begin) // totals.step + 1)
            result.until = totals.end
            result.blocks = write_blocks(openmetrics(totals), blocks_dir)
            result.blocks_dir = blocks_dir
            result.carried = carry_on(client, keys, totals, digest)
    client.hset(
        keys.history_imports(),
        digest,
        json.dumps(
            {
                "file": str(path),
                "at": moment,
                "history": result.history,
                "recent": result.recent,
                "first": result.first,
                "last": result.last,
                "blocks": len(result.blocks),
            }
        ),
    )
    return result
