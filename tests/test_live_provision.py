"""Provision knows live state: each lane lists its live names before its first row, a name
already live is ``exists`` without a create call, and where its options differ from the
row, the ledger and the summary say so (drift). Against the emulator, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk.emulator import Emulator, EmulatorConfig, Kind
from bulk.emulator import operations as emulator_operations
from bulk.emulator.protocol import ServiceError

from .test_chain_crash import destination
from .torture import cli, latest_by_row, write_csv

ThreadedEmulator = Callable[..., Any]
SCOPE = ("123456789012", "us-east-1")
ACCOUNT = "123456789012/us-east-1"


def calls(emu: Emulator) -> dict[str, int]:
    """The email API calls the emulator answered in the tests' account, by operation."""
    scope = emu.stats()["by_scope"].get(ACCOUNT, {})
    return dict(scope.get("calls", {}))


def by_name(path: Path) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in latest_by_row(Path(f"{path}.ledger.jsonl")).values()}


@pytest.fixture
def acme(threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]) -> Any:
    """An emulator holding set ``acme`` (TLS OPTIONAL, sending disabled, tag team=legacy)
    and set ``same`` made as the input row asks; yields (emulator, client)."""
    with threaded_emulator() as emu:
        client = boto3_client(emu, "sesv2")
        client.create_configuration_set(
            ConfigurationSetName="acme",
            DeliveryOptions={"TlsPolicy": "OPTIONAL"},
            SendingOptions={"SendingEnabled": False},
            Tags=[{"Key": "team", "Value": "legacy"}],
        )
        client.create_configuration_set(
            ConfigurationSetName="same",
            DeliveryOptions={"TlsPolicy": "REQUIRE"},
            Tags=[{"Key": "team", "Value": "blue"}],
        )
        yield emu, client


