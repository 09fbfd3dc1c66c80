"""Throttling, faults, admin endpoints and restarts, as plain boto3 and plain HTTP see them."""

from __future__ import annotations

import functools
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from bulk.emulator import Emulator, EmulatorConfig, EmulatorState, operations


def outcome(call: Callable[[], Any]) -> str:
    """'ok', an error code, or 'dropped' for a connection closed without a reply."""
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    except ConnectionClosedError:
        return "dropped"
    return "ok"


def creates(client: Any, names: list[str]) -> list[str]:
    """The outcome of creating each of ``names`` in turn."""
    return [
        outcome(functools.partial(client.create_configuration_set, ConfigurationSetName=name))
        for name in names
    ]


def http(
    emulator: Emulator,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON body) of a raw request to the emulator."""
    request = urllib.request.Request(
        emulator.url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIARAW/20240101/us-east-1/ses/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "Content-Type": "application/json",
}


class TestThrottling:
    def test_a_burst_admits_exactly_the_bucket(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0.2, burst=3)) as served:
            client = boto3_client(served, "sesv2")
            results = Counter(creates(client, [f"b{i}" for i in range(12)]))
            assert results == {"ok": 3, "TooManyRequestsException": 9}
            stats = served.stats()
            assert stats["throttled"] == 9
            assert stats["created"] == 3
            assert stats["errors"] == {"TooManyRequestsException": 9}
            assert sum(stats["create_attempts"].values()) == 12
            assert sum(stats["create_accepted"].values()) == 3

    def test_sustained_rate_matches_the_setting(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        rate, burst = 40.0, 2
        with threaded_emulator(EmulatorConfig(rate=rate, burst=burst)) as served:
            client = boto3_client(served, "pinpoint-email")
            start = time.monotonic()
            results: Counter[str] = Counter()
            for index in range(2000):  # bounded; stops after 0.75 s
                results.update(creates(client, [f"r{index}"]))
                if time.monotonic() - start > 0.75:
                    break
            elapsed = time.monotonic() - start
            allowed = burst + rate * elapsed
            # The upper bound is the bucket's promise. The lower one is loose because this
            # client is one blocking thread: on a loaded machine its own pauses let tokens
            # overflow the bucket (exact admission is unit-tested with a fake clock).
            assert 0.5 * allowed <= results["ok"] <= allowed + 1
            assert results["TooManyRequestsException"] > 0
            assert set(results) == {"ok", "TooManyRequestsException"}

    def test_other_operations_have_their_own_generous_bucket(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0.01, burst=1)) as served:
            client = boto3_client(served, "sesv2")
            client.create_configuration_set(ConfigurationSetName="one")
            assert outcome(lambda: client.create_configuration_set(ConfigurationSetName="two")) == (
                "TooManyRequestsException"
            )
            for _ in range(20):
                client.get_configuration_set(ConfigurationSetName="one")
                client.list_configuration_sets(PageSize=1)

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
                boto3_client(served, "pinpoint-email", access_key="AKIASECONDACCOUNT"),
            ]
            for index, client in enumerate(clients):
                client.create_configuration_set(ConfigurationSetName=f"first-{index}")
            for client in clients:
                assert creates(client, ["again"]) == ["TooManyRequestsException"]

    def test_a_429_storm_can_be_started_and_stopped_mid_run(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator() as served:
            client = boto3_client(served, "sesv2")
            client.create_configuration_set(ConfigurationSetName="before")
            status, _, config = http(
                served,
                "/_emulator/config",
                method="POST",
                body=json.dumps({"rate": 0.01, "burst": 1}).encode(),
            )
            assert (status, config["rate"], config["burst"]) == (200, 0.01, 1)
            storm = creates(client, [f"s{i}" for i in range(5)])
            assert storm.count("TooManyRequestsException") >= 4
            served.configure(rate=0)
            assert outcome(
                lambda: client.create_configuration_set(ConfigurationSetName="after")
            ) == ("ok")


class TestFaults:
    def test_fault_and_ambiguous_rates_over_a_seeded_run(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        calls, fault_rate, ambiguous_rate = 400, 0.1, 0.15
        config = EmulatorConfig(
            rate=0, fault_rate=fault_rate, ambiguous_rate=ambiguous_rate, seed=7
        )
        with threaded_emulator(config) as served:
            client = boto3_client(served, "sesv2")
            names = [f"t{i}" for i in range(calls)]
            results = dict(zip(names, creates(client, names), strict=True))
            counts = Counter(results.values())
            plain = counts["ConcurrentModificationException"] + counts["InternalFailure"]
            stats = served.stats()
            # binomial(400, p): within ~3 standard deviations
            assert abs(stats["faults"] - calls * fault_rate) <= 20
            assert abs(stats["ambiguous"] - calls * ambiguous_rate) <= 22
            assert 0 < stats["dropped"] < stats["ambiguous"]
            assert counts["dropped"] == stats["dropped"]
            assert counts["ok"] + counts["dropped"] + plain == calls
            # a 500 is a plain fault or an ambiguous reply: the client cannot tell which
            assert plain == stats["faults"] + stats["ambiguous"] - stats["dropped"]
            # Ambiguous calls stored the set, plain faults did not.
            stored = served.state.all_names()
            assert stats["configuration_sets"] == counts["ok"] + stats["ambiguous"]
            assert {n for n, r in results.items() if r == "ok"} <= stored
            assert {n for n, r in results.items() if r == "dropped"} <= stored
            assert not {n for n, r in results.items() if r == "ConcurrentModificationException"} & (
                stored
            )

    def test_a_retry_after_an_ambiguous_create_finds_it_created(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(rate=0, ambiguous_rate=1.0, ambiguous_drop_share=0.0, seed=1)
        with threaded_emulator(config) as served:
            client = boto3_client(served, "pinpoint-email")
            first = outcome(lambda: client.create_configuration_set(ConfigurationSetName="amb"))
            assert first == "InternalFailure"
            served.configure(ambiguous_rate=0.0)
            assert outcome(lambda: client.create_configuration_set(ConfigurationSetName="amb")) == (
                "AlreadyExistsException"
            )

    def test_a_dropped_connection_is_a_connection_error_not_a_hang(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(rate=0, ambiguous_rate=1.0, ambiguous_drop_share=1.0)
        with threaded_emulator(config) as served:
            client = boto3_client(served, "sesv2")
            start = time.monotonic()
            with pytest.raises(ConnectionClosedError):
                client.create_configuration_set(ConfigurationSetName="dropped")
            assert time.monotonic() - start < 2.0
            assert served.state.all_names() == {"dropped"}
            served.configure(ambiguous_rate=0)  # the client reconnects for the next call
            assert client.get_configuration_set(ConfigurationSetName="dropped")

    def test_the_same_seed_gives_the_same_faults(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(rate=0, fault_rate=0.3, ambiguous_rate=0.3, seed=42)
        runs = []
        for _ in range(2):
            with threaded_emulator(config) as served:
                client = boto3_client(served, "sesv2")
                runs.append(creates(client, [f"x{i}" for i in range(30)]))
        assert runs[0] == runs[1]
        assert len(set(runs[0])) >= 3

    def test_latency_delays_creates_but_not_reads(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0, latency_ms=120, seed=5)) as served:
            client = boto3_client(served, "sesv2")
            start = time.monotonic()
            client.create_configuration_set(ConfigurationSetName="slow")
            assert time.monotonic() - start >= 0.06  # 120 ms ± 50 %
            start = time.monotonic()
            client.get_configuration_set(ConfigurationSetName="slow")
            assert time.monotonic() - start < 0.06

    def test_faults_can_be_turned_on_for_reads(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(
            rate=0, fault_rate=1.0, fault_operations=frozenset({"ListConfigurationSets"})
        )
        with threaded_emulator(config) as served:
            client = boto3_client(served, "sesv2")
            client.create_configuration_set(ConfigurationSetName="fine")
            assert outcome(client.list_configuration_sets) in {
                "InternalFailure",
                "ConcurrentModificationException",
            }


class TestAdminEndpoints:
    def test_stats_count_calls_and_names(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0.01, burst=1)) as served:
            client = boto3_client(served, "sesv2")
            for _ in range(3):
                outcome(lambda: client.create_configuration_set(ConfigurationSetName="n1"))
            client.get_account()
            status, headers, stats = http(served, "/_emulator/stats")
            assert status == 200
            assert headers["Content-Type"].startswith("application/json")
            assert stats == served.stats()
            assert stats["calls"] == {"CreateConfigurationSet": 3, "GetAccount": 1}
            assert stats["calls_by_service"] == {"sesv2": 4}
            assert stats["create_attempts"] == {"n1": 3}
            assert stats["create_accepted"] == {"n1": 1}
            assert (stats["created"], stats["throttled"], stats["configuration_sets"]) == (1, 2, 1)
            assert stats["config"]["rate"] == 0.01

    def test_reset_clears_sets_counters_and_buckets(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0.01, burst=1)) as served:
            client = boto3_client(served, "sesv2")
            client.create_configuration_set(ConfigurationSetName="old")
            status, _, stats = http(served, "/_emulator/reset", method="POST")
            assert status == 200
            assert (stats["created"], stats["configuration_sets"], stats["calls"]) == (0, 0, {})
            client.create_configuration_set(ConfigurationSetName="old")  # full bucket again

    @pytest.mark.parametrize(
        "body",
        [b'{"rate": -1}', b'{"fault_rate": 2}', b'{"nonsense": 1}', b"[1]", b"not json"],
    )
    def test_bad_config_is_refused_and_changes_nothing(
        self, threaded_emulator: Callable[..., Any], body: bytes
    ) -> None:
        with threaded_emulator() as served:
            before = served.config
            status, _, answer = http(served, "/_emulator/config", method="POST", body=body)
            assert status == 400
            assert answer["message"]
            assert served.config == before
            assert http(served, "/_emulator/config")[2] == before.as_dict()


class TestWire:
    def test_unsigned_requests_are_refused(self, threaded_emulator: Callable[..., Any]) -> None:
        with threaded_emulator() as served:
            status, headers, body = http(served, "/v2/email/account")
            assert status == 403
            assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
            assert body == {"message": "Missing Authentication Token"}

    def test_unknown_paths_are_unknown_operations(
        self, threaded_emulator: Callable[..., Any]
    ) -> None:
        with threaded_emulator() as served:
            status, headers, _ = http(served, "/v2/email/identities", headers=SIGNED)
            assert (status, headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")
            # sesv2 lists with POST; GET on that path is not an operation
            status, _, _ = http(served, "/v2/email/list-configuration-sets", headers=SIGNED)
            assert status == 404

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/v2/email/configuration-sets", b"{not json"),
            ("POST", "/v2/email/configuration-sets", b'["a list"]'),
            ("POST", "/v1/email/configuration-sets", b"{}"),
            ("POST", "/v2/email/configuration-sets", b'{"ConfigurationSetName": 5}'),
            ("GET", "/v1/email/configuration-sets?PageSize=abc", None),
            ("GET", "/v1/email/configuration-sets?PageSize=0", None),
            ("GET", "/v1/email/configuration-sets?NextToken=%25%25%25", None),
            ("POST", "/v2/email/list-configuration-sets", b'{"PageSize": "ten"}'),
        ],
    )
    def test_malformed_requests_are_bad_requests(
        self, threaded_emulator: Callable[..., Any], method: str, path: str, body: bytes | None
    ) -> None:
        with threaded_emulator() as served:
            status, headers, answer = http(served, path, method=method, body=body, headers=SIGNED)
            assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")
            assert headers["x-amzn-RequestId"]
            assert answer["message"]

    def test_sesv2_legacy_get_list_still_answers(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator() as served:
            client = boto3_client(served, "sesv2", access_key="AKIARAW")
            for name in ("a", "b"):
                client.create_configuration_set(ConfigurationSetName=name)
            status, _, page = http(
                served, "/v2/email/configuration-sets?PageSize=1", headers=SIGNED
            )
            assert (status, page["ConfigurationSets"]) == (200, ["a"])
            token = page["NextToken"]
            path = f"/v2/email/configuration-sets?PageSize=1&NextToken={token}"
            assert http(served, path, headers=SIGNED)[2] == {"ConfigurationSets": ["b"]}

    def test_an_emulator_bug_still_answers_like_aws(
        self,
        threaded_emulator: Callable[..., Any],
        boto3_client: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(call: Any) -> dict[str, Any]:
            raise RuntimeError("bug")

        monkeypatch.setitem(operations.HANDLERS, "GetAccount", broken)
        with threaded_emulator() as served:
            client = boto3_client(served, "sesv2")
            assert outcome(client.get_account) == "InternalFailure"


class TestRestart:
    def test_state_survives_a_restart_on_a_new_port(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        state = EmulatorState()
        with threaded_emulator(state=state) as first:
            boto3_client(first, "sesv2").create_configuration_set(
                ConfigurationSetName="kept", Tags=[{"Key": "k", "Value": "v"}]
            )
            first_url = first.url
        with threaded_emulator(state=state) as second:
            client = boto3_client(second, "sesv2")
            assert client.get_configuration_set(ConfigurationSetName="kept")["Tags"] == [
                {"Key": "k", "Value": "v"}
            ]
            assert outcome(
                lambda: client.create_configuration_set(ConfigurationSetName="kept")
            ) == ("AlreadyExistsException")
            assert second.stats()["calls"]["CreateConfigurationSet"] == 2
        assert first_url  # the first server is gone; its sets are not

    def test_a_busy_port_fails_at_start(self, threaded_emulator: Callable[..., Any]) -> None:
        with threaded_emulator() as served, pytest.raises(OSError):  # noqa: SIM117
            with threaded_emulator(port=served.port):
                pass
