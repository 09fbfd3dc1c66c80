"""What the emulator stores, without a network: ARNs, associations, cascades, paging members."""

from __future__ import annotations

import botocore.session
import pytest
from multidict import MultiDict

from bulk.emulator import EmulatorState, Kind
from bulk.emulator.arns import Arn
from bulk.emulator.config import OPERATIONS
from bulk.emulator.links import Links
from bulk.emulator.operations import HANDLERS, paging_of
from bulk.emulator.protocol import gather_input, resolve, routes
from bulk.emulator.state import Result

SCOPE = ("111111111111", "us-east-1")


class TestArn:
    def test_configuration_set_and_tenant_arns_round_trip(self) -> None:
        arn = Arn.configuration_set("111111111111", "eu-west-1", "acme-eu")
        assert str(arn) == "arn:aws:ses:eu-west-1:111111111111:configuration-set/acme-eu"
        assert Arn.parse(str(arn)) == arn
        tenant = Arn.tenant("111111111111", "cn-north-1", "acme", "id-1")
        assert str(tenant) == "arn:aws-cn:ses:cn-north-1:111111111111:tenant/acme/id-1"
        assert Arn.parse(str(tenant)) == tenant
        assert tenant.within("111111111111", "cn-north-1")
        assert not tenant.within("111111111111", "us-east-1")

    @pytest.mark.parametrize(
        "text",
        [
            "acme",
            "arn:aws:sns:us-east-1:111111111111:topic",
            "arn:aws:ses:us-east-1:1111:configuration-set/acme",
            "arn:aws:ses:us-east-1:111111111111:configuration-set/a/b",
            "arn:aws:ses:us-east-1:111111111111:tenant/acme",
            "arn:aws:ses:us-east-1:111111111111:tenant/acme/id/more",
        ],
    )
    def test_what_is_not_an_ses_resource_arn(self, text: str) -> None:
        assert Arn.parse(text) is None

    def test_kinds_the_emulator_does_not_hold_still_parse(self) -> None:
        arn = Arn.parse("arn:aws:ses:us-east-1:111111111111:identity/example.com")
        assert arn is not None and (arn.kind, arn.name) == ("identity", "example.com")


class TestLinks:
    def test_both_indexes_agree_and_drop_empty_entries(self) -> None:
        links = Links()
        assert links.add("acme", "r1", 1.0) and links.add("acme", "r2", 2.0)
        assert links.add("globex", "r1", 3.0)
        assert not links.add("acme", "r1", 9.0)  # exists: the first time is kept
        assert links.by_resource["r1"] == {"acme": 1.0, "globex": 3.0}
        assert links.drop_tenant("acme") == 2
        assert links.by_resource == {"r1": {"globex": 3.0}}
        assert links.drop_resource("r1") == 1
        assert (links.by_tenant, links.by_resource, len(links)) == ({}, {}, 0)
        assert not links.remove("acme", "r1")


class TestStateCascades:
    def test_deleting_a_set_drops_its_destinations_and_associations(self) -> None:
        state = EmulatorState()
        state.create(SCOPE, "s", {}, max_sets=None)
        record = {"TenantName": "t", "TenantId": "id", "SendingStatus": "ENABLED"}
        assert state.create_tenant(SCOPE, record) is Result.CREATED
        assert state.create_tenant(SCOPE, record) is Result.EXISTS
        assert state.associate(SCOPE, "t", "s", 5.0) is Result.CREATED
        assert state.create_destination(SCOPE, "s", "d", {"x": 1}, limit=1) is Result.CREATED
        assert state.create_destination(SCOPE, "s", "e", {"x": 1}, limit=1) is Result.LIMIT
        assert state.delete(SCOPE, "s")
        assert state.associations(SCOPE) == []
        assert state.destinations(SCOPE, "s") is None
        assert state.tenant_resources(SCOPE, "t") == []
        assert state.associate(SCOPE, "t", "s", 6.0) is Result.MISSING_RESOURCE
        assert state.associate(SCOPE, "ghost", "s", 6.0) is Result.MISSING_TENANT
        assert state.creations(SCOPE, Kind.TENANT_ASSOCIATIONS) == {
            "t/arn:aws:ses:us-east-1:111111111111:configuration-set/s": 1
        }

    def test_an_access_key_reads_its_accounts_tenants(self) -> None:
        state = EmulatorState()
        state.accounts.configure("111111111111", {})
        state.create_tenant(("AKIAANY", "us-east-1"), {"TenantName": "t", "TenantId": "i"})
        assert state.tenants(SCOPE) == ["t"]
        assert state.tenant(("AKIAOTHER", "us-east-1"), "t") == {"TenantName": "t", "TenantId": "i"}


class TestModel:
    def test_every_operation_has_a_handler_and_routes_where_its_model_has_it(self) -> None:
        session = botocore.session.get_session()
        assert set(HANDLERS) == set(OPERATIONS)
        served = {(route.service, route.operation) for route in routes()}
        for service in ("pinpoint-email", "sesv2"):
            names = set(session.get_service_model(service).operation_names)
            assert {op for s, op in served if s == service} == set(OPERATIONS) & names
        assert ("pinpoint-email", "CreateTenant") not in served

    def test_every_list_pages_with_its_models_member_names(self) -> None:
        lists = {
            (route.service, route.operation)
            for route in routes()
            if route.operation.startswith("List") and route.operation != "ListTagsForResource"
        }
        assert len(lists) == 5  # sets on both APIs; tenants, tenant resources, resource tenants
        for service, operation in lists:
            paging = paging_of(service, operation)
            assert (paging.input_token, paging.limit_key, paging.output_token) == (
                "NextToken",
                "PageSize",
                "NextToken",
            )
        assert paging_of("sesv2", "ListTenants").result_key == "Tenants"
        assert paging_of("sesv2", "ListConfigurationSets").result_key == "ConfigurationSets"

    def test_a_repeated_query_key_is_a_list_member(self) -> None:
        route, labels = resolve("DELETE", "/v2/email/tags")  # type: ignore[misc]
        query = MultiDict([("ResourceArn", "arn"), ("TagKeys", "a"), ("TagKeys", "b")])
        assert gather_input(route, labels, query, {}) == {
            "ResourceArn": "arn",
            "TagKeys": ["a", "b"],
        }
