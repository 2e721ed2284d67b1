"""Untrusted text made safe for Slack mrkdwn (pure): escaping, one-line quoting and links.

Slack parses ``&``, ``<`` and ``>`` as control characters in mrkdwn text (``<!channel>``,
``<@U123>``, ``<https://a.example|label>``), and only those three need escaping, as entities
(``&amp;``, ``&lt;``, ``&gt;``): see "Escaping text" in Slack's "Formatting message text",
https://docs.slack.dev/messaging/formatting-message-text#escaping
(formerly "Formatting text for app surfaces", api.slack.com/reference/surfaces/formatting).
Everything that comes from events (post text, author, URL, language, terms, platform names)
goes through these functions before it is put into mrkdwn, the fallback ``text`` of a message
included (it is mrkdwn too); the markup SocialPulse writes itself (``*bold*``,
``<!date^...>``, a user's ``<@U...>``, the escalation step's configured mention) is left as it
is.

Plain-text objects (the message's HeaderBlock, button labels) take no markup: Block Kit's text
object reference (https://docs.slack.dev/reference/block-kit/composition-objects/text-object)
applies formatting and mentions to ``mrkdwn`` only, so their text is not escaped here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

# Slack shows a link's label, not its target: the label is always the target itself, cut to
# this many characters (the origin, i.e. scheme and host, is never cut).
LABEL_CHARS = 60
# What may stay as it is in a link target: RFC 3986's reserved and unreserved characters
# (quote() never encodes letters, digits and "_.-~"). Everything else, "|", "<", ">", spaces,
# quotes, control characters and non-ASCII included, is percent-encoded, so nothing in a URL
# can end the link or start a label.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def escape(text: str) -> str:
    """``text`` with Slack's three control characters as entities: ``&`` -> ``&amp;``,
    ``<`` -> ``&lt;``, ``>`` -> ``&gt;`` (nothing else is touched: Slack decodes only these)."""
    # "&" first, or the entities of "<" and ">" would be escaped again.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` on one line (runs of whitespace, newlines included, as one space), cut to
    ``limit`` characters, then escaped. For untrusted text inside a line of ours (a ``>`` quote,
    an author line): a newline in it could otherwise start a line of its own."""
    flat = " ".join(text.split())
    return escape(flat if limit is None else flat[:limit])


def link_target(url: str) -> str | None:
    """The URL to link to, or None when ``url`` is not a web link: only ``http`` and ``https``
    with a valid host (a name, IDNA-encoded when not ASCII, or an IP address) and no user
    name or password in it (``https://acme.com@evil.example/`` reads as acme's but is not).
    Characters a link target may not hold are percent-encoded; ``&`` is kept (a query
    separator) and escaped by :func:`link`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.username is not None:
        return None
    host = _host(parts.hostname or "")
    if host is None:
        return None
    target = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    target += quote(parts.path, safe=_URL_SAFE) or "/"
    if parts.query:
        target += "?" + quote(parts.query, safe=_URL_SAFE)
    if parts.fragment:
        target += "#" + quote(parts.fragment, safe=_URL_SAFE)
    return target


def link(url: str) -> str:
    """A post's URL for mrkdwn: ``<target|label>`` when it is a web link (see
    :func:`link_target`), the label being the target itself (shortened past ``LABEL_CHARS``,
    the scheme and host always whole), so the link shows where it goes; anything else
    (``javascript:``, ``mailto:``, no scheme, garbage) as escaped text on one line, not a link
    (at most ``2 * LABEL_CHARS`` characters of it). Empty for an empty URL."""
    if not url.strip():
        return ""
    target = link_target(url)
    if target is None:
        return one_line(url, LABEL_CHARS * 2)
    return f"<{escape(target)}|{escape(_label(target))}>"


def join_lines(lines: Iterable[str], limit: int) -> str:
    """``lines`` joined by newlines, in order, leaving out a line that would take the text
    past ``limit`` characters: a cut inside a line could end in half an entity (``&am``) or a
    link with no ``>``, so whole lines are kept or dropped."""
    kept: list[str] = []
    size = -1  # no newline before the first line
    for line in lines:
        if size + 1 + len(line) <= limit:
            kept.append(line)
            size += 1 + len(line)
    return "\n".join(kept)


def _host(hostname: str) -> str | None:
    """The host as it goes into a link (IDNA for non-ASCII names, brackets for IPv6), or None
    when it is no host."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    try:
        ascii_name = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return ascii_name if _HOST.fullmatch(ascii_name) else None


def _label(target: str) -> str:
    """The visible text of a link to ``target``: the target, or its origin and the start of
    the rest with an ellipsis when longer than ``LABEL_CHARS``."""
    if len(target) <= LABEL_CHARS:
        return target
    scheme, _, rest = target.partition("://")
    host, slash, tail = rest.partition("/")
    origin = f"{scheme}://{host}{slash}"
    kept = tail[: max(LABEL_CHARS - len(origin) - 1, 0)]
    # Do not end on half of a %XX escape.
    kept = re.sub(r"%[0-9A-Fa-f]?$", "", kept)
    return f"{origin}{kept}…"


__all__ = ["LABEL_CHARS", "escape", "join_lines", "link", "link_target", "one_line"]
