"""The four create operations of a row's chain (tenant, set, event destination, association):
their throttling, faults and counters, with plain boto3 and with aiobotocore."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from bulk.emulator import ConfigError, Emulator, EmulatorConfig, EmulatorState, Kind

ACCOUNT = "123456789012"
SCOPE = (ACCOUNT, "us-east-1")
CREATES = frozenset(
    {
        "CreateConfigurationSet",
        "CreateTenant",
        "CreateTenantResourceAssociation",
        "CreateConfigurationSetEventDestination",
    }
)
SNS = {
    "MatchingEventTypes": ["SEND"],
    "SnsDestination": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:events"},
}


def set_arn(name: str) -> str:
    return f"arn:aws:ses:us-east-1:{ACCOUNT}:configuration-set/{name}"


def outcome(call: Callable[[], Any]) -> str:
    """'ok', an error code, or 'dropped' for a connection closed without a reply."""
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    except ConnectionClosedError:
        return "dropped"
    return "ok"


def chain(client: Any, tenant: str, set_name: str, destination: str) -> list[str]:
    """The outcome of each create of one row's chain, in the order the engine sends them."""
    return [
        outcome(functools.partial(client.create_tenant, TenantName=tenant)),
        outcome(functools.partial(client.create_configuration_set, ConfigurationSetName=set_name)),
        outcome(
            functools.partial(
                client.create_configuration_set_event_destination,
                ConfigurationSetName=set_name,
                EventDestinationName=destination,
                EventDestination=SNS,
            )
        ),
        outcome(
            functools.partial(
                client.create_tenant_resource_association,
                TenantName=tenant,
                ResourceArn=set_arn(set_name),
            )
        ),
    ]


