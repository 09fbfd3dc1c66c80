"""SES v2 tenants and their resource associations, as plain boto3 sees them."""

from __future__ import annotations

import datetime
import functools
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from bulk.emulator import Emulator, EmulatorState

from .emulator_helpers import error_of

ACCOUNT = "123456789012"  # the default account of the fixtures' access key
REGION = "us-east-1"
SCOPE = (ACCOUNT, REGION)


def set_arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:ses:{region}:{account}:configuration-set/{name}"


@pytest.fixture
def client(served: Emulator, boto3_client: Callable[..., Any]) -> Any:
    return boto3_client(served, "sesv2")


def list_all(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> list[list[Any]]:
    """Every page of a paged list, following NextToken (bounded)."""
    pages, token = [], None
    for _ in range(100):
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        pages.append(page[key])
        token = page.get("NextToken")
        if not token:
            return pages
    raise AssertionError("the list never ended")


class TestTenants:
    def test_create_answers_the_tenant_and_get_returns_it(self, client: Any) -> None:
        before = datetime.datetime.now(datetime.UTC)
        created = client.create_tenant(
            TenantName="acme",
            Tags=[{"Key": "tier", "Value": "gold"}],
            SuppressionAttributes={"SuppressedReasons": ["BOUNCE"], "SuppressionScope": "TENANT"},
        )
        created.pop("ResponseMetadata")
        tenant_id = created["TenantId"]
        assert created["TenantArn"] == f"arn:aws:ses:{REGION}:{ACCOUNT}:tenant/acme/{tenant_id}"
        assert created["SendingStatus"] == "ENABLED"
        assert created["CreatedTimestamp"] >= before.replace(microsecond=0)
        assert created["Tags"] == [{"Key": "tier", "Value": "gold"}]
        assert client.get_tenant(TenantName="acme")["Tenant"] == created

    def test_a_tenant_name_is_unique_in_its_account_and_region(
        self, served: Emulator, client: Any, boto3_client: Callable[..., Any]
    ) -> None:
        first = client.create_tenant(TenantName="acme")
        code, status, message = error_of(lambda: client.create_tenant(TenantName="acme"))
        assert (code, status) == ("AlreadyExistsException", 400)
        assert "acme" in message
        with pytest.raises(client.exceptions.AlreadyExistsException):
            client.create_tenant(TenantName="acme")
        assert client.get_tenant(TenantName="acme")["Tenant"]["TenantId"] == first["TenantId"]
        elsewhere = boto3_client(served, "sesv2", region="eu-west-1")
        assert elsewhere.create_tenant(TenantName="acme")["TenantId"] != first["TenantId"]
        assert served.state.tenants(SCOPE) == ["acme"]

    def test_missing_tenants_are_not_found(self, client: Any) -> None:
        for call in (client.get_tenant, client.delete_tenant):
            code, status, message = error_of(functools.partial(call, TenantName="ghost"))
            assert (code, status) == ("NotFoundException", 404)
            assert "ghost" in message

    @pytest.mark.parametrize("name", ["has space", "x" * 65, "dot.ted", ""])
    def test_names_outside_the_rule_are_bad_requests(
        self, served: Emulator, boto3_client: Callable[..., Any], name: str
    ) -> None:
        client = boto3_client(served, "sesv2", parameter_validation=False)
        code, status, _ = error_of(lambda: client.create_tenant(TenantName=name))
        assert (code, status) == ("BadRequestException", 400)
        assert served.state.tenants(SCOPE) == []

    def test_model_violations_are_bad_requests(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        client = boto3_client(served, "sesv2", parameter_validation=False)
        code, _, message = error_of(
            lambda: client.create_tenant(
                TenantName="t", SuppressionAttributes={"SuppressionScope": "GLOBAL"}
            )
        )
        assert code == "BadRequestException"
        assert "'GLOBAL' at 'suppressionAttributes.suppressionScope'" in message
        code, _, message = error_of(
            lambda: client.create_tenant(TenantName="t", Tags=[{"Key": "k" * 129, "Value": ""}])
        )
        assert code == "BadRequestException"
        assert "1 to 128 characters" in message
        assert served.state.tenants(SCOPE) == []

    def test_delete_removes_the_tenant(self, served: Emulator, client: Any) -> None:
        client.create_tenant(TenantName="gone")
        client.delete_tenant(TenantName="gone")
        assert client.list_tenants()["Tenants"] == []
        with pytest.raises(client.exceptions.NotFoundException):
            client.get_tenant(TenantName="gone")
        assert served.stats()["deleted_by_kind"]["tenants"] == 1

    def test_pinpoint_email_has_no_tenants(self, served: Emulator) -> None:
        request = urllib.request.Request(
            served.url + "/v1/email/tenants",
            data=json.dumps({"TenantName": "acme"}).encode(),
            method="POST",
            headers={
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIARAW/20240101/us-east-1/ses/"
                "aws4_request, SignedHeaders=host, Signature=0",
                "Content-Type": "application/json",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 404
        assert caught.value.headers["x-amzn-ErrorType"] == "UnknownOperationException"


class TestListTenants:
    def test_250_tenants_in_pages_of_100_each_once_in_order(self, client: Any) -> None:
        names = [f"tenant-{index:03d}" for index in range(250)]
        for name in reversed(names):  # created out of order: the list is by name
            client.create_tenant(TenantName=name)
        pages = list_all(client.list_tenants, "Tenants", PageSize=100)
        assert [len(page) for page in pages] == [100, 100, 50]
        assert [tenant["TenantName"] for page in pages for tenant in page] == names
        # each entry is the model's TenantInfo: no tags, no suppression attributes
        assert set(pages[0][0]) == {
            "TenantName",
            "TenantId",
            "TenantArn",
            "CreatedTimestamp",
            "SendingStatus",
        }

    def test_botocores_paginator_walks_the_same_pages(self, client: Any) -> None:
        names = [f"t{index:02d}" for index in range(25)]
        for name in names:
            client.create_tenant(TenantName=name)
        pages = client.get_paginator("list_tenants").paginate(PaginationConfig={"PageSize": 10})
        assert [t["TenantName"] for page in pages for t in page["Tenants"]] == names

    def test_a_page_resumes_after_its_last_tenant_even_if_it_was_deleted(self, client: Any) -> None:
        for name in ("a", "b", "c", "d"):
            client.create_tenant(TenantName=name)
        first = client.list_tenants(PageSize=2)
        client.delete_tenant(TenantName="b")
        client.create_tenant(TenantName="aa")  # before the token: not listed again
        second = client.list_tenants(PageSize=2, NextToken=first["NextToken"])
        assert [t["TenantName"] for t in first["Tenants"] + second["Tenants"]] == [
            "a",
            "b",
            "c",
            "d",
        ]
        assert "NextToken" not in second

    def test_filters(self, client: Any) -> None:
        for name in ("acme-eu", "acme-us", "globex"):
            client.create_tenant(TenantName=name)
        by_name = client.list_tenants(Filter={"TENANT_NAME_CONTAINS": "acme"})
        assert [t["TenantName"] for t in by_name["Tenants"]] == ["acme-eu", "acme-us"]
        assert len(client.list_tenants(Filter={"SENDING_STATUS": "ENABLED"})["Tenants"]) == 3
        assert client.list_tenants(Filter={"SENDING_STATUS": "DISABLED"})["Tenants"] == []

    def test_bad_paging_is_a_bad_request(self, served: Emulator, client: Any) -> None:
        client.create_tenant(TenantName="one")
        for kwargs in ({"PageSize": 0}, {"NextToken": "%%%"}, {"Filter": {"COLOR": "red"}}):
            code, status, _ = error_of(functools.partial(client.list_tenants, **kwargs))
            assert (code, status) == ("BadRequestException", 400)


class TestAssociations:
    @pytest.fixture
    def tenant_and_set(self, client: Any) -> str:
        client.create_tenant(TenantName="acme")
        client.create_configuration_set(ConfigurationSetName="acme-eu")
        return set_arn("acme-eu")

    def test_associate_then_list_both_ways(
        self, served: Emulator, client: Any, tenant_and_set: str
    ) -> None:
        tenant_id = client.get_tenant(TenantName="acme")["Tenant"]["TenantId"]
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        client.create_tenant_resource_association(TenantName="acme", ResourceArn=tenant_and_set)
        resources = client.list_tenant_resources(TenantName="acme")["TenantResources"]
        assert resources == [{"ResourceType": "CONFIGURATION_SET", "ResourceArn": tenant_and_set}]
        (tenant,) = client.list_resource_tenants(ResourceArn=tenant_and_set)["ResourceTenants"]
        assert tenant["AssociatedTimestamp"] >= before
        assert {k: v for k, v in tenant.items() if k != "AssociatedTimestamp"} == {
            "TenantName": "acme",
            "TenantId": tenant_id,
            "ResourceArn": tenant_and_set,
        }
        assert served.state.associations(SCOPE) == [("acme", tenant_and_set)]

    def test_an_association_that_exists_already_exists(
        self, client: Any, tenant_and_set: str
    ) -> None:
        client.create_tenant_resource_association(TenantName="acme", ResourceArn=tenant_and_set)
        code, status, message = error_of(
            lambda: client.create_tenant_resource_association(
                TenantName="acme", ResourceArn=tenant_and_set
            )
        )
        assert (code, status) == ("AlreadyExistsException", 400)
        assert "acme" in message and tenant_and_set in message

    def test_one_set_may_belong_to_several_tenants(
        self, served: Emulator, client: Any, tenant_and_set: str
    ) -> None:
        client.create_tenant(TenantName="shared")
        for tenant in ("shared", "acme"):
            client.create_tenant_resource_association(TenantName=tenant, ResourceArn=tenant_and_set)
        listed = client.list_resource_tenants(ResourceArn=tenant_and_set)["ResourceTenants"]
        assert [t["TenantName"] for t in listed] == ["acme", "shared"]

    @pytest.mark.parametrize(
        ("tenant", "arn", "missing"),
        [
            ("ghost", set_arn("acme-eu"), "ghost"),
            ("acme", set_arn("no-such-set"), set_arn("no-such-set")),
            ("acme", set_arn("acme-eu", account="210987654321"), "210987654321"),
            ("acme", set_arn("acme-eu", region="eu-west-1"), "eu-west-1"),
            ("acme", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com", "example.com"),
            ("ghost", set_arn("acme-eu", account="210987654321"), "ghost"),
        ],
    )
    def test_the_tenant_and_the_resource_must_exist_here(
        self,
        served: Emulator,
        client: Any,
        tenant_and_set: str,
        tenant: str,
        arn: str,
        missing: str,
    ) -> None:
        for call in (
            client.create_tenant_resource_association,
            client.delete_tenant_resource_association,
        ):
            code, status, message = error_of(
                functools.partial(call, TenantName=tenant, ResourceArn=arn)
            )
            assert (code, status) == ("NotFoundException", 404)
            assert missing in message
        assert served.state.associations(SCOPE) == []

    @pytest.mark.parametrize(
        "arn", ["acme-eu", "arn:aws:ses:us-east-1:123:configuration-set/x", "arn:aws:sns:a:b:c"]
    )
    def test_a_malformed_arn_is_a_bad_request(
        self, client: Any, tenant_and_set: str, arn: str
    ) -> None:
        code, status, message = error_of(
            lambda: client.create_tenant_resource_association(TenantName="acme", ResourceArn=arn)
        )
        assert (code, status) == ("BadRequestException", 400)
        assert arn in message
        code, _, _ = error_of(lambda: client.list_resource_tenants(ResourceArn=arn))
        assert code == "BadRequestException"

    def test_delete_an_association_keeps_both_ends(
        self, served: Emulator, client: Any, tenant_and_set: str
    ) -> None:
        client.create_tenant_resource_association(TenantName="acme", ResourceArn=tenant_and_set)
        client.delete_tenant_resource_association(TenantName="acme", ResourceArn=tenant_and_set)
        assert client.list_tenant_resources(TenantName="acme")["TenantResources"] == []
        assert client.get_configuration_set(ConfigurationSetName="acme-eu")
        code, _, message = error_of(
            lambda: client.delete_tenant_resource_association(
                TenantName="acme", ResourceArn=tenant_and_set
            )
        )
        assert code == "NotFoundException"
        assert "not associated" in message

    def test_listing_needs_an_existing_tenant_or_resource(self, client: Any) -> None:
        code, _, message = error_of(lambda: client.list_tenant_resources(TenantName="ghost"))
        assert (code, "ghost" in message) == ("NotFoundException", True)
        code, _, _ = error_of(lambda: client.list_resource_tenants(ResourceArn=set_arn("ghost")))
        assert code == "NotFoundException"

    def test_resources_filter_by_type_and_page_in_arn_order(self, client: Any) -> None:
        client.create_tenant(TenantName="big")
        names = [f"set-{index:02d}" for index in range(12)]
        for name in reversed(names):
            client.create_configuration_set(ConfigurationSetName=name)
            client.create_tenant_resource_association(TenantName="big", ResourceArn=set_arn(name))
        pages = list_all(
            client.list_tenant_resources, "TenantResources", TenantName="big", PageSize=5
        )
        assert [len(page) for page in pages] == [5, 5, 2]
        assert [r["ResourceArn"] for page in pages for r in page] == [set_arn(n) for n in names]
        only_sets = client.list_tenant_resources(
            TenantName="big", Filter={"RESOURCE_TYPE": "CONFIGURATION_SET"}
        )
        assert len(only_sets["TenantResources"]) == 12
        templates = client.list_tenant_resources(
            TenantName="big", Filter={"RESOURCE_TYPE": "EMAIL_TEMPLATE"}
        )
        assert templates["TenantResources"] == []
        code, _, _ = error_of(
            lambda: client.list_tenant_resources(TenantName="big", Filter={"RESOURCE_TYPE": "X"})
        )
        assert code == "BadRequestException"

    def test_resource_tenants_page_in_name_order(self, client: Any, tenant_and_set: str) -> None:
        names = [f"tenant-{index}" for index in range(7)]
        for name in reversed(names):
            client.create_tenant(TenantName=name)
            client.create_tenant_resource_association(TenantName=name, ResourceArn=tenant_and_set)
        pages = list_all(
            client.list_resource_tenants, "ResourceTenants", ResourceArn=tenant_and_set, PageSize=3
        )
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [t["TenantName"] for page in pages for t in page] == names


class TestCascades:
    def test_deleting_a_set_removes_its_associations(self, served: Emulator, client: Any) -> None:
        client.create_tenant(TenantName="acme")
        for name in ("keep", "drop"):
            client.create_configuration_set(ConfigurationSetName=name)
            client.create_tenant_resource_association(TenantName="acme", ResourceArn=set_arn(name))
        client.delete_configuration_set(ConfigurationSetName="drop")
        assert client.list_tenant_resources(TenantName="acme")["TenantResources"] == [
            {"ResourceType": "CONFIGURATION_SET", "ResourceArn": set_arn("keep")}
        ]
        # a set created again under the same name starts with no tenant
        client.create_configuration_set(ConfigurationSetName="drop")
        assert client.list_resource_tenants(ResourceArn=set_arn("drop"))["ResourceTenants"] == []
        assert served.stats()["tenant_associations"] == 1

    def test_deleting_a_tenant_removes_its_associations_not_its_sets(
        self, served: Emulator, client: Any
    ) -> None:
        # SES: "When you delete a tenant, its associations with resources are removed, but the
        # resources themselves are not deleted."
        client.create_configuration_set(ConfigurationSetName="shared")
        for tenant in ("acme", "globex"):
            client.create_tenant(TenantName=tenant)
            client.create_tenant_resource_association(
                TenantName=tenant, ResourceArn=set_arn("shared")
            )
        client.delete_tenant(TenantName="acme")
        listed = client.list_resource_tenants(ResourceArn=set_arn("shared"))["ResourceTenants"]
        assert [t["TenantName"] for t in listed] == ["globex"]
        assert served.state.names(SCOPE) == ["shared"]
        client.create_tenant(TenantName="acme")  # a new tenant of the same name has no sets
        assert client.list_tenant_resources(TenantName="acme")["TenantResources"] == []
        assert served.stats()["deleted_by_kind"]["tenant_associations"] == 1

    def test_tenants_survive_a_restart(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        state = EmulatorState()
        with threaded_emulator(state=state) as first:
            client = boto3_client(first, "sesv2")
            client.create_tenant(TenantName="kept")
            client.create_configuration_set(ConfigurationSetName="kept-set")
            client.create_tenant_resource_association(
                TenantName="kept", ResourceArn=set_arn("kept-set")
            )
        with threaded_emulator(state=state) as second:
            client = boto3_client(second, "sesv2")
            with pytest.raises(client.exceptions.AlreadyExistsException):
                client.create_tenant(TenantName="kept")
            assert client.list_tenant_resources(TenantName="kept")["TenantResources"]
