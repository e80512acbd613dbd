"""Partial response selectors: parsing, projection and validation against the Compute schema."""

from __future__ import annotations

import pytest
from google.cloud.compute_v1.types import compute

from lab.emulator.fieldmask import FieldMaskError, apply_field_mask, parse_field_mask, validate_field_mask

PAGE = {
    "kind": "compute#instanceAggregatedList",
    "nextPageToken": "abc",
    "items": {
        "zones/us-central1-a": {
            "instances": [
                {
                    "kind": "compute#instance",
                    "name": "a",
                    "id": "1",
                    "labels": {"env": "lab"},
                    "networkInterfaces": [
                        {
                            "networkIP": "10.0.0.1",
                            "name": "nic0",
                            "accessConfigs": [{"natIP": "34.1.1.1", "type": "ONE_TO_ONE_NAT"}],
                        }
                    ],
                    "disks": [{"boot": True}],
                }
            ]
        },
        "zones/us-central1-b": {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "none"}},
    },
}


def test_projection_keeps_selected_fields():
    selection = parse_field_mask(
        "nextPageToken,items/*/instances(name,labels,networkInterfaces(networkIP,accessConfigs/natIP))"
    )
    projected = apply_field_mask(PAGE, selection)
    assert projected == {
        "nextPageToken": "abc",
        "items": {
            "zones/us-central1-a": {
                "instances": [
                    {
                        "name": "a",
                        "labels": {"env": "lab"},
                        "networkInterfaces": [{"networkIP": "10.0.0.1", "accessConfigs": [{"natIP": "34.1.1.1"}]}],
                    }
                ]
            },
            "zones/us-central1-b": {},
        },
    }


def test_dotted_paths_equal_slashes():
    assert parse_field_mask("items.*.instances.name") == parse_field_mask("items/*/instances/name")


def test_empty_mask_selects_everything():
    assert parse_field_mask("") is None
    assert apply_field_mask(PAGE, None) is PAGE


def test_memo_reuses_instance_projection():
    selection = parse_field_mask("items/*/instances(name)")
    memo = {}
    first = apply_field_mask(PAGE, selection, memo)
    second = apply_field_mask(PAGE, selection, memo)
    assert (
        first["items"]["zones/us-central1-a"]["instances"][0] is second["items"]["zones/us-central1-a"]["instances"][0]
    )
    assert len(memo) == 1


@pytest.mark.parametrize(
    "text",
    [
        "nextPageToken,items/*/instances(id,name,zone,machineType,status,labels,metadata/items)",
        "items/*/instances(networkInterfaces(networkIP,accessConfigs/natIP),scheduling(preemptible))",
        "unreachables,items/*/warning/code",
    ],
)
def test_valid_masks_pass_schema(text):
    validate_field_mask(parse_field_mask(text), compute.InstanceAggregatedList.pb().DESCRIPTOR, text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("items/*/instances(colour)", "'colour'"),
        ("nextPageToken/x", "no sub-fields"),
        ("items/*/instances(name", "missing ')'"),
        ("items//name", "expected a field name"),
    ],
)
def test_invalid_masks_rejected(text, fragment):
    with pytest.raises(FieldMaskError) as raised:
        validate_field_mask(parse_field_mask(text), compute.InstanceAggregatedList.pb().DESCRIPTOR, text)
    assert fragment in str(raised.value)
