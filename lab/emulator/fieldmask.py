"""Partial responses: the ``fields`` query parameter and the ``X-Goog-FieldMask`` header.

Google APIs accept the same selector syntax in both places::

    nextPageToken,items/*/instances(name,labels,networkInterfaces/networkIP)

Commas separate selections, ``/`` (or ``.``) descends into a field, parentheses
select several sub-fields, and ``*`` selects every key of a map such as the
``items`` map of an aggregated list. A selection applies to each element of a
list. Selecting a field that the response type does not define is an error
(HTTP 400), which the emulator checks against the protobuf descriptors of
google-cloud-compute.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

# A selection tree: each key maps to the tree of its sub-selection, or to None
# when the whole value is selected.
Selection = dict[str, "Selection | None"]

_NAME_RE = re.compile(r"[A-Za-z0-9_*$]+")


class FieldMaskError(ValueError):
    """Invalid field selection; the API answers such a request with 400."""


def parse_field_mask(text: str) -> Selection | None:
    """Parse a selector string; return None when it selects everything."""
    text = text.strip()
    if not text or text == "*":
        return None
    parser = _Parser(text)
    selection = parser.selections()
    if parser.position != len(text):
        raise FieldMaskError(f"Invalid field selection {text!r}: unexpected {text[parser.position :]!r}.")
    return selection


def apply_field_mask(value: Any, selection: Selection | None, memo: dict[tuple[int, int], Any] | None = None) -> Any:
    """Return a copy of a JSON value that keeps only the selected fields.

    ``memo`` keeps the projections of instances by object and selection
    identity, for callers that project the same stored instances with the same
    parsed selection many times. The caller must keep those instances alive and
    unchanged while the memo is in use, because object ids are reused.
    """
    if selection is None:
        return value
    if isinstance(value, list):
        return [apply_field_mask(item, selection, memo) for item in value]
    if not isinstance(value, dict):
        return value
    memo_key = (id(value), id(selection)) if memo is not None and value.get("kind") == "compute#instance" else None
    if memo_key is not None and memo_key in memo:
        return memo[memo_key]
    result: dict[str, Any] = {}
    wildcard = selection.get("*", False)
    if wildcard is not False:
        for key, item in value.items():
            result[key] = apply_field_mask(item, wildcard, memo)
    for key, sub_selection in selection.items():
        if key != "*" and key in value:
            result[key] = apply_field_mask(value[key], sub_selection, memo)
    if memo_key is not None:
        memo[memo_key] = result
    return result


def validate_field_mask(selection: Selection | None, descriptor: Descriptor, text: str) -> None:
    """Raise FieldMaskError when a selection names a field the message type lacks."""
    if selection is None:
        return
    fields = {field.json_name: field for field in descriptor.fields}
    for key, sub_selection in selection.items():
        if key == "*":
            for field in fields.values():
                _validate_field(field, sub_selection, text)
            continue
        field = fields.get(key)
        if field is None:
            raise FieldMaskError(f"Invalid field selection {key!r} in {text!r}: {descriptor.name} has no such field.")
        _validate_field(field, sub_selection, text)


def _validate_field(field: FieldDescriptor, sub_selection: Selection | None, text: str) -> None:
    if sub_selection is None:
        return
    if field.message_type is None:
        raise FieldMaskError(f"Invalid field selection in {text!r}: {field.json_name} has no sub-fields.")
    if field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        for key, map_selection in sub_selection.items():
            if key != "*" and not re.fullmatch(r"[\w\-/.]+", key):
                raise FieldMaskError(f"Invalid field selection in {text!r}: bad map key {key!r}.")
            if value_field.message_type is not None:
                validate_field_mask(map_selection, value_field.message_type, text)
        return
    validate_field_mask(sub_selection, field.message_type, text)


class _Parser:
    """Parser for ``selection := path ['(' selections ')'] (',' ...)*``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def selections(self) -> Selection:
        result: Selection = {}
        while True:
            _merge(result, self._selection())
            if not self._take(","):
                return result

    def _selection(self) -> Selection:
        path = [self._name()]
        while self._take("/") or self._take("."):
            path.append(self._name())
        leaf: Selection | None = None
        if self._take("("):
            leaf = self.selections()
            if not self._take(")"):
                raise FieldMaskError(f"Invalid field selection {self.text!r}: missing ')'.")
        tree: Selection | None = leaf
        for name in reversed(path):
            tree = {name: tree}
        assert tree is not None
        return tree

    def _name(self) -> str:
        self._skip_space()
        match = _NAME_RE.match(self.text, self.position)
        if not match:
            raise FieldMaskError(
                f"Invalid field selection {self.text!r}: expected a field name at position {self.position}."
            )
        self.position = match.end()
        return match.group(0)

    def _take(self, token: str) -> bool:
        self._skip_space()
        if self.text.startswith(token, self.position):
            self.position += len(token)
            return True
        return False

    def _skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position].isspace():
            self.position += 1


def _merge(target: Selection, addition: Selection) -> None:
    """Merge two selection trees; a whole-value selection (None) wins."""
    for key, sub_selection in addition.items():
        if key not in target:
            target[key] = sub_selection
        elif target[key] is None or sub_selection is None:
            target[key] = None
        else:
            _merge(target[key], sub_selection)
