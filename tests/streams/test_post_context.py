"""Terms, languages and post samples for incident messages (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.events import Mention
from streams.post_context import count_fields, language, post_sample, terms


def mention(text: str, lang: str | None = None) -> Mention:
    return Mention(
        schema_version=1,
        id="m-1",
        ts=datetime(2026, 11, 22, tzinfo=UTC),
        platform="x",
        brand="acme",
        author="@jo",
        text=text,
        lang=lang,
        author_followers=1200,
        url="https://x.com/jo/1",
    )


def test_terms_are_distinct_hashtags_and_words_without_function_words() -> None:
    assert terms("The #Refund is NOT coming, refund me! #refund 2x ok") == [
        "#refund",
        "coming",
        "refund",
    ]
    assert terms("退款 太慢了 #客服") == ["太慢了", "#客服"]  # runs of 3+ letters, any script
    assert terms("") == []
    # At most 20: the first distinct ones, function words skipped, not counted.
    words = [f"q{chr(97 + n // 26)}{chr(97 + n % 26)}" for n in range(30)]
    assert terms(" the ".join(words + words)) == words[:20]


def test_language_is_sent_or_guessed_for_han_script() -> None:
    assert language(mention("hello", "en-GB")) == "en"
    assert language(mention("咖啡太难喝了")) == "zh"
    assert language(mention("hola amigos")) == "unknown"


def test_a_negative_sample_counts_its_terms_twice_and_its_language() -> None:
    sample = post_sample(mention("Charged twice #refund", "en"), "negative")
    assert sample == {
        "id": "m-1",
        "platform": "x",
        "author": "@jo",
        "text": "Charged twice #refund",
        "url": "https://x.com/jo/1",
        "reach": 1200,
        "lang": "en",
        "sentiment": "negative",
        "terms": ["charged", "twice", "#refund"],
    }
    assert count_fields(sample) == [
        "x|charged",
        "x|twice",
        "x|#refund",
        "x|-|charged",
        "x|-|twice",
        "x|-|#refund",
        "x|lang:en",
    ]
