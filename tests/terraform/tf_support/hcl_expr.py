"""Parse and evaluate the HCL expressions that python-hcl2 returns as text.

python-hcl2 turns every expression into a string such as
``${local.a || var.b ? "TERMINATE" : "MIGRATE"}`` and keeps no operator
precedence, so this module parses those strings again with the precedence of
the HCL native syntax specification and evaluates them with Terraform's
semantics for the subset this repository uses: literals, templates,
references, indexing, function calls, operators, conditionals and ``for``
expressions. Values that only exist after apply (resource attributes, module
outputs) evaluate to ``UNKNOWN``, as they do in a Terraform plan.

Anything outside the subset raises ``UnsupportedExpression`` instead of
guessing, so a test never passes on an expression it did not understand.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class EvalError(Exception):
    """An expression failed the way Terraform would fail it (null attribute, no regex match, ...)."""


class UnsupportedExpression(Exception):
    """An expression uses HCL syntax or a function that this evaluator does not implement."""


class _Unknown:
    """A value that is known only after apply."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


class SetValue(list):
    """A Terraform set: a list of distinct elements, sorted like Terraform sorts sets of strings."""


# --- Syntax tree --------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Template:
    parts: tuple  # str or node


@dataclass(frozen=True)
class Reference:
    name: str


@dataclass(frozen=True)
class GetAttr:
    target: Any
    name: str


@dataclass(frozen=True)
class Index:
    target: Any
    key: Any


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple
    expand_last: bool = False


@dataclass(frozen=True)
class TupleExpr:
    items: tuple


@dataclass(frozen=True)
class ObjectExpr:
    items: tuple  # (key node, value node)


@dataclass(frozen=True)
class Unary:
    operator: str
    operand: Any


@dataclass(frozen=True)
class Binary:
    operator: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Conditional:
    condition: Any
    true_result: Any
    false_result: Any


@dataclass(frozen=True)
class ForExpr:
    key_var: str | None
    value_var: str
    collection: Any
    key_expr: Any | None  # set for object results
    value_expr: Any
    condition: Any | None
    grouping: bool


@dataclass(frozen=True)
class Parenthesized:
    expression: Any


