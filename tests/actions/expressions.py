"""GitHub Actions expressions (``${{ … }}``), the part the offsite actions use:
contexts (``inputs.x``, ``steps.id.outputs.y``, ``github.token``), string, number and
boolean literals, ``==``, ``!=``, ``!``, ``&&``, ``||`` (which, as on GitHub, return an
operand, not a boolean), parentheses, and ``success()``, ``failure()``, ``always()``,
``format()``. Comparison of strings ignores case, as GitHub's does."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*))"
)
_EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.S)


class ExpressionError(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in {text!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float:
    """GitHub's coercion for a comparison of unlike types: null 0, booleans 1 and 0,
    strings parsed ('' is 0, text that is no number is NaN)."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b):
        return bool(a == b)
    return _number(a) == _number(b)


class _Parser:
    def __init__(self, text: str, context: dict[str, Any], status: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.context = context
        self.status = status  # success | failure

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ExpressionError(f"expected {value!r}, found {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.cmp()
            value = right if truthy(value) else value
        return value

    def cmp(self) -> Any:
        value = self.unary()
        tok = self.peek()
        if tok in (("op", "=="), ("op", "!=")):
            self.take()
            right = self.unary()
            same = _equal(value, right)
            return same if tok[1] == "==" else not same
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek() == ("op", "("):
            return self.call(text)
        value: Any = self.context
        for part in text.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def call(self, name: str) -> Any:
        self.take("(")
        args = []
        while self.peek() != ("op", ")"):
            args.append(self.or_())
            if self.peek() == ("op", ","):
                self.take()
        self.take(")")
        if name == "success":
            return self.status == "success"
        if name == "failure":
            return self.status == "failure"
        if name == "always":
            return True
        if name == "format":
            template = _text(args[0])
            for n, arg in enumerate(args[1:]):
                template = template.replace(f"{{{n}}}", _text(arg))
            return template
        raise ExpressionError(f"function {name}() is not known to the harness")


def evaluate(expr: str, context: dict[str, Any], status: str = "success") -> Any:
    return _Parser(expr, context, status).parse()


def substitute(text: str, context: dict[str, Any]) -> str:
    """Every ``${{ … }}`` in ``text`` replaced by its value as text."""
    return _EMBEDDED.sub(lambda m: _text(evaluate(m.group(1), context)), text)


def condition(text: str | None, context: dict[str, Any], status: str) -> bool:
    """A step's ``if:``: ``success()`` when absent, and ANDed with it unless the condition
    calls a status function itself, as the runner does."""
    if text is None:
        return status == "success"
    expr = str(text).strip()
    m = _EMBEDDED.fullmatch(expr)
    if m:
        expr = m.group(1)
    if not re.search(r"\b(success|failure|always|cancelled)\(", expr):
        expr = f"success() && ({expr})"
    return truthy(evaluate(expr, context, status))