def test_live_names_cost_no_create_call_and_drift_is_recorded(tmp_path: Path, acme: Any) -> None:
    emu, client = acme
    rows = [
        {"ConfigurationSetName": name, "TlsPolicy": "REQUIRE", "tag:team": "blue"}
        for name in ("new-0", "acme", "same", "new-1")
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    before = calls(emu)

    result = cli("provision", path, "--service", "sesv2", "--endpoint-url", emu.url)

    assert result.exit_code == 0, result.output
    made = {op: n - before.get(op, 0) for op, n in calls(emu).items()}
    assert made["CreateConfigurationSet"] == 2, made  # new-0 and new-1 only
    assert made["ListConfigurationSets"] == 1  # the pre-flight's page is the lane's listing
    assert made["GetConfigurationSet"] == 2  # each live set read once, for drift
    latest = by_name(path)
    assert {n: r["status"] for n, r in latest.items()} == {
        "new-0": "created",
        "acme": "exists",
        "same": "exists",
        "new-1": "created",
    }
    assert latest["acme"]["listed"] is True and latest["acme"]["attempts"] == 1
    assert latest["acme"]["drift"] == {
        "TlsPolicy": {"live": "OPTIONAL", "input": "REQUIRE"},
        "tag:team": {"live": "legacy", "input": "blue"},
    }
    assert "drift" not in latest["same"]
    assert "drift: 1 existing sets differ from the input (acme (TlsPolicy 'OPTIONAL' → " in (
        result.stdout
    )
    assert "live before the run: 2 sets in 1 lane; 2 rows found among them" in result.stdout
    # Nothing of the live set changed.
    live = client.get_configuration_set(ConfigurationSetName="acme")
    assert live["DeliveryOptions"]["TlsPolicy"] == "OPTIONAL"
    assert live["Tags"] == [{"Key": "team", "Value": "legacy"}]


def test_json_summary_counts_listed_rows_and_drift(tmp_path: Path, acme: Any) -> None:
    emu, _ = acme
    rows = [{"ConfigurationSetName": n, "TlsPolicy": "REQUIRE"} for n in ("acme", "x")]
    path = write_csv(tmp_path / "t.csv", rows)

    result = cli("provision", path, "--service", "sesv2", "--endpoint-url", emu.url, "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["listed"] == 1 and summary["live_drift"] == 1
    assert summary["live_sets"] == {"sesv2/default/us-east-1": 2}
    assert summary["live_drift_examples"] == ["acme (TlsPolicy 'OPTIONAL' → 'REQUIRE')"]


def test_a_live_name_after_our_own_intent_is_created_and_its_chain_goes_on(
    tmp_path: Path,
    threaded_emulator: ThreadedEmulator,
    boto3_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run killed with its create in flight: the set is live, and the ledger's intent
    line says the call was ours. The resume records it created without a create call and
    carries on with its event destination and its association."""
    row = {
        "ConfigurationSetName": "mine",
        "TenantName": "acme",
        "EventDestinations": json.dumps([destination("bounces")]),
    }
    path = write_csv(tmp_path / "t.csv", [row])
    with threaded_emulator() as emu:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emu.url)
        client = boto3_client(emu, "sesv2")
        first = cli("provision", path, "--service", "sesv2", "--endpoint-url", emu.url)
        assert first.exit_code == 0, first.output
        ledger = Path(f"{path}.ledger.jsonl")
        lines = ledger.read_text().splitlines()
        # The ledger as a kill just after the create would leave it: up to the intent line.
        cut = next(i for i, line in enumerate(lines) if '"kind":"intent"' in line)
        ledger.write_text("\n".join(lines[: cut + 1]) + "\n")
        client.delete_configuration_set_event_destination(
            ConfigurationSetName="mine", EventDestinationName="bounces"
        )
        client.delete_tenant_resource_association(
            TenantName="acme",
            ResourceArn="arn:aws:ses:us-east-1:123456789012:configuration-set/mine",
        )
        creates = calls(emu)["CreateConfigurationSet"]

        again = cli("provision", path, "--service", "sesv2", "--endpoint-url", emu.url)

        assert again.exit_code == 0, again.output
        assert calls(emu)["CreateConfigurationSet"] == creates, "no second create"
        record = by_name(path)["mine"]
        assert record["status"] == "created" and record["listed"] is True
        assert record["steps"]["destinations"] == ["bounces"]
        assert record["steps"]["associations"] == ["acme"]
        assert emu.state.creations(SCOPE, Kind.CONFIGURATION_SETS) == {"mine": 1}


def test_pages_of_live_names(tmp_path: Path, threaded_emulator: ThreadedEmulator) -> None:
    """1,500 live sets: two ListConfigurationSets pages, the first the pre-flight's, and
    every live row found. The listing is paced at 2/s with a bucket of one, as the server
    allows: the second page keeps its distance from the pre-flight's (no 429)."""
    config = EmulatorConfig(rate=0.0, operation_limits={"ListConfigurationSets": (2.0, 1)})
    with threaded_emulator(config) as emu:
        for i in range(1500):
            emu.state.create(SCOPE, f"live-{i:04d}", {}, max_sets=None)
        rows = [{"ConfigurationSetName": f"live-{i:04d}"} for i in range(0, 1500, 100)]
        rows.append({"ConfigurationSetName": "fresh"})
        path = write_csv(tmp_path / "t.csv", rows)

        result = cli("provision", path, "--endpoint-url", emu.url, "--json", "--rate", "2")

        assert result.exit_code == 0, result.output
        scope = emu.stats()["by_scope"][ACCOUNT]
        assert scope["throttled"].get("ListConfigurationSets", 0) == 0
        made = calls(emu)
        assert made["ListConfigurationSets"] == 2  # the pre-flight's page, then the second
        assert made["CreateConfigurationSet"] == 1
        summary = json.loads(result.stdout)
        assert summary["listed"] == 15 and summary["counts"]["exists"] == 15


def test_a_lane_that_cannot_list_sends_as_before(
    tmp_path: Path, acme: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy that allows the create but not the listing: the pre-flight takes the
    AccessDenied as proof enough, the summary says the lane could not list, and the live
    name is found by its create's AlreadyExists, as before listing existed."""
    emu, _ = acme

    def denied(call: Any) -> dict[str, Any]:
        raise ServiceError(403, "AccessDeniedException", "not allowed to list")

    monkeypatch.setitem(emulator_operations.HANDLERS, "ListConfigurationSets", denied)
    rows = [{"ConfigurationSetName": n, "TlsPolicy": "REQUIRE"} for n in ("acme", "new")]
    path = write_csv(tmp_path / "t.csv", rows)
    before = calls(emu)["CreateConfigurationSet"]

    result = cli("provision", path, "--service", "sesv2", "--endpoint-url", emu.url)

    assert result.exit_code == 0, result.output
    assert calls(emu)["CreateConfigurationSet"] == before + 2
    assert "could not list its live sets (AccessDeniedException: not allowed to list)" in (
        result.stdout
    )
    latest = by_name(path)
    assert latest["acme"]["status"] == "exists" and "listed" not in latest["acme"]
    assert latest["acme"]["drift"]["TlsPolicy"] == {"live": "OPTIONAL", "input": "REQUIRE"}


def test_an_empty_account_says_nothing_of_live_sets(
    tmp_path: Path, threaded_emulator: ThreadedEmulator
) -> None:
    with threaded_emulator() as emu:
        first = cli("provision", write_csv(tmp_path / "a.csv", [{"ConfigurationSetName": "a"}]),
                    "--endpoint-url", emu.url)  # fmt: skip
        second = cli("provision", write_csv(tmp_path / "b.csv", [{"ConfigurationSetName": "b"}]),
                     "--endpoint-url", emu.url, "--json")  # fmt: skip
        third = cli("provision", write_csv(tmp_path / "c.csv", [{"ConfigurationSetName": "c"}]),
                    "--endpoint-url", emu.url)  # fmt: skip
    assert first.exit_code == 0 and "live before the run" not in first.stdout
    assert json.loads(second.stdout)["live_sets"] == {"pinpoint-email/default/us-east-1": 1}
    assert "live before the run: 2 sets in 1 lane; 0 rows found" in third.stdout