# Binary operators by precedence, lowest first, as in the HCL native syntax
# specification.
_BINARY_LEVELS = (
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<=", ">=", "<", ">"),
    ("+", "-"),
    ("*", "/", "%"),
)

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER_RE = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # Low-level scanning.

    def error(self, message: str) -> UnsupportedExpression:
        return UnsupportedExpression(f"{message} at offset {self.pos} in {self.text!r}")

    def skip_space(self) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r\n":
                self.pos += 1
            elif self.text.startswith("#", self.pos) or self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end + 1
            elif self.text.startswith("/*", self.pos):
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated comment")
                self.pos = end + 2
            else:
                return

    def peek(self, token: str) -> bool:
        self.skip_space()
        return self.text.startswith(token, self.pos)

    def accept(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.accept(token):
            raise self.error(f"expected {token!r}")

    def peek_keyword(self, word: str) -> bool:
        self.skip_space()
        match = _IDENTIFIER_RE.match(self.text, self.pos)
        return bool(match and match.group(0) == word)

    def identifier(self) -> str:
        self.skip_space()
        match = _IDENTIFIER_RE.match(self.text, self.pos)
        if not match:
            raise self.error("expected an identifier")
        self.pos = match.end()
        return match.group(0)

    # Expressions.

    def expression(self):
        condition = self.binary(0)
        if self.accept("?"):
            true_result = self.expression()
            self.expect(":")
            false_result = self.expression()
            return Conditional(condition, true_result, false_result)
        return condition

    def binary(self, level: int):
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            operator = self.binary_operator(_BINARY_LEVELS[level])
            if operator is None:
                return left
            right = self.binary(level + 1)
            left = Binary(operator, left, right)

    def binary_operator(self, operators: tuple[str, ...]) -> str | None:
        self.skip_space()
        for operator in operators:
            if not self.text.startswith(operator, self.pos):
                continue
            following = self.text[self.pos + len(operator) : self.pos + len(operator) + 1]
            # "=" after "<", ">" or "!" belongs to a longer operator, and "=>"
            # or a lone "=" is not a binary operator at all.
            if operator in ("<", ">") and following == "=":
                continue
            self.pos += len(operator)
            return operator
        return None

    def unary(self):
        if self.accept("!"):
            return Unary("!", self.unary())
        if self.peek("-") and not self.peek("->"):
            self.pos += 1
            return Unary("-", self.unary())
        return self.postfix(self.primary())

    def postfix(self, node):
        while True:
            if self.peek(".") and not self.peek("..."):
                self.pos += 1
                self.skip_space()
                if self.peek("*"):
                    raise self.error("splat expressions are not supported")
                number = re.compile(r"[0-9]+").match(self.text, self.pos)
                if number:
                    self.pos = number.end()
                    node = Index(node, Literal(int(number.group(0))))
                else:
                    node = GetAttr(node, self.identifier())
            elif self.peek("["):
                self.pos += 1
                if self.peek("*"):
                    raise self.error("splat expressions are not supported")
                key = self.expression()
                self.expect("]")
                node = Index(node, key)
            else:
                return node

    def primary(self):
        self.skip_space()
        if self.pos >= len(self.text):
            raise self.error("unexpected end of expression")
        char = self.text[self.pos]
        if char == '"':
            return self.quoted_template()
        if char == "(":
            self.pos += 1
            inner = self.expression()
            self.expect(")")
            return Parenthesized(inner)
        if char == "[":
            return self.tuple_or_for()
        if char == "{":
            return self.object_or_for()
        if self.text.startswith("<<", self.pos):
            raise self.error("heredocs inside expressions are not supported")
        number = _NUMBER_RE.match(self.text, self.pos)
        if number:
            self.pos = number.end()
            text = number.group(0)
            value = float(text)
            return Literal(int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value)
        name = self.identifier()
        if name == "true":
            return Literal(True)
        if name == "false":
            return Literal(False)
        if name == "null":
            return Literal(None)
        if self.peek("::"):
            raise self.error("provider-defined functions are not supported")
        if self.peek("("):
            return self.call(name)
        return Reference(name)

    def call(self, name: str):
        self.expect("(")
        args = []
        expand_last = False
        while not self.accept(")"):
            args.append(self.expression())
            if self.accept("..."):
                expand_last = True
            if not self.accept(","):
                self.expect(")")
                break
        return Call(name, tuple(args), expand_last)

    def tuple_or_for(self):
        self.expect("[")
        if self.peek_keyword("for"):
            return self.for_body("]")
        items = []
        while not self.accept("]"):
            items.append(self.expression())
            if not self.accept(","):
                self.expect("]")
                break
        return TupleExpr(tuple(items))

    def object_or_for(self):
        self.expect("{")
        if self.peek_keyword("for"):
            return self.for_body("}")
        items = []
        while not self.accept("}"):
            key = self.object_key()
            if not (self.accept("=") or self.accept(":")):
                raise self.error("expected '=' or ':' after an object key")
            items.append((key, self.expression()))
            # Elements may be separated by commas or by newlines.
            self.accept(",")
        return ObjectExpr(tuple(items))

    def object_key(self):
        self.skip_space()
        match = _IDENTIFIER_RE.match(self.text, self.pos)
        if match:
            after = self.pos
            self.pos = match.end()
            if (self.peek("=") and not self.peek("==")) or self.peek(":"):
                # A bare identifier key is a literal name, not a reference.
                return Literal(match.group(0))
            self.pos = after
        return self.expression()

    def for_body(self, closing: str):
        self.identifier()  # the "for" keyword
        first = self.identifier()
        second = None
        if self.accept(","):
            second = self.identifier()
        if self.identifier() != "in":
            raise self.error("expected 'in' in a for expression")
        collection = self.expression()
        self.expect(":")
        key_expr = None
        value_expr = self.expression()
        grouping = False
        if closing == "}":
            self.expect("=>")
            key_expr = value_expr
            value_expr = self.expression()
            grouping = self.accept("...")
        condition = None
        if self.peek_keyword("if"):
            self.identifier()
            condition = self.expression()
        self.expect(closing)
        key_var, value_var = (first, second) if second is not None else (None, first)
        return ForExpr(key_var, value_var, collection, key_expr, value_expr, condition, grouping)

    # Templates.

    def quoted_template(self):
        self.expect('"')
        parts: list = []
        literal: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.error("unterminated string")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                break
            if char == "\\":
                literal.append(self.escape())
                continue
            if self.text.startswith("$${", self.pos) or self.text.startswith("%%{", self.pos):
                literal.append(self.text[self.pos + 1 : self.pos + 3])
                self.pos += 3
                continue
            if self.text.startswith("${", self.pos):
                self.flush(literal, parts)
                parts.append(self.interpolation())
                continue
            if self.text.startswith("%{", self.pos):
                raise self.error("template directives are not supported")
            literal.append(char)
            self.pos += 1
        self.flush(literal, parts)
        return _template_node(parts)

    def escape(self) -> str:
        sequence = self.text[self.pos : self.pos + 2]
        simple = {"\\n": "\n", "\\r": "\r", "\\t": "\t", '\\"': '"', "\\\\": "\\"}
        if sequence in simple:
            self.pos += 2
            return simple[sequence]
        if sequence == "\\u":
            code = self.text[self.pos + 2 : self.pos + 6]
            self.pos += 6
            return chr(int(code, 16))
        raise self.error(f"unsupported escape {sequence!r}")

    def interpolation(self):
        self.pos += 2
        self.accept("~")
        node = self.expression()
        self.accept("~")
        self.expect("}")
        return node

    @staticmethod
    def flush(literal: list[str], parts: list) -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()


def _template_node(parts: list):
    if not parts:
        return Literal("")
    if len(parts) == 1 and isinstance(parts[0], str):
        return Literal(parts[0])
    if len(parts) == 1:
        # "${expr}" alone keeps the value's own type, as in Terraform.
        return parts[0]
    return Template(tuple(parts))


def parse_expression(text: str):
    """Parse one HCL expression such as ``var.a == null ? 1 : 2``."""
    parser = _Parser(text)
    node = parser.expression()
    parser.skip_space()
    if parser.pos != len(text):
        raise parser.error("unexpected text after the expression")
    return node


def parse_template(text: str):
    """Parse the content of a quoted string as python-hcl2 returns it, with ``${...}`` parts.

    python-hcl2 has already removed the quotes and resolved escapes outside
    interpolations, so only ``$${`` needs handling in the literal parts.
    """
    parser = _Parser(text)
    parts: list = []
    literal: list[str] = []
    while parser.pos < len(text):
        if text.startswith("$${", parser.pos) or text.startswith("%%{", parser.pos):
            literal.append(text[parser.pos + 1 : parser.pos + 3])
            parser.pos += 3
        elif text.startswith("${", parser.pos):
            parser.flush(literal, parts)
            parts.append(parser.interpolation())
        elif text.startswith("%{", parser.pos):
            raise parser.error("template directives are not supported")
        else:
            literal.append(text[parser.pos])
            parser.pos += 1
    parser.flush(literal, parts)
    return _template_node(parts)


# --- Evaluation -----------------------------------------------------------------


def contains_unknown(value) -> bool:
    """Tell whether a value is unknown or contains an unknown value at any depth."""
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_unknown(item) for item in value)
    return False


