"""How a live configuration set differs from an input row: only what the row claims, each
changed field once, in export column order; order of list items and time zones do not count."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.utils import parse_timestamp

from bulk.emulator import Emulator
from bulk.input.validate import Validator
from bulk.live.drift import Difference, drift
from bulk.models import InputRow, Row
from tests.test_live_cells import REQUESTS, STAMP, live_sets

EVERY = REQUESTS["sesv2"][0]


def live_of(request: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The answer the service gives for a set created by ``request``, then ``changes``
    (``Structure__Member=value``; None removes the member)."""
    live = copy.deepcopy(request)
    live.pop("Tags", None)
    for key, value in changes.items():
        *parents, member = key.split("__")
        node = live
        for step in parents:
            node = node.setdefault(step, {})
        if value is None:
            node.pop(member, None)
        else:
            node[member] = value
    return live


def validated(service: str = "sesv2", **cells: Any) -> dict[str, Any]:
    """The request of a validated row with these cells (``tag_KEY`` for ``tag:KEY``)."""
    values = {"ConfigurationSetName": "s"}
    for key, value in cells.items():
        values[key.replace("tag_", "tag:", 1) if key.startswith("tag_") else key] = value
    result = Validator(service, region="us-east-1").validate(InputRow(1, values))
    assert isinstance(result, Row), result
    return dict(result.request)


class TestNoDrift:
    def test_a_set_created_from_the_request_has_no_drift(self, client: Any, service: str) -> None:
        for request, live in zip(REQUESTS[service], live_sets(client, service), strict=True):
            assert drift(service, request, live, live.get("Tags", [])) == ()

    def test_a_set_created_from_a_validated_row_has_no_drift(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        request = validated(
            TlsPolicy="require",
            SuppressedReasons="complaint, bounce",
            LastFreshStart="2024-05-01T14:00:00+02:00",
            MaxDeliverySeconds="600",
            SigningScheme="smimescheme",
            tag_team="growth",
        )
        client = boto3_client(served, "sesv2")
        client.create_configuration_set(**request)
        live = client.get_configuration_set(ConfigurationSetName="s")
        assert drift("sesv2", request, live, live["Tags"]) == ()

    def test_list_items_in_another_order_are_not_drift(self) -> None:
        live = live_of(EVERY, SuppressionOptions__SuppressedReasons=["BOUNCE", "COMPLAINT"])
        assert drift("sesv2", EVERY, live) == ()

    @pytest.mark.parametrize(
        "moment",
        [
            parse_timestamp(STAMP.timestamp()),  # as botocore parses it: local time
            STAMP.astimezone(timezone(timedelta(hours=-7))),
            STAMP.replace(tzinfo=None),  # naive UTC
        ],
    )
    def test_a_timestamp_in_another_zone_is_not_drift(self, moment: datetime) -> None:
        live = live_of(EVERY, ReputationOptions__LastFreshStart=moment)
        assert drift("sesv2", EVERY, live) == ()

    def test_a_whole_number_is_compared_as_a_number(self) -> None:
        live = live_of(EVERY, DeliveryOptions__MaxDeliverySeconds=600.0)
        assert drift("sesv2", EVERY, live) == ()

    def test_empty_cells_make_no_claim(self) -> None:
        request = validated(TlsPolicy=None, SendingEnabled="true", SuppressedReasons=None)
        assert request == {"ConfigurationSetName": "s", "SendingOptions": {"SendingEnabled": True}}
        assert drift("sesv2", request, live_of(EVERY, ConfigurationSetName="s")) == ()

    def test_tags_the_row_does_not_name_make_no_claim(self) -> None:
        live_tags = [*EVERY["Tags"], {"Key": "owner", "Value": "ops"}]
        assert drift("sesv2", EVERY, live_of(EVERY), live_tags) == ()


class TestDifferences:
    def test_one_difference_per_changed_field(self) -> None:
        live = live_of(EVERY, DeliveryOptions__TlsPolicy="REQUIRE")
        assert drift("sesv2", EVERY, live) == (Difference("TlsPolicy", "REQUIRE", "OPTIONAL"),)

    def test_a_boolean(self) -> None:
        live = live_of(EVERY, SendingOptions__SendingEnabled=False)
        assert drift("sesv2", EVERY, live) == (Difference("SendingEnabled", "false", "true"),)

    def test_a_member_the_live_set_lacks(self) -> None:
        live = live_of(EVERY, ArchivingOptions=None)
        assert drift("sesv2", EVERY, live) == (
            Difference("ArchiveArn", None, EVERY["ArchivingOptions"]["ArchiveArn"]),
        )

    def test_another_instant_shows_both_in_utc(self) -> None:
        moment = datetime(2024, 5, 2, 8, tzinfo=timezone(timedelta(hours=2)))
        live = live_of(EVERY, ReputationOptions__LastFreshStart=moment)
        assert drift("sesv2", EVERY, live) == (
            Difference("LastFreshStart", "2024-05-02T06:00:00Z", "2024-05-01T12:00:00.500000Z"),
        )

    def test_other_list_items(self) -> None:
        live = live_of(EVERY, SuppressionOptions__SuppressedReasons=[])
        assert drift("sesv2", EVERY, live) == (
            Difference("SuppressedReasons", "[]", "COMPLAINT,BOUNCE"),
        )

    def test_a_tag_value(self) -> None:
        tags = [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "data"}]
        assert drift("sesv2", EVERY, live_of(EVERY), tags) == (
            Difference("tag:team", "data", "growth"),
        )

    def test_a_missing_tag(self) -> None:
        tags = [{"Key": "team", "Value": "growth"}]
        assert drift("sesv2", EVERY, live_of(EVERY), tags) == (Difference("tag:env", None, "prod"),)

    def test_tags_unknown_are_not_compared(self) -> None:
        assert drift("sesv2", EVERY, live_of(EVERY), None) == ()

    def test_another_union_choice_is_one_difference(self) -> None:
        live = live_of(EVERY, MessageSecurityOptions__SigningScheme={"DefaultScheme": {}})
        assert drift("sesv2", EVERY, live) == (
            Difference("SigningScheme", "DefaultScheme", "SmimeScheme"),
        )

    def test_a_member_below_the_same_union_choice(self) -> None:
        live = live_of(EVERY, MessageSecurityOptions__SigningScheme={"SmimeScheme": {}})
        assert drift("sesv2", EVERY, live) == (Difference("SignatureFormat", None, "DETACHED"),)

    def test_differences_come_in_export_column_order(self) -> None:
        live = live_of(
            EVERY,
            SendingOptions__SendingEnabled=False,
            DeliveryOptions__TlsPolicy="REQUIRE",
            TrackingOptions__HttpsPolicy="OPTIONAL",
        )
        tags = [{"Key": "team", "Value": "growth"}]
        assert [each.column for each in drift("sesv2", EVERY, live, tags)] == [
            "HttpsPolicy",
            "TlsPolicy",
            "SendingEnabled",
            "tag:env",
        ]

    def test_pinpoint_email(self) -> None:
        request = REQUESTS["pinpoint-email"][0]
        live = live_of(request, ReputationOptions__ReputationMetricsEnabled=False)
        assert drift("pinpoint-email", request, live, request["Tags"]) == (
            Difference("ReputationMetricsEnabled", "false", "true"),
        )
