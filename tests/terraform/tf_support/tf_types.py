"""Terraform type constraints and the conversion of input values to them.

A variable's ``type`` fills in ``optional()`` attributes with their defaults,
which the modules rely on, so the offline evaluation has to convert inputs
the same way. Unlike Terraform, which drops object attributes that the type
does not declare, the conversion reports them: in a tfvars file such an
attribute is almost always a misspelled option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .hcl_expr import (
    UNKNOWN,
    Call,
    EvalError,
    Literal,
    ObjectExpr,
    Reference,
    Scope,
    SetValue,
    TupleExpr,
    UnsupportedExpression,
    evaluate,
    make_set,
    parse_expression,
    parse_template,
    to_string,
    type_name,
)


@dataclass(frozen=True)
class TypeSpec:
    kind: str  # string, number, bool, any, list, set, map, object, tuple
    element: TypeSpec | None = None
    attributes: tuple = ()  # (name, TypeSpec, optional, default node)
    elements: tuple = ()  # TypeSpec per tuple element


ANY = TypeSpec("any")


def parse_type(raw) -> TypeSpec:
    """Build a TypeSpec from the ``type`` attribute of a variable as python-hcl2 returns it."""
    if raw is None:
        return ANY
    # python-hcl2 returns a bare keyword type such as string without ${ }.
    node = parse_template(raw) if raw.startswith("${") else parse_expression(raw)
    return _type_from_node(node)


def _type_from_node(node) -> TypeSpec:
    if isinstance(node, Reference) and node.name in ("string", "number", "bool", "any"):
        return TypeSpec(node.name)
    if isinstance(node, Call) and node.name in ("list", "set", "map") and len(node.args) == 1:
        return TypeSpec(node.name, element=_type_from_node(node.args[0]))
    if (
        isinstance(node, Call)
        and node.name == "object"
        and len(node.args) == 1
        and isinstance(node.args[0], ObjectExpr)
    ):
        attributes = []
        for key_node, value_node in node.args[0].items:
            if not isinstance(key_node, Literal):
                raise UnsupportedExpression(f"object type attribute name {key_node!r}")
            if isinstance(value_node, Call) and value_node.name == "optional":
                default = value_node.args[1] if len(value_node.args) > 1 else None
                attributes.append((key_node.value, _type_from_node(value_node.args[0]), True, default))
            else:
                attributes.append((key_node.value, _type_from_node(value_node), False, None))
        return TypeSpec("object", attributes=tuple(attributes))
    if isinstance(node, Call) and node.name == "tuple" and len(node.args) == 1 and isinstance(node.args[0], TupleExpr):
        return TypeSpec("tuple", elements=tuple(_type_from_node(item) for item in node.args[0].items))
    raise UnsupportedExpression(f"type constraint {node!r}")


@dataclass
class Conversion:
    """Result of converting one input value: the value and any undeclared attributes found."""

    value: Any
    undeclared_attributes: list[str] = field(default_factory=list)


def convert(value, spec: TypeSpec, path: str = "") -> Conversion:
    """Convert a value to a type constraint, or raise EvalError naming the path of the bad part."""
    conversion = Conversion(None)
    conversion.value = _convert(value, spec, path, conversion.undeclared_attributes)
    return conversion


def _convert(value, spec: TypeSpec, path: str, undeclared: list[str]):
    if value is None or value is UNKNOWN or spec.kind == "any":
        return value
    where = path or "value"
    if spec.kind == "string":
        if isinstance(value, (list, dict)):
            raise EvalError(f"{where}: a string is required, got {type_name(value)}")
        return to_string(value)
    if spec.kind == "number":
        if isinstance(value, (bool, list, dict)):
            raise EvalError(f"{where}: a number is required, got {type_name(value)}")
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise EvalError(f"{where}: a number is required, got {value!r}") from None
            return int(number) if number.is_integer() else number
        return value
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise EvalError(f"{where}: a bool is required, got {type_name(value)}")
    if spec.kind in ("list", "set"):
        if not isinstance(value, list):
            raise EvalError(f"{where}: a {spec.kind} is required, got {type_name(value)}")
        items = [_convert(item, spec.element, f"{path}[{index}]", undeclared) for index, item in enumerate(value)]
        return make_set(items) if spec.kind == "set" else items
    if spec.kind == "map":
        if not isinstance(value, dict):
            raise EvalError(f"{where}: a map is required, got {type_name(value)}")
        return {key: _convert(item, spec.element, _join(path, key), undeclared) for key, item in value.items()}
    if spec.kind == "tuple":
        if not isinstance(value, list) or len(value) != len(spec.elements):
            raise EvalError(f"{where}: a tuple of {len(spec.elements)} elements is required")
        return [
            _convert(item, element, f"{path}[{index}]", undeclared)
            for index, (item, element) in enumerate(zip(value, spec.elements, strict=True))
        ]
    if spec.kind == "object":
        return _convert_object(value, spec, path, undeclared)
    raise UnsupportedExpression(f"type kind {spec.kind}")


def _convert_object(value, spec: TypeSpec, path: str, undeclared: list[str]):
    where = path or "value"
    if not isinstance(value, dict):
        raise EvalError(f"{where}: an object is required, got {type_name(value)}")
    declared = {name for name, _, _, _ in spec.attributes}
    undeclared.extend(_join(path, name) for name in value if name not in declared)
    result = {}
    for name, attribute_spec, optional, default in spec.attributes:
        item = value.get(name)
        if name not in value and not optional:
            raise EvalError(f"{where}: attribute {name!r} is required")
        if item is None and default is not None:
            item = evaluate(default, Scope({}))
        result[name] = _convert(item, attribute_spec, _join(path, name), undeclared)
    return result


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


__all__ = ["ANY", "Conversion", "SetValue", "TypeSpec", "convert", "parse_type"]
