"""A live configuration set as input cells: every column kind, and the round trip through
provision's reading (CSV and Parquet) back to the request that created the set."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from botocore.utils import parse_timestamp

from bulk.emulator import Emulator
from bulk.input.columns import Column, columns_for, operation_shape
from bulk.input.convert import converter
from bulk.input.source import open_source
from bulk.input.validate import Validator
from bulk.live.cells import CellValue, cell, column_order, csv_text, model_cells, set_cells
from bulk.models import Row

REGION = "us-east-1"
STAMP = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
# Sorted by key: an export writes tag columns sorted, and the validator keeps column order.
TAGS = [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "growth"}]
ARCHIVE = f"arn:aws:ses:{REGION}:123456789012:mailmanager-archive/a-0123456789abcdefghijklmnop"
SNS_DESTINATION = {
    "Name": "to-sns",
    "Enabled": True,
    "MatchingEventTypes": ["SEND", "BOUNCE"],
    "SnsDestination": {"TopicArn": f"arn:aws:sns:{REGION}:123456789012:events"},
}

# Requests that use every member of each service's CreateConfigurationSet between them
# (TestModel pins that), as a validated row holds them.
REQUESTS: dict[str, list[dict[str, Any]]] = {
    "pinpoint-email": [
        {
            "ConfigurationSetName": "pp-every",
            "TrackingOptions": {"CustomRedirectDomain": "click.example.com"},
            "DeliveryOptions": {"TlsPolicy": "REQUIRE", "SendingPoolName": "pool-a"},
            "ReputationOptions": {"ReputationMetricsEnabled": True, "LastFreshStart": STAMP},
            "SendingOptions": {"SendingEnabled": False},
            "Tags": TAGS,
        },
        {"ConfigurationSetName": "pp-bare"},
    ],
    "sesv2": [
        {
            "ConfigurationSetName": "v2-every",
            "TrackingOptions": {
                "CustomRedirectDomain": "click.example.com",
                "HttpsPolicy": "REQUIRE_OPEN_ONLY",
            },
            "DeliveryOptions": {
                "TlsPolicy": "OPTIONAL",
                "SendingPoolName": "pool-a",
                "MaxDeliverySeconds": 600,
            },
            "ReputationOptions": {"ReputationMetricsEnabled": False, "LastFreshStart": STAMP},
            "SendingOptions": {"SendingEnabled": True},
            "Tags": TAGS,
            "SuppressionOptions": {
                "SuppressedReasons": ["COMPLAINT", "BOUNCE"],
                "SuppressionScope": "TENANT",
                "ValidationOptions": {
                    "ConditionThreshold": {
                        "ConditionThresholdEnabled": "ENABLED",
                        "OverallConfidenceThreshold": {"ConfidenceVerdictThreshold": "HIGH"},
                    }
                },
            },
            "VdmOptions": {
                "DashboardOptions": {"EngagementMetrics": "ENABLED"},
                "GuardianOptions": {"OptimizedSharedDelivery": "DISABLED"},
            },
            "ArchivingOptions": {"ArchiveArn": ARCHIVE},
            "MessageSecurityOptions": {
                "SigningScheme": {"SmimeScheme": {"SignatureFormat": "DETACHED"}}
            },
        },
        {
            "ConfigurationSetName": "v2-default-scheme",
            "SuppressionOptions": {"SuppressedReasons": []},
            "MessageSecurityOptions": {"SigningScheme": {"DefaultScheme": {}}},
        },
        {
            "ConfigurationSetName": "v2-empty-smime",
            "MessageSecurityOptions": {"SigningScheme": {"SmimeScheme": {}}},
        },
    ],
}


def live_sets(client: Any, service: str) -> list[dict[str, Any]]:
    """The GetConfigurationSet answers of the service's REQUESTS, created in the emulator."""
    answers = []
    for request in REQUESTS[service]:
        client.create_configuration_set(**request)
        answer = client.get_configuration_set(ConfigurationSetName=request["ConfigurationSetName"])
        answer.pop("ResponseMetadata")
        answers.append(answer)
    return answers


def exported(service: str, answer: Mapping[str, Any], **kwargs: Any) -> dict[str, CellValue]:
    """The cells an export writes for a set, with the tags its answer holds."""
    return set_cells(service, answer, tags=answer.get("Tags", ()), **kwargs)


