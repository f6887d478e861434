"""OTB BandMath expressions (``im1b1 + 3``, ``im1b4 > 0.2 ? im2b1 : 0``) parsed into a small tree and evaluated
by walking it: no ``eval``, no attribute, no name but the bands, two constants and the functions listed below.

The grammar is the part of OTB's muParser syntax that scripts use, with muParser's precedences (lowest first):

==========================  =============================================================
``c ? a : b``               ternary (right associative); ``c`` is true where it is not 0
``||``, ``or``              logical or (1 or 0)
``&&``, ``and``             logical and (1 or 0)
``== != < > <= >=``         comparisons (1 or 0)
``+ -``                     addition, subtraction
``* /``, unary ``-`` ``+``  multiplication, division, sign
``^``                       power (right associative; ``-2^2`` is ``-4`` as in muParser)
==========================  =============================================================

Operands: numbers (``3``, ``0.5``, ``1e-3``), bands ``im<I>b<J>`` (image ``I`` of the input list, band ``J``, both
from 1), ``idxX`` / ``idxY`` (column / row of the pixel, from 0), the constants ``_pi`` and ``_e``, and the
functions of :data:`FUNCTIONS`. Values are computed in float64, as muParser does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from iota2.core.errors import ConfigError


def _variadic(function):
    def call(*args):
        if not args:
            raise ValueError("needs at least one argument")
        return function(args)
    return call


FUNCTIONS = {
    "abs": (np.abs, 1), "sqrt": (np.sqrt, 1), "exp": (np.exp, 1), "ln": (np.log, 1), "log": (np.log, 1),
    "log10": (np.log10, 1), "log2": (np.log2, 1), "sin": (np.sin, 1), "cos": (np.cos, 1), "tan": (np.tan, 1),
    "asin": (np.arcsin, 1), "acos": (np.arccos, 1), "atan": (np.arctan, 1), "sinh": (np.sinh, 1),
    "cosh": (np.cosh, 1), "tanh": (np.tanh, 1), "sign": (np.sign, 1), "rint": (np.rint, 1),
    "floor": (np.floor, 1), "ceil": (np.ceil, 1),
    "min": (_variadic(lambda args: np.minimum.reduce(np.broadcast_arrays(*args))), -1),
    "max": (_variadic(lambda args: np.maximum.reduce(np.broadcast_arrays(*args))), -1),
    "sum": (_variadic(lambda args: sum(args[1:], args[0])), -1),
    "avg": (_variadic(lambda args: sum(args[1:], args[0]) / len(args)), -1),
    "ndvi": (lambda red, nir: (nir - red) / (nir + red), 2),
}
"""Functions an expression may call: name -> (function, number of arguments; -1 for one or more)."""

CONSTANTS = {"_pi": np.pi, "_e": np.e}

_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
                    r"|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/^()<>?:,]))")
_BAND = re.compile(r"im(\d+)b(\d+)")
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater, "<=": np.less_equal,
            ">=": np.greater_equal}
_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "^": np.power}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


class ExpressionError(ConfigError):
    """A BandMath expression does not parse or names something that does not exist."""


def _tokenize(text: str, where: str) -> list[_Token]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(f"{where}: cannot read {text[position:].strip()[:20]!r} at character "
                                  f"{position + 1} of {text!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "name" and value in ("and", "or"):
            kind = "op"
        tokens.append(_Token(kind, value, match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class Expression:
    """One checked BandMath expression.

    Parameters
    ----------
    text
        The expression, e.g. ``"im1b1 + 3"``.
    bands_per_image
        Number of bands of each input image, in the order of the ``il`` list (for the checks).
    where
        What to name in error messages, e.g. ``"BandMath exp"``.
    image_names
        Names of the input images (paths), for the error messages.

    Attributes
    ----------
    bands
        The ``(image, band)`` pairs the expression reads, both from 0, sorted.

    Raises
    ------
    ExpressionError
        A syntax error, an unknown name or function, a wrong number of arguments, or a band outside an image; the
        message names the expression and the image.
    """

    def __init__(self, text: str, bands_per_image: list[int], where: str = "exp",
                 image_names: list[str] | None = None):
        self.text = text
        self.where = where
        self._counts = list(bands_per_image)
        self._names = image_names or [f"image {i + 1}" for i in range(len(self._counts))]
        self._tokens = _tokenize(text, f"{where} = {text!r}")
        self._index = 0
        if self._tokens[0].kind == "end":
            raise ExpressionError(f"{where}: the expression is empty; write e.g. 'im1b1 + 3'")
        self.tree = self._ternary()
        if self._peek().kind != "end":
            self._fail(f"unexpected {self._peek().text!r}")
        found: set[tuple[int, int]] = set()
        self._collect(self.tree, found)
        self.bands = sorted(found)

    # ---------------------------------------------------------------------------------------------- parsing
    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _take(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _fail(self, what: str, token: _Token | None = None):
        token = token or self._peek()
        at = "at the end" if token.kind == "end" else f"at character {token.position + 1}"
        raise ExpressionError(f"{self.where} = {self.text!r}: {what} {at}; write e.g. 'im1b1 > 0 ? im1b2 : 0'")

    def _expect(self, text: str) -> None:
        if self._peek().text != text or self._peek().kind != "op":
            self._fail(f"expected {text!r}, found {self._peek().text or 'nothing'!r}")
        self._take()

    def _ternary(self):
        condition = self._binary(0)
        if self._peek().kind == "op" and self._peek().text == "?":
            self._take()
            yes = self._ternary()
            self._expect(":")
            no = self._ternary()
            return ("?", condition, yes, no)
        return condition

    _LEVELS = (("||", "or"), ("&&", "and"), ("==", "!=", "<", ">", "<=", ">="), ("+", "-"), ("*", "/"))

    def _binary(self, level: int):
        if level == len(self._LEVELS):
            return self._unary()
        left = self._binary(level + 1)
        while self._peek().kind == "op" and self._peek().text in self._LEVELS[level]:
            operator = self._take().text
            operator = {"or": "||", "and": "&&"}.get(operator, operator)
            left = (operator, left, self._binary(level + 1))
        return left

    def _unary(self):
        if self._peek().kind == "op" and self._peek().text in "-+":
            sign = self._take().text
            operand = self._unary()
            return ("neg", operand) if sign == "-" else operand
        return self._power()

    def _power(self):
        base = self._atom()
        if self._peek().kind == "op" and self._peek().text == "^":
            self._take()
            return ("^", base, self._unary())
        return base

    def _atom(self):
        token = self._take()
        if token.kind == "number":
            return ("num", float(token.text))
        if token.kind == "op" and token.text == "(":
            inner = self._ternary()
            self._expect(")")
            return inner
        if token.kind == "name":
            if self._peek().kind == "op" and self._peek().text == "(":
                return self._call(token)
            return self._name(token)
        self._fail(f"unexpected {token.text or 'end of expression'!r}", token)

    def _call(self, token: _Token):
        if token.text not in FUNCTIONS:
            raise ExpressionError(f"{self.where} = {self.text!r}: unknown function '{token.text}'; use one of "
                                  f"{', '.join(sorted(FUNCTIONS))}")
        self._take()
        arguments = []
        if not (self._peek().kind == "op" and self._peek().text == ")"):
            arguments.append(self._ternary())
            while self._peek().kind == "op" and self._peek().text == ",":
                self._take()
                arguments.append(self._ternary())
        self._expect(")")
        arity = FUNCTIONS[token.text][1]
        if (arity >= 0 and len(arguments) != arity) or (arity < 0 and not arguments):
            wanted = "one or more" if arity < 0 else str(arity)
            raise ExpressionError(f"{self.where} = {self.text!r}: {token.text}() takes {wanted} argument(s), "
                                  f"{len(arguments)} given")
        return ("call", token.text, tuple(arguments))

    def _name(self, token: _Token):
        name = token.text
        if name in CONSTANTS:
            return ("num", CONSTANTS[name])
        if name in ("idxX", "idxY"):
            return (name,)
        match = _BAND.fullmatch(name)
        if not match:
            hint = f"bands are im1b1 .. im{len(self._counts)}b<N>" if self._counts else "no input image is given"
            if name in FUNCTIONS:
                hint = f"'{name}' is a function: call it, e.g. {name}(im1b1)"
            raise ExpressionError(f"{self.where} = {self.text!r}: unknown name '{name}'; {hint}")
        image, band = int(match.group(1)), int(match.group(2))
        if not 1 <= image <= len(self._counts):
            raise ExpressionError(f"{self.where} = {self.text!r}: '{name}' refers to image {image} but "
                                  f"{len(self._counts)} image(s) are given in il")
        if not 1 <= band <= self._counts[image - 1]:
            raise ExpressionError(f"{self.where} = {self.text!r}: '{name}' refers to band {band} of image {image} "
                                  f"({self._names[image - 1]}), which has {self._counts[image - 1]} band(s)")
        return ("band", image - 1, band - 1)

    def _collect(self, node, found: set) -> None:
        if node[0] == "band":
            found.add((node[1], node[2]))
        elif node[0] == "call":
            for argument in node[2]:
                self._collect(argument, found)
        elif node[0] not in ("num", "idxX", "idxY"):
            for child in node[1:]:
                self._collect(child, found)

    # ---------------------------------------------------------------------------------------------- evaluation
    def evaluate(self, bands: dict[tuple[int, int], np.ndarray], shape: tuple[int, int],
                 offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The expression's values on a window.

        Parameters
        ----------
        bands
            ``(image, band)`` (from 0) -> float64 array of the window, for every pair of :attr:`bands`.
        shape
            ``(rows, cols)`` of the window.
        offset
            ``(row, col)`` of the window's first pixel in the image (for ``idxX`` / ``idxY``).

        Returns
        -------
        numpy.ndarray
            float64 array of ``shape``.
        """
        with np.errstate(all="ignore"):
            value = self._value(self.tree, bands, shape, offset)
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)

    def _value(self, node, bands, shape, offset):
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "band":
            return bands[(node[1], node[2])]
        if kind == "idxX":
            return np.arange(offset[1], offset[1] + shape[1], dtype=np.float64)[None, :]
        if kind == "idxY":
            return np.arange(offset[0], offset[0] + shape[0], dtype=np.float64)[:, None]
        if kind == "neg":
            return np.negative(self._value(node[1], bands, shape, offset))
        if kind == "call":
            return FUNCTIONS[node[1]][0](*(np.asarray(self._value(a, bands, shape, offset), dtype=np.float64)
                                          for a in node[2]))
        if kind == "?":
            condition = self._value(node[1], bands, shape, offset)
            return np.where(np.asarray(condition) != 0, self._value(node[2], bands, shape, offset),
                            self._value(node[3], bands, shape, offset))
        left = self._value(node[1], bands, shape, offset)
        right = self._value(node[2], bands, shape, offset)
        if kind in _ARITHMETIC:
            if isinstance(left, float) and isinstance(right, float):
                return float(_ARITHMETIC[kind](left, right))
            return _ARITHMETIC[kind](left, right)
        if kind in _COMPARE:
            return _COMPARE[kind](left, right).astype(np.float64)
        if kind == "&&":
            return np.logical_and(np.asarray(left) != 0, np.asarray(right) != 0).astype(np.float64)
        if kind == "||":
            return np.logical_or(np.asarray(left) != 0, np.asarray(right) != 0).astype(np.float64)
        raise ExpressionError(f"{self.where} = {self.text!r}: cannot evaluate {kind!r}")  # pragma: no cover
