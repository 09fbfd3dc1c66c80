"""The emulator's pure logic, without a network: buckets on a fake clock, faults, config, models."""

from __future__ import annotations

import json
from collections import Counter

import botocore.session
import pytest

from bulk.emulator import ConfigError, EmulatorConfig, EmulatorState, Fault, TokenBucket
from bulk.emulator.accounts import Accounts, Role
from bulk.emulator.config import parse_key_account, parse_limit
from bulk.emulator.faults import FaultInjector
from bulk.emulator.protocol import ServiceError, check_name, resolve, routes, validate
from bulk.emulator.server import describe
from bulk.emulator.state import CreateResult
from bulk.emulator.throttle import Throttle
from bulk.errors import UsageError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def admitted(bucket: TokenBucket, attempts: int) -> int:
    return sum(bucket.try_acquire() for _ in range(attempts))


class TestTokenBucket:
    def test_starts_full_then_admits_one_per_interval(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
        assert admitted(bucket, 5) == 1
        clock.advance(0.999)
        assert not bucket.try_acquire()
        clock.advance(0.001)
        assert bucket.try_acquire()

    def test_burst_is_the_most_admitted_at_once(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=100.0, burst=5, clock=clock)
        assert admitted(bucket, 50) == 5
        clock.advance(60.0)  # a long quiet spell refills the bucket, never beyond burst
        assert admitted(bucket, 50) == 5

    def test_admits_rate_times_duration_plus_burst_over_a_long_run(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=100.0, burst=5, clock=clock)
        total = 0
        for _ in range(10_000):  # 10 s of a client asking every millisecond
            total += bucket.try_acquire()
            clock.advance(0.001)
        assert 5 + 100 * 10 - 1 <= total <= 5 + 100 * 10

    def test_rate_zero_admits_everything(self) -> None:
        bucket = TokenBucket(rate=0.0, burst=1, clock=FakeClock())
        assert admitted(bucket, 1000) == 1000

    def test_reconfigure_keeps_earned_tokens_up_to_the_new_burst(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=1.0, burst=10, clock=clock)
        bucket.reconfigure(rate=1.0, burst=2)
        assert bucket.tokens == 2
        bucket.reconfigure(rate=50.0, burst=10)
        clock.advance(0.1)
        assert bucket.tokens == pytest.approx(7.0)

    def test_a_clock_going_backwards_takes_no_tokens(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
        bucket.try_acquire()
        clock.advance(-5.0)
        assert bucket.tokens == pytest.approx(1.0)


class TestThrottle:
    def test_one_bucket_per_operation_account_and_region(self) -> None:
        throttle = Throttle({"CreateConfigurationSet": (1.0, 1)}, (50.0, 50), clock=FakeClock())
        assert throttle.admit("CreateConfigurationSet", "A", "us-east-1")
        assert not throttle.admit("CreateConfigurationSet", "A", "us-east-1")
        assert throttle.admit("CreateConfigurationSet", "A", "eu-west-1")
        assert throttle.admit("CreateConfigurationSet", "B", "us-east-1")
        assert sum(throttle.admit("GetAccount", "A", "us-east-1") for _ in range(60)) == 50

    def test_reconfigure_and_reset(self) -> None:
        throttle = Throttle({"CreateConfigurationSet": (1.0, 1)}, (50.0, 50), clock=FakeClock())
        throttle.admit("CreateConfigurationSet", "A", "r")
        throttle.reconfigure({"CreateConfigurationSet": (0.0, 1)}, (50.0, 50))
        assert all(throttle.admit("CreateConfigurationSet", "A", "r") for _ in range(10))
        throttle.reconfigure({"CreateConfigurationSet": (1.0, 1)}, (50.0, 50))
        throttle.reset()
        assert throttle.admit("CreateConfigurationSet", "A", "r")


class TestFaultInjector:
    def test_rates_within_tolerance(self) -> None:
        config = EmulatorConfig(fault_rate=0.05, ambiguous_rate=0.1, seed=1)
        injector = FaultInjector(config.seed)
        faults = Counter(injector.roll(config) for _ in range(20_000))
        plain = faults[Fault.INTERNAL_FAILURE] + faults[Fault.CONCURRENT_MODIFICATION]
        ambiguous = faults[Fault.AMBIGUOUS_500] + faults[Fault.AMBIGUOUS_DROP]
        assert plain == pytest.approx(1000, abs=100)
        assert ambiguous == pytest.approx(2000, abs=130)
        assert faults[Fault.AMBIGUOUS_DROP] == pytest.approx(ambiguous / 2, abs=100)

    def test_a_seed_repeats_and_latency_does_not_shift_faults(self) -> None:
        config = EmulatorConfig(fault_rate=0.2, ambiguous_rate=0.2, latency_ms=10, seed=9)
        plain, with_latency = FaultInjector(9), FaultInjector(9)
        expected = [plain.roll(config) for _ in range(200)]
        seen = []
        for _ in range(200):
            delay = with_latency.latency(config)
            assert 0.005 <= delay <= 0.015
            seen.append(with_latency.roll(config))
        assert seen == expected

    def test_no_rates_no_faults(self) -> None:
        injector = FaultInjector(None)
        config = EmulatorConfig()
        assert {injector.roll(config) for _ in range(1000)} == {Fault.NONE}
        assert injector.latency(config) == 0.0


class TestConfig:
    def test_defaults_follow_the_documented_ses_limit(self) -> None:
        config = EmulatorConfig()
        assert (config.rate, config.burst) == (1.0, 1)
        assert config.other_rate >= 50
        assert config.fault_operations == frozenset({"CreateConfigurationSet"})

    @pytest.mark.parametrize(
        "settings",
        [
            {"rate": -1},
            {"burst": 0},
            {"burst": 1.5},
            {"fault_rate": 1.5},
            {"fault_rate": 0.6, "ambiguous_rate": 0.6},
            {"latency_ms": float("nan")},
            {"max_sets": -1},
            {"rate": "fast"},
            {"fault_operations": frozenset({"SendEmail"})},
            {"default_account": "12345"},
            {"key_accounts": {"AKIAEXAMPLE": "not-an-account"}},
            {"key_accounts": ["AKIAEXAMPLE"]},
            {"denied_roles": ["admin"]},
            {"denied_roles": "arn:aws:iam::111111111111:role/one-string-not-a-list"},
            {"credential_lifetime": 0},
            {"operation_limits": {"SendEmail": (1, 1)}},
            {"operation_limits": {"GetAccount": (1, 0)}},
            {"operation_limits": {"GetAccount": 5}},
            {"operation_limits": {"CreateConfigurationSet": (1, 1)}},
        ],
    )
    def test_bad_settings_name_the_setting_and_value(self, settings: dict[str, object]) -> None:
        with pytest.raises(ConfigError) as caught:
            EmulatorConfig(**settings)  # type: ignore[arg-type]
        assert next(iter(settings)) in str(caught.value)
        assert isinstance(caught.value, UsageError)  # `bulk emulate` exits 2 with one line

    def test_replace_from_json(self) -> None:
        config = EmulatorConfig().replace({"rate": 5, "fault_operations": ["GetAccount"]})
        assert config.rate == 5
        assert config.fault_operations == frozenset({"GetAccount"})
        assert config.as_dict()["fault_operations"] == ["GetAccount"]
        with pytest.raises(ConfigError, match="unknown setting"):
            config.replace({"rats": 5})

    def test_every_setting_round_trips_through_json(self) -> None:
        config = EmulatorConfig(
            default_account="000000000000",
            key_accounts={"AKIAOTHER": "222222222222"},
            denied_roles={"arn:aws:iam::333333333333:role/locked", "444444444444"},
            credential_lifetime=60,
            operation_limits={"ListConfigurationSets": (5, 10), "AssumeRole": (2, 1)},
        )
        assert EmulatorConfig().replace(json.loads(json.dumps(config.as_dict()))) == config
        assert hash(config) == hash(config.replace({}))  # still a hashable frozen record
        assert config.operation_limits["AssumeRole"] == (2.0, 1)
        with pytest.raises(TypeError):
            config.key_accounts["AKIAMORE"] = "555555555555"  # type: ignore[index]

    def test_limits_are_per_operation_with_a_default(self) -> None:
        config = EmulatorConfig(
            rate=2,
            burst=3,
            operation_limits={"GetAccount": (0.5, 1), "CreateTenant": (4, 2)},
        )
        # Every create is sized by rate/burst (its own bucket each) unless named on its own.
        assert config.limits() == (
            {
                "CreateConfigurationSet": (2, 3),
                "CreateTenant": (4, 2),
                "CreateTenantResourceAssociation": (2, 3),
                "CreateConfigurationSetEventDestination": (2, 3),
                "GetAccount": (0.5, 1),
            },
            (config.other_rate, config.other_burst),
        )

    def test_command_line_forms(self) -> None:
        assert parse_limit("ListConfigurationSets=5/10") == ("ListConfigurationSets", (5.0, 10))
        assert parse_limit("AssumeRole=0.5") == ("AssumeRole", (0.5, 1))
        assert parse_key_account("AKIAX=111111111111") == ("AKIAX", "111111111111")
        for bad in ("ListConfigurationSets", "GetAccount=fast", "GetAccount=1/2.5"):
            with pytest.raises(ConfigError, match="OPERATION=RATE"):
                parse_limit(bad)
        with pytest.raises(ConfigError, match="ACCESS_KEY_ID=ACCOUNT"):
            parse_key_account("=111111111111")

    def test_describe_mentions_every_setting(self) -> None:
        text = "\n".join(
            describe(EmulatorConfig(rate=0, max_sets=10, seed=3), "http://127.0.0.1:1")
        )
        for fragment in ("unthrottled", "max sets per account and Region: 10", "seed: 3"):
            assert fragment in text
        assert "signatures are not verified" in text
        text = "\n".join(
            describe(
                EmulatorConfig(
                    default_account="000000000000",
                    denied_roles={"444444444444"},
                    credential_lifetime=60,
                    operation_limits={"ListConfigurationSets": (5, 10)},
                ),
                "http://127.0.0.1:1",
            )
        )
        for fragment in (
            "account 000000000000",
            "AssumeRole keys to the role's account",
            "at most 60 s",
            "denied roles: 444444444444",
            "ListConfigurationSets: 5/s, burst 10",
            "AWS_ENDPOINT_URL_STS=http://127.0.0.1:1",
        ):
            assert fragment in text


class TestProtocol:
    def test_routes_come_from_botocore_models(self) -> None:
        session = botocore.session.get_session()
        for route in routes():
            if route.body_in_query:  # the legacy alias, which current models no longer have
                continue
            http = session.get_service_model(route.service).operation_model(route.operation).http
            assert route.method == http["method"]
        assert resolve("POST", "/v2/email/list-configuration-sets")[0].operation == (  # type: ignore[index]
            "ListConfigurationSets"
        )
        assert resolve("GET", "/v1/email/configuration-sets")[0].service == "pinpoint-email"  # type: ignore[index]
        route, labels = resolve("DELETE", "/v2/email/configuration-sets/a%2Fb")  # type: ignore[misc]
        assert (route.operation, labels) == (
            "DeleteConfigurationSet",
            {"ConfigurationSetName": "a/b"},
        )
        assert resolve("GET", "/v2/email/configuration-sets/a/b") is None

    def test_validate_reports_every_problem(self) -> None:
        shape = (
            botocore.session.get_session()
            .get_service_model("sesv2")
            .operation_model("CreateConfigurationSet")
            .input_shape
        )
        problems = validate(
            {
                "ConfigurationSetName": "ok",
                "DeliveryOptions": {"TlsPolicy": "NO", "MaxDeliverySeconds": True},
                "Tags": {"k": "v"},
            },
            shape,
        )
        assert len(problems) == 3
        assert validate({"ConfigurationSetName": "ok", "Unknown": 1}, shape) == []

    @pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 64])
    def test_name_rule_accepts(self, name: str) -> None:
        assert check_name(name) == name


