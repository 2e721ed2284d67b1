"""HMAC signatures of webhook bodies and shared tokens, compared in constant time.

Everything is compared as bytes: ``hmac.compare_digest`` raises on ``str`` with non-ASCII
characters, and a header or query value is whatever the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(secret: str, body: bytes, algorithm: str = "sha256", encoding: str = "hex") -> str:
    """The HMAC of ``body`` with ``secret``, hex or base64 encoded."""
    digest = hmac.new(secret_bytes(secret), body, getattr(hashlib, algorithm)).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def valid_signature(
    secret: str,
    body: bytes,
    header: str | None,
    algorithm: str = "sha256",
    prefix: str = "sha256=",
    encoding: str = "hex",
) -> bool:
    """Whether ``header`` is ``prefix`` followed by the HMAC of the exact ``body``."""
    if not secret or not header or not header.startswith(prefix):
        return False
    given = header.removeprefix(prefix).strip()
    if encoding == "hex":
        given = given.lower()
    return same_secret(sign(secret, body, algorithm, encoding), given)


def secret_bytes(text: str) -> bytes:
    """The bytes of a secret read from the environment (where bytes that are not UTF-8 arrive
    as surrogate escapes), to compare with the raw bytes a client sent."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def same_secret(expected: str, given: str) -> bool:
    """Whether ``given`` equals ``expected``, in time that does not depend on where they
    differ; any text (non-ASCII, lone surrogates) is compared, never raises."""
    return hmac.compare_digest(_utf8(expected), _utf8(given))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
