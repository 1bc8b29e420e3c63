"""The query grammar of ``traj.runs.where("x >= 2 and y < 7")`` and ``pytraj runs --where``.

A small tokenizer and a recursive-descent parser; nothing is ever passed to Python's
``eval``. The grammar (keywords are case-insensitive)::

    expression := disjunction
    disjunction := conjunction ("or" conjunction)*
    conjunction := negation ("and" negation)*
    negation   := "not" negation | primary
    primary    := "(" expression ")" | condition
    condition  := NAME OP literal
                | NAME ["not"] "in" "[" [literal ("," literal)*] "]"
                | NAME "is" ["not"] "null"
    OP         := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
    literal    := NUMBER | STRING | "true" | "false" | "null" | "none"
    NAME       := letters, digits, "_" and "." (not starting with a digit),
                  or any text between backticks: `odd-name`
    NUMBER     := an int (123, -4) or a float (1.5, -2e-3, .5, inf, nan)
    STRING     := 'text' or "text" (a backslash escapes the next character)

>>> parse("x >= 2 and not (y in [1, 2] or name == 'a')")
And(left=Compare(name='x', op='ge', value=2), right=Not(operand=Or(left=In(name='y', \
values=(1, 2), negated=False), right=Compare(name='name', op='eq', value='a'))))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pytraj.errors import QuerySyntaxError

__all__ = ["And", "Compare", "Expression", "In", "IsNull", "Not", "Or", "names_in", "parse"]


@dataclass(frozen=True)
class Compare:
    """``name op value`` with ``op`` one of ``eq ne lt le gt ge``."""

    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class In:
    """``name in [values]`` (``negated``: ``not in``)."""

    name: str
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull:
    """``name is null`` (``negated``: ``is not null``): whether a run has no value."""

    name: str
    negated: bool


@dataclass(frozen=True)
class Not:
    operand: Expression


@dataclass(frozen=True)
class And:
    left: Expression
    right: Expression


@dataclass(frozen=True)
class Or:
    left: Expression
    right: Expression


Expression = Compare | In | IsNull | Not | And | Or

_OPERATORS = {"==": "eq", "=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_KEYWORDS = {"and", "or", "not", "in", "is", "true", "false", "null", "none", "inf", "nan"}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<quoted>`[^`]*`)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|<|>|=)
  | (?P<punct>[()\[\],])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # name, keyword, number, string, op, punct, end
    text: str
    position: int
    value: Any = None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _error(text, position, f"unexpected character {text[position]!r}")
        kind = match.lastgroup
        raw = match.group()
        assert kind is not None
        if kind == "number":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(_Token("number", raw, position, value))
        elif kind == "name":
            lowered = raw.lower()
            if lowered in _KEYWORDS:
                tokens.append(_Token("keyword", lowered, position))
            else:
                tokens.append(_Token("name", raw, position, raw))
        elif kind == "quoted":
            tokens.append(_Token("name", raw, position, raw[1:-1]))
        elif kind == "string":
            tokens.append(_Token("string", raw, position, re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif kind in ("op", "punct"):
            tokens.append(_Token(kind, raw, position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _error(text: str, position: int, problem: str) -> QuerySyntaxError:
    return QuerySyntaxError(
        f"cannot read the query {text!r}: {problem} at position {position} "
        f"(write e.g. \"x >= 2 and y in [1, 2] and not name == 'a'\")"
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.at = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def _take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _is(self, kind: str, text: str | None = None) -> bool:
        token = self.token
        return token.kind == kind and (text is None or token.text == text)

    def _expect(self, kind: str, text: str, what: str) -> None:
        if not self._is(kind, text):
            raise self._unexpected(what)
        self.at += 1

    def _unexpected(self, what: str) -> QuerySyntaxError:
        token = self.token
        found = "the end" if token.kind == "end" else repr(token.text)
        return _error(self.text, token.position, f"expected {what}, found {found}")

    def parse(self) -> Expression:
        if self._is("end"):
            raise _error(self.text, 0, "the query is empty")
        expression = self._disjunction()
        if not self._is("end"):
            raise self._unexpected("'and', 'or' or the end")
        return expression

    def _disjunction(self) -> Expression:
        left = self._conjunction()
        while self._is("keyword", "or"):
            self.at += 1
            left = Or(left, self._conjunction())
        return left

    def _conjunction(self) -> Expression:
        left = self._negation()
        while self._is("keyword", "and"):
            self.at += 1
            left = And(left, self._negation())
        return left

    def _negation(self) -> Expression:
        if self._is("keyword", "not"):
            self.at += 1
            return Not(self._negation())
        if self._is("punct", "("):
            self.at += 1
            inner = self._disjunction()
            self._expect("punct", ")", "')'")
            return inner
        return self._condition()

    def _condition(self) -> Expression:
        if not self._is("name"):
            raise self._unexpected("a column name")
        name = self._take().value
        if self._is("op"):
            op = _OPERATORS[self._take().text]
            return Compare(name, op, self._literal())
        negated = False
        if self._is("keyword", "is"):
            self.at += 1
            if self._is("keyword", "not"):
                self.at += 1
                negated = True
            if not (self._is("keyword", "null") or self._is("keyword", "none")):
                raise self._unexpected("'null'")
            self.at += 1
            return IsNull(name, negated)
        if self._is("keyword", "not"):
            self.at += 1
            negated = True
            if not self._is("keyword", "in"):
                raise self._unexpected("'in'")
        if self._is("keyword", "in"):
            self.at += 1
            return In(name, self._list(), negated)
        raise self._unexpected("an operator (== != < <= > >=), 'in' or 'is'")

    def _list(self) -> tuple[Any, ...]:
        self._expect("punct", "[", "'['")
        values: list[Any] = []
        if self._is("punct", "]"):
            self.at += 1
            return ()
        while True:
            values.append(self._literal())
            if self._is("punct", "]"):
                self.at += 1
                return tuple(values)
            self._expect("punct", ",", "',' or ']'")

    def _literal(self) -> Any:
        token = self.token
        if token.kind in ("number", "string"):
            self.at += 1
            return token.value
        if token.kind == "keyword" and token.text in ("true", "false", "null", "none"):
            self.at += 1
            return {"true": True, "false": False}.get(token.text)
        if token.kind == "keyword" and token.text in ("inf", "nan"):
            self.at += 1
            return float(token.text)
        raise self._unexpected("a value (a number, a 'string', true, false or null)")


def parse(text: str) -> Expression:
    """Parse a query string into an expression tree.

    Raises
    ------
    QuerySyntaxError
        When ``text`` does not follow the grammar (the message shows where).
    """
    if not isinstance(text, str):
        raise QuerySyntaxError(f"a query must be a str, got {type(text).__name__}")
    return _Parser(text).parse()


def names_in(expression: Expression) -> list[str]:
    """The column names an expression uses, in order of appearance, once each."""
    found: dict[str, None] = {}

    def walk(node: Expression) -> None:
        if isinstance(node, Compare | In | IsNull):
            found[node.name] = None
        elif isinstance(node, Not):
            walk(node.operand)
        else:
            walk(node.left)
            walk(node.right)

    walk(expression)
    return list(found)
