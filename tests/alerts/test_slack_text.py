"""Untrusted text for Slack mrkdwn (pure): escaped, kept on one line, links that show their
own target. Every expected value is written out by hand."""

from __future__ import annotations

import pytest

from alerts.slack_text import escape, join_lines, link, link_target, one_line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("Tom & Jerry", "Tom &amp; Jerry"),
        ("a < b > c", "a &lt; b &gt; c"),
        ("> not a quote", "&gt; not a quote"),
        ("<!channel> look", "&lt;!channel&gt; look"),
        ("<!here>", "&lt;!here&gt;"),
        ("<!everyone>", "&lt;!everyone&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<@U123|bob>", "&lt;@U123|bob&gt;"),
        ("<#C123>", "&lt;#C123&gt;"),
        ("<!subteam^S1>", "&lt;!subteam^S1&gt;"),
        ("<!date^1700000000^{date}|today>", "&lt;!date^1700000000^{date}|today&gt;"),
        (
            "<https://evil.example/login|official refund form>",
            "&lt;https://evil.example/login|official refund form&gt;",
        ),
        # Entities in the input are text, shown as typed, not decoded into control characters.
        ("&lt;!channel&gt;", "&amp;lt;!channel&amp;gt;"),
        ("&amp;", "&amp;amp;"),
        # Only the three control characters: no other HTML entities, mrkdwn markup untouched.
        ('"it\'s" *bold* _it_ ~s~ `c`', '"it\'s" *bold* _it_ ~s~ `c`'),
        ("退款 😡 café — ok", "退款 😡 café — ok"),
        ("退款<!here>", "退款&lt;!here&gt;"),
    ],
)
def test_escape_turns_the_three_control_characters_into_entities(text: str, expected: str) -> None:
    assert escape(text) == expected


def test_one_line_keeps_untrusted_text_inside_our_line() -> None:
    # A newline in an author or a post would start a line of its own (a forged "> —" line).
    assert one_line("@jo\n> — <!here> on x, reach 90,000,000") == (
        "@jo &gt; — &lt;!here&gt; on x, reach 90,000,000"
    )
    assert one_line("  spaced \t out\r\n ") == "spaced out"
    assert one_line("") == ""
    # Cut before escaping, so an entity is never cut in half.
    assert one_line("<<<<", 2) == "&lt;&lt;"
    assert one_line("abcdef", 3) == "abc"
    assert one_line("退款退款", 2) == "退款"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://x.com/acme/status/1",
            "<https://x.com/acme/status/1|https://x.com/acme/status/1>",
        ),
        ("http://x.com/a", "<http://x.com/a|http://x.com/a>"),
        ("HTTPS://X.com/A", "<https://x.com/A|https://x.com/A>"),
        ("https://x.com", "<https://x.com/|https://x.com/>"),
        ("  https://x.com/a  ", "<https://x.com/a|https://x.com/a>"),
        # "|" and "<" ">" cannot end the target or start a label of their own.
        (
            "https://x.com/a|<!channel>",
            "<https://x.com/a%7C%3C!channel%3E|https://x.com/a%7C%3C!channel%3E>",
        ),
        (
            "https://evil.example/login|official refund form",
            "<https://evil.example/login%7Cofficial%20refund%20form"
            "|https://evil.example/login%7Cofficial%20refund%20form>",
        ),
        (
            "https://x.com/a>|<@U123>",
            "<https://x.com/a%3E%7C%3C@U123%3E|https://x.com/a%3E%7C%3C@U123%3E>",
        ),
        # "&" stays a query separator and is escaped as Slack's rules say.
        (
            "https://x.com/search?q=a&b=<c>",
            "<https://x.com/search?q=a&amp;b=%3Cc%3E|https://x.com/search?q=a&amp;b=%3Cc%3E>",
        ),
        ("https://x.com/a#top|x", "<https://x.com/a#top%7Cx|https://x.com/a#top%7Cx>"),
        ("https://x.com:8443/a", "<https://x.com:8443/a|https://x.com:8443/a>"),
        ("http://[::1]:8080/a", "<http://[::1]:8080/a|http://[::1]:8080/a>"),
        ("http://192.0.2.7/a", "<http://192.0.2.7/a|http://192.0.2.7/a>"),
        # Unicode: paths as UTF-8 percent-encoding, names in IDNA (the host as it really is).
        (
            "https://weibo.com/退款",
            "<https://weibo.com/%E9%80%80%E6%AC%BE|https://weibo.com/%E9%80%80%E6%AC%BE>",
        ),
        (
            "https://bücher.example/",
            "<https://xn--bcher-kva.example/|https://xn--bcher-kva.example/>",
        ),
        # Already encoded stays as it is.
        ("https://x.com/a%20b", "<https://x.com/a%20b|https://x.com/a%20b>"),
    ],
)
def test_web_links_show_their_own_target(url: str, expected: str) -> None:
    assert link(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("javascript:alert(document.cookie)", "javascript:alert(document.cookie)"),
        ("JavaScript:alert('<!channel>')", "JavaScript:alert('&lt;!channel&gt;')"),
        ("mailto:pr@acme.example", "mailto:pr@acme.example"),
        ("slack://channel?team=T1&id=C1", "slack://channel?team=T1&amp;id=C1"),
        ("data:text/html,<script>", "data:text/html,&lt;script&gt;"),
        ("ftp://x.com/a", "ftp://x.com/a"),
        ("x.com/acme/status/1", "x.com/acme/status/1"),
        ("//x.com/a", "//x.com/a"),
        ("not a url at all", "not a url at all"),
        (
            "<https://evil.example/login|official refund form>",
            "&lt;https://evil.example/login|official refund form&gt;",
        ),
        # Reads like acme's, goes to evil.example: user info is never linked.
        ("https://acme.example@evil.example/login", "https://acme.example@evil.example/login"),
        ("https://x.com|<!channel>/", "https://x.com|&lt;!channel&gt;/"),
        ("https:///no-host", "https:///no-host"),
        ("https://x.com:99999/a", "https://x.com:99999/a"),
        ("https://x.com:port/a", "https://x.com:port/a"),
        ("http://[::1", "http://[::1"),
        ("https://exa mple.com/", "https://exa mple.com/"),
        ("javascript:a\n> — forged", "javascript:a &gt; — forged"),
    ],
)
def test_anything_else_is_escaped_text_not_a_link(url: str, expected: str) -> None:
    assert link(url) == expected


def test_long_links_shorten_the_label_only_and_keep_the_host_whole() -> None:
    long = "https://x.com/" + "a" * 100
    assert link(long) == f"<{long}|https://x.com/{'a' * 45}…>"
    # Never half of a %XX escape at the cut.
    encoded = "https://x.com/b" + "%7C" * 20
    assert link(encoded) == f"<{encoded}|https://x.com/b{'%7C' * 14}…>"
    # A host too long for the label is still shown whole.
    host = "a" * 50 + ".example"
    assert link(f"https://{host}/{'p' * 20}") == (f"<https://{host}/{'p' * 20}|https://{host}/…>")
    assert link_target("https://x.com/a|b") == "https://x.com/a%7Cb"
    assert link_target("javascript:alert(1)") is None


def test_join_lines_keeps_whole_lines_within_the_limit() -> None:
    assert join_lines(["a", "bb", "ccc"], 6) == "a\nbb"
    assert join_lines(["abc", "de"], 6) == "abc\nde"
    assert join_lines(["too long", "a", "b"], 3) == "a\nb"
    assert join_lines([], 10) == ""
