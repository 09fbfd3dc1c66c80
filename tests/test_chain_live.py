"""Chains against the emulator, through the command line: what a row's steps leave in the
service. A set that existed before the run is not bulk's: its options, tags, event
destinations and tenants stay as they were, while the rows around it get their whole chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk.emulator import Emulator

from .test_chain_crash import destination
from .torture import cli, latest_by_row, write_csv

ThreadedEmulator = Callable[..., Any]
PREEXISTING = ("legacy-0", "legacy-1")


def live(client: Any, name: str) -> dict[str, Any]:
    """What the service holds for set ``name``: its options, tags, destinations, tenants."""
    arn = f"arn:aws:ses:us-east-1:123456789012:configuration-set/{name}"
    found = client.get_configuration_set(ConfigurationSetName=name)
    found.pop("ResponseMetadata")
    destinations = client.get_configuration_set_event_destinations(ConfigurationSetName=name)
    tenants = client.list_resource_tenants(ResourceArn=arn)
    return {
        "set": found,
        "tags": client.list_tags_for_resource(ResourceArn=arn)["Tags"],
        "destinations": [d["Name"] for d in destinations["EventDestinations"]],
        "tenants": [t["TenantName"] for t in tenants["ResourceTenants"]],
    }


def test_sets_that_existed_before_the_run_are_left_untouched(
    tmp_path: Path,
    threaded_emulator: ThreadedEmulator,
    boto3_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        {
            "ConfigurationSetName": name,
            "TenantName": "acme",
            "TlsPolicy": "REQUIRE",
            "SendingEnabled": "true",
            "tag:team": "blue",
            "EventDestinations": json.dumps([destination("bounces")]),
        }
        for name in ("new-0", "legacy-0", "new-1", "legacy-1")
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    emu: Emulator
    with threaded_emulator() as emu:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emu.url)
        client = boto3_client(emu, "sesv2")
        for name in PREEXISTING:
            client.create_configuration_set(
                ConfigurationSetName=name,
                DeliveryOptions={"TlsPolicy": "OPTIONAL"},
                SendingOptions={"SendingEnabled": False},
                Tags=[{"Key": "team", "Value": "legacy"}],
            )
        before = {name: live(client, name) for name in PREEXISTING}

        result = cli("provision", path, "--service", "sesv2", "--endpoint-url", emu.url)

        assert result.exit_code == 0, result.output
        for name in PREEXISTING:
            assert live(client, name) == before[name], f"{name} was changed"
            assert before[name]["destinations"] == [] and before[name]["tenants"] == []
        for name in ("new-0", "new-1"):
            made = live(client, name)
            assert (made["destinations"], made["tenants"]) == (["bounces"], ["acme"])
            assert made["tags"] == [{"Key": "team", "Value": "blue"}]
    latest = {r["name"]: r for r in latest_by_row(Path(f"{path}.ledger.jsonl")).values()}
    for name in PREEXISTING:
        assert latest[name]["status"] == "exists"
        # Listed live before the run: no call made for its row, not even its tenant's.
        assert latest[name]["steps"] == {"set": "exists"} and latest[name]["listed"] is True
        assert set(latest[name]["drift"]) == {"TlsPolicy", "SendingEnabled", "tag:team"}
    assert {latest[n]["status"] for n in ("new-0", "new-1")} == {"created"}
    assert (
        "beyond the sets: 1 tenants, 2 event destinations, 2 tenant associations; "
        "2 sets existed before the run and were left untouched"
    ) in result.stdout
