"""A safe evaluator for the subset of Spring Expression Language (SpEL) that Styx's `retry_condition` uses.

What a condition means: docs/semantics.md#retry-condition. A hand-written tokenizer and recursive-descent
parser build a small AST that is evaluated against a mapping of variables: nothing is ever passed to
`eval`, and there is no attribute access, no method call and no type reference.

Grammar (SpEL's precedence, lowest first; keywords are case-insensitive):

    expression := or
    or         := and (('||' | 'or') and)*
    and        := relational (('&&' | 'and') relational)*
    relational := sum (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge') sum)?
    sum        := product (('+' | '-') product)*
    product    := unary (('*' | '/' | '%' | 'div' | 'mod') unary)*
    unary      := ('!' | 'not' | '-' | '+')* primary
    primary    := number | string | 'true' | 'false' | 'null' | '#' name | name | '(' expression ')'

Numbers are ints (`42`, `0x2A`; `L` suffix for longs) and decimals (`1.5`, `1e3`, `2.5d`); strings are
'single' or "double" quoted, a doubled quote standing for itself (`'it''s'`). Comparisons do not chain
(`1 < 2 < 3` is a syntax error, as in SpEL).

Evaluation follows SpEL:
- An unknown `#variable` is null. A bare `name` is a property of SpEL's root object, which Styx's context
  does not have: it parses, and evaluating it is an error.
- `==`/`!=` never fail: numbers compare by value (`1 == 1.0`), strings, booleans and nulls compare with
  their own kind, anything else is unequal (`true == 1` is false, `null == 1` is false, `null == null` true).
- Ordering (`<` ...) compares numbers, strings (lexicographically) or booleans (false < true). Null is
  smaller than anything else and equal to null, so `#exitCode < 5` is true when the exit code is unknown.
  Other mixes (`'a' < 1`) are errors.
- `&&`, `||` and `!` need booleans (anything else is an error; SpEL would convert the strings "true" and
  "yes", this evaluator does not) and short-circuit: `false && 5` is false.
- `+` adds numbers or concatenates when either side is a string (`'a' + 1` is `'a1'`, `'a' + null` is
  `'anull'`); `*` repeats a string up to 256 characters, as SpEL does; `-`, `*`, `/`, `%` otherwise need
  numbers. Integer `/` and `%` truncate toward zero as in Java.
- Deliberate differences from SpEL: integers never overflow (Java's wrap at 32/64 bits), division by zero
  is an error for decimals too (Java gives Infinity), and SpEL's assignment, ternary, method calls, `matches`,
  `between`, `instanceof`, `^` and `T(...)` are syntax errors.

A condition allows a retry only if it evaluates to exactly the boolean true; evaluation errors, nulls and
non-boolean results (`21 * 2`, `'foo'`) count as false.
"""

from __future__ import annotations

import enum
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from styx_actors.errors import PicklableError

# Deep nesting is refused with a syntax error instead of exhausting Python's stack. Each parenthesis level
# costs seven parser frames; a node level costs one evaluation frame. A 256-character condition (the
# validator's limit) cannot exceed MAX_TREE_DEPTH; it can exceed MAX_PARENTHESES only with 65 nested pairs.
MAX_PARENTHESES = 64
MAX_TREE_DEPTH = 256
# SpEL refuses to build repeated strings longer than this ('ab' * 200).
MAX_REPEATED_TEXT = 256

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

# Longest alternatives first. `&`, `|` and `=` alone are not operators here.
_SYMBOL = re.compile(r"==|!=|<=|>=|&&|\|\||[<>!+\-*/%()]")
_WORD_OPERATORS = {
    "and": "&&",
    "or": "||",
    "not": "!",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "div": "/",
    "mod": "%",
}
_WORD_LITERALS: dict[str, object] = {"true": True, "false": False, "null": None}
_WHITESPACE = " \t\r\n"

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_HEX = re.compile(r"0[xX]([0-9A-Fa-f]+)([lL]?)")
_DECIMAL = re.compile(
    r"(?P<digits>[0-9]+)(?:"
    r"(?P<real>(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[fFdD]|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
    r"|(?P<long>[lL]))?"
)

_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (("+", "-"), ("*", "/", "%"))


