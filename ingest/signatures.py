"""HMAC signatures of webhook bodies, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(secret: str, body: bytes, algorithm: str = "sha256", encoding: str = "hex") -> str:
    """The HMAC of ``body`` with ``secret``, hex or base64 encoded."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).digest()
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
    return hmac.compare_digest(sign(secret, body, algorithm, encoding), given)