def to_string(value) -> str:
    """Convert a primitive value to a string the way Terraform's tostring does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    if value is None:
        raise EvalError("cannot convert null to a string")
    raise EvalError(f"cannot convert {type_name(value)} to a string")


def type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, SetValue):
        return "set"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _as_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise EvalError(f"cannot convert string {value!r} to a number") from None
            return int(number) if number.is_integer() else number
        raise EvalError(f"a number is required, got {type_name(value)}")
    return value


def _as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise EvalError(f"a bool is required, got {type_name(value)}")


def _normalize_number(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def make_set(items) -> SetValue:
    distinct = []
    for item in items:
        if item not in distinct:
            distinct.append(item)
    if all(isinstance(item, str) for item in distinct):
        distinct.sort()
    return SetValue(distinct)


class Scope:
    """Names an expression can refer to: ``var``, ``local``, ``each``, iterators and so on.

    ``roots`` maps a root name to its value, or to a callable that returns
    the attribute for a name (used for locals, which are evaluated on
    demand). A root that is not listed is a resource or data source
    reference and evaluates to ``UNKNOWN``.
    """

    def __init__(self, roots: dict[str, Any], parent: Scope | None = None):
        self.roots = roots
        self.parent = parent

    def child(self, roots: dict[str, Any]) -> Scope:
        return Scope(roots, self)

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.roots:
                return scope.roots[name]
            scope = scope.parent
        return UNKNOWN


class LazyAttributes:
    """A root such as ``local`` whose attributes are computed on first use."""

    def __init__(self, label: str, resolve: Callable[[str], Any]):
        self.label = label
        self.resolve = resolve


def evaluate(node, scope: Scope):
    """Evaluate a parsed expression in a scope."""
    method = _EVALUATORS.get(type(node))
    if method is None:
        raise UnsupportedExpression(f"cannot evaluate {node!r}")
    return method(node, scope)


def _eval_literal(node: Literal, scope: Scope):
    return node.value


def _eval_parenthesized(node: Parenthesized, scope: Scope):
    return evaluate(node.expression, scope)


def _eval_template(node: Template, scope: Scope):
    pieces = []
    for part in node.parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        value = evaluate(part, scope)
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(value, (list, dict)):
            raise EvalError(f"cannot interpolate a {type_name(value)} into a string")
        pieces.append(to_string(value))
    return "".join(pieces)


def _eval_reference(node: Reference, scope: Scope):
    return scope.lookup(node.name)


def _eval_get_attr(node: GetAttr, scope: Scope):
    target = evaluate(node.target, scope)
    if target is UNKNOWN:
        return UNKNOWN
    if isinstance(target, LazyAttributes):
        return target.resolve(node.name)
    if target is None:
        raise EvalError(f"cannot read attribute {node.name!r} of a null value")
    if not isinstance(target, dict):
        raise EvalError(f"cannot read attribute {node.name!r} of a {type_name(target)}")
    if node.name not in target:
        raise EvalError(f"object has no attribute {node.name!r}")
    return target[node.name]


def _eval_index(node: Index, scope: Scope):
    target = evaluate(node.target, scope)
    key = evaluate(node.key, scope)
    if target is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    if target is None:
        raise EvalError("cannot index a null value")
    if isinstance(target, dict):
        key = to_string(key)
        if key not in target:
            raise EvalError(f"key {key!r} not found")
        return target[key]
    if isinstance(target, list):
        index = _as_number(key)
        if not isinstance(index, int) or index < 0 or index >= len(target):
            raise EvalError(f"index {key!r} out of range for a list of {len(target)} elements")
        return target[index]
    raise EvalError(f"cannot index a {type_name(target)}")


def _eval_tuple(node: TupleExpr, scope: Scope):
    return [evaluate(item, scope) for item in node.items]


def _eval_object(node: ObjectExpr, scope: Scope):
    result = {}
    for key_node, value_node in node.items:
        key = evaluate(key_node, scope)
        if key is UNKNOWN:
            return UNKNOWN
        result[to_string(key)] = evaluate(value_node, scope)
    return result


def _eval_unary(node: Unary, scope: Scope):
    operand = evaluate(node.operand, scope)
    if operand is UNKNOWN:
        return UNKNOWN
    if node.operator == "!":
        return not _as_bool(operand)
    return -_as_number(operand)


def _eval_binary(node: Binary, scope: Scope):
    # Terraform releases built before HCL made && and || short-circuit (a
    # change from December 2024) evaluate both operands and report errors from
    # either. required_version allows 1.9, so this evaluator does the same.
    left = evaluate(node.left, scope)
    right = evaluate(node.right, scope)
    operator = node.operator
    if operator in ("==", "!="):
        if contains_unknown(left) or contains_unknown(right):
            return UNKNOWN
        equal = _values_equal(left, right)
        return equal if operator == "==" else not equal
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if operator == "||":
        return _as_bool(left) or _as_bool(right)
    if operator == "&&":
        return _as_bool(left) and _as_bool(right)
    left_number = _as_number(left)
    right_number = _as_number(right)
    if operator == "<":
        return left_number < right_number
    if operator == ">":
        return left_number > right_number
    if operator == "<=":
        return left_number <= right_number
    if operator == ">=":
        return left_number >= right_number
    if operator == "+":
        return _normalize_number(left_number + right_number)
    if operator == "-":
        return _normalize_number(left_number - right_number)
    if operator == "*":
        return _normalize_number(left_number * right_number)
    if operator == "/":
        if right_number == 0:
            raise EvalError("division by zero")
        return _normalize_number(left_number / right_number)
    if operator == "%":
        return _normalize_number(math.fmod(left_number, right_number))
    raise UnsupportedExpression(f"operator {operator!r}")


def _values_equal(left, right) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if type_name(left) != type_name(right) and not (isinstance(left, list) and isinstance(right, list)):
        return False
    return left == right


def _eval_conditional(node: Conditional, scope: Scope):
    condition = evaluate(node.condition, scope)
    if condition is UNKNOWN:
        return UNKNOWN
    # Terraform reports errors only from the branch it selects.
    return evaluate(node.true_result if _as_bool(condition) else node.false_result, scope)


def _eval_for(node: ForExpr, scope: Scope):
    collection = evaluate(node.collection, scope)
    if collection is UNKNOWN:
        return UNKNOWN
    if collection is None:
        raise EvalError("cannot iterate over a null value")
    if isinstance(collection, dict):
        pairs = sorted(collection.items())
    elif isinstance(collection, list):
        pairs = list(enumerate(collection))
    else:
        raise EvalError(f"cannot iterate over a {type_name(collection)}")

    list_result = []
    object_result: dict = {}
    for key, value in pairs:
        roots = {node.value_var: value}
        if node.key_var:
            roots[node.key_var] = key
        inner = scope.child(roots)
        if node.condition is not None:
            keep = evaluate(node.condition, inner)
            if keep is UNKNOWN:
                return UNKNOWN
            if not _as_bool(keep):
                continue
        if node.key_expr is None:
            list_result.append(evaluate(node.value_expr, inner))
            continue
        result_key = evaluate(node.key_expr, inner)
        if result_key is UNKNOWN:
            return UNKNOWN
        result_key = to_string(result_key)
        result_value = evaluate(node.value_expr, inner)
        if node.grouping:
            object_result.setdefault(result_key, []).append(result_value)
        elif result_key in object_result:
            raise EvalError(f"duplicate key {result_key!r} in a for expression; use ... to group")
        else:
            object_result[result_key] = result_value
    return list_result if node.key_expr is None else object_result


def _eval_call(node: Call, scope: Scope):
    if node.name == "can":
        return _call_can(node, scope)
    if node.name == "try":
        return _call_try(node, scope)
    function = FUNCTIONS.get(node.name)
    if function is None:
        raise UnsupportedExpression(f"function {node.name}() is not implemented in the offline evaluator")
    args = [evaluate(arg, scope) for arg in node.args]
    if node.expand_last:
        last = args.pop()
        if last is UNKNOWN:
            return UNKNOWN
        args.extend(last)
    if node.name not in _UNKNOWN_TOLERANT and any(contains_unknown(arg) for arg in args):
        return UNKNOWN
    if any(arg is UNKNOWN for arg in args):
        return UNKNOWN
    return function(*args)


def _call_can(node: Call, scope: Scope):
    try:
        value = evaluate(node.args[0], scope)
    except EvalError:
        return False
    return UNKNOWN if contains_unknown(value) else True


def _call_try(node: Call, scope: Scope):
    last_error = None
    for arg in node.args:
        try:
            return evaluate(arg, scope)
        except EvalError as error:
            last_error = error
    raise EvalError(f"no argument of try() could be evaluated: {last_error}")


_EVALUATORS = {
    Literal: _eval_literal,
    Parenthesized: _eval_parenthesized,
    Template: _eval_template,
    Reference: _eval_reference,
    GetAttr: _eval_get_attr,
    Index: _eval_index,
    TupleExpr: _eval_tuple,
    ObjectExpr: _eval_object,
    Unary: _eval_unary,
    Binary: _eval_binary,
    Conditional: _eval_conditional,
    ForExpr: _eval_for,
    Call: _eval_call,
}


# --- Functions ------------------------------------------------------------------


def _require_list(name: str, value) -> list:
    if isinstance(value, list):
        return value
    raise EvalError(f"{name}() needs a list or set, got {type_name(value)}")


def _require_dict(name: str, value) -> dict:
    if isinstance(value, dict):
        return value
    raise EvalError(f"{name}() needs a map or object, got {type_name(value)}")


def _fn_length(value):
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, dict)):
        return len(value)
    raise EvalError(f"length() needs a string, collection or structural value, got {type_name(value)}")


def _fn_lookup(mapping, key, *default):
    mapping = _require_dict("lookup", mapping)
    if key in mapping:
        return mapping[key]
    if default:
        return default[0]
    raise EvalError(f"lookup() found no key {key!r} and has no default")


def _fn_merge(*mappings):
    result = {}
    for mapping in mappings:
        if mapping is None:
            continue
        result.update(_require_dict("merge", mapping))
    return result


def _fn_coalesce(*values):
    for value in values:
        if value is not None and value != "":
            return value
    raise EvalError("coalesce() found no non-null, non-empty argument")


def _fn_regex(pattern, text):
    match = re.search(_re2_to_python(pattern), to_string(text))
    if match is None:
        raise EvalError(f"pattern {pattern!r} did not match {text!r}")
    return _regex_result(match)


def _fn_regexall(pattern, text):
    return [_regex_result(match) for match in re.finditer(_re2_to_python(pattern), to_string(text))]


def _regex_result(match: re.Match):
    if match.re.groupindex:
        return {name: match.group(name) for name in match.re.groupindex}
    if match.re.groups:
        return list(match.groups())
    return match.group(0)


def _re2_to_python(pattern: str) -> str:
    # RE2 and Python agree on the syntax used here except for named groups.
    return re.sub(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)


_FORMAT_VERB_RE = re.compile(r"%(?P<flags>[-+# 0]*)(?P<width>[0-9]*)(?:\.(?P<precision>[0-9]+))?(?P<verb>[%sdvqtfx])")


def _fn_format(spec, *args):
    remaining = list(args)

    def substitute(match: re.Match) -> str:
        verb = match.group("verb")
        if verb == "%":
            return "%"
        if not remaining:
            raise EvalError(f"format() has too few arguments for {spec!r}")
        value = remaining.pop(0)
        flags, width, precision = match.group("flags"), match.group("width"), match.group("precision")
        python_spec = "%" + flags + width + (f".{precision}" if precision else "")
        if verb == "d":
            return (python_spec + "d") % int(_as_number(value))
        if verb == "f":
            return (python_spec + "f") % float(_as_number(value))
        if verb == "x":
            return (python_spec + "x") % int(_as_number(value))
        if verb == "t":
            return (python_spec + "s") % to_string(_as_bool(value))
        if verb == "q":
            return (python_spec + "s") % json.dumps(to_string(value))
        if verb == "v" and isinstance(value, (list, dict)):
            return (python_spec + "s") % json.dumps(value, separators=(",", ":"))
        return (python_spec + "s") % to_string(value)

    return _FORMAT_VERB_RE.sub(substitute, spec)


def _fn_range(*args):
    numbers = [_as_number(arg) for arg in args]
    if len(numbers) == 1:
        start, stop, step = 0, numbers[0], 1
    elif len(numbers) == 2:
        start, stop, step = numbers[0], numbers[1], 1
    else:
        start, stop, step = numbers
    result = []
    value = start
    while (step > 0 and value < stop) or (step < 0 and value > stop):
        result.append(_normalize_number(value))
        value += step
    return result


def _fn_slice(values, start, end):
    values = _require_list("slice", values)
    if not 0 <= start <= end <= len(values):
        raise EvalError(f"slice() indexes {start}:{end} are out of range for {len(values)} elements")
    return values[int(start) : int(end)]


def _fn_flatten(values):
    result = []
    for item in _require_list("flatten", values):
        if isinstance(item, list):
            result.extend(_fn_flatten(item))
        else:
            result.append(item)
    return result


def _fn_one(values):
    values = _require_list("one", values)
    if len(values) > 1:
        raise EvalError(f"one() got {len(values)} elements")
    return values[0] if values else None


def _fn_cidrhost(prefix, host_number):
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError as error:
        raise EvalError(f"invalid CIDR {prefix!r}: {error}") from None
    number = int(_as_number(host_number))
    if number >= network.num_addresses:
        raise EvalError(f"host number {number} does not fit in {prefix}")
    return str(network.network_address + number)


def _fn_tostring(value):
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        raise EvalError(f"cannot convert {type_name(value)} to a string")
    return to_string(value)


def _fn_tonumber(value):
    return None if value is None else _as_number(value)


def _fn_substr(text, offset, length):
    offset, length = int(offset), int(length)
    if offset < 0:
        offset += len(text)
    return text[offset:] if length < 0 else text[offset : offset + length]


def _fn_distinct(values):
    result = []
    for item in _require_list("distinct", values):
        if not any(_values_equal(item, seen) for seen in result):
            result.append(item)
    return result


def _fn_tomap(value):
    return dict(_require_dict("tomap", value))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": lambda number: abs(_as_number(number)),
    "alltrue": lambda values: all(_as_bool(item) for item in _require_list("alltrue", values)),
    "anytrue": lambda values: any(_as_bool(item) for item in _require_list("anytrue", values)),
    "ceil": lambda number: math.ceil(_as_number(number)),
    "cidrhost": _fn_cidrhost,
    "coalesce": _fn_coalesce,
    "coalescelist": lambda *lists: next((item for item in lists if item), []),
    "compact": lambda values: [item for item in _require_list("compact", values) if item not in (None, "")],
    "concat": lambda *lists: [item for values in lists for item in _require_list("concat", values)],
    "contains": lambda values, value: any(_values_equal(item, value) for item in _require_list("contains", values)),
    "distinct": _fn_distinct,
    "element": lambda values, index: values[int(index) % len(values)],
    "endswith": lambda text, suffix: to_string(text).endswith(suffix),
    "flatten": _fn_flatten,
    "floor": lambda number: math.floor(_as_number(number)),
    "format": _fn_format,
    "join": lambda separator, values: separator.join(to_string(item) for item in _require_list("join", values)),
    "keys": lambda mapping: sorted(_require_dict("keys", mapping)),
    "length": _fn_length,
    "lookup": _fn_lookup,
    "lower": lambda text: to_string(text).lower(),
    "max": lambda *numbers: max(_as_number(number) for number in numbers),
    "merge": _fn_merge,
    "min": lambda *numbers: min(_as_number(number) for number in numbers),
    "one": _fn_one,
    "range": _fn_range,
    "regex": _fn_regex,
    "regexall": _fn_regexall,
    "replace": lambda text, old, new: to_string(text).replace(old, new),
    "reverse": lambda values: list(reversed(_require_list("reverse", values))),
    "setintersection": lambda first, *others: make_set(
        item for item in _require_list("setintersection", first) if all(item in other for other in others)
    ),
    "setsubtract": lambda first, second: make_set(item for item in first if item not in second),
    "setunion": lambda *sets: make_set(item for values in sets for item in values),
    "slice": _fn_slice,
    "sort": lambda values: sorted(to_string(item) for item in _require_list("sort", values)),
    "split": lambda separator, text: to_string(text).split(separator),
    "startswith": lambda text, prefix: to_string(text).startswith(prefix),
    "strcontains": lambda text, part: part in to_string(text),
    "substr": _fn_substr,
    "sum": lambda values: _normalize_number(sum(_as_number(item) for item in _require_list("sum", values))),
    "tolist": lambda values: None if values is None else list(_require_list("tolist", values)),
    "tomap": _fn_tomap,
    "tonumber": _fn_tonumber,
    "toset": lambda values: None if values is None else make_set(_require_list("toset", values)),
    "tostring": _fn_tostring,
    "trimprefix": lambda text, prefix: text[len(prefix) :] if text.startswith(prefix) else text,
    "trimsuffix": lambda text, suffix: text[: -len(suffix)] if suffix and text.endswith(suffix) else text,
    "upper": lambda text: to_string(text).upper(),
    "values": lambda mapping: [mapping[key] for key in sorted(_require_dict("values", mapping))],
    "zipmap": lambda names, values: dict(zip(names, values, strict=True)),
}

# Functions whose result stays known when some elements inside their
# arguments are unknown, as in Terraform.
_UNKNOWN_TOLERANT = frozenset({"concat", "keys", "length", "lookup", "merge", "tolist", "tomap", "values"})
