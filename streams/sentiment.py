"""Sentiment of a mention: the upstream label or score when the source sent one, else VADER.

VADER (vaderSentiment) is a lexicon-and-rules scorer tuned for social media: it reads English,
slang, emphasis ("!!!", CAPS) and emoji. Later work can add scorers for other languages behind
:func:`mention_sentiment` without touching its callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from streams.events import Mention

Label = Literal["positive", "negative", "neutral"]
Source = Literal["upstream", "vader"]

# VADER's own recommended cut-offs on its compound score.
POSITIVE_FROM = 0.05
NEGATIVE_UPTO = -0.05


@dataclass(frozen=True)
class Sentiment:
    """A mention's sentiment: label, score in [-1, 1], and who decided it."""

    label: Label
    score: float
    source: Source


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    # Loading the lexicon takes ~100 ms; do it once per process.
    return SentimentIntensityAnalyzer()


def label_for_score(score: float) -> Label:
    """Map a score in [-1, 1] to a label with VADER's thresholds."""
    if score >= POSITIVE_FROM:
        return "positive"
    if score <= NEGATIVE_UPTO:
        return "negative"
    return "neutral"


def score_text(text: str) -> Sentiment:
    """Score free text with VADER (compound score in [-1, 1])."""
    score = float(_analyzer().polarity_scores(text)["compound"])
    return Sentiment(label_for_score(score), score, "vader")


# What a brand's own reply carries: it is not a mention, so it has no sentiment to count.
NO_SENTIMENT = Sentiment("neutral", 0.0, "upstream")

_LABEL_SCORE = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}


def mention_sentiment(mention: Mention) -> Sentiment:
    """The mention's sentiment: upstream when present (label or score), else scored from text."""
    upstream = mention.sentiment
    if isinstance(upstream, str):
        return Sentiment(upstream, _LABEL_SCORE[upstream], "upstream")
    if upstream is not None:
        return Sentiment(label_for_score(upstream), float(upstream), "upstream")
    return score_text(mention.text)
