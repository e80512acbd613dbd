"""List filter expressions: parsing and evaluation on instance JSON."""

from __future__ import annotations

import pytest

from lab.emulator.filters import FilterError, matches, parse_filter

INSTANCE = {
    "name": "train-a100-0001",
    "status": "RUNNING",
    "labels": {"env": "prod", "pool": "train-a100"},
    "scheduling": {"automaticRestart": False, "provisioningModel": "SPOT"},
    "networkInterfaces": [{"networkIP": "10.0.0.5"}, {"networkIP": "10.1.0.5"}],
    "id": "1234",
}
FIELDS = {"name", "status", "labels", "scheduling", "networkInterfaces", "id", "cpuPlatform"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("", True),
        ("status = RUNNING", True),
        ("status=RUNNING", True),
        ("status = TERMINATED", False),
        ("status != TERMINATED", True),
        ('labels.env = "prod"', True),
        ("labels.env = dev", False),
        ("labels.pool:*", True),
        ("labels.owner:*", False),
        ("name = train-*", True),
        ("name = infer-*", False),
        ("name : a100", True),
        ("scheduling.automaticRestart = false", True),
        ("scheduling.automaticRestart = true", False),
        ("networkInterfaces.networkIP = 10.1.0.5", True),
        ("id > 1000", True),
        ("id < 1000", False),
        ("(status = RUNNING) (labels.env = prod)", True),
        ("(status = RUNNING) (labels.env = dev)", False),
        ("(status = RUNNING) AND (labels.env = dev)", False),
        ("(status = TERMINATED) OR (status = RUNNING)", True),
        ("((status = TERMINATED) OR (status = STOPPING))", False),
        ("NOT status = TERMINATED", True),
        ("-labels.env = prod", False),
        ("name eq train-.*", True),
        ("name eq 'infer-.*'", False),
        ("name ne .*0001", False),
        ("(name eq train-.*) (status eq RUN.*)", True),
    ],
)
def test_filter_matches(expression, expected):
    assert matches(parse_filter(expression, FIELDS), INSTANCE) is expected


def test_or_binds_tighter_than_and():
    # AIP-160: "a AND b OR c" is "a AND (b OR c)".
    node = parse_filter("(status = TERMINATED) AND (labels.env = prod) OR (status = RUNNING)", FIELDS)
    assert matches(node, INSTANCE) is False


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("colour = red", "unknown field 'colour'"),
        ("status =", "expected 'field OPERATOR value'"),
        ("(status = RUNNING", "missing ')'"),
        ("(name eq a.*) (status = RUNNING)", "cannot be mixed"),
        ("(name eq a.*) OR (name eq b.*)", "juxtaposition"),
        ("status = RUNNING )", "unexpected text"),
    ],
)
def test_invalid_filter_rejected(expression, fragment):
    with pytest.raises(FilterError) as raised:
        parse_filter(expression, FIELDS)
    assert fragment in str(raised.value)