class TestState:
    def test_create_respects_existing_names_and_quota(self) -> None:
        state = EmulatorState()
        scope = ("111111111111", "us-east-1")
        assert state.create(scope, "a", {"x": 1}, max_sets=1) is CreateResult.CREATED
        assert state.create(scope, "a", {}, max_sets=1) is CreateResult.EXISTS
        assert state.create(scope, "b", {}, max_sets=1) is CreateResult.LIMIT
        assert state.create(("111111111111", "eu-west-1"), "b", {}, max_sets=1) is (
            CreateResult.CREATED
        )
        assert state.snapshot()[scope] == {"a": {"x": 1}}
        state.reset()
        assert state.all_names() == set()
        assert state.stats()["created"] == 0

    def test_a_scope_may_name_an_access_key_for_its_account(self) -> None:
        state = EmulatorState()
        state.accounts.configure("111111111111", {"AKIAMAPPED": "222222222222"})
        state.create(("AKIAANYKEY", "us-east-1"), "a", {}, max_sets=None)
        state.create(("AKIAMAPPED", "us-east-1"), "b", {}, max_sets=None)
        assert state.names(("111111111111", "us-east-1")) == ["a"]
        assert state.names(("AKIAOTHERKEY", "us-east-1")) == ["a"]
        assert state.names(("222222222222", "us-east-1")) == ["b"]
        assert state.get(("AKIAMAPPED", "us-east-1"), "b") == {}
        assert set(state.snapshot()) == {
            ("111111111111", "us-east-1"),
            ("222222222222", "us-east-1"),
        }

    def test_counters_per_account_and_region(self) -> None:
        state = EmulatorState()
        scope = ("111111111111", "eu-west-1")
        state.count_scoped(scope, "CreateConfigurationSet", admitted=True)
        state.count_scoped(scope, "CreateConfigurationSet", admitted=False)
        state.count_scoped(scope, "ListConfigurationSets", admitted=True)
        state.create(scope, "a", {}, max_sets=None)
        lane = state.stats()["by_scope"]["111111111111/eu-west-1"]
        assert lane == {
            "account": "111111111111",
            "region": "eu-west-1",
            "calls": {"CreateConfigurationSet": 2, "ListConfigurationSets": 1},
            "throttled": {"CreateConfigurationSet": 1},
            "creates": {"accepted": 1, "throttled": 1},
            "created": 1,
            "configuration_sets": 1,
            "tenants": 0,
            "event_destinations": 0,
            "tenant_associations": 0,
            "creations": {"configuration_sets": {"a": 1}},
        }
        state.reset()
        assert state.stats()["by_scope"] == {}


