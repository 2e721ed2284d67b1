"""Meta webhooks (Facebook Pages, Instagram): the subscription handshake, the payload
signature, and the mapping of change notifications to SocialPulse events (pure, no I/O).

Meta signs every POST with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body with the
app secret>``. Notifications map as follows (event ids derive from Meta's ids, so Meta's
retries are counted once):

- Instagram ``comments`` / ``live_comments``: a mention (the comment's text, for sentiment)
  and a ``comment`` interaction on the media; ``mentions`` (the brand tagged in a comment or
  caption): a mention.
- Page ``feed``: a new ``comment`` is a mention and a ``comment`` interaction; ``post`` /
  ``status`` / ``photo`` / ``video`` by someone else a mention; ``reaction`` a ``like``
  interaction; ``share`` a ``share`` interaction. Edits and removals are skipped.
- ``messaging`` (Messenger, Instagram Direct): an inbound message is a mention that needs a
  reply (customer care); the brand's own message (an echo) is its reply in that thread.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.validation import Rejected

SIGNATURE_HEADER = "X-Hub-Signature-256"


def handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to echo for a valid subscription request, else None."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(params.get("hub.verify_token", ""), verify_token):
        return None
    return params.get("hub.challenge")


@dataclass
class Mapped:
    """What a notification gave: events to validate, items refused, changes skipped."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0


def _time(value: Any) -> str:
    """Meta's times: epoch seconds (entry.time, sometimes milliseconds) or ISO strings."""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    if isinstance(value, str) and value:
        return datetime.strptime(value.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z").isoformat()
    return datetime.now(UTC).isoformat()


def _who(sender: Any) -> tuple[str, str]:
    sender = sender if isinstance(sender, Mapping) else {}
    ident = str(sender.get("id") or "unknown")
    return ident, str(sender.get("username") or sender.get("name") or ident)


def map_payload(payload: Any, accounts: Mapping[str, str]) -> Mapped:
    """The events of a Meta webhook payload; entries of accounts not in ``accounts`` (account
    id -> brand) are rejected as unknown_account."""
    out = Mapped()
    if not isinstance(payload, Mapping) or not isinstance(payload.get("entry"), list):
        out.rejected.append(Rejected("invalid_fields", "entry: a Meta payload has an entry list"))
        return out
    platform = "instagram" if payload.get("object") == "instagram" else "facebook"
    for entry in payload["entry"]:
        if not isinstance(entry, Mapping):
            out.rejected.append(Rejected("invalid_fields", "entry: not an object"))
            continue
        account = str(entry.get("id", ""))
        brand = accounts.get(account)
        if brand is None:
            out.rejected.append(
                Rejected(
                    "unknown_account",
                    f"account {account!r} is not in config/ingest.yaml meta.accounts",
                )
            )
            continue
        base = {"schema_version": 1, "platform": platform, "brand": brand}
        for change in entry.get("changes") or []:
            _change(out, base, account, entry.get("time"), change)
        for message in entry.get("messaging") or []:
            _message(out, base, account, message)
    return out


def _change(out: Mapped, base: dict[str, Any], account: str, time: Any, change: Any) -> None:
    if not isinstance(change, Mapping) or not isinstance(change.get("value"), Mapping):
        out.rejected.append(Rejected("invalid_fields", "changes: a change has a value object"))
        return
    kind, value = change.get("field"), change["value"]
    ts = _time(value.get("created_time", time))
    author_id, author = _who(value.get("from"))
    if kind in ("comments", "live_comments"):  # Instagram
        media = (value.get("media") or {}).get("id") or "unknown"
        comment = f"ig-comment-{value.get('id')}"
        _mention(out, base, comment, ts, author, value.get("text", ""))
        _interaction(out, base, comment, ts, "comment", media, author_id)
    elif kind == "mentions":  # Instagram: the account tagged in a comment or caption
        ident = value.get("comment_id") or value.get("media_id")
        _mention(out, base, f"ig-mention-{ident}", ts, author, value.get("text", ""))
    elif kind == "feed":  # Facebook Page
        if value.get("verb", "add") != "add" or author_id == account:
            out.skipped += 1  # edits, removals and the page's own posts are not new activity
            return
        item, post = value.get("item"), str(value.get("post_id") or "unknown")
        if item == "comment":
            comment = f"fb-comment-{value.get('comment_id')}"
            _mention(out, base, comment, ts, author, value.get("message", ""))
            _interaction(out, base, comment, ts, "comment", post, author_id)
        elif item in ("post", "status", "photo", "video"):
            _mention(out, base, f"fb-post-{post}", ts, author, value.get("message", ""))
        elif item == "reaction":
            _interaction(out, base, f"fb-reaction-{post}-{author_id}", ts, "like", post, author_id)
        elif item == "share":
            ident = value.get("share_id") or f"{post}-{author_id}"
            _interaction(out, base, f"fb-share-{ident}", ts, "share", post, author_id)
        else:
            out.skipped += 1
    else:
        out.skipped += 1  # subscribed fields SocialPulse does not use


def _message(out: Mapped, base: dict[str, Any], account: str, message: Any) -> None:
    if not isinstance(message, Mapping) or not isinstance(message.get("message"), Mapping):
        out.skipped += 1  # deliveries, reads, postbacks
        return
    body = message["message"]
    sender = str((message.get("sender") or {}).get("id", "unknown"))
    recipient = str((message.get("recipient") or {}).get("id", "unknown"))
    event: dict[str, Any]
    if body.get("is_echo") or sender == account:
        # The brand's own message: its reply in the customer's (the recipient's) thread.
        event = {"author": f"{base['brand']}_care", "from_brand": True}
        event["reply_to"] = f"meta-thread-{recipient}"
    else:
        event = {"author": sender, "needs_reply": True}
        event["conversation_id"] = f"meta-thread-{sender}"
    out.events.append(
        base
        | event
        | {
            "type": "mention",
            "id": f"meta-msg-{body.get('mid')}",
            "ts": _time(message.get("timestamp")),
            "text": str(body.get("text", "")),
        }
    )


def _mention(
    out: Mapped, base: dict[str, Any], ident: str, ts: str, author: str, text: Any
) -> None:
    out.events.append(
        base | {"type": "mention", "id": ident, "ts": ts, "author": author, "text": str(text)}
    )


def _interaction(
    out: Mapped, base: dict[str, Any], ident: str, ts: str, kind: str, content: str, user: str
) -> None:
    out.events.append(
        base
        | {
            "type": "interaction",
            "id": f"{ident}-{kind}",
            "ts": ts,
            "kind": kind,
            "content_id": content,
            "user_id": user,
        }
    )
