"""Safe arithmetic formulas over counter names, for KPIs declared in config (pure, no eval).

The grammar is numbers, names, ``+ - * /``, unary minus and parentheses, e.g.
``(mentions_positive - mentions_negative) / mentions``. A formula is checked once, at config
load (unknown names and any other syntax are refused), then evaluated per window. Division by
zero gives "no value" (None), never 0 and never an exception, and "no value" propagates; so
does a name without a value (an optional counter that is not known, e.g. followers).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

Value = float | None
_Node = Callable[[Mapping[str, float]], Value]

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


class FormulaError(ValueError):
    """A formula uses syntax or names that are not allowed; the message says which."""


@dataclass(frozen=True)
class Formula:
    """A checked formula: its text, the names it reads, and its evaluator."""

    text: str
    names: frozenset[str]
    _root: _Node

    def evaluate(self, values: Mapping[str, float]) -> Value:
        """The formula's value for these name values; a missing name, a zero denominator or a
        result that is not a finite number (an overflow) has no value."""
        value = self._root(values)
        return value if value is None or math.isfinite(value) else None


def _divide(a: Value, b: Value) -> Value:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _compile(node: ast.AST, allowed: Collection[str], names: set[str]) -> _Node:
    if isinstance(node, ast.Expression):
        return _compile(node.body, allowed, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise FormulaError(f"{ast.unparse(node)!r} is not allowed: use numbers")
        constant = float(node.value)
        return lambda _values: constant
    if isinstance(node, ast.Name):
        if node.id not in allowed:
            raise FormulaError(f"unknown name {node.id!r} (known: {', '.join(sorted(allowed))})")
        names.add(node.id)
        name = node.id
        return lambda values: None if (v := values.get(name)) is None else float(v)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _compile(node.operand, allowed, names)
        return lambda values: None if (v := inner(values)) is None else -v
    if isinstance(node, ast.BinOp):
        left = _compile(node.left, allowed, names)
        right = _compile(node.right, allowed, names)
        if isinstance(node.op, ast.Div):
            return lambda values: _divide(left(values), right(values))
        op = _BINARY.get(type(node.op))
        if op is not None:
            return lambda values: (
                None if (a := left(values)) is None or (b := right(values)) is None else op(a, b)
            )
    raise FormulaError(
        f"{ast.unparse(node)!r} is not allowed: use numbers, names, + - * / and parentheses"
    )


def compile_formula(text: str, allowed: Collection[str]) -> Formula:
    """Check ``text`` and return its evaluator; raise FormulaError naming what is wrong."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"{text!r} is not a formula: {exc.msg}") from None
    names: set[str] = set()
    root = _compile(tree, allowed, names)
    return Formula(text, frozenset(names), root)