ROLE = Role.parse("arn:aws:iam::111111111111:role/team/bulk")


class TestAccounts:
    def test_role_arns(self) -> None:
        assert ROLE is not None
        assert (ROLE.partition, ROLE.account, ROLE.name) == ("aws", "111111111111", "bulk")
        china = Role.parse("arn:aws-cn:iam::222222222222:role/x")
        assert china is not None and china.partition == "aws-cn"
        assert ROLE.role_id == Role.parse(ROLE.arn).role_id  # type: ignore[union-attr]
        for bad in ("arn:aws:iam::1111:role/x", "arn:aws:iam::111111111111:user/x", "bulk"):
            assert Role.parse(bad) is None

    def test_issued_keys_belong_to_the_role_until_they_expire(self) -> None:
        assert ROLE is not None
        accounts = Accounts()
        session = accounts.issue(ROLE, "run", 60, now=1000.0)
        key, token = session.caller.access_key, session.token
        assert accounts.account_of(key) == "111111111111"
        caller = accounts.identify(key, token, now=1059.999)
        assert caller.arn == "arn:aws:sts::111111111111:assumed-role/bulk/run"
        assert caller.user_id == f"{ROLE.role_id}:run"
        with pytest.raises(ServiceError) as expired:
            accounts.identify(key, token, now=1060.0)
        assert (expired.value.status, expired.value.code) == (403, "ExpiredTokenException")
        with pytest.raises(ServiceError) as mismatched:
            accounts.identify(key, "another-token", now=1000.0)
        assert mismatched.value.code == "UnrecognizedClientException"
        assert accounts.issue(ROLE, "run", 60, now=1000.0).caller.access_key != key
        assert accounts.issued() == 2

    def test_other_keys_belong_to_the_default_or_mapped_account(self) -> None:
        accounts = Accounts()
        accounts.configure("000000000000", {"AKIAMAPPED": "222222222222"})
        assert accounts.account_of("AKIAANY") == "000000000000"
        assert accounts.account_of("AKIAMAPPED") == "222222222222"
        assert accounts.account_of("999999999999") == "999999999999"
        caller = accounts.identify("AKIAMAPPED", None, now=0.0)
        assert (caller.account, caller.arn) == (
            "222222222222",
            "arn:aws:iam::222222222222:user/emulator",
        )
