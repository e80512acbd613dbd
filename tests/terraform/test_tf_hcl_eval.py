"""Unit tests of the offline HCL evaluator that the Terraform invariant tests build on."""

from __future__ import annotations

import pytest
from tf_support.hcl_expr import (
    UNKNOWN,
    EvalError,
    Scope,
    UnsupportedExpression,
    evaluate,
    parse_expression,
    parse_template,
)
from tf_support.model import heredoc_text, literal_value
from tf_support.tf_types import convert, parse_type


def run(text: str, **roots):
    return evaluate(parse_expression(text), Scope(roots))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("7 % 4", 3),
        ("true || false && false", True),
        ("1 == 1 || 2 == 3", True),
        ("!true == false", True),
        ("-2 + 5", 3),
        ("3 >= 3 && 2 < 3", True),
        ('"a" == "a" ? "yes" : "no"', "yes"),
        ("false ? 1 : true ? 2 : 3", 2),
        ('1 == "1"', False),
    ],
)
def test_eval_operator_precedence(text, expected):
    assert run(text) == expected


def test_eval_references_and_indexing():
    variables = {"pools": {"b": {"zone": "us-central1-b"}, "a": {"zone": "us-central1-a"}}, "list": [10, 20]}
    assert run("var.pools.a.zone", var=variables) == "us-central1-a"
    assert run('var.pools["b"].zone', var=variables) == "us-central1-b"
    assert run("var.list[1]", var=variables) == 20
    assert run("var.list.0", var=variables) == 10


def test_eval_null_attribute_raises():
    with pytest.raises(EvalError, match="null"):
        run("var.accelerator.type", var={"accelerator": None})


def test_eval_conditional_skips_other_branch():
    # Terraform reports errors only from the selected branch.
    assert run("var.accelerator == null ? null : var.accelerator.type", var={"accelerator": None}) is None


def test_eval_logical_operators_evaluate_both_sides():
    # Terraform 1.9, which the modules still support, does not short-circuit ||,
    # so an error on the right fails the expression.
    with pytest.raises(EvalError):
        run("var.x == null || var.x.y", var={"x": None})


def test_eval_for_expressions():
    variables = {"pools": {"b": {"count": 0}, "a": {"count": 2}}}
    assert run("[for name, pool in var.pools : name if pool.count > 0]", var=variables) == ["a"]
    assert run("{ for name, pool in var.pools : name => pool.count }", var=variables) == {"a": 2, "b": 0}
    assert run("[for index in range(3) : tostring(index)]") == ["0", "1", "2"]
    assert run('{ for key, value in { "accelerator" = null } : key => value if value != null }') == {}


def test_eval_for_grouping_and_duplicates():
    assert run('{ for item in ["a", "b", "a"] : item => item... }') == {"a": ["a", "a"], "b": ["b"]}
    with pytest.raises(EvalError, match="duplicate key"):
        run('{ for item in ["a", "a"] : item => item }')


def test_eval_templates():
    assert (
        evaluate(
            parse_template("${var.env}-${var.pool}-${var.index}"),
            Scope({"var": {"env": "dev", "pool": "p", "index": 0}}),
        )
        == "dev-p-0"
    )
    # A template of one interpolation keeps the value's type.
    assert evaluate(parse_template("${var.count}"), Scope({"var": {"count": 3}})) == 3
    assert evaluate(parse_template("$${literal}"), Scope({})) == "${literal}"
    assert run('"a\\"b\\\\c"') == 'a"b\\c'


def test_eval_functions():
    assert run('split("-", "us-central1-a")') == ["us", "central1", "a"]
    assert run('join("-", slice(split("-", "us-central1-a"), 0, 2))') == "us-central1"
    assert run('contains(["a2", "a3", "g2"], "a2")') is True
    assert run('lookup({ a = 1 }, "b", null)') is None
    assert run("merge({ a = 1, b = 2 }, { b = 3 })") == {"a": 1, "b": 3}
    assert run('format("%02d-%s", 7, "x")') == "07-x"
    assert run('can(regex("^[a-z]+$", "abc"))') is True
    assert run('can(regex("^[a-z]+$", "ABC"))') is False
    assert run('regex("^(.+)-[a-z]$", "us-central1-a")') == ["us-central1"]
    assert run('can(cidrhost("10.10.0.0/20", 0))') is True
    assert run('can(cidrhost("10.10.0.0/33", 0))') is False
    assert run('setintersection(["a", "b"], ["b", "c"])') == ["b"]
    assert run('coalesce(null, "none")') == "none"
    assert run('try(var.x.y, "fallback")', var={"x": None}) == "fallback"
    assert run("floor(2.5) == 2.5") is False


def test_eval_unknown_propagates():
    assert run("var.email", var={"email": UNKNOWN}) is UNKNOWN
    assert run('var.email == "x"', var={"email": UNKNOWN}) is UNKNOWN
    assert run('can(regex("a", var.email))', var={"email": UNKNOWN}) is UNKNOWN
    assert run("google_compute_resource_policy.placement[0].id") is UNKNOWN
    # merge keeps the known keys of a map with some unknown values.
    assert run("merge(var.a, { b = 1 })", var={"a": {"a": UNKNOWN}}) == {"a": UNKNOWN, "b": 1}


def test_eval_unsupported_syntax_raises():
    with pytest.raises(UnsupportedExpression):
        run("var.list[*].id", var={"list": []})
    with pytest.raises(UnsupportedExpression):
        run("unknown_function(1)")
    with pytest.raises(UnsupportedExpression):
        parse_template("%{ if true }x%{ endif }")


def test_type_conversion_fills_optional_defaults():
    spec = parse_type(
        "${map(object({role = string, count = number, spot = optional(bool, false), zone = optional(string)}))}"
    )
    conversion = convert({"p": {"role": "training", "count": "2", "typo": 1}}, spec, "pools")
    assert conversion.value == {"p": {"role": "training", "count": 2, "spot": False, "zone": None}}
    assert conversion.undeclared_attributes == ["pools.p.typo"]


def test_type_conversion_rejects_missing_attribute():
    spec = parse_type("${object({zone = string})}")
    with pytest.raises(EvalError, match="attribute 'zone' is required"):
        convert({}, spec, "pool")


def test_type_conversion_keyword_types():
    assert convert("5", parse_type("number")).value == 5
    assert convert(True, parse_type("string")).value == "true"
    with pytest.raises(EvalError):
        convert([1], parse_type("string"))


def test_heredoc_and_literal_values():
    assert heredoc_text("<<-EOT\n    line one\n    line two\n  EOT") == "line one\nline two\n"
    raw = {"a": [1, "x", True, None], "b": {"c": 2.5}}
    assert literal_value(raw) == raw
