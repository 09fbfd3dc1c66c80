"""Event destinations: the EventDestinations column, --event-destinations FILE.json, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk import cli
from bulk.errors import InputError, UsageError
from bulk.input.destinations import MAX_DESTINATIONS, load_event_destinations
from bulk.input.source import open_source
from bulk.input.validate import Validator
from bulk.models import InputRow, Outcome, Row, Status
from bulk.settings import Settings

REGION = "us-east-1"
ACCOUNT = "123456789012"
SNS = {
    "Name": "to-sns",
    "Enabled": True,
    "MatchingEventTypes": ["BOUNCE", "COMPLAINT"],
    "SnsDestination": {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:bounces"},
}
CLOUDWATCH = {
    "Name": "to-cloudwatch",
    "MatchingEventTypes": ["SEND", "DELIVERY"],
    "CloudWatchDestination": {
        "DimensionConfigurations": [
            {
                "DimensionName": "campaign",
                "DimensionValueSource": "MESSAGE_TAG",
                "DefaultDimensionValue": "none",
            }
        ]
    },
}
FIREHOSE = {
    "Name": "to-firehose",
    "Enabled": False,
    "MatchingEventTypes": ["OPEN", "CLICK"],
    "KinesisFirehoseDestination": {
        "IamRoleArn": f"arn:aws:iam::{ACCOUNT}:role/firehose",
        "DeliveryStreamArn": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/events",
    },
}
EVENTBRIDGE = {
    "Name": "to-eventbridge",
    "MatchingEventTypes": ["DELIVERY_DELAY"],
    "EventBridgeDestination": {
        "EventBusArn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    },
}
PINPOINT = {
    "Name": "to-pinpoint",
    "MatchingEventTypes": ["SEND"],
    "PinpointDestination": {"ApplicationArn": f"arn:aws:mobiletargeting:{REGION}:{ACCOUNT}:apps/a"},
}


def arguments(item: dict[str, Any]) -> dict[str, Any]:
    """The CreateConfigurationSetEventDestination arguments an item stands for."""
    rest = {key: value for key, value in item.items() if key != "Name"}
    return {"EventDestinationName": item["Name"], "EventDestination": rest}


def validate(cell: Any, service: str = "sesv2", **kwargs: Any) -> Row | Outcome:
    cells = {"ConfigurationSetName": "tenant-0001"}
    if cell is not None:
        cells["EventDestinations"] = cell if isinstance(cell, str) else json.dumps(cell)
    return Validator(service, region=REGION, **kwargs).validate(InputRow(1, cells))


def destinations(cell: Any, service: str = "sesv2", **kwargs: Any) -> tuple[Any, ...]:
    result = validate(cell, service, **kwargs)
    assert isinstance(result, Row), result
    return result.destinations


def refusal(cell: Any, service: str = "sesv2") -> str:
    result = validate(cell, service)
    assert isinstance(result, Outcome) and result.status is Status.INVALID, result
    assert result.code == "InvalidEventDestinations"
    assert "\n" not in result.message
    return result.message


class TestValidCells:
    def test_every_kind_of_destination_sesv2_has(self) -> None:
        items = [SNS, CLOUDWATCH, FIREHOSE, EVENTBRIDGE, PINPOINT]
        assert destinations(items) == tuple(arguments(item) for item in items)

    def test_pinpoint_email(self) -> None:
        items = [SNS, CLOUDWATCH, FIREHOSE, PINPOINT]
        assert destinations(items, "pinpoint-email") == tuple(arguments(i) for i in items)

    def test_an_empty_array_is_none(self) -> None:
        assert destinations("[]") == ()
        assert destinations(" [ ] ") == ()

    def test_event_types_in_any_case_go_out_as_the_model_spells_them(self) -> None:
        item = {**SNS, "MatchingEventTypes": ["bounce", "Complaint"]}
        [found] = destinations([item])
        assert found["EventDestination"]["MatchingEventTypes"] == ["BOUNCE", "COMPLAINT"]

    def test_destinations_keep_the_cells_order_and_stay_out_of_the_request(self) -> None:
        result = validate([FIREHOSE, SNS])
        assert isinstance(result, Row)
        assert [d["EventDestinationName"] for d in result.destinations] == [
            "to-firehose",
            "to-sns",
        ]
        assert result.request == {"ConfigurationSetName": "tenant-0001"}

    def test_ten_is_the_most(self) -> None:
        items = [{**SNS, "Name": f"d{i}"} for i in range(MAX_DESTINATIONS)]
        assert len(destinations(items)) == MAX_DESTINATIONS


class TestBadCells:
    """Each rule: the message names the column, the destination (Name or position), the member."""

    @pytest.mark.parametrize(
        ("cell", "message"),
        [
            (
                '[{"Name": "a",}]',
                "column EventDestinations: not valid JSON: Expecting property name enclosed in "
                "double quotes: line 1 column 15 (char 14); write an array like",
            ),
            (
                json.dumps(SNS),
                'column EventDestinations: \'{"Name": "to-sns", ',
            ),
            (json.dumps({"a": 1}), "is an object, not an array; put the destinations in [ ]"),
            (
                json.dumps([SNS, "to-sqs"]),
                'column EventDestinations: item 2 is a string, not an object like {"Name": ...}',
            ),
            (
                json.dumps([{k: v for k, v in SNS.items() if k != "Name"}]),
                "column EventDestinations: destination 1 has no Name; give every destination one",
            ),
            (
                json.dumps([{**SNS, "Name": "to sns"}]),
                "column EventDestinations: destination 1: Name: 'to sns' contains ' '; an event "
                "destination name is 1-64 characters of A-Z a-z 0-9 _ -",
            ),
            (
                json.dumps([SNS, CLOUDWATCH, SNS]),
                "column EventDestinations: destination 'to-sns' appears twice (items 1 and 3); "
                "names are unique within a configuration set: rename one",
            ),
            (
                json.dumps([{**SNS, "Name": f"d{i}"} for i in range(11)]),
                "column EventDestinations: 11 destinations; a configuration set has at most 10; "
                "remove 1",
            ),
            (
                json.dumps([{**SNS, "Enabeld": True}]),
                "column EventDestinations: destination 'to-sns': unknown member 'Enabeld' (did "
                "you mean 'Enabled'?); members are Name, Enabled, MatchingEventTypes, ",
            ),
            (
                json.dumps([{**SNS, "SnsDestination": {"Topic": "arn"}}]),
                "destination 'to-sns': SnsDestination: unknown member 'Topic' (did you mean "
                "'TopicArn'?); members are TopicArn",
            ),
            (
                json.dumps([{**SNS, "SnsDestination": {}}]),
                "destination 'to-sns': SnsDestination.TopicArn is missing; it is required",
            ),
            (
                json.dumps([{**SNS, "MatchingEventTypes": ["BOUNCE", "OPENED"]}]),
                "column EventDestinations: destination 'to-sns': MatchingEventTypes[2]: 'OPENED' "
                "is not one of SEND, REJECT, BOUNCE, COMPLAINT, DELIVERY, OPEN, CLICK, "
                "RENDERING_FAILURE, DELIVERY_DELAY, SUBSCRIPTION",
            ),
            (
                json.dumps([{k: v for k, v in SNS.items() if k != "MatchingEventTypes"}]),
                "destination 'to-sns' has no MatchingEventTypes; give every destination one",
            ),
            (
                json.dumps([{**SNS, "Enabled": "yes"}]),
                "destination 'to-sns': Enabled: 'yes' has the wrong type; give true or false",
            ),
            (
                json.dumps([{**SNS, "MatchingEventTypes": "BOUNCE"}]),
                "destination 'to-sns': MatchingEventTypes: 'BOUNCE' has the wrong type; give an "
                "array",
            ),
            (
                json.dumps([{**SNS, "SnsDestination": {"TopicArn": 7}}]),
                "destination 'to-sns': SnsDestination.TopicArn: 7 has the wrong type; give a "
                "string",
            ),
            (
                json.dumps(
                    [
                        {
                            **CLOUDWATCH,
                            "CloudWatchDestination": {
                                "DimensionConfigurations": [
                                    {"DimensionName": "d", "DimensionValueSource": "HEADER"}
                                ]
                            },
                        }
                    ]
                ),
                "destination 'to-cloudwatch': CloudWatchDestination.DimensionConfigurations[1]."
                "DimensionValueSource: 'HEADER' is not one of MESSAGE_TAG, EMAIL_HEADER, LINK_TAG",
            ),
            (
                json.dumps([{**SNS, "SnsDestination": {"TopicArn": ""}}]),
                "destination 'to-sns': SnsDestination.TopicArn is too short: 0 long, at least 1",
            ),
            ("", "column EventDestinations: empty; write a JSON array like"),
        ],
        ids=[
            "malformed-json",
            "an-object-not-an-array",
            "another-object",
            "item-not-an-object",
            "missing-name",
            "bad-name",
            "name-twice",
            "more-than-ten",
            "unknown-member",
            "unknown-nested-member",
            "missing-nested-member",
            "unknown-event-type",
            "missing-event-types",
            "wrong-type-boolean",
            "wrong-type-array",
            "wrong-type-string",
            "unknown-dimension-source",
            "too-short",
            "blank-text",
        ],
    )
    def test_bad_cells(self, cell: str, message: str) -> None:
        assert message in refusal(cell)

    def test_a_destination_the_service_lacks_is_an_unknown_member(self) -> None:
        message = refusal([EVENTBRIDGE], "pinpoint-email")
        assert "destination 'to-eventbridge': unknown member 'EventBridgeDestination'" in message
        assert "members are Name, Enabled, MatchingEventTypes" in message

    def test_every_problem_of_every_destination_is_said_once(self) -> None:
        bad = [
            {**SNS, "Enabled": "yes"},
            {**CLOUDWATCH, "MatchingEventTypes": ["SENT"]},
        ]
        message = refusal(bad)
        assert message.count("column EventDestinations") == 1
        assert "destination 'to-sns': Enabled" in message
        assert "destination 'to-cloudwatch': MatchingEventTypes[1]: 'SENT'" in message

    def test_a_cell_that_is_not_text(self) -> None:
        result = Validator("sesv2", region=REGION).validate(
            InputRow(1, {"ConfigurationSetName": "t", "EventDestinations": True})
        )
        assert isinstance(result, Outcome)
        assert result.message == "column EventDestinations: True is not JSON text"

    def test_every_row_with_a_repeated_cell_gets_the_same_answer(self) -> None:
        # Cells are remembered by text: a file repeats a few arrays over many rows.
        check = Validator("sesv2", region=REGION)
        good, bad = json.dumps([SNS]), json.dumps([{**SNS, "Enabled": "yes"}])
        results = [
            check.validate(
                InputRow(n, {"ConfigurationSetName": f"t{n}", "EventDestinations": cell})
            )
            for n, cell in enumerate([good, bad, good, bad], 1)
        ]
        rows = [result for result in results if isinstance(result, Row)]
        outcomes = [result for result in results if isinstance(result, Outcome)]
        assert [row.destinations for row in rows] == [(arguments(SNS),)] * 2
        assert len(outcomes) == 2
        assert outcomes[0].message == outcomes[1].message


def write(tmp_path: Path, text: str, name: str = "destinations.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestTheFile:
    def test_none_without_the_option(self) -> None:
        assert load_event_destinations(None, "sesv2") == ()

    def test_a_good_file(self, tmp_path: Path) -> None:
        path = write(tmp_path, json.dumps([SNS, EVENTBRIDGE], indent=2))
        assert load_event_destinations(path, "sesv2") == (arguments(SNS), arguments(EVENTBRIDGE))

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (None, "--event-destinations {path}: no such file; check the path"),
            ("", "--event-destinations {path}: empty; write a JSON array like"),
            (
                '[{"Name": "a"',
                "--event-destinations {path}: not valid JSON: Expecting ',' delimiter: line 1 "
                "column 14 (char 13)",
            ),
            (
                json.dumps([{**SNS, "MatchingEventTypes": ["BOUNCED"]}]),
                "--event-destinations {path}: destination 'to-sns': MatchingEventTypes[1]: "
                "'BOUNCED' is not one of SEND, ",
            ),
            (json.dumps([SNS, SNS]), "destination 'to-sns' appears twice (items 1 and 2)"),
        ],
        ids=["missing", "empty", "bad-json", "bad-destination", "name-twice"],
    )
    def test_a_bad_file_is_a_usage_error_of_one_line(
        self, tmp_path: Path, text: str | None, message: str
    ) -> None:
        path = tmp_path / "destinations.json" if text is None else write(tmp_path, text)
        with pytest.raises(UsageError) as caught:
            load_event_destinations(path, "sesv2")
        assert caught.value.exit_code == 2
        assert message.format(path=path) in str(caught.value)
        assert "\n" not in str(caught.value)

    def test_a_directory(self, tmp_path: Path) -> None:
        with pytest.raises(UsageError, match=r"is a directory; give the path of a \.json file"):
            load_event_destinations(tmp_path, "sesv2")

    def test_an_eventbridge_destination_is_refused_for_pinpoint_email(self, tmp_path: Path) -> None:
        path = write(tmp_path, json.dumps([EVENTBRIDGE]))
        with pytest.raises(UsageError, match="unknown member 'EventBridgeDestination'"):
            load_event_destinations(path, "pinpoint-email")


class TestDefaults:
    def test_rows_without_a_cell_take_the_files(self) -> None:
        defaults = (arguments(SNS),)
        assert destinations(None, default_destinations=defaults) == defaults

    def test_a_rows_own_cell_wins_over_the_file(self) -> None:
        defaults = (arguments(SNS),)
        assert destinations([CLOUDWATCH], default_destinations=defaults) == (arguments(CLOUDWATCH),)

    def test_an_empty_array_opts_a_row_out_of_the_files(self) -> None:
        assert destinations("[]", default_destinations=(arguments(SNS),)) == ()

    def test_the_digest_is_of_the_destinations_wherever_they_come_from(self) -> None:
        from_file = validate(None, default_destinations=(arguments(SNS),))
        from_cell = validate([SNS])
        plain = validate(None)
        assert isinstance(from_file, Row) and isinstance(from_cell, Row)
        assert isinstance(plain, Row)
        assert from_file.digest == from_cell.digest != plain.digest

    def test_the_defaults_are_in_the_fingerprint_salt(self) -> None:
        # Rows skipped unread by fingerprint must not hide a changed --event-destinations.
        columns = ["ConfigurationSetName"]
        plain = Validator("sesv2", region=REGION).fingerprint_salt(columns)
        # Without defaults, the salt earlier runs' fingerprints were made with.
        assert plain == 'bulk-row-1\x1f["sesv2","us-east-1",null]\x1fConfigurationSetName'
        one = Validator("sesv2", region=REGION, default_destinations=(arguments(SNS),))
        other = Validator("sesv2", region=REGION, default_destinations=(arguments(FIREHOSE),))
        assert len({plain, one.fingerprint_salt(columns), other.fingerprint_salt(columns)}) == 3


class TestParquet:
    def test_a_json_string_column(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        cells = {"ConfigurationSetName": ["a", "b"], "EventDestinations": [json.dumps([SNS]), None]}
        pl.DataFrame(cells).write_parquet(path)
        first, second = open_source(path, service="sesv2").records()
        check = Validator("sesv2", region=REGION, default_destinations=(arguments(FIREHOSE),))
        one, two = check.validate(first), check.validate(second)
        assert isinstance(one, Row) and isinstance(two, Row)
        assert one.destinations == (arguments(SNS),)
        assert two.destinations == (arguments(FIREHOSE),)

    def test_a_column_of_another_type_is_a_file_error(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        pl.DataFrame({"ConfigurationSetName": ["a"], "EventDestinations": [True]}).write_parquet(
            path
        )
        with pytest.raises(InputError) as caught:
            open_source(path, service="sesv2")
        assert str(caught.value) == (
            f"{path}: column 'EventDestinations' has type Boolean; expected JSON text (String): "
            "an array of event destinations; convert the column"
        )


class TestCommandLine:
    def test_the_option_reaches_the_settings(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen: list[Settings] = []

        async def provision(input_path: Path, settings: Settings) -> Any:
            seen.append(settings)
            raise UsageError("stop here")

        monkeypatch.setattr(cli, "_provision", provision)
        path = write(tmp_path, json.dumps([SNS]))
        result = CliRunner().invoke(
            cli.main, ["provision", "in.csv", "--region", REGION, "--event-destinations", str(path)]
        )
        assert result.exit_code == 2
        assert [settings.event_destinations for settings in seen] == [path]
        assert seen[0].header()["event_destinations"] == str(path)

    def test_the_help_says_what_it_is(self) -> None:
        result = CliRunner().invoke(cli.main, ["provision", "--help"])
        assert "--event-destinations" in result.output
        assert "EventDestinations cell is empty" in " ".join(result.output.split())

    def test_the_setting_defaults_to_none(self) -> None:
        assert Settings().event_destinations is None
        assert Settings().header()["event_destinations"] is None


class TestHostileCells:
    def test_absurdly_deep_nesting_is_a_row_error_not_a_crash(self) -> None:
        assert "column EventDestinations: not valid JSON: " in refusal("[" * 100_000)
