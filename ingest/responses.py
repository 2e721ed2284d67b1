"""What the gateway answers: the JSON bodies (written with orjson), problems that refuse a
request as a whole, and reading a body within its size limit."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ItemError(BaseModel):
    """Why one item of a request was rejected."""

    index: int
    reason: str
    detail: str


class IngestResult(BaseModel):
    """What happened to a request's items."""

    accepted: int
    rejected: int
    skipped: int = 0  # webhook notifications SocialPulse does not use (edits, read receipts)
    errors: list[ItemError] = []


class Problem(BaseModel):
    """A request refused as a whole."""

    error: str
    detail: str


class OrjsonResponse(JSONResponse):
    """A JSON response written by orjson (which never writes NaN or Infinity)."""

    def render(self, content: Any) -> bytes:
        """The body's bytes."""
        return orjson.dumps(content)


def problem(status: int, error: str, detail: str, **headers: str) -> OrjsonResponse:
    """A JSON error response: ``{"error": ..., "detail": ...}``."""
    return OrjsonResponse({"error": error, "detail": detail}, status, headers=headers or None)


class TooLarge(Exception):
    """The request body is over the limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read up to ``limit`` bytes; TooLarge beyond (without reading it all)."""
    declared = request.headers.get("content-length", "")
    # isdigit() alone takes "²" and other Unicode digits; int() of 4,300+ digits raises.
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        size_text = declared if len(declared) <= 18 else f"a {len(declared)}-digit number of"
        raise TooLarge(f"{size_text} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
