"""Sentiment: upstream wins; otherwise VADER on the text (English and emoji)."""

from __future__ import annotations

import pytest

from streams.events import Mention
from streams.sentiment import Sentiment, label_for_score, mention_sentiment, score_text


def mention(text: str, sentiment: object = None) -> Mention:
    return Mention.model_validate(
        {
            "id": "m",
            "ts": "2026-11-22T09:30:00Z",
            "platform": "x",
            "brand": "acme",
            "author": "a",
            "text": text,
            "sentiment": sentiment,
        }
    )


def test_upstream_label_is_used_as_is() -> None:
    assert mention_sentiment(mention("I love it", "negative")) == Sentiment(
        "negative", -1.0, "upstream"
    )


def test_upstream_score_is_labelled_with_vader_cutoffs() -> None:
    assert mention_sentiment(mention("x", 0.3)) == Sentiment("positive", 0.3, "upstream")
    assert mention_sentiment(mention("x", -0.05)) == Sentiment("negative", -0.05, "upstream")
    assert mention_sentiment(mention("x", 0.0)) == Sentiment("neutral", 0.0, "upstream")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Worst service ever, I hate this brand", "negative"),
        ("Absolutely love the new latte, great job!", "positive"),
        ("The store opens at 9 tomorrow", "neutral"),
        ("😠😢", "negative"),
        ("😍", "positive"),
    ],
)
def test_text_is_scored_by_vader(text: str, label: str) -> None:
    result = mention_sentiment(mention(text))
    assert (result.label, result.source) == (label, "vader")
    assert result == score_text(text)


def test_label_boundaries() -> None:
    assert [label_for_score(s) for s in (0.05, 0.049, -0.049, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "negative",
    ]
