"""Band-math expressions of the configuration (``additional_features``: ``"(b8-b4)/(b8+b4)*1000"``), parsed
into a small tree and evaluated by walking it: no ``eval``, no attribute, no name but the bands and a few
functions, so a configuration file can never run code.

Grammar: numbers, the bands ``b1`` ... ``bN``, ``+ - * /``, ``^`` (or ``**``) for powers, unary ``-`` and ``+``,
parentheses, and the functions of :data:`FUNCTIONS` with positional arguments.
"""

from __future__ import annotations

import ast
import operator
import re

import numpy as np

from iota2.core.errors import ConfigError

FUNCTIONS = {"sqrt": np.sqrt, "abs": np.abs, "exp": np.exp, "log": np.log, "log10": np.log10,
             "min": np.minimum, "max": np.maximum, "sin": np.sin, "cos": np.cos, "tan": np.tan}
"""Functions an expression may call (element-wise numpy functions; ``min``/``max`` of two operands)."""

_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
           ast.Pow: np.power}
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
_SCALAR_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
                  ast.Pow: operator.pow}
_SCALAR_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _scalar(value) -> bool:
    """A Python number: it keeps numpy's weak typing (``2 ** 3 * float32 array`` stays float32)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant, *_BINARY, *_UNARY)


class BandMath:
    """One checked expression over the bands ``b1`` ... ``bN`` of a date.

    Parameters
    ----------
    expression
        The text, e.g. ``"(b7-b3)/(b7+b3)*1000"``.
    band_names
        Names of the bands, in the order ``b1`` ... ``bN`` refers to (for the error messages).
    where
        The configuration key, e.g. ``"Sentinel_2.additional_features"``.

    Raises
    ------
    ConfigError
        The expression does not parse, or uses something outside the grammar; the message names ``where``.
    """

    def __init__(self, expression: str, band_names: list[str], where: str):
        self.expression = expression
        n_bands = len(band_names)
        text = expression.strip().replace("^", "**")
        try:
            self.tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ConfigError(f"{where}: cannot parse the expression {expression!r} ({exc.msg}); write e.g. "
                              "'(b7-b3)/(b7+b3)*1000'") from exc
        allowed = f"use b1..b{n_bands}, numbers, + - * / ^ and {', '.join(sorted(FUNCTIONS))}"
        for node in ast.walk(self.tree):
            if not isinstance(node, _NODES):
                raise ConfigError(f"{where}: {type(node).__name__} is not allowed in {expression!r}; {allowed}")
            if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                                   or not isinstance(node.value, (int, float))):
                raise ConfigError(f"{where}: {node.value!r} is not a number in {expression!r}; {allowed}")
            if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
                raise ConfigError(f"{where}: unknown function in {expression!r}; use one of "
                                  f"{', '.join(sorted(FUNCTIONS))}")
            if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
                match = re.fullmatch(r"b(\d+)", node.id)
                if not match or not 1 <= int(match.group(1)) <= n_bands:
                    raise ConfigError(f"{where}: unknown name '{node.id}' in {expression!r}; bands are "
                                      f"b1..b{n_bands} ({', '.join(band_names)} in this order)")
            if isinstance(node, ast.Name) and node.id in FUNCTIONS and not self._is_called(node):
                raise ConfigError(f"{where}: '{node.id}' must be called, e.g. {node.id}(b1), in {expression!r}")

    def _is_called(self, name: ast.Name) -> bool:
        return any(isinstance(node, ast.Call) and node.func is name for node in ast.walk(self.tree))

    def evaluate(self, bands: dict[str, np.ndarray]):
        """The value of the expression with ``bands = {"b1": array, ...}`` (numpy broadcasting rules)."""
        return self._value(self.tree.body, bands)

    def _value(self, node: ast.AST, bands: dict[str, np.ndarray]):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return bands[node.id]
        if isinstance(node, ast.BinOp):
            left, right = self._value(node.left, bands), self._value(node.right, bands)
            table = _SCALAR_BINARY if _scalar(left) and _scalar(right) else _BINARY
            return table[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            operand = self._value(node.operand, bands)
            return (_SCALAR_UNARY if _scalar(operand) else _UNARY)[type(node.op)](operand)
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](*(self._value(argument, bands) for argument in node.args))
        raise ConfigError(f"{type(node).__name__} is not allowed in {self.expression!r}")  # checked in __init__
