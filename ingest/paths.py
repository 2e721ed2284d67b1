"""Paths into someone else's JSON: how a mapping names a value of a record (pure, no I/O).

A path is steps separated by dots:

- ``from.username``: a key of an object (``entry.0.id``: a list item by its position);
- ``data[name=reach]``: the first item of the list ``data`` whose ``name`` is ``reach``
  (compared as text); the value may take a value of the record, ``[id={author_id}]``;
- ``data[*]`` or ``data.*``: every item (for a mapping's ``records``; a field takes the first);
- a leading ``$.``: from the whole payload the record came from (a response's ``includes``,
  another metric of the same insights response) instead of from the record.

An exact key wins over a path, so CSV columns with dots or brackets in their names still work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MISSING: Any = object()  # what a path gives when the record has no such value
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_STEP = re.compile(r"^(?P<key>[^\[\]]*)(?P<filters>(?:\[[^\[\]]*\])*)$")


@dataclass(frozen=True)
class Step:
    """One step of a path: a key (or list position), every item, or the first item whose
    ``key`` field equals ``value`` (a template with ``{path}`` placeholders)."""

    kind: str  # "key", "all" or "match"
    key: str = ""
    value: str = ""


@dataclass(frozen=True)
class Path:
    """A parsed path: its steps, and whether it starts at the payload (``$.``)."""

    text: str
    steps: tuple[Step, ...]
    from_root: bool = False


def _split(text: str) -> list[str]:
    """``text`` cut at the dots outside brackets (filter values may hold dots)."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"path {text!r}: a ] without its [")
        elif char == "." and depth == 0:
            parts.append(text[start:at])
            start = at + 1
    if depth:
        raise ValueError(f"path {text!r}: a [ without its ]")
    parts.append(text[start:])
    return parts


@lru_cache(maxsize=1024)
def parse_path(text: str) -> Path:
    """``text`` as a :class:`Path`; ValueError naming the path and what is wrong in it."""
    from_root = text == "$" or text.startswith("$.")
    body = text[2:] if text.startswith("$.") else ("" if text == "$" else text)
    steps: list[Step] = []
    for part in _split(body) if body else []:
        found = _STEP.match(part)
        if found is None or (not found["key"] and not found["filters"]):
            raise ValueError(f"path {text!r}: an empty step (two dots, or a dot at an end)")
        if found["key"] == "*":
            steps.append(Step("all"))
        elif found["key"]:
            steps.append(Step("key", found["key"]))
        for selector in re.findall(r"\[([^\[\]]*)\]", found["filters"]):
            if selector == "*":
                steps.append(Step("all"))
            elif selector.isdigit():
                steps.append(Step("key", selector))
            elif "=" in selector and selector.split("=", 1)[0].strip():
                key, value = selector.split("=", 1)
                steps.append(Step("match", key.strip(), value.strip()))
            else:
                raise ValueError(
                    f"path {text!r}: [{selector}] selects nothing (use [key=value], [*] or [0])"
                )
    return Path(text, tuple(steps), from_root)


def fill(template: str, record: Mapping[str, Any], root: Any = None) -> str | None:
    """``template`` with each ``{path}`` replaced by that value of ``record`` (as text); None
    when one of them is absent, so that a half-filled id or filter is never used."""
    missing = False

    def value_of(found: re.Match[str]) -> str:
        nonlocal missing
        value = lookup(record, found.group(1), root)
        text = None if value is MISSING else _text(value)
        if text is None:
            missing = True
            return ""
        return text

    text = _PLACEHOLDER.sub(value_of, template)
    return None if missing else text


def select(record: Any, text: str, root: Any = None) -> Iterator[Any]:
    """Every value at path ``text`` of ``record`` (``$.`` paths: of ``root``), in order."""
    if isinstance(record, Mapping) and text in record:
        yield record[text]
        return
    path = parse_path(text)
    start = (record if root is None else root) if path.from_root else record
    yield from _walk(start, path.steps, record, root)


def lookup(record: Any, text: str, root: Any = None) -> Any:
    """The first value at path ``text`` of ``record``; :data:`MISSING` when there is none."""
    return next(select(record, text, root), MISSING)


def _text(value: Any) -> str | None:
    """A scalar as the text a filter compares; None for absent values and containers."""
    if value is None or isinstance(value, dict | list):
        return None
    try:
        return str(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return None


def _walk(value: Any, steps: tuple[Step, ...], record: Any, root: Any) -> Iterator[Any]:
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if step.kind == "key":
        if isinstance(value, Mapping) and step.key in value:
            yield from _walk(value[step.key], rest, record, root)
        elif isinstance(value, list) and step.key.isdigit() and int(step.key) < len(value):
            yield from _walk(value[int(step.key)], rest, record, root)
    elif step.kind == "all":
        items = value.values() if isinstance(value, Mapping) else value
        if isinstance(items, list) or isinstance(value, Mapping):
            for item in items:
                yield from _walk(item, rest, record, root)
    elif isinstance(value, list):
        wanted = fill(step.value, record, root) if isinstance(record, Mapping) else step.value
        if wanted is None:
            return
        for item in value:
            if isinstance(item, Mapping) and _text(item.get(step.key)) == wanted:
                yield from _walk(item, rest, record, root)
                return  # the first match: a field has one value
