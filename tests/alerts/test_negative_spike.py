"""Negative-spike rule decisions and the Slack message it produces (pure)."""

from __future__ import annotations

from alerts.negative_spike import SpikeFinding, decide
from alerts.slack_delivery import spike_message, uses_stub


def test_platforms_at_or_over_threshold_fire_the_rest_clear() -> None:
    decision = decide(
        "acme",
        "Acme Coffee",
        negative={"x": 10, "instagram": 9, "tiktok": 12},
        mentions={"x": 40, "instagram": 9, "tiktok": 12},
        platforms=["x", "instagram", "weibo"],
        threshold=10,
        window_seconds=300,
        severity="critical",
    )
    assert decision.over == [
        SpikeFinding("acme", "Acme Coffee", "x", 10, 40, 10, 300, "critical"),
        SpikeFinding("acme", "Acme Coffee", "tiktok", 12, 12, 10, 300, "critical"),
    ]
    assert decision.under == ["instagram", "weibo"]


def test_no_counts_means_nothing_fires() -> None:
    decision = decide("acme", "Acme", {}, {}, ["x"], 1, 300, "warning")
    assert (decision.over, decision.under) == ([], ["x"])


def test_message_names_brand_platform_count_threshold_and_share() -> None:
    text, blocks = spike_message(
        SpikeFinding("acme", "Acme Coffee", "x", 12, 48, 10, 300, "critical")
    )
    assert text == (
        "[CRITICAL] Negative mention spike: Acme Coffee (acme) on x: 12 negative "
        "mentions in the last 5m (threshold 10)"
    )
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "emoji": True,
            "text": "Negative mention spike: Acme Coffee on x",
        },
    }
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields == [
        "*Severity*\ncritical",
        "*Brand*\nAcme Coffee (`acme`)",
        "*Platform*\nx",
        "*Negative mentions (5m)*\n12 (threshold 10)",
        "*Negative share*\n25% of 48 mentions",
    ]


def test_stub_is_used_only_without_a_token() -> None:
    assert uses_stub({}) and uses_stub({"SLACK_BOT_TOKEN": "  "})
    assert not uses_stub({"SLACK_BOT_TOKEN": "xoxb-real"})
