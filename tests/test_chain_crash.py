"""Chains of steps killed with calls in flight: every tenant, set, event destination and
association exactly once, every row created, none exists.

The kill -9 torture of ``test_crash_resume.py``, for SES v2 rows that each name tenants and
event destinations, with faults (500s, and creates stored then answered 500 or dropped) on
every create of the chain. The emulator counts how often each item was created.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk.emulator import EmulatorConfig, Kind

from .torture import (
    latest_by_row,
    recorded_rows,
    running_bulk,
    start_bulk,
    wait_for_rows,
    write_csv,
)

ThreadedEmulator = Callable[..., Any]
SCOPE = ("123456789012", "us-east-1")  # the tests' access key belongs to the default account
CREATES = frozenset(
    {
        "CreateConfigurationSet",
        "CreateTenant",
        "CreateConfigurationSetEventDestination",
        "CreateTenantResourceAssociation",
    }
)
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")


def destination(name: str) -> dict[str, Any]:
    topic = f"arn:aws:sns:us-east-1:123456789012:{name}"
    return {"Name": name, "MatchingEventTypes": ["BOUNCE"], "SnsDestination": {"TopicArn": topic}}


def chain_rows(rows: int) -> list[dict[str, Any]]:
    """Rows sharing five tenants (one or two each) with one or two event destinations."""
    made = []
    for i in range(rows):
        tenants = [TENANTS[i % 5]] + ([TENANTS[(i + 2) % 5]] if i % 3 == 0 else [])
        names = ["bounces"] + (["complaints"] if i % 2 else [])
        made.append(
            {
                "ConfigurationSetName": f"set-{i:04d}",
                "TenantName": ",".join(tenants),
                "EventDestinations": json.dumps([destination(n) for n in names]),
            }
        )
    return made


def test_chains_killed_at_random_points_make_each_item_once(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20261207)
    rows = chain_rows(120)
    path = write_csv(tmp_path / "t.csv", rows)
    ledger = Path(f"{path}.ledger.jsonl")
    config = EmulatorConfig(
        rate=200,
        burst=5,
        fault_rate=0.03,
        ambiguous_rate=0.03,
        seed=7,
        fault_operations=CREATES,
    )
    with threaded_emulator(config) as emu:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emu.url)  # the lane's account, for its ARNs
        args = ("provision", path, "--service", "sesv2", "--endpoint-url", emu.url)
        args += ("--rate", "200", "--burst", "5", "--concurrency", "8")
        killed = 0
        for point in range(4):
            with running_bulk(*args, cwd=tmp_path) as proc:
                target = recorded_rows(ledger) + rng.randint(5, 25) if point else 0
                alive = wait_for_rows(ledger, target, proc) if point else proc.poll() is None
                time.sleep(rng.uniform(0.0, 0.05) if point else rng.uniform(0.5, 1.5))
                if alive and proc.poll() is None:
                    proc.kill()
                proc.communicate(timeout=60)
            killed += proc.returncode == -signal.SIGKILL
        final = start_bulk(*args, cwd=tmp_path)
        _, err = final.communicate(timeout=180)
        state = emu.state

        assert final.returncode == 0, err
        assert killed >= 3, f"only {killed} of 4 kill points hit a running process"
        latest = latest_by_row(ledger)
        assert {r["status"] for r in latest.values()} == {"created"}, "no exists, no failed"
        assert len(latest) == len(rows)
        sets = state.creations(SCOPE, Kind.CONFIGURATION_SETS)
        assert sets == {row["ConfigurationSetName"]: 1 for row in rows}
        assert state.creations(SCOPE, Kind.TENANTS) == {name: 1 for name in TENANTS}
        destinations = state.creations(SCOPE, Kind.EVENT_DESTINATIONS)
        assert set(destinations.values()) == {1}, "a destination created twice"
        assert len(destinations) == sum(len(json.loads(r["EventDestinations"])) for r in rows)
        associations = state.creations(SCOPE, Kind.TENANT_ASSOCIATIONS)
        assert set(associations.values()) == {1}, "an association made twice"
        assert len(associations) == sum(len(r["TenantName"].split(",")) for r in rows)
        assert len(state.associations(SCOPE)) == len(associations)
        assert emu.stats()["ambiguous"] > 0, "the faults did not fire"