class RetryConditionSyntaxError(PicklableError, ValueError):
    """The text is not a valid condition. `str()` is the parser message, ending with the position."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


class _EvaluationError(Exception):
    """A condition failed while being evaluated; the condition then does not allow a retry."""


# ---------------------------------------------------------------------------------------------------------
# Tokens


class _Kind(enum.Enum):
    LITERAL = "literal"
    VARIABLE = "variable"
    NAME = "name"
    OPERATOR = "operator"
    END = "end"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str  # as written
    position: int
    value: object = None  # a literal's value, a name, or an operator's symbol (`and` ⇒ `&&`)

    def describe(self) -> str:
        return "the end of the expression" if self.kind is _Kind.END else f"'{self.text}'"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    value: str | int | float  # a literal's value
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in _WHITESPACE:
            pos += 1
        elif char in "'\"":
            value, end = _read_string(text, pos)
            tokens.append(_Token(_Kind.LITERAL, text[pos:end], pos, value))
            pos = end
        elif char.isascii() and char.isdigit():
            value, end = _read_number(text, pos)
            tokens.append(_Token(_Kind.LITERAL, text[pos:end], pos, value))
            pos = end
        elif char == "#":
            name = _IDENTIFIER.match(text, pos + 1)
            if name is None:
                raise RetryConditionSyntaxError("expected a variable name after '#'", pos)
            tokens.append(_Token(_Kind.VARIABLE, "#" + name.group(), pos, name.group()))
            pos = name.end()
        elif name := _IDENTIFIER.match(text, pos):
            word = name.group()
            lowered = word.lower()
            if lowered in _WORD_OPERATORS:
                tokens.append(_Token(_Kind.OPERATOR, word, pos, _WORD_OPERATORS[lowered]))
            elif lowered in _WORD_LITERALS:
                tokens.append(_Token(_Kind.LITERAL, word, pos, _WORD_LITERALS[lowered]))
            else:
                tokens.append(_Token(_Kind.NAME, word, pos, word))
            pos = name.end()
        else:
            symbol = _SYMBOL.match(text, pos)
            if symbol is None:
                if char == "=":
                    raise RetryConditionSyntaxError("assignment '=' is not supported (use '==' to compare)", pos)
                raise RetryConditionSyntaxError(f"unexpected character {char!r}", pos)
            tokens.append(_Token(_Kind.OPERATOR, symbol.group(), pos, symbol.group()))
            pos = symbol.end()
    tokens.append(_Token(_Kind.END, "", len(text)))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    """A quoted literal starting at `start`; a doubled quote stands for one quote (SpEL has no backslashes)."""
    quote = text[start]
    parts: list[str] = []
    pos = start + 1
    while True:
        close = text.find(quote, pos)
        if close < 0:
            raise RetryConditionSyntaxError("unterminated string literal", start)
        parts.append(text[pos:close])
        if text.startswith(quote, close + 1):
            parts.append(quote)
            pos = close + 2
        else:
            return "".join(parts), close + 1


def _read_number(text: str, start: int) -> tuple[int | float, int]:
    hex_match = _HEX.match(text, start)
    if hex_match:
        digits, long_suffix = hex_match.groups()
        return _in_int_range(int(digits, 16), bool(long_suffix), hex_match.group(), start), hex_match.end()
    match = _DECIMAL.match(text, start)
    assert match is not None  # the caller saw a digit
    if match.group("real"):
        return float(match.group().rstrip("fFdD")), match.end()
    value = int(match.group("digits"))
    return _in_int_range(value, match.group("long") is not None, match.group(), start), match.end()


def _in_int_range(value: int, is_long: bool, literal: str, position: int) -> int:
    low, high = _INT64 if is_long else _INT32
    if not low <= value <= high:
        kind = "a long" if is_long else "an int"
        raise RetryConditionSyntaxError(f"the value {literal} cannot be parsed as {kind}", position)
    return value


# ---------------------------------------------------------------------------------------------------------
# Syntax tree

Variables = Mapping[str, object]


class _Node:
    depth: int

    def value(self, variables: Variables) -> object:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Literal(_Node):
    constant: object
    depth: int = 1

    def value(self, variables: Variables) -> object:
        return self.constant


@dataclass(frozen=True, slots=True)
class _Variable(_Node):
    name: str
    depth: int = 1

    def value(self, variables: Variables) -> object:
        found = variables.get(self.name)
        if isinstance(found, enum.Enum):
            found = found.value
        if found is None or isinstance(found, (bool, int, float, str)):
            return found
        raise _EvaluationError(f"variable #{self.name} has an unsupported type {type(found).__name__}")


@dataclass(frozen=True, slots=True)
class _RootProperty(_Node):
    name: str
    depth: int = 1

    def value(self, variables: Variables) -> object:
        raise _EvaluationError(f"property '{self.name}' cannot be found on null")


@dataclass(frozen=True, slots=True)
class _Unary(_Node):
    operator: str
    operand: _Node
    depth: int

    def value(self, variables: Variables) -> object:
        return _UNARY[self.operator](self.operand.value(variables))


@dataclass(frozen=True, slots=True)
class _Binary(_Node):
    operator: str
    left: _Node
    right: _Node
    depth: int

    def value(self, variables: Variables) -> object:
        return _BINARY[self.operator](self.left.value(variables), self.right.value(variables))


@dataclass(frozen=True, slots=True)
class _Logical(_Node):
    """`&&` and `||`, which evaluate their right side only when the left does not decide."""

    operator: str
    left: _Node
    right: _Node
    depth: int

    def value(self, variables: Variables) -> object:
        left = _boolean(self.left.value(variables), self.operator)
        if left is (self.operator == "||"):  # `true || …` and `false && …` are decided already
            return left
        return _boolean(self.right.value(variables), self.operator)


# ---------------------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._index = 0
        self._parentheses = 0

    def parse(self) -> _Node:
        root = self._or()
        if self._peek().kind is not _Kind.END:
            raise RetryConditionSyntaxError(
                f"unexpected {self._peek().describe()} after a complete expression", self._peek().position
            )
        return root

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _take_operator(self, operators: tuple[str, ...]) -> _Token | None:
        token = self._peek()
        if token.kind is _Kind.OPERATOR and token.value in operators:
            self._index += 1
            return token
        return None

    def _or(self) -> _Node:
        left = self._and()
        while token := self._take_operator(("||",)):
            left = _build(_Logical, token, left, self._and())
        return left

    def _and(self) -> _Node:
        left = self._relational()
        while token := self._take_operator(("&&",)):
            left = _build(_Logical, token, left, self._relational())
        return left

    def _relational(self) -> _Node:
        left = self._binary(0)
        token = self._take_operator(_COMPARISONS)
        if token is None:
            return left
        comparison = _build(_Binary, token, left, self._binary(0))
        if self._peek().kind is _Kind.OPERATOR and self._peek().value in _COMPARISONS:
            raise RetryConditionSyntaxError("comparisons cannot be chained", self._peek().position)
        return comparison

    def _binary(self, level: int) -> _Node:
        """Left-associative sums (level 0) and products (level 1), built in a loop, not by recursion."""
        operand = self._unary if level == len(_BINARY_LEVELS) - 1 else partial(self._binary, level + 1)
        left = operand()
        while token := self._take_operator(_BINARY_LEVELS[level]):
            left = _build(_Binary, token, left, operand())
        return left

    def _unary(self) -> _Node:
        prefixes: list[_Token] = []
        while token := self._take_operator(("!", "-", "+")):
            prefixes.append(token)
        node = self._primary()
        for token in reversed(prefixes):
            node = _checked_depth(_Unary(str(token.value), node, node.depth + 1), token)
        return node

    def _primary(self) -> _Node:
        token = self._peek()
        self._index += 1
        if token.kind is _Kind.LITERAL:
            return _Literal(token.value)
        if token.kind is _Kind.VARIABLE:
            return _Variable(str(token.value))
        if token.kind is _Kind.NAME:
            return _RootProperty(str(token.value))
        if token.kind is _Kind.OPERATOR and token.value == "(":
            if self._parentheses == MAX_PARENTHESES:
                raise RetryConditionSyntaxError(
                    f"parentheses are nested more than {MAX_PARENTHESES} levels deep", token.position
                )
            self._parentheses += 1
            inner = self._or()
            self._parentheses -= 1
            if self._take_operator((")",)) is None:
                raise RetryConditionSyntaxError(
                    f"expected ')' but found {self._peek().describe()}", self._peek().position
                )
            return inner
        raise RetryConditionSyntaxError(f"expected a value but found {token.describe()}", token.position)


def _build(node_type: type[_Binary] | type[_Logical], token: _Token, left: _Node, right: _Node) -> _Node:
    return _checked_depth(node_type(str(token.value), left, right, max(left.depth, right.depth) + 1), token)


def _checked_depth(node: _Node, token: _Token) -> _Node:
    if node.depth > MAX_TREE_DEPTH:
        message = f"the expression is nested more than {MAX_TREE_DEPTH} levels deep"
        raise RetryConditionSyntaxError(message, token.position)
    return node


# ---------------------------------------------------------------------------------------------------------
# Operators


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _boolean(value: object, symbol: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _EvaluationError(f"'{symbol}' needs a boolean, got {_java_text(value)}")


def _numbers(left: object, right: object, symbol: str) -> tuple[int | float, int | float]:
    if _is_number(left) and _is_number(right):
        return left, right  # type: ignore[return-value]
    raise _EvaluationError(f"'{symbol}' is not defined for {_java_text(left)} and {_java_text(right)}")


def _java_text(value: object) -> str:
    """How Java renders a value when it is concatenated to a string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equals(left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return left == right
    if left is None or right is None:
        return left is right
    if type(left) is not type(right) or not isinstance(left, (str, bool)):
        return False
    return left == right


def _ordering(test: Callable[[Any, Any], bool]) -> Callable[[object, object], bool]:
    """An ordering operator from its Python counterpart (`operator.lt` ...); `compare` checks the operand types."""

    def compare(left: object, right: object) -> bool:
        if _is_number(left) and _is_number(right):
            return test(left, right)  # IEEE semantics: every ordering with NaN is false
        if left is None or right is None:  # null is smaller than anything else
            return test(0 if left is right else -1 if left is None else 1, 0)
        if type(left) is type(right) and isinstance(left, (str, bool)):
            return test(left, right)
        raise _EvaluationError(f"cannot compare {_java_text(left)} with {_java_text(right)}")

    return compare


def _plus(left: object, right: object) -> object:
    if isinstance(left, str) or isinstance(right, str):
        return _java_text(left) + _java_text(right)
    a, b = _numbers(left, right, "+")
    return a + b


def _minus(left: object, right: object) -> object:
    a, b = _numbers(left, right, "-")
    return a - b


def _times(left: object, right: object) -> object:
    if isinstance(left, str) and _is_number(right) and isinstance(right, int):
        if right < 0 or len(left) * right > MAX_REPEATED_TEXT:
            raise _EvaluationError(f"cannot repeat a string {right} times")
        return left * right
    a, b = _numbers(left, right, "*")
    return a * b


def _divide(left: object, right: object) -> object:
    a, b = _numbers(left, right, "/")
    if b == 0:
        raise _EvaluationError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        quotient = abs(a) // abs(b)
        return quotient if (a < 0) == (b < 0) else -quotient
    return a / b


def _remainder(left: object, right: object) -> object:
    a, b = _numbers(left, right, "%")
    if b == 0:
        raise _EvaluationError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder
    return math.fmod(a, b)


def _negate(value: object) -> object:
    if _is_number(value):
        return -value  # type: ignore[operator]
    raise _EvaluationError(f"'-' needs a number, got {_java_text(value)}")


def _unary_plus(value: object) -> object:
    if _is_number(value):
        return value
    raise _EvaluationError(f"'+' needs a number, got {_java_text(value)}")


_UNARY: dict[str, Callable[[object], object]] = {
    "!": lambda value: not _boolean(value, "!"),
    "-": _negate,
    "+": _unary_plus,
}
_BINARY: dict[str, Callable[[object, object], object]] = {
    "==": _equals,
    "!=": lambda left, right: not _equals(left, right),
    "<": _ordering(operator.lt),
    "<=": _ordering(operator.le),
    ">": _ordering(operator.gt),
    ">=": _ordering(operator.ge),
    "+": _plus,
    "-": _minus,
    "*": _times,
    "/": _divide,
    "%": _remainder,
}


# ---------------------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True, slots=True)
class RetryCondition:
    text: str
    _root: _Node

    def evaluate(self, variables: Variables) -> bool:
        """True only if the condition evaluates to the boolean true; any evaluation error is False."""
        try:
            return self._root.value(variables) is True
        except (_EvaluationError, ArithmeticError, ValueError):
            return False


def parse_retry_condition(text: str) -> RetryCondition:
    """Parse a condition; raises RetryConditionSyntaxError (and nothing else) for invalid text."""
    if not isinstance(text, str):
        raise RetryConditionSyntaxError(f"expected a string, got {type(text).__name__}", 0)
    return RetryCondition(text, _Parser(text).parse())


def condition_allows_retry(text: str | None, variables: Variables) -> bool:
    """No condition allows the retry; an unparsable or failing condition does not."""
    if text is None:
        return True
    try:
        condition = parse_retry_condition(text)
    except RetryConditionSyntaxError:
        return False
    return condition.evaluate(variables)
