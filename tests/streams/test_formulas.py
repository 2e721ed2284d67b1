"""The safe formula evaluator: exact values, "no value" on zero denominators, refused syntax."""

from __future__ import annotations

import pytest

from streams.formulas import FormulaError, compile_formula

NAMES = {
    "mentions",
    "mentions_positive",
    "mentions_negative",
    "revenue",
    "spend",
    "clicks",
    "impressions",
    "window_minutes",
}


def value(text: str, **values: float) -> float | None:
    return compile_formula(text, NAMES).evaluate(values)


def test_catalog_worked_example_roi_is_zero() -> None:
    # spend 100,000; 200 orders at 500 each -> revenue 100,000; ROI = 0%.
    assert value("(revenue - spend) / spend", revenue=200 * 500, spend=100_000) == 0.0


def test_net_sentiment_and_velocity() -> None:
    net = "(mentions_positive - mentions_negative) / mentions"
    assert value(net, mentions_positive=6, mentions_negative=2, mentions=16) == 0.25
    assert value("mentions / window_minutes", mentions=30, window_minutes=5) == 6.0
    assert value("clicks / impressions * 1000", clicks=3, impressions=600) == 5.0
    assert value("-clicks + 2", clicks=5) == -3.0


def test_zero_denominator_is_no_value_and_propagates() -> None:
    assert value("mentions_negative / mentions", mentions_negative=0, mentions=0) is None
    assert value("clicks / impressions + 1", clicks=1) is None  # missing names count as 0
    assert value("-(clicks / impressions)") is None
    assert value("1 / (clicks / impressions)", clicks=0, impressions=5) is None


def test_names_read_are_reported() -> None:
    formula = compile_formula("(revenue - spend) / spend", NAMES)
    assert formula.names == frozenset({"revenue", "spend"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mentionz / 2", "unknown name 'mentionz' (known: clicks, impressions, mentions, "),
        ("__import__('os')", "\"__import__('os')\" is not allowed"),
        ("mentions ** 2", "'mentions ** 2' is not allowed"),
        ("mentions.real", "'mentions.real' is not allowed"),
        ("'text'", "\"'text'\" is not allowed"),
        ("True + 1", "'True' is not allowed: use numbers"),
        ("mentions /", "'mentions /' is not a formula: invalid syntax"),
    ],
)
def test_refused_formulas_say_why(text: str, message: str) -> None:
    with pytest.raises(FormulaError) as caught:
        compile_formula(text, NAMES)
    assert str(caught.value).startswith(message)


def test_a_result_that_is_not_a_finite_number_is_no_value() -> None:
    # Sums are bounded (each amount at most 1e12), but a formula can still overflow.
    roi = compile_formula("(revenue - spend) / spend", NAMES)
    assert roi.evaluate({"revenue": 1e308, "spend": 1e-10}) is None
    assert (
        compile_formula("revenue * spend", NAMES).evaluate({"revenue": 1e200, "spend": 1e200})
        is None
    )
    assert roi.evaluate({"revenue": 300.0, "spend": 100.0}) == 2.0
