"""Tags of configuration sets (both APIs) and tenants (SES v2), as plain boto3 sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bulk.emulator import Emulator

from .emulator_helpers import error_of

SET_ARN = "arn:aws:ses:us-east-1:123456789012:configuration-set/tagged"
TAGS = [{"Key": "tenant", "Value": "acme"}, {"Key": "tier", "Value": "gold"}]


class TestConfigurationSetTags:
    def test_list_returns_the_tags_given_at_creation(self, client: Any) -> None:
        client.create_configuration_set(ConfigurationSetName="tagged", Tags=TAGS)
        assert client.list_tags_for_resource(ResourceArn=SET_ARN)["Tags"] == TAGS

    def test_a_set_created_without_tags_has_none(self, client: Any) -> None:
        client.create_configuration_set(ConfigurationSetName="tagged")
        assert client.list_tags_for_resource(ResourceArn=SET_ARN)["Tags"] == []

    def test_tag_and_untag_change_what_get_returns_too(self, client: Any) -> None:
        client.create_configuration_set(ConfigurationSetName="tagged", Tags=TAGS)
        client.tag_resource(
            ResourceArn=SET_ARN,
            Tags=[{"Key": "tier", "Value": "silver"}, {"Key": "region", "Value": "eu"}],
        )
        client.untag_resource(ResourceArn=SET_ARN, TagKeys=["tenant", "not-there"])
        expected = [{"Key": "tier", "Value": "silver"}, {"Key": "region", "Value": "eu"}]
        assert client.list_tags_for_resource(ResourceArn=SET_ARN)["Tags"] == expected
        assert client.get_configuration_set(ConfigurationSetName="tagged")["Tags"] == expected

    def test_a_missing_set_is_not_found(self, client: Any) -> None:
        for call in (
            lambda: client.list_tags_for_resource(ResourceArn=SET_ARN),
            lambda: client.tag_resource(ResourceArn=SET_ARN, Tags=TAGS),
            lambda: client.untag_resource(ResourceArn=SET_ARN, TagKeys=["tier"]),
        ):
            code, status, message = error_of(call)
            assert (code, status) == ("NotFoundException", 404)
            assert SET_ARN in message

    def test_another_accounts_set_is_not_found(
        self, served: Emulator, client: Any, service: str, boto3_client: Callable[..., Any]
    ) -> None:
        served.configure(key_accounts={"AKIAOTHERACCOUNT": "222222222222"})
        client.create_configuration_set(ConfigurationSetName="tagged", Tags=TAGS)
        other = boto3_client(served, service, access_key="AKIAOTHERACCOUNT")
        assert error_of(lambda: other.list_tags_for_resource(ResourceArn=SET_ARN))[0] == (
            "NotFoundException"
        )

    def test_at_most_50_tags(self, client: Any) -> None:
        client.create_configuration_set(
            ConfigurationSetName="tagged",
            Tags=[{"Key": f"k{index}", "Value": "v"} for index in range(45)],
        )
        more = [{"Key": f"n{index}", "Value": "v"} for index in range(6)]
        code, status, message = error_of(
            lambda: client.tag_resource(ResourceArn=SET_ARN, Tags=more)
        )
        assert (code, status) == ("BadRequestException", 400)
        assert "50" in message
        assert len(client.list_tags_for_resource(ResourceArn=SET_ARN)["Tags"]) == 45
        client.tag_resource(ResourceArn=SET_ARN, Tags=more[:5])  # exactly 50 is fine

    def test_a_malformed_arn_is_a_bad_request(self, client: Any) -> None:
        code, status, _ = error_of(lambda: client.list_tags_for_resource(ResourceArn="tagged"))
        assert (code, status) == ("BadRequestException", 400)


class TestTenantTags:
    @pytest.fixture
    def v2(self, served: Emulator, boto3_client: Callable[..., Any]) -> Any:
        return boto3_client(served, "sesv2")

    def test_a_tenants_tags_by_its_arn(self, v2: Any) -> None:
        arn = v2.create_tenant(TenantName="acme", Tags=TAGS)["TenantArn"]
        assert v2.list_tags_for_resource(ResourceArn=arn)["Tags"] == TAGS
        v2.untag_resource(ResourceArn=arn, TagKeys=["tier"])
        v2.tag_resource(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "ops"}])
        expected = [{"Key": "tenant", "Value": "acme"}, {"Key": "owner", "Value": "ops"}]
        assert v2.list_tags_for_resource(ResourceArn=arn)["Tags"] == expected
        assert v2.get_tenant(TenantName="acme")["Tenant"]["Tags"] == expected

    def test_the_arn_of_a_deleted_tenant_names_nothing(self, v2: Any) -> None:
        old = v2.create_tenant(TenantName="acme", Tags=TAGS)["TenantArn"]
        v2.delete_tenant(TenantName="acme")
        new = v2.create_tenant(TenantName="acme")["TenantArn"]
        assert new != old  # the ARN carries the tenant's id
        code, _, _ = error_of(lambda: v2.list_tags_for_resource(ResourceArn=old))
        assert code == "NotFoundException"
        assert v2.list_tags_for_resource(ResourceArn=new)["Tags"] == []
