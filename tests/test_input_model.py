"""Columns from botocore's model: every leaf member of both services is a column at its path.

The leaves are read from the model here, independently of bulk's own walk, so a member AWS
adds to either model is covered (and must land in the request) without a change to this file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.model import ServiceModel

from bulk.input.columns import columns_for, model_columns
from bulk.input.validate import Validator
from bulk.models import SERVICES, InputRow, Row

REGION = "us-east-1"
# bulk's own columns, beside the set's members.
OWN_KINDS = {"name", "tenants", "destinations", "region", "profile", "role"}

Path = tuple[str, ...]


def input_shape(service: str) -> Any:
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model("CreateConfigurationSet").input_shape


def model_leaves(service: str) -> dict[str, tuple[Path, Any]]:
    """Each leaf member by its name: scalars, lists of scalars, and (as the shape itself) a
    union whose choices include a structure. Not the name, not Tags (tag:KEY columns)."""
    leaves: dict[str, tuple[Path, Any]] = {}

    def walk(structure: Any, path: Path) -> None:
        for name, member in structure.members.items():
            here = (*path, name)
            if not path and name in ("ConfigurationSetName", "Tags"):
                continue
            assert name not in leaves, f"{service}: two leaves named {name}"
            if member.type_name == "structure":
                if member.is_tagged_union and any(
                    choice.type_name == "structure" for choice in member.members.values()
                ):
                    leaves[name] = (here, member)
                walk(member, here)
            else:
                leaves[name] = (here, member)

    walk(input_shape(service), ())
    return leaves


def sample(shape: Any) -> tuple[Any, Any]:
    """A valid cell for a member of ``shape`` and the request value it becomes."""
    kind = shape.type_name
    enum = shape.metadata.get("enum")
    if kind == "structure":  # a union: the cell names a choice (any case)
        choice = next(n for n, m in shape.members.items() if m.type_name == "structure")
        return choice.lower(), {choice: {}}
    if kind == "list":
        member = shape.member
        if member.metadata.get("enum"):
            values = list(member.metadata["enum"])
            return " , ".join(value.lower() for value in values), values
        cells, values = zip(*(sample(member), sample(member)), strict=True)
        return ",".join(str(cell) for cell in cells), list(values)
    if enum:
        return enum[-1].lower(), enum[-1]  # any case: the model's spelling goes out
    if kind == "string":
        text = "a" * max(shape.metadata.get("min", 1), 8)
        return text, text
    if kind == "boolean":
        return "yes", True
    if kind in ("integer", "long"):
        number = shape.metadata.get("min", 1)
        return str(number), number
    if kind in ("float", "double"):
        return "1.5", 1.5
    if kind == "timestamp":
        return "2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)
    raise AssertionError(f"no sample for a {kind} member: add one here")


def required_with(root: Any, path: Path) -> list[tuple[Path, Any]]:
    """The leaves the model requires beside the member at ``path`` (required siblings of
    the structures on its way, and theirs in turn)."""

    def fill(at: Path, shape: Any) -> list[tuple[Path, Any]]:
        if shape.type_name != "structure":
            return [(at, shape)]
        return [
            leaf
            for each in shape.required_members
            for leaf in fill((*at, each), shape.members[each])
        ]

    needed: list[tuple[Path, Any]] = []
    node = root
    for depth, step in enumerate(path):
        if depth:  # the root's only required member is the name, always set
            for each in node.required_members:
                if each != step:
                    needed += fill((*path[:depth], each), node.members[each])
        node = node.members[step]
    return needed


def put(request: dict[str, Any], path: Path, value: Any) -> None:
    for step in path[:-1]:
        request = request.setdefault(step, {})
    if isinstance(value, dict):  # a union's choice: merged with what its columns set
        request.setdefault(path[-1], {}).update(value)
    else:
        request[path[-1]] = value


CASES = [(service, name) for service in SERVICES for name in model_leaves(service)]


class TestEveryLeafIsAColumn:
    @pytest.mark.parametrize("service", SERVICES)
    def test_the_columns_are_the_models_leaves(self, service: str) -> None:
        columns = columns_for(service)
        members = {name for name, column in columns.items() if column.kind not in OWN_KINDS}
        assert members == set(model_leaves(service))
        for name, (path, _) in model_leaves(service).items():
            assert columns[name].path == path

    @pytest.mark.parametrize(("service", "column"), CASES, ids=[f"{s}-{c}" for s, c in CASES])
    def test_a_valid_cell_lands_at_its_path(self, service: str, column: str) -> None:
        root = input_shape(service)
        path, shape = model_leaves(service)[column]
        cells: dict[str, Any] = {"ConfigurationSetName": "tenant-0001"}
        expected: dict[str, Any] = {"ConfigurationSetName": "tenant-0001"}
        by_path = {where: name for name, (where, _) in model_leaves(service).items()}
        for where, each in [(path, shape), *required_with(root, path)]:
            cell, value = sample(each)
            cells[by_path[where]] = cell
            put(expected, where, value)
        result = Validator(service, region=REGION).validate(InputRow(1, cells))
        assert isinstance(result, Row), result
        assert result.request == expected

    def test_the_sesv2_columns_the_design_names(self) -> None:
        columns = columns_for("sesv2")
        for name in (
            "SuppressedReasons",
            "SuppressionScope",
            "ConditionThresholdEnabled",
            "ConfidenceVerdictThreshold",
            "EngagementMetrics",
            "OptimizedSharedDelivery",
            "ArchiveArn",
            "SigningScheme",
            "SignatureFormat",
            "TenantName",
            "EventDestinations",
        ):
            assert name in columns
        assert columns["SuppressedReasons"].kind == "list"
        assert columns["SigningScheme"].kind == "union"
        assert columns["SigningScheme"].enum == ("DefaultScheme", "SmimeScheme")

    def test_pinpoint_email_has_event_destinations_but_no_tenants(self) -> None:
        columns = columns_for("pinpoint-email")
        assert "EventDestinations" in columns
        assert "TenantName" not in columns
        assert "SuppressedReasons" not in columns


def fake_input(members: dict[str, Any], shapes: dict[str, Any]) -> Any:
    """The CreateConfigurationSet input shape of a made-up service model."""
    model = {
        "metadata": {
            "protocol": "rest-json",
            "apiVersion": "2020-01-01",
            "endpointPrefix": "fake",
            "serviceId": "Fake",
            "signatureVersion": "v4",
        },
        "operations": {
            "CreateConfigurationSet": {
                "name": "CreateConfigurationSet",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "Input"},
            }
        },
        "shapes": {
            "Input": {
                "type": "structure",
                "members": {"ConfigurationSetName": {"shape": "Text"}, **members},
            },
            "Text": {"type": "string"},
            "Flag": {"type": "boolean"},
            **shapes,
        },
    }
    return ServiceModel(model).operation_model("CreateConfigurationSet").input_shape


class TestAModelOfTheFuture:
    def test_two_leaves_with_one_name_fail_loudly(self) -> None:
        shape = fake_input(
            {"A": {"shape": "Options"}, "B": {"shape": "Options"}},
            {"Options": {"type": "structure", "members": {"Enabled": {"shape": "Flag"}}}},
        )
        with pytest.raises(RuntimeError, match=r"members A\.Enabled and B\.Enabled share"):
            model_columns(shape)

    def test_a_map_or_a_list_of_structures_is_a_json_column(self) -> None:
        shape = fake_input(
            {"Labels": {"shape": "Labels"}, "Rules": {"shape": "Rules"}},
            {
                "Labels": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Text"}},
                "Rules": {"type": "list", "member": {"shape": "Rule"}},
                "Rule": {"type": "structure", "members": {"On": {"shape": "Flag"}}},
            },
        )
        columns = model_columns(shape)
        assert {name: column.kind for name, column in columns.items()} == {
            "Labels": "json",
            "Rules": "json",
        }

    def test_a_union_of_simple_values_is_set_by_its_leaf_columns(self) -> None:
        shape = fake_input(
            {"Choice": {"shape": "Choice"}},
            {
                "Choice": {
                    "type": "structure",
                    "union": True,
                    "members": {"ByName": {"shape": "Text"}, "ByFlag": {"shape": "Flag"}},
                }
            },
        )
        columns = model_columns(shape)
        assert set(columns) == {"ByName", "ByFlag"}  # no column naming the choice
        assert columns["ByName"].path == ("Choice", "ByName")
