"""Board queries that derive a window's counts and KPIs from the running totals.

A worker exports one running total per brand, platform and counter
(``socialpulse_counted_<counter>_total``, kept exactly in Redis by the count script), a few
dozen series a brand where every window of every counter and KPI as gauges is hundreds: at
1,000 brands the difference between a scrape of 0.2 s and one of 40 s. So a board computes what
a window counted from the totals at query time, for the one brand it shows:

    max by (platform) (total)
      - (max by (platform) (last_over_time(total[5m] offset 5m))
         or 0 * (count_over_time(mentions_total[5m]) > count_over_time(total[5m]))
         or min by (platform) (min_over_time(total[5m])))

the newest total less the last one scraped before the window began, in whole numbers (no
extrapolation, unlike ``increase()``), the same whichever worker exported the brand at either
end (``max``/``min`` across workers: each brand is on the worker holding its Kafka partition,
and moves at a rebalance). With no such total: a worker exports the mentions total of every
configured platform from 0 (streams.counters.STARTS_AT_ZERO), so where Prometheus scraped that
more often in the window than this total, this one began inside the window, from 0; where not,
Prometheus holds nothing older of the brand's platform (it is new) and the oldest total inside
the window stands in, where 0 would show every total since the brand began as the last five
minutes' after a fresh Prometheus.

A formula of ``kpis.yaml`` over such counters is compiled to the same arithmetic in PromQL: a
counter without a series counts 0, a zero denominator gives no value.

What it counts is what was counted in the window (by the time it was counted, to the scrape
interval), where the window gauges count events by their own time: the two differ by late
events. Distinct counts, last known values (``followers``), customer-care readings, competitor
mentions and sums that can fall have no running total (or none that subtracts), so their
KPIs stay window gauges; and the panels that set a KPI against what an alert rule judges read
the rule's own gauge.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from socialpulse.core.config_types import format_duration, parse_duration
from streams.counters import CAN_FALL, STARTS_AT_ZERO
from streams.counters import RUNNING_TOTALS as KEPT

# Counters whose running total only grows: a window is a difference of two of them.
RUNNING_TOTALS = KEPT - CAN_FALL
WINDOW_NAMES = ("window_minutes", "window_seconds")
# A name matcher for every running total (of a brand and platform: any counter it counted).
ANY_TOTAL = "socialpulse_counted_.+_total"
LOOK_BACK = 300  # seconds before a window that its starting total is looked for, at most


def derivable(names: frozenset[str] | set[str]) -> bool:
    """Whether a formula over ``names`` (or a counter, named alone) can be computed from the
    running totals."""
    return all(name in RUNNING_TOTALS or name in WINDOW_NAMES for name in names)


def total_name(counter: str) -> str:
    """The running total's metric name."""
    return f"socialpulse_counted_{counter}_total"


def counted(counter: str, window: str, selector: str, by: str = "platform") -> str:
    """What was counted of ``counter`` in the last ``window`` (``5m``), per ``by`` labels, of
    the series ``selector`` picks (``brand="$brand", ...``): the newest total less the last one
    scraped before the window began; with none, 0 where the total began inside the window after
    the brand's platform was known, else the oldest total inside it; never below 0."""
    series = f"{total_name(counter)}{{{selector}}}"
    # How far back before the window a total is looked for: past a scrape or two missed (a
    # worker gone, its partitions not yet moved), and no more (a day of samples a step).
    back = window if parse_duration(window) <= LOOK_BACK else format_duration(LOOK_BACK)
    now = f"max by ({by}) ({series})"
    before = f"max by ({by}) (last_over_time({series}[{back}] offset {window}))"
    # Mentions are exported from 0 on every configured platform (streams.metrics): scraped more
    # often in the window than this total, they show it began after Prometheus knew the
    # platform, so from 0.
    known = f"{total_name(STARTS_AT_ZERO)}{{{selector}}}"
    later = (
        f"0 * (sum by ({by}) (count_over_time({known}[{window}])) "
        f"> sum by ({by}) (count_over_time({series}[{window}])))"
    )
    # Else not 0: after a fresh Prometheus a window would count each total since it began.
    oldest = f"min by ({by}) (min_over_time({series}[{window}]))"
    # A total that fell (Redis restored from an older backup) shows 0, not a negative count.
    return f"clamp_min({now} - ({before} or {later} or {oldest}), 0)"


Term = Callable[[str], str]


def formula(text: str, window_seconds: int, term: Term, zero: str) -> str:
    """A ``kpis.yaml`` formula as PromQL: each counter name becomes ``term(name)``, or ``zero``
    where that has no series (so ``a + b`` does not vanish with ``b``);
    ``window_minutes`` and ``window_seconds`` become numbers; a denominator of 0 filters the
    sample out (no value, never 0 or infinity), as the formulas in Python give None."""
    return _promql(ast.parse(text, mode="eval").body, window_seconds, term, zero)


def _promql(node: ast.AST, window: int, term: Term, zero: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return repr(float(node.value))
    if isinstance(node, ast.Name):
        if node.id == "window_minutes":
            return repr(window / 60)
        if node.id == "window_seconds":
            return repr(float(window))
        if node.id not in RUNNING_TOTALS:
            raise ValueError(f"{node.id} has no running total; read its window gauge")
        return f"({term(node.id)} or {zero})"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return f"-({_promql(node.operand, window, term, zero)})"
    if isinstance(node, ast.BinOp):
        left = _promql(node.left, window, term, zero)
        right = _promql(node.right, window, term, zero)
        if isinstance(node.op, ast.Div):
            counters = [n for n in ast.walk(node.right) if isinstance(n, ast.Name)]
            if all(n.id in WINDOW_NAMES for n in counters):
                return f"({left} / {right})"  # a number: PromQL compares scalars only with bool
            return f"({left} / ({right} != 0))"
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}.get(type(node.op))
        if symbol is not None:
            return f"({left} {symbol} {right})"
    raise ValueError(f"not a formula of kpis.yaml: {ast.unparse(node)}")
