"""List filter expressions of the Compute API, parsed and evaluated on JSON resources.

The Compute API accepts two filter dialects that a request cannot mix:

* AIP-160 comparisons: ``field OP value`` with OP one of ``= != < > <= >= :``.
  Expressions are joined by ``AND``, ``OR`` or by juxtaposition (an implicit
  AND), and grouped with parentheses. As AIP-160 defines it, ``OR`` binds
  tighter than ``AND``. ``field:*`` tests that a field (often a label) is set,
  and ``*`` inside a value of ``=`` or ``!=`` is a wildcard.
* Regular expressions: ``field eq regex`` and ``field ne regex``, each
  comparison matching the whole field value, combined only by juxtaposition.

Field paths use dots (``labels.env``, ``scheduling.automaticRestart``). A path
through a list matches when any element matches, as the API does for
``networkInterfaces.networkIP``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any


class FilterError(ValueError):
    """Invalid filter expression; the API answers such a request with 400."""


@dataclass(frozen=True)
class Comparison:
    field: str
    operator: str
    value: str


@dataclass(frozen=True)
class Junction:
    operator: str  # "AND" or "OR"
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Negation:
    operand: Node


Node = Comparison | Junction | Negation

_REGEX_OPERATORS = frozenset({"eq", "ne"})

_COMPARISON_RE = re.compile(
    r"""
    (?P<field>[A-Za-z_][\w.\-]*)
    \s*
    (?P<operator>!=|<=|>=|=|<|>|:|\beq\b|\bne\b)
    \s*
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s()]+)
    """,
    re.VERBOSE,
)


def parse_filter(text: str, known_fields: Collection[str] | None = None) -> Node | None:
    """Parse a filter expression; return None for an empty filter.

    ``known_fields`` lists the top-level JSON field names of the listed
    resource. A comparison on any other field raises FilterError, as the API
    rejects unknown fields.
    """
    if not text or not text.strip():
        return None
    parser = _Parser(text, known_fields)
    node = parser.parse()
    operators = {comparison.operator for comparison in _comparisons(node)}
    if operators & _REGEX_OPERATORS and operators - _REGEX_OPERATORS:
        raise FilterError(
            f"Invalid list filter expression {text!r}: eq/ne regular expressions cannot be mixed with other operators."
        )
    if operators & _REGEX_OPERATORS and _has_explicit_junction(node):
        raise FilterError(
            f"Invalid list filter expression {text!r}: eq/ne expressions combine only by juxtaposition, not AND or OR."
        )
    return node


def matches(node: Node | None, resource: dict[str, Any]) -> bool:
    """Tell whether a JSON resource passes a parsed filter (None passes everything)."""
    if node is None:
        return True
    if isinstance(node, Comparison):
        return _compare(node, resource)
    if isinstance(node, Negation):
        return not matches(node.operand, resource)
    if node.operator == "AND":
        return all(matches(operand, resource) for operand in node.operands)
    return any(matches(operand, resource) for operand in node.operands)


def _comparisons(node: Node):
    if isinstance(node, Comparison):
        yield node
    elif isinstance(node, Negation):
        yield from _comparisons(node.operand)
    else:
        for operand in node.operands:
            yield from _comparisons(operand)


def _has_explicit_junction(node: Node) -> bool:
    if isinstance(node, Negation):
        return True
    if isinstance(node, Junction):
        if node.operator == "OR" or isinstance(node, _ExplicitAnd):
            return True
        return any(_has_explicit_junction(operand) for operand in node.operands)
    return False


@dataclass(frozen=True)
class _ExplicitAnd(Junction):
    """An AND written out in the text, which the regex dialect does not allow."""

    explicit: bool = True


class _Parser:
    """Recursive-descent parser for the AIP-160 grammar subset the API documents.

    expression := sequence ("AND" sequence)*
    sequence   := factor factor*              (implicit AND)
    factor     := term ("OR" term)*
    term       := ("NOT" | "-")? simple
    simple     := "(" expression ")" | comparison
    """

    def __init__(self, text: str, known_fields: Collection[str] | None) -> None:
        self.text = text
        self.position = 0
        self.known_fields = known_fields

    def parse(self) -> Node:
        node = self._expression()
        self._skip_space()
        if self.position != len(self.text):
            raise self._error(f"unexpected text {self.text[self.position :]!r}")
        return node

    def _expression(self) -> Node:
        operands = [self._sequence()]
        while self._keyword("AND"):
            operands.append(self._sequence())
        if len(operands) == 1:
            return operands[0]
        return _ExplicitAnd("AND", tuple(operands))

    def _sequence(self) -> Node:
        operands = [self._factor()]
        while self._starts_term():
            operands.append(self._factor())
        return operands[0] if len(operands) == 1 else Junction("AND", tuple(operands))

    def _factor(self) -> Node:
        operands = [self._term()]
        while self._keyword("OR"):
            operands.append(self._term())
        return operands[0] if len(operands) == 1 else Junction("OR", tuple(operands))

    def _term(self) -> Node:
        if self._keyword("NOT"):
            return Negation(self._simple())
        self._skip_space()
        if self.text.startswith("-", self.position):
            self.position += 1
            return Negation(self._simple())
        return self._simple()

    def _simple(self) -> Node:
        self._skip_space()
        if self.text.startswith("(", self.position):
            self.position += 1
            node = self._expression()
            self._skip_space()
            if not self.text.startswith(")", self.position):
                raise self._error("missing ')'")
            self.position += 1
            return node
        match = _COMPARISON_RE.match(self.text, self.position)
        if not match:
            raise self._error(f"expected 'field OPERATOR value' at {self.text[self.position :]!r}")
        self.position = match.end()
        field = match.group("field")
        if self.known_fields is not None and field.split(".", 1)[0] not in self.known_fields:
            raise self._error(f"unknown field {field!r}")
        return Comparison(field, match.group("operator"), _unquote(match.group("value")))

    def _starts_term(self) -> bool:
        self._skip_space()
        if self.position >= len(self.text) or self.text.startswith(")", self.position):
            return False
        return not (self._peek_keyword("AND") or self._peek_keyword("OR"))

    def _keyword(self, word: str) -> bool:
        if self._peek_keyword(word):
            self._skip_space()
            self.position += len(word)
            return True
        return False

    def _peek_keyword(self, word: str) -> bool:
        self._skip_space()
        end = self.position + len(word)
        if self.text[self.position : end] != word:
            return False
        return end == len(self.text) or self.text[end] in " \t\n("

    def _skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position].isspace():
            self.position += 1

    def _error(self, detail: str) -> FilterError:
        return FilterError(f"Invalid list filter expression {self.text!r}: {detail}.")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _field_values(resource: Any, path: list[str]) -> list[Any]:
    """Collect the values at a dotted path, fanning out through lists."""
    values = [resource]
    for part in path:
        next_values = []
        for value in values:
            if isinstance(value, list):
                next_values.extend(item.get(part) for item in value if isinstance(item, dict) and part in item)
            elif isinstance(value, dict) and part in value:
                next_values.append(value[part])
        values = next_values
    flattened = []
    for value in values:
        if isinstance(value, list):
            flattened.extend(value)
        else:
            flattened.append(value)
    return flattened


def _compare(comparison: Comparison, resource: dict[str, Any]) -> bool:
    values = _field_values(resource, comparison.field.split("."))
    operator, expected = comparison.operator, comparison.value

    if operator == ":":
        if expected == "*":
            return bool(values)
        return any(_text(value).find(expected) >= 0 for value in values)
    if operator in _REGEX_OPERATORS:
        pattern = re.compile(expected)
        found = any(pattern.fullmatch(_text(value)) for value in values)
        return found if operator == "eq" else not found
    if operator in ("=", "!="):
        found = any(_equals(value, expected) for value in values)
        return found if operator == "=" else not found
    return any(_ORDERINGS[operator](value, expected) for value in values)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equals(value: Any, expected: str) -> bool:
    if isinstance(value, bool):
        return _text(value) == expected.lower()
    if "*" in expected:
        return fnmatch.fnmatchcase(_text(value), expected)
    return _text(value) == expected


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, str], bool]:
    def check(value: Any, expected: str) -> bool:
        try:
            return compare(float(value), float(expected))
        except (TypeError, ValueError):
            return compare(_text(value), expected)

    return check


_ORDERINGS = {
    "<": _ordered(lambda a, b: a < b),
    ">": _ordered(lambda a, b: a > b),
    "<=": _ordered(lambda a, b: a <= b),
    ">=": _ordered(lambda a, b: a >= b),
}