def write_csv(path: Path, service: str, rows: Sequence[Mapping[str, CellValue]]) -> Path:
    header = column_order(service, {name for cells in rows for name in cells})
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for cells in rows:
            writer.writerow([csv_text(cells[name]) if name in cells else "" for name in header])
    return path


def _dtype(value: CellValue) -> Any:
    if isinstance(value, bool):
        return pl.Boolean
    if isinstance(value, int):
        return pl.Int64
    if isinstance(value, float):
        return pl.Float64
    return pl.List(pl.String) if isinstance(value, list) else pl.String


def write_parquet(path: Path, service: str, rows: Sequence[Mapping[str, CellValue]]) -> Path:
    header = column_order(service, {name for cells in rows for name in cells})
    schema = {name: _dtype(next(c[name] for c in rows if name in c)) for name in header}
    pl.DataFrame(
        [{name: c.get(name) for name in header} for c in rows], schema=schema
    ).write_parquet(path)
    return path


def provisioned(path: Path, service: str) -> list[Row]:
    """The rows `bulk provision` would send for the file at ``path``."""
    source = open_source(path, service=service)
    validator = Validator(service, region=REGION, columns=source.columns)
    rows = [validator.validate(record) for record in source.records()]
    assert all(isinstance(each, Row) for each in rows), rows
    return [each for each in rows if isinstance(each, Row)]


WRITERS: dict[str, Callable[[Path, str, Sequence[Mapping[str, CellValue]]], Path]] = {
    "csv": write_csv,
    "parquet": write_parquet,
}


class TestModel:
    """What the module relies on in botocore's models, pinned so a change fails here."""

    def test_every_input_member_is_at_its_place_in_the_answer(self, service: str) -> None:
        answer = operation_shape(service, "GetConfigurationSet", output=True)
        for column in columns_for(service).values():
            shape = answer
            for step in column.path:
                assert step in shape.members, (column.name, column.path)
                shape = shape.members[step]

    def test_the_requests_here_use_every_column(self, service: str) -> None:
        used = {name for request in REQUESTS[service] for name in model_cells(service, request)}
        model = {c.name for c in columns_for(service).values() if c.path and c.kind != "name"}
        assert used == model


class TestRoundTrip:
    @pytest.mark.parametrize("form", ["csv", "parquet"])
    def test_export_then_provision_gives_the_creating_requests(
        self, client: Any, service: str, form: str, tmp_path: Path
    ) -> None:
        rows = [exported(service, answer) for answer in live_sets(client, service)]
        path = WRITERS[form](tmp_path / f"export.{form}", service, rows)
        assert [row.request for row in provisioned(path, service)] == REQUESTS[service]

    def test_a_pinpoint_export_provisions_under_sesv2(
        self, served: Emulator, boto3_client: Callable[..., Any], tmp_path: Path
    ) -> None:
        answers = live_sets(boto3_client(served, "pinpoint-email"), "pinpoint-email")
        rows = [exported("pinpoint-email", answer) for answer in answers]
        path = write_csv(tmp_path / "export.csv", "pinpoint-email", rows)
        assert [row.request for row in provisioned(path, "sesv2")] == REQUESTS["pinpoint-email"]

    @pytest.mark.parametrize("form", ["csv", "parquet"])
    def test_tenants_and_event_destinations_come_back(
        self, served: Emulator, boto3_client: Callable[..., Any], form: str, tmp_path: Path
    ) -> None:
        client = boto3_client(served, "sesv2")
        client.create_configuration_set(ConfigurationSetName="with-destination")
        client.create_configuration_set_event_destination(
            ConfigurationSetName="with-destination",
            EventDestinationName="to-sns",
            EventDestination={k: v for k, v in SNS_DESTINATION.items() if k != "Name"},
        )
        answer = client.get_configuration_set_event_destinations(
            ConfigurationSetName="with-destination"
        )
        rows = [
            set_cells(
                "sesv2",
                {"ConfigurationSetName": "with-destination"},
                tenants=["t-1", "t-2"],
                destinations=answer["EventDestinations"],
            ),
            set_cells("sesv2", {"ConfigurationSetName": "without"}, destinations=[]),
        ]
        path = WRITERS[form](tmp_path / f"export.{form}", "sesv2", rows)
        first, second = provisioned(path, "sesv2")
        assert first.tenants == ("t-1", "t-2")
        assert first.destinations == (
            {
                "EventDestinationName": "to-sns",
                "EventDestination": {k: v for k, v in SNS_DESTINATION.items() if k != "Name"},
            },
        )
        assert (second.tenants, second.destinations) == ((), ())


