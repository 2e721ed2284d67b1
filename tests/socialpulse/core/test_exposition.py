"""The fast exposition of large families, and the /metrics server that joins it to the registry:
the text parses back to exactly what was put in, in both formats, whatever the label text."""

from __future__ import annotations

import math
import pickle
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from socialpulse.core.exposition import ByBrand, Family, Rendered, render
from socialpulse.core.metrics_server import exposition, serve

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
HOSTILE = 'a"b\\c\nd} x 1'


def families() -> list[Family]:
    totals = Family("sp_counted_likes", "Running total\nof likes.", "counter", ("brand", "pl"))
    totals.add(("acme", "x"), 201.0)
    totals.add((HOSTILE, "tiktok"), 3.0)
    rate = Family("sp_rate", "A ratio.", "gauge", ("brand",))
    rate.add(("acme",), 0.0361)
    rate.add(("count",), 7)  # counts read from Redis are ints
    rate.add(("big",), 1e16)
    rate.add(("inf",), math.inf)
    return [totals, rate]


def test_text_format_is_exactly_what_prometheus_client_writes() -> None:
    assert render(families()[1:]) == (
        "# HELP sp_rate A ratio.\n"
        "# TYPE sp_rate gauge\n"
        'sp_rate{brand="acme"} 0.0361\n'
        'sp_rate{brand="count"} 7.0\n'
        'sp_rate{brand="big"} 1e+16\n'
        'sp_rate{brand="inf"} +Inf\n'
    )
    assert render(families()[:1]).splitlines()[:3] == [
        r"# HELP sp_counted_likes_total Running total\nof likes.",
        "# TYPE sp_counted_likes_total counter",
        'sp_counted_likes_total{brand="acme",pl="x"} 201.0',
    ]