class TestThrottling:
    def test_each_create_has_its_own_bucket_sized_by_rate(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0.01, burst=1)) as served:
            client = boto3_client(served, "sesv2")
            # one of each create gets through: spending one bucket leaves the others full
            assert chain(client, "t1", "s1", "d1") == ["ok"] * 4
            # the second of each is throttled, before anything else is looked at (the
            # association exists, yet the answer is 429, not AlreadyExists)
            assert chain(client, "t2", "s2", "d2") == ["TooManyRequestsException"] * 4
            assert outcome(
                lambda: client.create_tenant_resource_association(
                    TenantName="t1", ResourceArn=set_arn("s1")
                )
            ) == ("TooManyRequestsException")
            assert served.state.tenants(SCOPE) == ["t1"]
            assert served.state.names(SCOPE) == ["s1"]
            assert [d["Name"] for d in served.state.destinations(SCOPE, "s1") or []] == ["d1"]
            throttled = served.stats()["by_scope"][f"{ACCOUNT}/us-east-1"]["throttled"]
            assert throttled == {
                "CreateConfigurationSet": 1,
                "CreateConfigurationSetEventDestination": 1,
                "CreateTenant": 1,
                "CreateTenantResourceAssociation": 2,
            }
            # reads of the same resources have their own, generous buckets
            for _ in range(10):
                client.get_tenant(TenantName="t1")
                client.list_tenant_resources(TenantName="t1")
                client.get_configuration_set_event_destinations(ConfigurationSetName="s1")

    def test_buckets_are_per_account_and_region(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(
            rate=0.01, burst=1, key_accounts={"AKIASECONDACCOUNT": "222222222222"}
        )
        with threaded_emulator(config) as served:
            clients = [
                boto3_client(served, "sesv2"),
                boto3_client(served, "sesv2", region="eu-west-1"),
                boto3_client(served, "sesv2", access_key="AKIASECONDACCOUNT"),
            ]
            for client in clients:
                assert outcome(functools.partial(client.create_tenant, TenantName="a")) == "ok"
            for client in clients:
                assert outcome(functools.partial(client.create_tenant, TenantName="b")) == (
                    "TooManyRequestsException"
                )

    def test_operation_limits_size_one_operation_on_its_own(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(
            rate=0, operation_limits={"CreateTenant": (0.01, 2), "ListTenants": (0.01, 1)}
        )
        with threaded_emulator(config) as served:
            client = boto3_client(served, "sesv2")
            results = [
                outcome(functools.partial(client.create_tenant, TenantName=f"t{i}"))
                for i in range(4)
            ]
            assert results == ["ok", "ok", "TooManyRequestsException", "TooManyRequestsException"]
            for index in range(5):  # creates of sets stay unthrottled (rate=0)
                client.create_configuration_set(ConfigurationSetName=f"s{index}")
            assert outcome(client.list_tenants) == "ok"
            assert outcome(client.list_tenants) == "TooManyRequestsException"
            assert outcome(lambda: client.get_tenant(TenantName="t0")) == "ok"  # its own bucket

    def test_a_limit_for_an_unknown_operation_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="CreateTenant"):  # the message lists known ones
            EmulatorConfig(operation_limits={"CreateTenants": (1, 1)})


class TestFaults:
    def test_by_default_only_configuration_set_creates_fail(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0, fault_rate=1.0, seed=1)) as served:
            client = boto3_client(served, "sesv2")
            assert outcome(lambda: client.create_tenant(TenantName="t")) == "ok"
            assert outcome(lambda: client.create_configuration_set(ConfigurationSetName="s")) in {
                "InternalFailure",
                "ConcurrentModificationException",
            }

    def test_plain_faults_on_the_new_creates_store_nothing(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator() as served:
            client = boto3_client(served, "sesv2")
            client.create_tenant(TenantName="t1")
            client.create_configuration_set(ConfigurationSetName="s1")
            served.configure(fault_operations=sorted(CREATES), fault_rate=1.0, seed=2)
            results = chain(client, "t2", "s1", "d1")
            assert set(results) <= {"InternalFailure", "ConcurrentModificationException"}
            assert outcome(
                lambda: client.create_tenant_resource_association(
                    TenantName="t1", ResourceArn=set_arn("s1")
                )
            ) in {"InternalFailure", "ConcurrentModificationException"}
            assert served.state.tenants(SCOPE) == ["t1"]
            assert served.state.destinations(SCOPE, "s1") == []
            assert served.state.associations(SCOPE) == []
            assert served.stats()["faults"] == 5

    def test_ambiguous_creates_are_stored_then_answered_500(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(
            rate=0, ambiguous_rate=1.0, ambiguous_drop_share=0.0, fault_operations=CREATES
        )
        with threaded_emulator(config) as served:
            client = boto3_client(served, "sesv2")
            assert chain(client, "t1", "s1", "d1") == ["InternalFailure"] * 4
            served.configure(ambiguous_rate=0.0)
            # the retry of each finds it done: the name is the idempotency key
            assert chain(client, "t1", "s1", "d1") == ["AlreadyExistsException"] * 4
            assert served.state.associations(SCOPE) == [("t1", set_arn("s1"))]
            for kind in Kind:
                assert list(served.state.creations(SCOPE, kind).values()) == [1], kind

    def test_a_dropped_tenant_create_was_stored(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(
            rate=0,
            ambiguous_rate=1.0,
            ambiguous_drop_share=1.0,
            fault_operations=frozenset({"CreateTenant"}),
        )
        with threaded_emulator(config) as served:
            client = boto3_client(served, "sesv2")
            assert outcome(lambda: client.create_tenant(TenantName="t")) == "dropped"
            assert served.state.tenants(SCOPE) == ["t"]
            assert served.stats()["dropped"] == 1

    def test_fault_operations_from_json_accept_the_new_creates(
        self, threaded_emulator: Callable[..., Any]
    ) -> None:
        with threaded_emulator() as served:
            config = served.configure({"fault_operations": sorted(CREATES)})
            assert config.fault_operations == CREATES
            assert served.stats()["config"]["fault_operations"] == sorted(CREATES)


class TestStats:
    def test_counts_calls_existing_items_and_creations_by_kind(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator() as served:
            client = boto3_client(served, "sesv2")
            chain(client, "t1", "s1", "d1")
            chain(client, "t2", "s2", "d2")
            client.create_configuration_set_event_destination(
                ConfigurationSetName="s1", EventDestinationName="d9", EventDestination=SNS
            )
            outcome(lambda: client.create_tenant(TenantName="t1"))  # AlreadyExists
            client.delete_configuration_set(ConfigurationSetName="s2")  # and its d2, t2's link
            client.create_configuration_set(ConfigurationSetName="s2")  # created a second time
            stats = served.stats()
            assert stats["calls"]["CreateTenant"] == 3
            assert stats["calls"]["CreateConfigurationSetEventDestination"] == 3
            assert (
                stats["configuration_sets"],
                stats["tenants"],
                stats["event_destinations"],
                stats["tenant_associations"],
            ) == (2, 2, 2, 1)
            assert stats["created_by_kind"] == {
                "configuration_sets": 3,
                "tenants": 2,
                "event_destinations": 3,
                "tenant_associations": 2,
            }
            assert stats["deleted_by_kind"] == {
                "configuration_sets": 1,
                "tenants": 0,
                "event_destinations": 1,
                "tenant_associations": 1,
            }
            lane = stats["by_scope"][f"{ACCOUNT}/us-east-1"]
            assert lane["creations"]["configuration_sets"] == {"s1": 1, "s2": 2}
            assert lane["creations"]["tenant_associations"] == {
                f"t1/{set_arn('s1')}": 1,
                f"t2/{set_arn('s2')}": 1,
            }
            assert served.state.creations(SCOPE, Kind.TENANTS) == {"t1": 1, "t2": 1}
            served.reset()
            stats = served.stats()
            assert stats["tenants"] == stats["created_by_kind"]["tenants"] == 0
            assert served.state.associations(SCOPE) == []
            assert served.state.creations(SCOPE, Kind.TENANTS) == {}


async def _create(client: Any, operation: str, **kwargs: Any) -> str:
    """Send one create until the service answers it (the engine's rule): 'created', or
    'exists' when AlreadyExists answers a first attempt that was not ambiguous."""
    ambiguous = False
    for _ in range(50):  # bounded: faults are random
        try:
            await getattr(client, operation)(**kwargs)
            return "created"
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "AlreadyExistsException":
                return "created" if ambiguous else "exists"
            assert code in {"InternalFailure", "ConcurrentModificationException"}, code
            ambiguous = True
        except ConnectionClosedError:
            ambiguous = True
    raise AssertionError(f"{operation} never succeeded")


async def _run_chain(emulator: Emulator, tenants: list[str]) -> Counter[str]:
    """The chain of each tenant (tenant, set, two destinations, association) via aiobotocore."""
    results: Counter[str] = Counter()
    config = Config(retries={"total_max_attempts": 1}, read_timeout=10)
    async with get_session().create_client(
        "sesv2",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAASYNC",
        aws_secret_access_key="secret",
        config=config,
    ) as client:
        for tenant in tenants:
            name = f"{tenant}-set"
            results[await _create(client, "create_tenant", TenantName=tenant)] += 1
            results[
                await _create(client, "create_configuration_set", ConfigurationSetName=name)
            ] += 1
            for destination in ("sns", "backup"):
                results[
                    await _create(
                        client,
                        "create_configuration_set_event_destination",
                        ConfigurationSetName=name,
                        EventDestinationName=destination,
                        EventDestination=SNS,
                    )
                ] += 1
            results[
                await _create(
                    client,
                    "create_tenant_resource_association",
                    TenantName=tenant,
                    ResourceArn=set_arn(name),
                )
            ] += 1
    return results


class TestResumedChain:
    async def test_a_chain_resumed_after_a_restart_creates_each_item_exactly_once(
        self, emulator_factory: Callable[..., Any]
    ) -> None:
        state = EmulatorState()
        config = EmulatorConfig(
            rate=0,
            fault_rate=0.2,
            ambiguous_rate=0.3,
            ambiguous_drop_share=0.3,
            fault_operations=CREATES,
            seed=11,
        )
        tenants = [f"tenant-{index}" for index in range(6)]
        async with emulator_factory(config, state=state) as first:
            before = await _run_chain(first, tenants[:4])  # then the process "dies"
            first_stats = first.stats()
        async with emulator_factory(config, state=state) as second:
            after = await _run_chain(second, tenants)  # the resumed run sends every step again
            stats = second.stats()
        assert before == {"created": 20}  # 4 tenants x 5 creates, faults retried
        # From the client's side a step done before the restart may look "created" again (a
        # plain 500, then AlreadyExists): only the server's counters tell. They say each item
        # was created once, whatever the faults.
        assert sum(after.values()) == 30 and after["exists"] > 0
        assert first_stats["faults"] > 0 and first_stats["ambiguous"] > 0
        account = next(iter(stats["by_scope"].values()))["account"]
        scope = (account, "us-east-1")
        for kind in Kind:
            creations = state.creations(scope, kind)
            assert set(creations.values()) == {1}, (kind, creations)
        assert len(state.creations(scope, Kind.EVENT_DESTINATIONS)) == 12
        assert stats["tenant_associations"] == len(state.associations(scope)) == 6