class TestSetCells:
    def test_cells_are_typed_by_column_kind(self, served: Emulator, boto3_client: Any) -> None:
        (answer, *_) = live_sets(boto3_client(served, "sesv2"), "sesv2")
        assert exported("sesv2", answer) == {
            "ConfigurationSetName": "v2-every",
            "CustomRedirectDomain": "click.example.com",
            "HttpsPolicy": "REQUIRE_OPEN_ONLY",
            "TlsPolicy": "OPTIONAL",
            "SendingPoolName": "pool-a",
            "MaxDeliverySeconds": 600,
            "ReputationMetricsEnabled": False,
            "LastFreshStart": "2024-05-01T12:00:00.500000Z",
            "SendingEnabled": True,
            "SuppressedReasons": ["COMPLAINT", "BOUNCE"],
            "SuppressionScope": "TENANT",
            "ConditionThresholdEnabled": "ENABLED",
            "ConfidenceVerdictThreshold": "HIGH",
            "EngagementMetrics": "ENABLED",
            "OptimizedSharedDelivery": "DISABLED",
            "ArchiveArn": ARCHIVE,
            "SigningScheme": "SmimeScheme",
            "SignatureFormat": "DETACHED",
            "tag:env": "prod",
            "tag:team": "growth",
        }

    def test_an_empty_list_stays_the_empty_list(self) -> None:
        live = {"ConfigurationSetName": "s", "SuppressionOptions": {"SuppressedReasons": []}}
        assert set_cells("sesv2", live)["SuppressedReasons"] == []

    def test_members_without_a_column_are_left_out(self) -> None:
        live = {
            "ConfigurationSetName": "s",
            "Tags": [{"Key": "team", "Value": "growth"}],  # tags come from their argument
            "CreatedAt": STAMP,  # a member only an answer might have
            "SendingOptions": {"SendingEnabled": True, "Paused": True},
        }
        assert set_cells("sesv2", live) == {"ConfigurationSetName": "s", "SendingEnabled": True}

    def test_tenants_only_where_the_service_has_them(self) -> None:
        live = {"ConfigurationSetName": "s"}
        assert set_cells("sesv2", live, tenants=["a", "b"])["TenantName"] == "a,b"
        assert "TenantName" not in set_cells("sesv2", live)
        assert "TenantName" not in set_cells("pinpoint-email", live, tenants=["a"])

    def test_event_destinations_are_compact_json_and_none_means_no_cell(self) -> None:
        live = {"ConfigurationSetName": "s"}
        assert "EventDestinations" not in set_cells("sesv2", live)
        assert set_cells("sesv2", live, destinations=[])["EventDestinations"] == "[]"
        cells = set_cells("sesv2", live, destinations=[SNS_DESTINATION])
        assert cells["EventDestinations"] == (
            '[{"Name":"to-sns","Enabled":true,"MatchingEventTypes":["SEND","BOUNCE"],'
            '"SnsDestination":{"TopicArn":"arn:aws:sns:us-east-1:123456789012:events"}}]'
        )


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is New York (UTC-4 in May) for the test."""
    with monkeypatch.context() as patch:
        patch.setenv("TZ", "America/New_York")
        time.tzset()
        yield
    time.tzset()


class TestTimestamps:
    COLUMN = columns_for("sesv2")["LastFreshStart"]

    def test_botocore_gives_local_time_and_the_cell_is_utc(self, new_york: None) -> None:
        answer = parse_timestamp(1714564800)  # how botocore parses the service's epoch seconds
        assert answer.hour == 8  # pins botocore: tzlocal, not UTC
        assert cell(self.COLUMN, answer) == "2024-05-01T12:00:00Z"

    @pytest.mark.parametrize(
        "value",
        [
            datetime(2024, 5, 1, 12, tzinfo=UTC),
            datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 5, 1, 12),  # naive: UTC
        ],
    )
    def test_any_zone_is_written_as_utc(self, value: datetime) -> None:
        assert cell(self.COLUMN, value) == "2024-05-01T12:00:00Z"

    def test_provision_reads_the_text_back_as_the_same_instant(self) -> None:
        text = cell(self.COLUMN, STAMP)
        assert text == "2024-05-01T12:00:00.500000Z"
        assert converter(self.COLUMN)(text) == STAMP


ENUM = Column("Policy", "enum", ("P",), ("REQUIRE", "OPTIONAL"))
KINDS = [
    (Column("Text", "text", ("T",)), "pool-a", "pool-a"),
    (ENUM, "OPTIONAL", "OPTIONAL"),
    (Column("On", "boolean", ("B",)), True, True),
    (Column("Off", "boolean", ("B",)), False, False),
    (Column("Stamp", "timestamp", ("S",)), STAMP, STAMP),
    (Column("Whole", "integer", ("I",)), 600, 600),
    (Column("Whole", "integer", ("I",)), -3, -3),
    (Column("Ratio", "number", ("N",)), 0.1, 0.1),
    (Column("Ratio", "number", ("N",)), 1e-7, 1e-7),
    (Column("Ratio", "number", ("N",)), 12345678.901234567, 12345678.901234567),
    (Column("Ratio", "number", ("N",)), 3.0, 3.0),
    (Column("Reasons", "list", ("L",), ENUM.enum, item=ENUM), ["OPTIONAL", "REQUIRE"], None),
    (Column("Reasons", "list", ("L",), ENUM.enum, item=ENUM), [], None),
    (Column("Counts", "list", ("L",), item=Column("Counts", "integer", ("L",))), [1, 20], None),
    (
        Column("Scheme", "union", ("U",), ("DefaultScheme", "SmimeScheme")),
        {"SmimeScheme": {}},
        "SmimeScheme",
    ),
    (Column("Map", "json", ("J",)), {"b": [1, 2], "a": {"x": None}}, None),
]


class TestKinds:
    """Each kind of column: the cell, read back by provision's converter from CSV text and
    as a native (Parquet) value, is the request value."""

    @pytest.mark.parametrize(("column", "value", "expected"), KINDS)
    def test_round_trip(self, column: Column, value: Any, expected: Any) -> None:
        expected = value if expected is None else expected
        found = cell(column, value)
        assert converter(column)(csv_text(found)) == expected
        assert converter(column)(found) == expected

    @pytest.mark.parametrize(("column", "value", "expected"), KINDS)
    def test_cells_are_json_able_and_of_the_kind(
        self, column: Column, value: Any, expected: Any
    ) -> None:
        found = cell(column, value)
        types = {"boolean": bool, "integer": int, "number": float, "list": list}
        assert type(found) is types.get(column.kind, str)

    def test_json_text_is_compact_with_sorted_keys(self) -> None:
        column = Column("Map", "json", ("J",))
        assert cell(column, {"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


class TestCsvText:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (True, "true"),
            (False, "false"),
            (["BOUNCE", "COMPLAINT"], "BOUNCE,COMPLAINT"),
            (["BOUNCE"], "BOUNCE"),
            ([], "[]"),
            (600, "600"),
            (0.1, "0.1"),
            (1e-7, "1e-07"),
            ("pool-a", "pool-a"),
            ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
        ],
    )
    def test_text(self, value: CellValue, text: str) -> None:
        assert csv_text(value) == text


class TestColumnOrder:
    def test_stable_order(self) -> None:
        present = [
            "Region",
            "tag:team",
            "EventDestinations",
            "SigningScheme",
            "TlsPolicy",
            "TenantName",
            "tag:env",
            "ConfigurationSetName",
            "Profile",
            "SendingEnabled",
            "HttpsPolicy",
        ]
        assert column_order("sesv2", present) == [
            "ConfigurationSetName",
            "HttpsPolicy",
            "TlsPolicy",
            "SendingEnabled",
            "SigningScheme",
            "TenantName",
            "EventDestinations",
            "tag:env",
            "tag:team",
            "Profile",
            "Region",
        ]

    def test_only_present_columns(self) -> None:
        assert column_order("pinpoint-email", ["ConfigurationSetName"]) == ["ConfigurationSetName"]
