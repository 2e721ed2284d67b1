"""config/ingest.yaml: the HTTP gateway, platform webhooks and field mappings for files.

Secrets (bearer tokens, webhook secrets) are never in this file: it names the environment
variables that hold them, so it can live in the repository.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from ingest.paths import parse_path
from ingest.poll_config import POLL_ENV_OVERRIDES, PollerSettings
from socialpulse.core.config import BrandsFile, ConfigError
from socialpulse.core.config_files import default_config_dir, read_yaml, shown_path, validate_model
from socialpulse.core.config_types import Duration, Strict, parse_duration
from socialpulse.core.http_server import HttpLimits

INGEST_FILE = "ingest.yaml"
_SOURCE = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def _signed_duration(value: Any) -> int:
    """A duration that may be negative: '-1d' is a day back."""
    text = str(value).strip() if not isinstance(value, int | float) else value
    if isinstance(text, str) and text.startswith("-"):
        return -parse_duration(text[1:])
    return parse_duration(text)


# Event fields that are times: read with ``format``/``timezone``, moved by ``shift``.
TIME_FIELDS = ("ts", "published_at")
# An event field, or a nested one (``metrics.impressions``: the impressions of ``metrics``).
_TARGET = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


class FieldRule(Strict):
    """How one event field is read from a record (a CSV row or a JSON payload).

    Where the value comes from, the first that applies: ``now`` (the time of mapping),
    ``template`` (several values in one text), ``sum`` (several numbers added), ``from`` (a
    column or path; a list: the first of them that is there), else ``value``/``default``.
    Paths are those of ingest.paths (``insights.data[name=reach].values.0.value``).
    """

    # A column name, or a path into a JSON object (``from.username``); a list of them: the
    # first that the record has (``non_public_metrics.impression_count``, then public ones).
    source: str | list[str] | None = Field(None, alias="from")
    value: Any = None  # a constant, used when ``from`` is not given (or gives nothing)
    # Lookup table for the read value (matched case-insensitively); values not in it are
    # rejected unless ``default`` is set.
    values: dict[str, Any] | None = None
    default: Any = None
    # For times (ts, published_at): iso (default), epoch, epoch_ms, or a strptime format
    # such as %d/%m/%Y %H:%M.
    format: str = "iso"
    timezone: str = "UTC"  # for times without an offset
    type: Literal["str", "int", "float", "bool"] | None = None
    # A number in this source range is rescaled to the event's range (sentiment -5..5 -> -1..1).
    scale: tuple[float, float] | None = None
    # Text made of record values: "{ad_id}@{date_start}" (each {path} as in ``from``); when one
    # of them is absent the field is too (then value or default).
    template: str | None = None
    # Numbers added up (retweets and quotes as shares); absent ones count nothing, none: absent.
    sum: list[str] | None = None
    # The time of mapping, for polled totals whose response carries no time (ts only).
    now: bool = False
    # Added to a time (1d: the end of a day whose start was read; -1d: a day back).
    shift: Annotated[int, BeforeValidator(_signed_duration)] | None = None
    # A regular expression: the value becomes its groups joined (or the whole match without
    # groups); a value it does not match is rejected.
    match: str | None = None

    @model_validator(mode="after")
    def _has_source(self) -> FieldRule:
        if not (self.source or self.template or self.sum or self.now) and (
            self.value is None and self.default is None
        ):
            raise ValueError(
                "give from (a column or path), template, sum, now, value (a constant) or default"
            )
        if self.scale is not None and not self.scale[0] < self.scale[1]:
            raise ValueError(f"scale: {list(self.scale)} is not a range [low, high], low < high")
        for path in [*self.paths(), *re.findall(r"\{([^{}]+)\}", self.template or "")]:
            parse_path(path)  # ValueError names the path and what is wrong with it
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise ValueError(
                    f"match: {self.match!r} is not a regular expression ({exc})"
                ) from exc
        return self

    def paths(self) -> list[str]:
        """The paths this rule reads (``from`` and ``sum``), in order."""
        sources = [self.source] if isinstance(self.source, str) else list(self.source or [])
        return sources + list(self.sum or [])


class FieldMapping(Strict):
    """A named mapping from a tool's export or webhook payload to SocialPulse events."""

    # None: from a field named type, else inferred per record (ingest.validation.event_type).
    type: Literal["mention", "interaction", "snapshot"] | None = None
    fields: dict[str, FieldRule | str]
    # The path to the list of records in a JSON payload or file line (``data``,
    # ``data.videos``, ``data[name=page_impressions].values``, ``data[*].values``); empty: the
    # payload is one record, or a list of them.
    records: str = ""
    # CSV: lines above the header row (some tools put report details there).
    skip_rows: int = Field(0, ge=0, le=100)

    @field_validator("fields", mode="before")
    @classmethod
    def _rules(cls, fields: Any) -> Any:
        # Each rule is read here, not by the union, so that an error names the event field.
        if not isinstance(fields, dict):
            return fields
        rules: dict[str, FieldRule] = {}
        for name, given in fields.items():
            if not isinstance(name, str) or not _TARGET.match(name):
                raise ValueError(
                    f"{name!r} is not an event field (lowercase names; metrics.<name> for a "
                    "snapshot's metric)"
                )
            try:
                rule = FieldRule.model_validate(
                    {"from": given} if isinstance(given, str) else given
                )
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                message = str(first["msg"]).removeprefix("Value error, ")
                raise ValueError(f"{name}: {where + ': ' if where else ''}{message}") from None
            if (rule.now or rule.shift) and name not in TIME_FIELDS:
                raise ValueError(f"{name}: now and shift are for times ({', '.join(TIME_FIELDS)})")
            rules[name] = rule
        return rules

    @field_validator("records")
    @classmethod
    def _records_path(cls, records: str) -> str:
        if records:
            parse_path(records)
        return records

    def rules(self) -> dict[str, FieldRule]:
        """The field rules, shorthands (a bare column name) expanded."""
        return {k: v for k, v in self.fields.items() if isinstance(v, FieldRule)}


