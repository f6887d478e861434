"""iota2's ``.cfg`` configuration files: a strict reader of the ``config`` package's syntax, and YAML output.

iota2 up to 2024 read its configuration with the ``config`` package (0.3.x). Such a file is a list of entries
``name : value``; the top-level ones are the sections::

    # comment
    chain :
    {
        output_path : '/data/out'          # quoted strings, ' or "
        list_tile : 'T31TCJ T31TDJ'
        spatial_resolution : [10, 10]      # lists
    }
    arg_train : { runs : 2, ratio : 0.75,  # entries separated by newlines or commas
                  sample_selection : {'sampler' : 'random', 'strategy' : 'percent',
                                      'strategy.percent.p' : 0.1} }   # keys with dots are quoted

Values are Python-like literals: strings in single, double or triple quotes (with Python's backslash escapes),
integers, floats, ``True``, ``False``, ``None``, lists ``[...]`` and mappings ``{...}``; a bare word is a string
(``classifier : rf``), as in the ``config`` package (which also reads a key written alone as ``True``: refused
here, every iota2 key has a value). ``$chain.output_path``
(also ``$section.key[0]``) is the value of another entry, from the top of the file, and ``+`` joins strings, lists
or adds numbers (``$chain.output_path + '/features'``). The package's other constructs (``-``, ``*``, ``/``, ``%``
between values, back-quoted Python expressions, ``@'file'`` includes) are refused with the position and the
replacement.

Nothing is evaluated by Python: :func:`parse` is a tokenizer and a recursive-descent parser producing a tree;
:func:`resolve` turns it into plain dicts and lists, resolving references; :func:`to_yaml` writes the same
configuration as YAML, each comment kept before the entry it precedes (or at the end of its line). Every syntax
error is one :class:`~iota2.core.errors.ConfigError` reading ``file:line:col: expected ..., found ...``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from iota2.core.errors import ConfigError

__all__ = ["CfgMapping", "CfgSequence", "Entry", "load_cfg", "parse", "resolve", "to_yaml"]

WORD_START = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
WORD_CHARS = WORD_START | set("0123456789")
PUNCTUATION = set(":-+*/%,.{}[]()@`$")
_NUMBER = re.compile(r"\d+(\.\d*)?([eE][-+]?\d+)?")
_ESCAPES = {"\n": "", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t", "v": "\v"}
_REFUSED = {
    "-": "'-' between two values is not read in iota2 configurations; write the result",
    "*": "'*' is not read in iota2 configurations; write the result",
    "/": "'/' outside quotes is not read in iota2 configurations (the config package divides); quote the path",
    "%": "'%' is not read in iota2 configurations; write the result",
    "`": "back-quoted Python expressions are not read (iota2 configurations never run code); write the value",
    "@": "'@' includes of another file are not read; copy its entries into this file",
}


@dataclasses.dataclass
class Token:
    """One token: ``kind`` is ``word``, ``number``, ``string``, ``eof`` or the punctuation character itself."""

    kind: str
    text: str
    value: Any
    line: int
    col: int
    spaced: bool  # whitespace (or a comment) before it
    comments: list[str]  # whole-line comments between the previous token and this one
    inline: str | None = None  # a comment on the line of this token, right after it (set by the tokenizer)


@dataclasses.dataclass
class Scalar:
    """A literal (str, int, float, bool or None) at ``line``:``col``."""

    value: Any
    line: int
    col: int


@dataclasses.dataclass
class Reference:
    """``$first.second[0]``: the value at ``path`` from the top of the file."""

    path: list
    text: str
    line: int
    col: int


@dataclasses.dataclass
class Sum:
    """``left + right``."""

    left: Any
    right: Any
    line: int
    col: int


@dataclasses.dataclass
class Entry:
    """A ``key : value`` entry of a mapping, with the comments written before it and at the end of its line."""

    key: str
    value: Any
    line: int
    col: int
    comments: list[str] = dataclasses.field(default_factory=list)
    inline: str | None = None
    source: str = ""  # the value's text, when it holds references or '+'


@dataclasses.dataclass
class CfgMapping:
    """``{ key : value ... }`` (or the whole file): entries in file order; ``closing_comments`` before ``}``."""

    entries: list[Entry]
    line: int
    col: int
    closing_comments: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class CfgSequence:
    """``[ value, ... ]``."""

    items: list
    line: int
    col: int


def _describe(token: Token) -> str:
    if token.kind == "eof":
        return "the end of the file"
    if token.kind == "string":
        return f"the string {token.text[:40]}"
    return f"'{token.text[:40]}'"


class _Tokenizer:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.pos, self.line, self.col = 0, 1, 1

    def error(self, line: int, col: int, message: str) -> ConfigError:
        return ConfigError(f"{self.source}:{line}:{col}: {message}")

    def _advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.text[self.pos] == "\n":
                self.line, self.col = self.line + 1, 1
            else:
                self.col += 1
            self.pos += 1

    def tokens(self) -> list[Token]:
        text = self.text
        tokens: list[Token] = []
        comments: list[str] = []
        spaced = True
        while True:
            while self.pos < len(text) and (text[self.pos] in " \t\r\n" or text[self.pos] == "#"):
                if text[self.pos] == "#":
                    end = text.find("\n", self.pos)
                    end = len(text) if end < 0 else end
                    comment = text[self.pos + 1:end].rstrip()
                    same_line = tokens and tokens[-1].line == self.line and not comments
                    if same_line and tokens[-1].inline is None:
                        tokens[-1].inline = comment
                    else:
                        comments.append(comment)
                    self._advance(end - self.pos)
                else:
                    self._advance()
                spaced = True
            line, col = self.line, self.col
            if self.pos >= len(text):
                tokens.append(Token("eof", "", None, line, col, True, comments))
                return tokens
            char = text[self.pos]
            start = self.pos
            if char in "'\"":
                value = self._string(char)
                kind = "string"
            elif char.isdigit():
                match = _NUMBER.match(text, self.pos)
                number = match.group(0)
                value = float(number) if any(c in number for c in ".eE") else int(number)
                self._advance(len(number))
                kind = "number"
            elif char in WORD_START:
                end = self.pos
                while end < len(text) and text[end] in WORD_CHARS:
                    end += 1
                word = text[self.pos:end]
                self._advance(end - self.pos)
                kind, value = "word", {"True": True, "False": False, "None": None}.get(word, word)
                if word in ("True", "False", "None"):
                    kind = "literal"
            elif char in PUNCTUATION:
                self._advance()
                kind, value = char, char
            else:
                raise self.error(line, col, f"unexpected character {char!r}; values other than numbers, True, False "
                                            "and None must be quoted, e.g. 'EPSG:2154'")
            tokens.append(Token(kind, text[start:self.pos], value, line, col, spaced, comments))
            comments, spaced = [], False

    def _string(self, quote: str) -> str:
        text = self.text
        line, col = self.line, self.col
        delimiter = quote * 3 if text.startswith(quote * 3, self.pos) else quote
        self._advance(len(delimiter))
        parts: list[str] = []
        while True:
            if self.pos >= len(text) or (len(delimiter) == 1 and text[self.pos] == "\n"):
                raise self.error(line, col, f"string opened with {delimiter} is not closed on its line; add the "
                                            f"closing {delimiter}")
            if text.startswith(delimiter, self.pos):
                self._advance(len(delimiter))
                return "".join(parts)
            char = text[self.pos]
            if char == "\\" and self.pos + 1 < len(text):
                parts.append(self._escape())
                continue
            parts.append(char)
            self._advance()

    def _escape(self) -> str:
        text, pos = self.text, self.pos
        following = text[pos + 1]
        if following in _ESCAPES:
            self._advance(2)
            return _ESCAPES[following]
        digits = {"x": 2, "u": 4, "U": 8}.get(following)
        if digits:
            code = text[pos + 2:pos + 2 + digits]
            if len(code) == digits and all(c in "0123456789abcdefABCDEF" for c in code):
                self._advance(2 + digits)
                return chr(int(code, 16))
            raise self.error(self.line, self.col, f"'\\{following}' must be followed by {digits} hexadecimal digits; "
                                                  "write '\\\\' for a backslash")
        self._advance()
        return "\\"  # Python keeps an unknown escape as written: 'C:\data' is C:\data


class _Parser:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.tokens = _Tokenizer(text, source).tokens()
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def next(self) -> Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def error(self, token: Token, expected: str, hint: str = "") -> ConfigError:
        found = _describe(token)
        if token.kind in _REFUSED:
            hint = _REFUSED[token.kind]
        return ConfigError(f"{self.source}:{token.line}:{token.col}: expected {expected}, found {found}"
                           + (f"; {hint}" if hint else ""))

    def document(self) -> CfgMapping:
        mapping = self.mapping_body(CfgMapping([], 1, 1), top=True)
        if self.token.kind != "eof":
            raise self.error(self.token, "a 'key : value' entry", self._entry_hint(self.token))
        mapping.closing_comments = list(self.token.comments)
        return mapping

    def _entry_hint(self, token: Token) -> str:
        if token.kind == "}":
            return "this '}' closes no '{'"
        return ""

    def mapping_body(self, mapping: CfgMapping, top: bool = False) -> CfgMapping:
        seen: dict[str, int] = {}
        while self.token.kind in ("word", "string"):
            key_token = self.next()
            key = str(key_token.value)
            if key in seen:
                raise ConfigError(f"{self.source}:{key_token.line}:{key_token.col}: '{key}' is written twice in "
                                  f"this {'file' if top else 'mapping'} (first on line {seen[key]}); keep one")
            seen[key] = key_token.line
            entry = Entry(key, None, key_token.line, key_token.col, list(key_token.comments))
            if self.token.kind == ":":
                colon = self.next()
                start = self.index
                entry.value = self.value()
                span = self.tokens[start:self.index]
                last = span[-1]
                inlines = [key_token.inline, colon.inline]
                if isinstance(entry.value, CfgMapping):  # comments before '{' and on its line
                    entry.comments += span[0].comments
                    inlines.append(span[0].inline)
                else:  # comments inside a list or an expression go before the entry
                    entry.comments += [comment for token in span for comment in token.comments] + \
                        [token.inline for token in span[:-1] if token.inline is not None]
                    inlines.append(last.inline)
                entry.inline = next((inline for inline in inlines if inline is not None), None)
                if not isinstance(entry.value, CfgMapping) and any(token.kind in ("$", "+") for token in span):
                    entry.source = self._span(span[0], last)
            elif self.token.kind == "." and key_token.kind == "word":
                raise self.error(self.token, "':' after the key",
                                 f"a key containing dots must be quoted, e.g. '{self._dotted_key(key_token)}' : value")
            else:
                before = self.tokens[self.index - 2] if self.index >= 2 else None
                if before is not None and before.kind not in ("{", ",") and before.line == key_token.line:
                    example = self._span(before, key_token)
                    raise self.error(key_token, "',' or a new line after the value",
                                     f"a value containing spaces must be quoted, e.g. '{example}'")
                raise self.error(self.token, f"':' after the key '{key}'", "write 'key : value'")
            mapping.entries.append(entry)
            if self.token.kind == ",":
                comma = self.next()
                entry.inline = entry.inline or comma.inline
            elif self.token.kind not in ("eof", "word", "string", "}"):
                raise self.error(self.token, "a new 'key : value' entry, ',' or '}'" if not top
                                 else "a new 'key : value' entry", self._after_value_hint(self.token))
        return mapping

    def _after_value_hint(self, token: Token) -> str:
        if token.kind == ":":
            return "a value containing ':' must be quoted, e.g. 'EPSG:2154'"
        if token.kind in (".", "/"):
            return "quote the value, e.g. '/path/to/file.shp'"
        if token.kind == "number":
            return "quote the value (a number followed by text is not a value)"
        return ""

    def _dotted_key(self, token: Token) -> str:
        end = self.index
        while self.tokens[end].kind in ("word", ".", "number") and not self.tokens[end].spaced:
            end += 1
        return self._span(token, self.tokens[end - 1])

    def _span(self, first: Token, last: Token) -> str:
        lines = self.text.split("\n")
        if first.line == last.line:
            return lines[first.line - 1][first.col - 1:last.col - 1 + len(last.text)]
        return " ".join(part.strip() for part in
                        [lines[first.line - 1][first.col - 1:]] + lines[first.line:last.line - 1]
                        + [lines[last.line - 1][:last.col - 1 + len(last.text)]])

    def value(self):
        token = self.token
        if token.kind == "{":
            self.next()
            mapping = self.mapping_body(CfgMapping([], token.line, token.col))
            if self.token.kind != "}":
                raise self.error(self.token, f"'}}' closing the '{{' of line {token.line}, column {token.col}",
                                 self._after_value_hint(self.token))
            closing = self.next()
            mapping.closing_comments = list(closing.comments) + ([closing.inline] if closing.inline else [])
            return mapping
        if token.kind == "[":
            return self.sequence()
        return self.expression()

    def sequence(self) -> CfgSequence:
        opening = self.next()
        sequence = CfgSequence([], opening.line, opening.col)
        while self.token.kind in ("word", "string", "literal", "number", "{", "[", "$", "(", "-"):
            sequence.items.append(self.value())
            if self.token.kind == ",":
                self.next()
        if self.token.kind != "]":
            raise self.error(self.token, f"',' or ']' closing the '[' of line {opening.line}, column {opening.col}",
                             self._after_value_hint(self.token))
        self.next()
        return sequence

    def expression(self):
        left = self.term()
        while self.token.kind == "+":
            plus = self.next()
            left = Sum(left, self.term(), plus.line, plus.col)
        if self.token.kind in ("-", "*", "/", "%"):
            raise self.error(self.token, "the end of the value", _REFUSED[self.token.kind])
        return left

    def term(self):
        token = self.token
        if token.kind in ("number", "string", "word", "literal"):
            self.next()
            return Scalar(token.value, token.line, token.col)
        if token.kind == "-":
            self.next()
            if self.token.kind != "number":
                raise self.error(self.token, "a number after '-'")
            number = self.next()
            return Scalar(-number.value, token.line, token.col)
        if token.kind == "(":
            self.next()
            inner = self.expression()
            if self.token.kind != ")":
                raise self.error(self.token, f"')' closing the '(' of line {token.line}, column {token.col}")
            self.next()
            return inner
        if token.kind == "$":
            return self.reference()
        raise self.error(token, "a value (a quoted string, a number, True, False, None, [list] or {mapping})",
                         self._value_hint(token))

    def _value_hint(self, token: Token) -> str:
        following = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        if token.kind == "." and following.kind == "number" and not following.spaced:
            return f"write 0.{following.text} for .{following.text}"
        if token.kind in ("/", "."):
            return "quote the path, e.g. '/path/to/file'"
        return ""

    def reference(self) -> Reference:
        dollar = self.next()
        if self.token.kind != "word" or self.token.spaced:
            raise self.error(self.token, "a name right after '$' (e.g. $chain.output_path)",
                             "write a literal '$' inside quotes")
        path: list = [self.next().value]
        while not self.token.spaced and self.token.kind in (".", "["):
            if self.next().kind == ".":
                if self.token.kind != "word":
                    raise self.error(self.token, "a key name after '.'")
                path.append(self.next().value)
            else:
                index = self.next()
                if index.kind not in ("number", "string") or isinstance(index.value, float):
                    raise self.error(index, "a list index or a quoted key inside '[ ]'")
                path.append(index.value)
                if self.token.kind != "]":
                    raise self.error(self.token, "']'")
                self.next()
        last = self.tokens[self.index - 1]
        return Reference(path, self._span(dollar, last), dollar.line, dollar.col)


def parse(text: str, source: str = "<cfg>") -> CfgMapping:
    """Parse the text of a ``.cfg`` file into a tree (nothing resolved, comments kept).

    Parameters
    ----------
    text
        The file's text.
    source
        How error messages name the file.

    Raises
    ------
    ConfigError
        ``source:line:col: expected ..., found ...`` for the first syntax error.
    """
    return _Parser(text, source).document()


class _Resolver:
    def __init__(self, root: CfgMapping, source: str):
        self.root, self.source = root, source
        self.resolving: list[str] = []

    def error(self, node, message: str) -> ConfigError:
        return ConfigError(f"{self.source}:{node.line}:{node.col}: {message}")

    def value(self, node):
        if isinstance(node, Scalar):
            return node.value
        if isinstance(node, CfgMapping):
            return {entry.key: self.value(entry.value) for entry in node.entries}
        if isinstance(node, CfgSequence):
            return [self.value(item) for item in node.items]
        if isinstance(node, Reference):
            return self.reference(node)
        if isinstance(node, Sum):
            return self.add(node)
        raise TypeError(node)  # pragma: no cover - parser output only

    def reference(self, node: Reference):
        if node.text in self.resolving:
            chain = " -> ".join(self.resolving[self.resolving.index(node.text):] + [node.text])
            raise self.error(node, f"circular reference {chain}; give one of them a value")
        current: Any = self.root
        walked = "$"
        for step in node.path:
            if isinstance(current, CfgMapping):
                found = next((entry for entry in current.entries if entry.key == str(step)), None)
                if found is None:
                    keys = ", ".join(entry.key for entry in current.entries) or "none"
                    where = f"'{walked[1:]}'" if walked != "$" else "the file"
                    raise self.error(node, f"{node.text} refers to nothing: {where} has no entry '{step}' "
                                           f"(entries: {keys})")
                current = found.value
            elif isinstance(current, CfgSequence) and isinstance(step, int):
                if not 0 <= step < len(current.items):
                    raise self.error(node, f"{node.text}: index {step} is outside the {len(current.items)} items of "
                                           f"'{walked[1:]}'")
                current = current.items[step]
            else:
                raise self.error(node, f"{node.text}: '{walked[1:]}' is not a mapping or a list; it has no '{step}'")
            walked += (f".{step}" if walked != "$" else str(step)) if not isinstance(step, int) else f"[{step}]"
        self.resolving.append(node.text)
        try:
            return self.value(current)
        finally:
            self.resolving.pop()

    def add(self, node: Sum):
        left, right = self.value(node.left), self.value(node.right)
        kinds = (type(left), type(right))
        if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
            pass
        elif isinstance(left, str) and isinstance(right, str) or isinstance(left, list) and isinstance(right, list):
            return left + right
        elif all(isinstance(side, (int, float)) for side in (left, right)):
            return left + right
        names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "a mapping",
                 bool: "a boolean", type(None): "None"}
        raise self.error(node, f"'+' cannot join {names.get(kinds[0], kinds[0].__name__)} and "
                               f"{names.get(kinds[1], kinds[1].__name__)} ({left!r} + {right!r}); '+' joins two "
                               "strings, two lists or two numbers")


def resolve(tree: CfgMapping, source: str = "<cfg>") -> dict:
    """Plain values of a parsed file: dicts, lists and scalars, references and ``+`` resolved.

    Raises
    ------
    ConfigError
        For a reference to a missing entry, a circular reference or a ``+`` of values that cannot be joined,
        naming the file, line and column.
    """
    return _Resolver(tree, source).value(tree)


def load_cfg(path: str | Path, text: str | None = None) -> dict:
    """Read a ``.cfg`` file into a plain mapping of sections (validate it with :func:`iota2.core.config.validate`).

    Parameters
    ----------
    path
        The file (UTF-8).
    text
        Its text, when already read.
    """
    if text is None:
        from iota2.core.config import read_utf8_text

        text = read_utf8_text(path, ConfigError, "configuration file")
    return resolve(parse(text, str(path)), str(path))


# ----------------------------------------------------------------------------------------------------
# YAML output
# ----------------------------------------------------------------------------------------------------

def _yaml_scalar(value) -> str:
    style = '"' if isinstance(value, str) and ("\n" in value or "\r" in value) else None
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=float("inf"),
                          default_style=style)
    text = text.rstrip("\n")
    if text.endswith("\n..."):
        text = text[:-4].rstrip("\n")
    return text


def _comment_lines(comments: list[str], indent: str) -> list[str]:
    return [f"{indent}#{comment}" if comment else f"{indent}#" for comment in comments]


def _emit_mapping(mapping: CfgMapping, resolver: _Resolver, indent: str, lines: list[str]) -> None:
    for entry in mapping.entries:
        lines += _comment_lines(entry.comments, indent)
        key = _yaml_scalar(entry.key)
        value = entry.value
        notes = []
        if entry.source:
            notes.append(f"was: {entry.source}")
        if entry.inline is not None:
            notes.append(entry.inline.strip())
        note = ("  # " + "; ".join(notes)) if notes else ""
        if isinstance(value, CfgMapping) and value.entries and not entry.source:
            lines.append(f"{indent}{key}:{note}")
            _emit_mapping(value, resolver, indent + "    ", lines)
            lines += _comment_lines(value.closing_comments, indent + "    ")
        else:
            resolved = resolver.value(value)
            if isinstance(resolved, dict) and resolved:
                dumped = yaml.safe_dump(resolved, default_flow_style=False, sort_keys=False, allow_unicode=True,
                                        width=float("inf"))
                lines.append(f"{indent}{key}:{note}")
                lines += [f"{indent}    {line}" for line in dumped.rstrip("\n").split("\n")]
            else:
                lines.append(f"{indent}{key}: {_yaml_scalar(resolved)}{note}")
            if isinstance(value, CfgMapping):
                lines += _comment_lines(value.closing_comments, indent + "    ")


def to_yaml(tree: CfgMapping, source: str = "<cfg>") -> str:
    """The YAML text of a parsed ``.cfg`` file: the same sections, keys and values, the comments kept.

    A comment written on the lines before an entry is written before it, one at the end of an entry's line at the
    end of its line; a value computed with ``$`` references or ``+`` is written resolved, with its ``.cfg``
    text in a comment. Section and key names are kept as written (iota2's camelCase names are read too).
    """
    resolver = _Resolver(tree, source)
    lines: list[str] = []
    _emit_mapping(tree, resolver, "", lines)
    lines += _comment_lines(tree.closing_comments, "")
    return "\n".join(lines) + "\n"