@pytest.mark.parametrize("openmetrics", [False, True])
def test_hostile_label_text_parses_back_unchanged(openmetrics: bool) -> None:
    text = render(families(), openmetrics)
    parsed = list(parse_openmetrics(text + "# EOF\n") if openmetrics else parse_text(text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in parsed for s in f.samples
    }
    assert samples == {
        ("sp_counted_likes_total", (("brand", "acme"), ("pl", "x"))): 201.0,
        ("sp_counted_likes_total", (("brand", HOSTILE), ("pl", "tiktok"))): 3.0,
        ("sp_rate", (("brand", "acme"),)): 0.0361,
        ("sp_rate", (("brand", "count"),)): 7.0,
        ("sp_rate", (("brand", "big"),)): 1e16,
        ("sp_rate", (("brand", "inf"),)): math.inf,
    }
    assert [(f.name, f.type) for f in parsed] == [
        ("sp_counted_likes", "counter"),
        ("sp_rate", "gauge"),
    ]


def broken() -> Iterator[Family]:
    raise RuntimeError("a reader with a bug")
    yield  # pragma: no cover


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("sp_events", "Events.", registry=registry).set(4)
    return registry


def test_the_registry_and_the_sources_make_one_valid_openmetrics_document() -> None:
    body, content_type = exposition(registry(), [families, broken, lambda: []], OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith('sp_rate{brand="inf"} +Inf\n# EOF\n') and text.count("# EOF") == 1
    parsed = {f.name: [s.value for s in f.samples] for f in parse_openmetrics(text)}
    # The failing source is left out; the rest is served.
    assert parsed == {
        "sp_events": [4.0],
        "sp_counted_likes": [201.0, 3.0],
        "sp_rate": [0.0361, 7.0, 1e16, math.inf],
    }


def test_a_scraper_without_openmetrics_gets_prometheus_text() -> None:
    body, content_type = exposition(registry(), [families], "")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    parsed = {f.name: [s.value for s in f.samples] for f in parse_text(body.decode())}
    assert parsed == {
        "sp_events": [4.0],
        "sp_counted_likes": [201.0, 3.0],
        "sp_rate": [0.0361, 7.0, 1e16, math.inf],
    }


def test_the_server_answers_metrics_and_404_elsewhere() -> None:
    server = serve(registry(), [families], "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        request = urllib.request.Request(f"{base}/metrics", headers={"Accept": OPENMETRICS})
        with urllib.request.urlopen(request, timeout=5) as answer:
            body = answer.read().decode()
            assert answer.headers["Content-Length"] == str(len(body.encode()))
        assert body.startswith("# HELP sp_events Events.\n") and body.endswith("# EOF\n")
        assert 'sp_counted_likes_total{brand="acme",pl="x"} 201.0\n' in body
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/other", timeout=5)
        assert refused.value.code == 404
        assert refused.value.read() == b"not found: /metrics is the only path here\n"
        # A hostile Accept header (prometheus_client raises on it) gets 406 with the reason.
        bad = urllib.request.Request(
            f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=\xff"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)
        assert refused.value.code == 406
        assert refused.value.read().startswith(b"Accept header not understood (TypeError); send ")
        # Another method gets 405, never a 5xx; the server goes on serving.
        post = urllib.request.Request(f"{base}/metrics", data=b"x" * 10, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=5)
        assert (refused.value.code, refused.value.headers["Allow"]) == (405, "GET")
        assert refused.value.read() == b"only GET /metrics is served here\n"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_a_scraper_that_leaves_mid_answer_costs_one_log_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import struct
    import threading

    left = threading.Event()

    def slow() -> list[Family]:
        left.wait(5)  # answered only once the scraper has gone (its timeout)
        big = Family("sp_big", "Many series.", "gauge", ("n",))
        for n in range(50_000):
            big.add((str(n),), n)
        return [big]

    server = serve(registry(), [slow], "127.0.0.1", 0)
    try:
        with caplog.at_level("INFO", logger="socialpulse.core.metrics_server"):
            scraper = socket.create_connection(("127.0.0.1", server.server_address[1]))
            scraper.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            # Closed with a reset, as a client whose timeout fired.
            scraper.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            scraper.close()
            left.set()
            deadline = 50
            while deadline and not any("left before its answer" in m for m in caplog.messages):
                threading.Event().wait(0.1)
                deadline -= 1
        assert next(m for m in caplog.messages if "metrics:" in m).startswith(
            "metrics: 127.0.0.1 left before its answer: "
        )
        assert "Traceback" not in capsys.readouterr().err
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=5
        ) as answer:
            assert answer.status == 200 and b'sp_big{n="49999"} 49999' in answer.read()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("first", [False, True])
def test_rendered_families_read_as_rendered_in_each_format_whichever_is_asked_first(
    first: bool,
) -> None:
    gauges = [f for f in families() if f.kind == "gauge"]
    for chosen in (families(), gauges):  # gauges alone are rendered once for both formats
        rendered = Rendered(chosen)
        assert rendered.text(first) == render(chosen, first)
        assert rendered.text(not first) == render(chosen, not first)
    assert render(families(), True) != render(families(), False)  # a counter's name differs


def by_brand_families() -> list[Family]:
    firing = Family("sp_firing", "Firing.", "gauge", ("rule", "brand", "platform"))
    for brand in ("acme", HOSTILE, "globex"):
        for platform in ("x", "tiktok"):
            firing.add(("surge", brand, platform), 1.0 if brand == "acme" else 0.0)
    baseline = Family("sp_baseline", "Baseline.", "gauge", ("brand", "kpi"))
    baseline.add(("globex", "mentions"), 12.5)
    benchmark = Family("sp_benchmark", "No brand label.", "gauge", ("kpi",))
    benchmark.add(("engagement_rate",), 0.015)
    opened = Family("sp_opened", "A counter.", "counter", ("brand",))
    opened.add(("acme",), 2)
    return [firing, baseline, benchmark, opened]


@pytest.mark.parametrize("openmetrics", [False, True])
def test_families_kept_by_brand_serve_every_brand_as_render_writes_them(openmetrics: bool) -> None:
    families = by_brand_families()
    assert ByBrand(families).text(openmetrics) == render(families, openmetrics)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_families_kept_by_brand_serve_only_the_brands_asked_for(openmetrics: bool) -> None:
    kept = pickle.loads(pickle.dumps(ByBrand(by_brand_families())))  # as the evaluator sends it
    text = kept.text(openmetrics, [HOSTILE, "acme"])
    parsed = parse_openmetrics(text + "# EOF\n") if openmetrics else parse_text(text)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in parsed for s in f.samples
    }
    assert samples == {
        **{
            ("sp_firing", (("brand", b), ("platform", p), ("rule", "surge"))): v
            for b, v in (("acme", 1.0), (HOSTILE, 0.0))
            for p in ("x", "tiktok")
        },
        ("sp_benchmark", (("kpi", "engagement_rate"),)): 0.015,  # no brand: always served
        ("sp_opened_total", (("brand", "acme"),)): 2.0,
    }
    # A family none of whose samples is served is left out, header and all.
    assert "sp_baseline" not in text
    assert kept.text(openmetrics, []) == render([by_brand_families()[2]], openmetrics)
