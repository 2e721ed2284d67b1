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

Payloads are read defensively: a field of the wrong type (``changes: 5``, ``from: []``), a time
that is not one (``created_time: "not-a-time"``, ``1e20``, ``-1``, ``[]``) rejects that change or
message alone, as ``invalid_fields`` naming the field by its path; the rest of the payload goes
on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.signatures import same_secret
from ingest.validation import Rejected, json_kind, shown

SIGNATURE_HEADER = "X-Hub-Signature-256"
MILLISECONDS_FROM = 1e11  # epoch numbers above this are milliseconds (1e11 s is year 5138)


def handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to echo for a valid subscription request, else None."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not same_secret(verify_token, params.get("hub.verify_token", "")):
        return None
    return params.get("hub.challenge")


@dataclass
class Mapped:
    """What a notification gave: events to validate, items refused, changes skipped."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0


class BadField(ValueError):
    """A field of a notification that cannot be read: ``path: problem``."""


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadField(f"{where}: an object, not {json_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadField(f"{where}: a list, not {json_kind(value)}")
    return value


def _ident(value: Any, where: str, default: str = "unknown") -> str:
    """An id or name: Meta sends strings (sometimes numbers); anything else is refused."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadField(f"{where}: a string or a number, not {json_kind(value)}")


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadField(f"{where}: a string, not {json_kind(value)}")
    return value


