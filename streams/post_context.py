"""What incidents show as their cause: samples of posts by reach, and term and language counts
(pure; streams.store.context_store keeps them in Redis per minute).

Terms are hashtags and words of three letters or more (any script, lowercased), without common
English function words; each counts once per post. A post's language is its ``lang``, else
``zh`` for Han script, else ``unknown``.
"""

from __future__ import annotations

import re
from typing import Any

from streams.events import Mention

_TOKEN = re.compile(r"#\w+|[^\W\d_]{3,}", re.UNICODE)
# A language tag (BCP 47's shape: en, zh-Hans, pt_BR); anything else a source sends is unknown.
_LANG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")
_HAN = re.compile(r"[\u4e00-\u9fff]")
# Common English function words: never what a crisis is about.
_STOPWORD_TEXT = (
    "the and for are but not you your with this that have has had was were will would "
    "can could should from they them their there what when where who why how all any our out "
    "just about into than then too very its it's i'm im get got been being also more most "
    "some such only own same over again once here off she her his him one two new now"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
MAX_TERMS = 20
TEXT_CHARS = 280


def terms(text: str) -> list[str]:
    """A post's distinct terms, in order of appearance (at most 20)."""
    # findall and a dict of its tokens, not a loop over match objects: a third of the cost
    # on every mention.
    distinct = dict.fromkeys(_TOKEN.findall(text.lower()))
    return [token for token in distinct if token not in STOPWORDS][:MAX_TERMS]


def language(mention: Mention) -> str:
    """The post's language code as sent (when it is a language tag), else zh for Han script,
    else unknown."""
    if mention.lang and _LANG.fullmatch(mention.lang):
        return mention.lang.lower().replace("_", "-").split("-")[0]
    return "zh" if _HAN.search(mention.text) else "unknown"


def post_sample(mention: Mention, sentiment: str) -> dict[str, Any]:
    """What an incident message may show of a post."""
    return {
        "id": mention.id,
        "platform": mention.platform,
        "author": mention.author,
        "text": mention.text[:TEXT_CHARS],
        "url": mention.url,
        "reach": mention.author_followers or 0,
        "lang": language(mention),
        "sentiment": sentiment,
        "terms": terms(mention.text),
    }


def count_fields(sample: dict[str, Any]) -> list[str]:
    """Per-minute hash fields a post adds one to: ``<platform>|<term>``, the same with ``-|``
    for negative posts, and ``<platform>|lang:<lang>``."""
    platform = sample["platform"]
    fields = [f"{platform}|{t}" for t in sample["terms"]]
    if sample["sentiment"] == "negative":
        fields += [f"{platform}|-|{t}" for t in sample["terms"]]
    fields.append(f"{platform}|lang:{sample['lang']}")
    return fields


__all__ = ["count_fields", "language", "post_sample", "terms"]
