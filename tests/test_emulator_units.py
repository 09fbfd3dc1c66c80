"""The emulator's pure logic, without a network: buckets on a fake clock, faults, config, models."""

from __future__ import annotations

from collections import Counter

import botocore.session
import pytest

from bulk.emulator import ConfigError, EmulatorConfig, EmulatorState, Fault, TokenBucket
from bulk.emulator.faults import FaultInjector
from bulk.emulator.protocol import check_name, resolve, routes, validate
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

    def test_describe_mentions_every_setting(self) -> None:
        text = "\n".join(
            describe(EmulatorConfig(rate=0, max_sets=10, seed=3), "http://127.0.0.1:1")
        )
        for fragment in ("unthrottled", "max sets per account and Region: 10", "seed: 3"):
            assert fragment in text
        assert "signatures are not verified" in text


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
        scope = ("A", "us-east-1")
        assert state.create(scope, "a", {"x": 1}, max_sets=1) is CreateResult.CREATED
        assert state.create(scope, "a", {}, max_sets=1) is CreateResult.EXISTS
        assert state.create(scope, "b", {}, max_sets=1) is CreateResult.LIMIT
        assert state.create(("A", "eu-west-1"), "b", {}, max_sets=1) is CreateResult.CREATED
        assert state.snapshot()[scope] == {"a": {"x": 1}}
        state.reset()
        assert state.all_names() == set()
        assert state.stats()["created"] == 0