def _time(value: Any, where: str) -> str:
    """Meta's times: epoch seconds (sometimes milliseconds) or ISO 8601 strings such as
    ``2026-11-30T12:00:00+0000``; absent: now."""
    if value is None or value == "":
        return datetime.now(UTC).isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise BadField(f"{where}: {shown(value)} is before 1970")
        seconds = value / 1000 if value > MILLISECONDS_FROM else value
        try:
            return datetime.fromtimestamp(seconds, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            raise BadField(f"{where}: {shown(value)} is beyond the year 9999") from None
    if isinstance(value, str):
        try:
            parsed = datetime.strptime(value.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            raise BadField(
                f"{where}: {shown(value)} is not a time (ISO 8601 such as "
                "2026-11-30T12:00:00+0000, or epoch seconds)"
            ) from None
        return parsed.isoformat()
    raise BadField(f"{where}: a time (epoch seconds or ISO 8601), not {json_kind(value)}")


def map_payload(payload: Any, accounts: Mapping[str, str]) -> Mapped:
    """The events of a Meta webhook payload; entries of accounts not in ``accounts`` (account
    id -> brand) are rejected as unknown_account, unreadable changes and messages as
    invalid_fields, each on its own."""
    out = Mapped()
    if not isinstance(payload, Mapping) or not isinstance(payload.get("entry"), list):
        out.rejected.append(Rejected("invalid_fields", "entry: a Meta payload has an entry list"))
        return out
    platform = "instagram" if payload.get("object") == "instagram" else "facebook"
    for n, entry in enumerate(payload["entry"]):
        where = f"entry.{n}"
        if not isinstance(entry, Mapping):
            out.rejected.append(
                Rejected("invalid_fields", f"{where}: an object, not {json_kind(entry)}")
            )
            continue
        try:
            account = _ident(entry.get("id"), f"{where}.id", default="")
        except BadField as exc:
            out.rejected.append(Rejected("invalid_fields", str(exc)))
            continue
        brand = accounts.get(account)
        if brand is None:
            out.rejected.append(
                Rejected(
                    "unknown_account",
                    f"account {shown(account)} is not in config/ingest.yaml meta.accounts",
                )
            )
            continue
        base = {"schema_version": 1, "platform": platform, "brand": brand}
        for part, read in (("changes", _change), ("messaging", _message)):
            try:
                items = _list(entry.get(part), f"{where}.{part}")
            except BadField as exc:
                out.rejected.append(Rejected("invalid_fields", str(exc)))
                continue
            for m, item in enumerate(items):
                try:
                    read(out, base, account, entry, item, f"{where}.{part}.{m}")
                except BadField as exc:
                    out.rejected.append(Rejected("invalid_fields", str(exc)))
    return out


def _change(
    out: Mapped,
    base: dict[str, Any],
    account: str,
    entry: Mapping[str, Any],
    change: Any,
    where: str,
) -> None:
    if not isinstance(change, Mapping) or not isinstance(change.get("value"), Mapping):
        raise BadField(f"{where}: a change has a value object")
    kind, value = change.get("field"), change["value"]
    if value.get("created_time") is not None:
        ts = _time(value["created_time"], f"{where}.value.created_time")
    else:
        ts = _time(entry.get("time"), where.rsplit(".", 2)[0] + ".time")
    author_id, author = _who(value.get("from"), f"{where}.value.from")
    if kind in ("comments", "live_comments"):  # Instagram
        media = _ident(
            _object(value.get("media"), f"{where}.value.media").get("id"), f"{where}.value.media.id"
        )
        comment = f"ig-comment-{_ident(value.get('id'), f'{where}.value.id')}"
        _mention(out, base, comment, ts, author, _text(value.get("text"), f"{where}.value.text"))
        _interaction(out, base, comment, ts, "comment", media, author_id)
    elif kind == "mentions":  # Instagram: the account tagged in a comment or caption
        ident = _ident(
            value.get("comment_id") or value.get("media_id"), f"{where}.value.comment_id"
        )
        text = _text(value.get("text"), f"{where}.value.text")
        _mention(out, base, f"ig-mention-{ident}", ts, author, text)
    elif kind == "feed":  # Facebook Page
        if value.get("verb", "add") != "add" or author_id == account:
            out.skipped += 1  # edits, removals and the page's own posts are not new activity
            return
        item = value.get("item")
        post = _ident(value.get("post_id"), f"{where}.value.post_id")
        message = _text(value.get("message"), f"{where}.value.message")
        if item == "comment":
            comment = f"fb-comment-{_ident(value.get('comment_id'), f'{where}.value.comment_id')}"
            _mention(out, base, comment, ts, author, message)
            _interaction(out, base, comment, ts, "comment", post, author_id)
        elif item in ("post", "status", "photo", "video"):
            _mention(out, base, f"fb-post-{post}", ts, author, message)
        elif item == "reaction":
            _interaction(out, base, f"fb-reaction-{post}-{author_id}", ts, "like", post, author_id)
        elif item == "share":
            share = _ident(value.get("share_id"), f"{where}.value.share_id", f"{post}-{author_id}")
            _interaction(out, base, f"fb-share-{share}", ts, "share", post, author_id)
        else:
            out.skipped += 1
    else:
        out.skipped += 1  # subscribed fields SocialPulse does not use


def _who(sender: Any, where: str) -> tuple[str, str]:
    sender = _object(sender, where)
    ident = _ident(sender.get("id"), f"{where}.id")
    name = sender.get("username") or sender.get("name")
    return ident, _ident(name, f"{where}.username", default=ident)


def _message(
    out: Mapped,
    base: dict[str, Any],
    account: str,
    entry: Mapping[str, Any],
    message: Any,
    where: str,
) -> None:
    if not isinstance(message, Mapping) or not isinstance(message.get("message"), Mapping):
        out.skipped += 1  # deliveries, reads, postbacks
        return
    body = message["message"]
    sender = _ident(
        _object(message.get("sender"), f"{where}.sender").get("id"), f"{where}.sender.id"
    )
    recipient = _ident(
        _object(message.get("recipient"), f"{where}.recipient").get("id"), f"{where}.recipient.id"
    )
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
            "id": f"meta-msg-{_ident(body.get('mid'), f'{where}.message.mid')}",
            "ts": _time(message.get("timestamp"), f"{where}.timestamp"),
            "text": _text(body.get("text"), f"{where}.message.text"),
        }
    )


def _mention(
    out: Mapped, base: dict[str, Any], ident: str, ts: str, author: str, text: str
) -> None:
    out.events.append(
        base | {"type": "mention", "id": ident, "ts": ts, "author": author, "text": text}
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
