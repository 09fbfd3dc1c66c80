"""Event destinations of configuration sets, on both APIs, as plain boto3 sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bulk.emulator import Emulator, Kind

from .emulator_helpers import error_of

SCOPE = ("123456789012", "us-east-1")

SNS = {
    "Enabled": True,
    "MatchingEventTypes": ["SEND", "BOUNCE", "COMPLAINT"],
    "SnsDestination": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:events"},
}
CLOUDWATCH = {
    "Enabled": False,
    "MatchingEventTypes": ["OPEN", "CLICK"],
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
    "MatchingEventTypes": ["DELIVERY"],
    "KinesisFirehoseDestination": {
        "IamRoleArn": "arn:aws:iam::123456789012:role/firehose",
        "DeliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
    },
}


@pytest.fixture
def client(served: Emulator, service: str, boto3_client: Callable[..., Any]) -> Any:
    made = boto3_client(served, service)
    made.create_configuration_set(ConfigurationSetName="tenant-1")
    return made


def add(client: Any, name: str, definition: dict[str, Any], set_name: str = "tenant-1") -> Any:
    return client.create_configuration_set_event_destination(
        ConfigurationSetName=set_name, EventDestinationName=name, EventDestination=definition
    )


def listed(client: Any, set_name: str = "tenant-1") -> list[dict[str, Any]]:
    return list(
        client.get_configuration_set_event_destinations(ConfigurationSetName=set_name)[
            "EventDestinations"
        ]
    )


class TestRoundTrip:
    def test_get_returns_each_destination_exactly_as_created(self, client: Any) -> None:
        for name, definition in (("sns", SNS), ("cloudwatch", CLOUDWATCH), ("firehose", FIREHOSE)):
            answer = add(client, name, definition)
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        # Name plus the definition's members, in the order they were created
        assert listed(client) == [
            {"Name": "sns", **SNS},
            {"Name": "cloudwatch", **CLOUDWATCH},
            {"Name": "firehose", **FIREHOSE},
        ]

    def test_a_set_without_destinations_lists_none(self, client: Any) -> None:
        assert listed(client) == []

    def test_sesv2_eventbridge_is_cut_from_pinpoint_emails_answer(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        v2, v1 = boto3_client(served, "sesv2"), boto3_client(served, "pinpoint-email")
        v2.create_configuration_set(ConfigurationSetName="bridge")
        bus = {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}
        definition = {"MatchingEventTypes": ["SEND"], "EventBridgeDestination": bus}
        add(v2, "bus", definition, set_name="bridge")
        assert listed(v2, "bridge") == [{"Name": "bus", **definition}]
        # pinpoint-email's model has no EventBridgeDestination: its answer leaves it out
        assert listed(v1, "bridge") == [{"Name": "bus", "MatchingEventTypes": ["SEND"]}]

    def test_update_replaces_the_definition(self, client: Any) -> None:
        add(client, "d", SNS)
        client.update_configuration_set_event_destination(
            ConfigurationSetName="tenant-1", EventDestinationName="d", EventDestination=FIREHOSE
        )
        assert listed(client) == [{"Name": "d", **FIREHOSE}]

    def test_delete_removes_only_that_destination(self, served: Emulator, client: Any) -> None:
        add(client, "keep", SNS)
        add(client, "drop", FIREHOSE)
        client.delete_configuration_set_event_destination(
            ConfigurationSetName="tenant-1", EventDestinationName="drop"
        )
        assert [d["Name"] for d in listed(client)] == ["keep"]
        assert served.state.destinations(SCOPE, "tenant-1") == [{"Name": "keep", **SNS}]

    def test_both_apis_see_the_same_destinations(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        v1, v2 = boto3_client(served, "pinpoint-email"), boto3_client(served, "sesv2")
        v1.create_configuration_set(ConfigurationSetName="shared")
        add(v1, "from-v1", SNS, set_name="shared")
        assert listed(v2, "shared") == [{"Name": "from-v1", **SNS}]
        assert error_of(lambda: add(v2, "from-v1", SNS, set_name="shared"))[0] == (
            "AlreadyExistsException"
        )


class TestErrors:
    def test_the_set_must_exist(self, served: Emulator, client: Any) -> None:
        calls = [
            lambda: add(client, "d", SNS, set_name="missing"),
            lambda: listed(client, "missing"),
            lambda: client.update_configuration_set_event_destination(
                ConfigurationSetName="missing", EventDestinationName="d", EventDestination=SNS
            ),
            lambda: client.delete_configuration_set_event_destination(
                ConfigurationSetName="missing", EventDestinationName="d"
            ),
        ]
        for call in calls:
            code, status, message = error_of(call)
            assert (code, status) == ("NotFoundException", 404)
            assert "missing" in message
        assert served.stats()["event_destinations"] == 0

    def test_a_name_is_unique_within_its_set(self, client: Any) -> None:
        add(client, "d", SNS)
        code, status, message = error_of(lambda: add(client, "d", FIREHOSE))
        assert (code, status) == ("AlreadyExistsException", 400)
        assert "d" in message
        assert listed(client) == [{"Name": "d", **SNS}]  # the first one is untouched
        client.create_configuration_set(ConfigurationSetName="tenant-2")
        add(client, "d", FIREHOSE, set_name="tenant-2")  # another set: no conflict

    def test_ten_per_set_then_limit_exceeded(self, served: Emulator, client: Any) -> None:
        for index in range(10):
            add(client, f"d{index}", SNS)
        code, status, message = error_of(lambda: add(client, "d10", SNS))
        assert (code, status) == ("LimitExceededException", 400)
        assert "10" in message and "tenant-1" in message
        with pytest.raises(client.exceptions.LimitExceededException):
            add(client, "d10", SNS)
        assert len(listed(client)) == 10
        client.create_configuration_set(ConfigurationSetName="tenant-2")
        add(client, "d10", SNS, set_name="tenant-2")  # the limit is per set
        client.delete_configuration_set_event_destination(
            ConfigurationSetName="tenant-1", EventDestinationName="d0"
        )
        add(client, "d10", SNS)  # room again
        assert served.stats()["event_destinations"] == 11

    def test_missing_destinations_are_not_found(self, client: Any) -> None:
        for call in (
            lambda: client.delete_configuration_set_event_destination(
                ConfigurationSetName="tenant-1", EventDestinationName="ghost"
            ),
            lambda: client.update_configuration_set_event_destination(
                ConfigurationSetName="tenant-1", EventDestinationName="ghost", EventDestination=SNS
            ),
        ):
            code, status, message = error_of(call)
            assert (code, status) == ("NotFoundException", 404)
            assert "ghost" in message

    @pytest.mark.parametrize(
        ("definition", "says"),
        [
            ({"MatchingEventTypes": ["SEND"]}, "exactly one of"),
            ({**SNS, **FIREHOSE}, "got KinesisFirehoseDestination, SnsDestination"),
            ({"SnsDestination": SNS["SnsDestination"]}, "MatchingEventTypes"),
            ({**SNS, "MatchingEventTypes": []}, "MatchingEventTypes"),
            ({**SNS, "MatchingEventTypes": ["SENDS"]}, "'SENDS' at"),
            ({**SNS, "SnsDestination": {}}, "eventDestination.snsDestination.topicArn"),
        ],
    )
    def test_bad_definitions_are_bad_requests(
        self,
        served: Emulator,
        service: str,
        boto3_client: Callable[..., Any],
        definition: dict[str, Any],
        says: str,
    ) -> None:
        client = boto3_client(served, service, parameter_validation=False)
        client.create_configuration_set(ConfigurationSetName="tenant-1")
        code, status, message = error_of(lambda: add(client, "bad", definition))
        assert (code, status) == ("BadRequestException", 400)
        assert says in message
        assert listed(client) == []

    def test_destination_names_follow_the_name_rule(
        self, served: Emulator, service: str, boto3_client: Callable[..., Any]
    ) -> None:
        client = boto3_client(served, service, parameter_validation=False)
        client.create_configuration_set(ConfigurationSetName="tenant-1")
        code, _, message = error_of(lambda: add(client, "has space", SNS))
        assert code == "BadRequestException"
        assert "event destination name" in message


class TestCascade:
    def test_deleting_a_set_deletes_its_destinations(self, served: Emulator, client: Any) -> None:
        add(client, "a", SNS)
        add(client, "b", FIREHOSE)
        client.delete_configuration_set(ConfigurationSetName="tenant-1")
        assert served.state.destinations(SCOPE, "tenant-1") is None
        client.create_configuration_set(ConfigurationSetName="tenant-1")
        assert listed(client) == []  # a set created again starts with none
        stats = served.stats()
        assert stats["event_destinations"] == 0
        assert stats["deleted_by_kind"]["event_destinations"] == 2
        assert served.state.creations(SCOPE, Kind.EVENT_DESTINATIONS) == {
            "tenant-1/a": 1,
            "tenant-1/b": 1,
        }