class GatewaySettings(Strict):
    """The HTTP ingest gateway (``socialpulse gateway``)."""

    # Loopback by default: exposing the gateway (0.0.0.0, a proxy) is an explicit choice.
    host: str = "127.0.0.1"
    port: int = Field(9320, ge=0, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_batch_events: int = Field(5000, ge=1, le=100_000)
    # Events sent to Kafka and not yet acknowledged; a request that would go over gets 429.
    max_in_flight: int = Field(20_000, ge=1)
    produce_timeout: Duration = Field(15, ge=1, le=300)
    # Seconds a client has to send a whole request (head and body) from opening the connection
    # or the end of the previous answer; slower ones get 408 (a body trickled at 1 byte/s).
    request_timeout: Duration = Field(10, ge=1, le=300)
    # Connections open at once; one more gets 503 with Retry-After at once, before it is read.
    max_connections: int = Field(100, ge=1, le=10_000)
    # Sources allowed to post; each one's bearer token is in SOCIALPULSE_INGEST_TOKEN_<SOURCE>.
    sources: list[str] = Field(default_factory=lambda: ["default"])

    @model_validator(mode="after")
    def _batch_fits(self) -> GatewaySettings:
        if self.max_in_flight < self.max_batch_events:
            raise ValueError(
                f"max_in_flight ({self.max_in_flight}) must be at least max_batch_events "
                f"({self.max_batch_events}), or a full batch could never be accepted"
            )
        return self

    def limits(self) -> HttpLimits:
        """The HTTP server's limits (socialpulse.core.http_server) from this section."""
        return HttpLimits(
            request_timeout=float(self.request_timeout), max_connections=self.max_connections
        )

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: list[str]) -> list[str]:
        for name in sources:
            if not re.match(_SOURCE, name):
                raise ValueError(f"{name!r}: use lowercase letters, digits, _ and -")
        return sources


class MetaSettings(Strict):
    """Meta (Facebook Pages, Instagram) webhooks: POST/GET /v1/webhooks/meta."""

    verify_token_env: str = "META_VERIFY_TOKEN"
    app_secret_env: str = "META_APP_SECRET"
    # Page or Instagram professional account id -> brand id of brands.yaml.
    accounts: dict[str, str] = Field(default_factory=dict)


