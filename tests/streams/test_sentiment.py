"""Sentiment: upstream wins; otherwise scored in-house (English, Chinese, emoji)."""

from __future__ import annotations

import emoji
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import Mention
from streams.sentiment import (
    Sentiment,
    is_chinese,
    label_for_score,
    mention_sentiment,
    score_text,
    split_emoji,
)


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


# VADER 3.3.2's compound scores of these texts (SentimentIntensityAnalyzer().polarity_scores).
@pytest.mark.parametrize(
    ("text", "label", "compound"),
    [
        ("Worst service ever, I hate this brand", "negative", -0.8316),
        ("Absolutely love the new latte, great job!", "positive", 0.8716),
        ("The store opens at 9 tomorrow", "neutral", 0.0),
    ],
)
def test_english_is_scored_by_vader(text: str, label: str, compound: float) -> None:
    assert mention_sentiment(mention(text)) == Sentiment(label, compound, "vader")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("😠😢", "negative"),
        ("😡👎", "negative"),  # VADER alone scores both 0
        ("💔", "negative"),  # VADER alone: positive ("heart")
        ("🔥🔥", "positive"),  # VADER alone: negative ("fire")
        ("😍", "positive"),
        ("late again 😡", "negative"),  # neutral words: the emoji decide
    ],
)
def test_emoji_are_scored_by_their_ranking(text: str, label: str) -> None:
    result = score_text(text)
    assert (result.label, result.source) == (label, "emoji")


def test_emoji_and_words_are_averaged_when_both_speak() -> None:
    # "Love it": VADER 3.3.2's compound 0.6369; 😍 in the Emoji Sentiment Ranking: 0.6779
    # ((positive - negative) / occurrences); both speak, so their mean.
    assert score_text("Love it").score == 0.6369
    assert round(score_text("😍").score, 4) == 0.6779
    both = score_text("Love it 😍")
    assert (both.label, both.source) == ("positive", "vader")
    assert both.score == pytest.approx((0.6369 + 0.6779) / 2, abs=1e-4)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("服务太差了，再也不买了", "negative"),
        ("航班又延误了，太失望", "negative"),
        ("这款咖啡真好喝", "positive"),
        ("客服态度很好，点赞", "positive"),
    ],
)
def test_chinese_is_scored_by_snownlp(text: str, label: str) -> None:
    result = mention_sentiment(mention(text))
    assert (result.label, result.source) == (label, "snownlp")
    assert -1 <= result.score <= 1


def test_language_hint_and_script_choose_the_scorer() -> None:
    assert is_chinese("航班延误") and not is_chinese("最悪のサービス")  # kana: Japanese
    assert is_chinese("ok", "zh-CN") and not is_chinese("航班", "ja")
    # Languages without a scorer are neutral (send an upstream sentiment for them).
    assert score_text("最悪のサービス") == Sentiment("neutral", 0.0, "vader")


def test_label_boundaries() -> None:
    assert [label_for_score(s) for s in (0.05, 0.049, -0.049, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "negative",
    ]


def test_no_emoji_is_ascii_so_ascii_text_skips_the_tokenizer() -> None:
    # score_text skips the emoji tokenizer for ASCII text: exact only while this holds for
    # the emoji package's whole table (keycaps and flags carry non-ASCII code points).
    assert [e for e in emoji.EMOJI_DATA if e.isascii()] == []
    assert score_text("great :) #1 <3").source == "vader"
    assert score_text("great 👍").label == "positive"


# Pieces that make and break emoji: whole ones, their parts (ZWJ, variation selector, skin
# tones, keycap mark, regional indicators, tag characters), and text around them.
_EMOJI = sorted(emoji.EMOJI_DATA)
_PIECES = st.one_of(
    st.sampled_from(_EMOJI),
    st.sampled_from(["\u200d", "\ufe0f", "\U0001f3fb", "\U0001f3ff", "\u20e3", "\U0001f1fa"]),
    st.sampled_from(["\U000e0067", "\U000e007f", "#", "1", "*", " ", "好", "é", "!", "\u00a9"]),
    st.text(max_size=4),
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_split_emoji_finds_what_the_emoji_package_finds(text: str) -> None:
    # One pass of the tokenizer, skipped for text without an emoji's code point, gives the
    # emoji package's own emoji_list and replace_emoji.
    listed = [found["emoji"] for found in emoji.emoji_list(text)]
    words = emoji.replace_emoji(text, replace=" ") if listed else text
    assert split_emoji(text) == (listed, words)


def test_split_emoji_of_text_without_emoji() -> None:
    assert split_emoji("差评,退款太慢 café") == ([], "差评,退款太慢 café")
    assert split_emoji("a\u200db") == ([], "a\u200db")
    assert split_emoji("等了三天👎👎 1️⃣") == (["👎", "👎", "1️⃣"], "等了三天    ")
