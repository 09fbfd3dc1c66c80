"""The emulator as plain boto3 sees it: every operation and every error, on both APIs."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Any

import pytest

from bulk.emulator import Emulator, EmulatorConfig

from .emulator_helpers import error_of

FULL_REQUEST: dict[str, Any] = {
    "TrackingOptions": {"CustomRedirectDomain": "click.example.com"},
    "DeliveryOptions": {"TlsPolicy": "REQUIRE", "SendingPoolName": "shared-pool"},
    "ReputationOptions": {
        "ReputationMetricsEnabled": True,
        "LastFreshStart": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
    },
    "SendingOptions": {"SendingEnabled": False},
    "Tags": [{"Key": "tenant", "Value": "acme"}, {"Key": "tier", "Value": "gold"}],
}


class TestOperations:
    def test_create_then_get_returns_every_option_given(self, client: Any, service: str) -> None:
        created = client.create_configuration_set(ConfigurationSetName="tenant-1", **FULL_REQUEST)
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert created["ResponseMetadata"]["RequestId"]

        got = client.get_configuration_set(ConfigurationSetName="tenant-1")
        got.pop("ResponseMetadata")
        # Both models' GetConfigurationSet outputs have Tags (pinpoint-email's too, botocore 1.43)
        assert set(
            client.meta.service_model.operation_model("GetConfigurationSet").output_shape.members
        ) >= set(FULL_REQUEST)
        assert got == {"ConfigurationSetName": "tenant-1", **FULL_REQUEST}

    def test_sesv2_stores_its_extra_option_structures(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        client = boto3_client(served, "sesv2")
        extra = {
            "TrackingOptions": {"CustomRedirectDomain": "c.example.com", "HttpsPolicy": "REQUIRE"},
            "DeliveryOptions": {"TlsPolicy": "OPTIONAL", "MaxDeliverySeconds": 600},
            "SuppressionOptions": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
            "VdmOptions": {"DashboardOptions": {"EngagementMetrics": "ENABLED"}},
        }
        client.create_configuration_set(ConfigurationSetName="v2-extra", **extra)
        got = client.get_configuration_set(ConfigurationSetName="v2-extra")
        assert {key: got[key] for key in extra} == extra

    def test_both_apis_see_the_same_sets(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        v1, v2 = boto3_client(served, "pinpoint-email"), boto3_client(served, "sesv2")
        v2.create_configuration_set(
            ConfigurationSetName="shared",
            DeliveryOptions={"TlsPolicy": "REQUIRE", "MaxDeliverySeconds": 900},
        )
        # pinpoint-email answers with its own, smaller output shape
        assert v1.get_configuration_set(ConfigurationSetName="shared")["DeliveryOptions"] == {
            "TlsPolicy": "REQUIRE"
        }
        assert error_of(lambda: v1.create_configuration_set(ConfigurationSetName="shared"))[0] == (
            "AlreadyExistsException"
        )

    def test_list_paginates_with_next_token_and_page_size(self, client: Any) -> None:
        names = [f"tenant-{index:02d}" for index in range(7)]
        for name in reversed(names):
            client.create_configuration_set(ConfigurationSetName=name)

        pages, token = [], None
        for _ in range(10):  # bounded: 7 sets in pages of 3 take 3 calls
            kwargs: dict[str, Any] = {"PageSize": 3}
            if token:
                kwargs["NextToken"] = token
            page = client.list_configuration_sets(**kwargs)
            pages.append(page["ConfigurationSets"])
            token = page.get("NextToken")
            if not token:
                break
        assert pages == [names[0:3], names[3:6], names[6:7]]

    def test_list_without_page_size_returns_everything_small(self, client: Any) -> None:
        client.create_configuration_set(ConfigurationSetName="only")
        page = client.list_configuration_sets()
        assert page["ConfigurationSets"] == ["only"]
        assert "NextToken" not in page

    def test_list_pages_survive_a_delete_between_pages(self, client: Any) -> None:
        for name in ("a", "b", "c", "d"):
            client.create_configuration_set(ConfigurationSetName=name)
        first = client.list_configuration_sets(PageSize=2)
        client.delete_configuration_set(ConfigurationSetName="b")
        second = client.list_configuration_sets(PageSize=2, NextToken=first["NextToken"])
        assert first["ConfigurationSets"] + second["ConfigurationSets"] == ["a", "b", "c", "d"]

    def test_sesv2_list_filters_by_name(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        client = boto3_client(served, "sesv2")
        for name in ("acme-eu", "acme-us", "globex"):
            client.create_configuration_set(ConfigurationSetName=name)
        page = client.list_configuration_sets(Filter={"CONFIGURATION_SET_NAME_CONTAINS": "acme"})
        assert page["ConfigurationSets"] == ["acme-eu", "acme-us"]

    def test_delete_removes_the_set(self, client: Any) -> None:
        client.create_configuration_set(ConfigurationSetName="gone")
        assert (
            client.delete_configuration_set(ConfigurationSetName="gone")["ResponseMetadata"][
                "HTTPStatusCode"
            ]
            == 200
        )
        assert client.list_configuration_sets()["ConfigurationSets"] == []

    def test_get_account_answers_a_healthy_account(self, client: Any, service: str) -> None:
        account = client.get_account()
        assert account["SendingEnabled"] is True
        assert account["SendQuota"]["MaxSendRate"] > 0
        assert ("SuppressionAttributes" in account) == (service == "sesv2")

    def test_accounts_and_regions_are_separate(
        self, served: Emulator, boto3_client: Callable[..., Any], service: str
    ) -> None:
        served.configure(key_accounts={"AKIAOTHERACCOUNT": "222222222222"})
        home = boto3_client(served, service)
        other_region = boto3_client(served, service, region="eu-west-1")
        other_account = boto3_client(served, service, access_key="AKIAOTHERACCOUNT")
        home.create_configuration_set(ConfigurationSetName="tenant")
        assert other_region.list_configuration_sets()["ConfigurationSets"] == []
        assert other_account.list_configuration_sets()["ConfigurationSets"] == []
        other_region.create_configuration_set(ConfigurationSetName="tenant")  # no conflict
        other_account.create_configuration_set(ConfigurationSetName="tenant")  # no conflict

    def test_keys_of_one_account_see_the_same_sets(
        self, served: Emulator, boto3_client: Callable[..., Any], service: str
    ) -> None:
        boto3_client(served, service).create_configuration_set(ConfigurationSetName="shared")
        another_key = boto3_client(served, service, access_key="AKIAANOTHERUSER")
        assert another_key.list_configuration_sets()["ConfigurationSets"] == ["shared"]
        assert served.state.names(("123456789012", "us-east-1")) == ["shared"]


class TestErrors:
    def test_already_exists(self, client: Any) -> None:
        client.create_configuration_set(ConfigurationSetName="dup")
        code, status, message = error_of(
            lambda: client.create_configuration_set(ConfigurationSetName="dup")
        )
        assert (code, status) == ("AlreadyExistsException", 400)
        assert "dup" in message
        with pytest.raises(client.exceptions.AlreadyExistsException):
            client.create_configuration_set(ConfigurationSetName="dup")

    @pytest.mark.parametrize("operation", ["get_configuration_set", "delete_configuration_set"])
    def test_missing_set_is_not_found(self, client: Any, operation: str) -> None:
        call = getattr(client, operation)
        code, status, message = error_of(lambda: call(ConfigurationSetName="missing"))
        assert (code, status) == ("NotFoundException", 404)
        assert "missing" in message
        with pytest.raises(client.exceptions.NotFoundException):
            call(ConfigurationSetName="missing")

    @pytest.mark.parametrize("name", ["has space", "x" * 65, "dot.ted", "ünïcode", "slash/ed"])
    def test_names_outside_the_rule_are_bad_requests(self, client: Any, name: str) -> None:
        code, status, message = error_of(
            lambda: client.create_configuration_set(ConfigurationSetName=name)
        )
        assert (code, status) == ("BadRequestException", 400)
        assert "1 to 64 characters" in message
        assert client.list_configuration_sets()["ConfigurationSets"] == []

    def test_longest_legal_name_is_accepted(self, client: Any) -> None:
        name = "A-z_0" + "9" * 59
        client.create_configuration_set(ConfigurationSetName=name)
        assert client.get_configuration_set(ConfigurationSetName=name)["ConfigurationSetName"] == (
            name
        )

    def test_bad_enum_value_is_a_bad_request(self, client: Any) -> None:
        code, status, message = error_of(
            lambda: client.create_configuration_set(
                ConfigurationSetName="enum", DeliveryOptions={"TlsPolicy": "SOMETIMES"}
            )
        )
        assert (code, status) == ("BadRequestException", 400)
        assert "'SOMETIMES' at 'deliveryOptions.tlsPolicy'" in message
        with pytest.raises(client.exceptions.NotFoundException):  # nothing was stored
            client.get_configuration_set(ConfigurationSetName="enum")

    @pytest.mark.parametrize(
        ("field", "value", "where"),
        [
            ("SendingOptions", {"SendingEnabled": "yes"}, "sendingOptions.sendingEnabled"),
            ("Tags", [{"Key": "k"}], "tags.1.member.value"),
            ("TrackingOptions", {}, "trackingOptions.customRedirectDomain"),
            ("DeliveryOptions", {"SendingPoolName": 7}, "deliveryOptions.sendingPoolName"),
        ],
    )
    def test_wrong_types_are_bad_requests(
        self,
        served: Emulator,
        boto3_client: Callable[..., Any],
        service: str,
        field: str,
        value: Any,
        where: str,
    ) -> None:
        client = boto3_client(served, service, parameter_validation=False)
        code, status, message = error_of(
            lambda: client.create_configuration_set(ConfigurationSetName="typed", **{field: value})
        )
        assert (code, status) == ("BadRequestException", 400)
        assert where in message

    def test_sesv2_range_is_enforced(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        client = boto3_client(served, "sesv2", parameter_validation=False)  # botocore checks too
        code, _, message = error_of(
            lambda: client.create_configuration_set(
                ConfigurationSetName="slow", DeliveryOptions={"MaxDeliverySeconds": 60}
            )
        )
        assert code == "BadRequestException"
        assert "greater than or equal to 300" in message

    def test_limit_exceeded_once_max_sets_exist(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any], service: str
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0, max_sets=2)) as served:
            client = boto3_client(served, service)
            client.create_configuration_set(ConfigurationSetName="one")
            client.create_configuration_set(ConfigurationSetName="two")
            code, status, _ = error_of(
                lambda: client.create_configuration_set(ConfigurationSetName="three")
            )
            assert (code, status) == ("LimitExceededException", 400)
            with pytest.raises(client.exceptions.LimitExceededException):
                client.create_configuration_set(ConfigurationSetName="three")
            # the quota is per account and Region
            boto3_client(served, service, region="eu-west-1").create_configuration_set(
                ConfigurationSetName="three"
            )
            client.delete_configuration_set(ConfigurationSetName="one")
            client.create_configuration_set(ConfigurationSetName="three")

    def test_too_many_requests(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any], service: str
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0.01, burst=1)) as served:
            client = boto3_client(served, service)
            client.create_configuration_set(ConfigurationSetName="first")
            code, status, _ = error_of(
                lambda: client.create_configuration_set(ConfigurationSetName="second")
            )
            assert (code, status) == ("TooManyRequestsException", 429)
            with pytest.raises(client.exceptions.TooManyRequestsException):
                client.create_configuration_set(ConfigurationSetName="second")
            assert served.state.all_names() == {"first"}  # throttled calls store nothing

    def test_plain_fault_codes(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any], service: str
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0, fault_rate=1.0, seed=3)) as served:
            client = boto3_client(served, service)
            codes = set()
            for index in range(20):
                code, status, _ = error_of(
                    functools.partial(
                        client.create_configuration_set, ConfigurationSetName=f"f{index}"
                    )
                )
                assert status == 500
                codes.add(code)
            assert codes == {"InternalFailure", "ConcurrentModificationException"}
            assert served.state.all_names() == set()
            # reads are kept clean by default
            assert client.list_configuration_sets()["ConfigurationSets"] == []