class WebhookSettings(Strict):
    """A generic signed webhook: POST /v1/webhooks/<name>, HMAC over the exact body."""

    secret_env: str
    signature_header: str = "X-Signature-256"
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    prefix: str = "sha256="  # text before the digest in the header ("" for none)
    encoding: Literal["hex", "base64"] = "hex"
    mapping: str | None = None  # a mapping of this file; None: the body holds SocialPulse events


class IngestFile(Strict):
    """config/ingest.yaml."""

    gateway: GatewaySettings = GatewaySettings()
    meta: MetaSettings = MetaSettings()
    webhooks: dict[str, WebhookSettings] = Field(default_factory=dict)
    mappings: dict[str, FieldMapping] = Field(default_factory=dict)
    pollers: PollerSettings = PollerSettings()

    def token_env(self, source: str) -> str:
        """The environment variable holding ``source``'s bearer token."""
        return "SOCIALPULSE_INGEST_TOKEN_" + source.upper().replace("-", "_")

    def tokens(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Source name -> bearer token, for the sources whose variable is set."""
        env = os.environ if environ is None else environ
        found = {s: env.get(self.token_env(s), "").strip() for s in self.gateway.sources}
        return {source: token for source, token in found.items() if token}


def load_ingest(config_dir: Path | None = None, brands: BrandsFile | None = None) -> IngestFile:
    """Read and check ingest.yaml of ``config_dir`` (defaults when the file is absent), its Meta
    accounts against ``brands`` when given; raise ConfigError naming the file, the key and the
    problem."""
    folder = Path(config_dir or default_config_dir())
    path = folder / INGEST_FILE
    shown = shown_path(path)
    if not path.is_file():
        return IngestFile()
    data = read_yaml(path, shown)
    pollers = data.get("pollers") if isinstance(data, dict) else None
    for var, key in POLL_ENV_OVERRIDES.items():
        if var in os.environ and isinstance(pollers, dict):
            pollers[key] = os.environ[var]
    ingest = validate_model(IngestFile, data, shown)
    problems = []
    for name, hook in ingest.webhooks.items():
        if not re.match(_SOURCE, name) or name == "meta":
            problems.append(f"webhooks.{name}: use lowercase letters, digits, _ and - (not meta)")
        if hook.mapping and hook.mapping not in ingest.mappings:
            problems.append(
                f"webhooks.{name}.mapping: {hook.mapping!r} is not a mapping of this file "
                f"(mappings: {', '.join(ingest.mappings) or 'none'})"
            )
    problems += _poller_problems(ingest, brands)
    if brands is not None:
        known = {b.id for b in brands.brands}
        for account, brand in ingest.meta.accounts.items():
            if brand not in known:
                problems.append(
                    f"meta.accounts.{account}: brand {brand!r} is not in brands.yaml "
                    f"(brands: {', '.join(sorted(known))})"
                )
    if problems:
        raise ConfigError("\n".join(f"{shown}: {p}" for p in problems))
    return ingest


def _poller_problems(ingest: IngestFile, brands: BrandsFile | None) -> list[str]:
    from ingest.poll_sources import SOURCES

    problems = []
    known = {b.id for b in brands.brands} if brands is not None else None
    for name, account in ingest.pollers.accounts.items():
        where = f"pollers.accounts.{name}"
        if not re.match(_SOURCE, name):
            problems.append(f"{where}: name accounts with lowercase letters, digits, _ and -")
        mapping = account.mapping or SOURCES[account.source].mapping
        if mapping not in ingest.mappings:
            problems.append(
                f"{where}.mapping: {mapping!r} is not a mapping of this file (the "
                f"{account.source} source reads its records with it; mappings: "
                f"{', '.join(ingest.mappings) or 'none'})"
            )
        if known is not None and account.brand not in known:
            problems.append(
                f"{where}.brand: {account.brand!r} is not in brands.yaml "
                f"(brands: {', '.join(sorted(known))})"
            )
    return problems
