"""``bulk plan``: an input file against live state and the ledger, through the CLI against a
seeded emulator. It counts, diffs and checks the quota, and never sends a mutating call."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk.emulator import Emulator

from .torture import cli, one_line_error, write_csv

ThreadedEmulator = Callable[..., Any]
ACCOUNT = "123456789012/us-east-1"
READS = {"ListConfigurationSets", "GetConfigurationSet"}


def calls(emu: Emulator) -> dict[str, int]:
    return dict(emu.stats()["by_scope"].get(ACCOUNT, {}).get("calls", {}))


@pytest.fixture
def seeded(threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]) -> Any:
    """Live: ``acme`` (TLS OPTIONAL, tag team=legacy), ``same`` (as the input asks), and
    ``other-0..2``, which the input does not name."""
    with threaded_emulator() as emu:
        client = boto3_client(emu, "sesv2")
        client.create_configuration_set(
            ConfigurationSetName="acme",
            DeliveryOptions={"TlsPolicy": "OPTIONAL"},
            Tags=[{"Key": "team", "Value": "legacy"}],
        )
        client.create_configuration_set(
            ConfigurationSetName="same",
            DeliveryOptions={"TlsPolicy": "REQUIRE"},
            Tags=[{"Key": "team", "Value": "blue"}],
        )
        for i in range(3):
            client.create_configuration_set(ConfigurationSetName=f"other-{i}")
        yield emu


def input_file(tmp_path: Path) -> Path:
    rows = [
        {"ConfigurationSetName": name, "TlsPolicy": "REQUIRE", "tag:team": "blue"}
        for name in ("new-0", "acme", "same", "new-1", "new-2")
    ]
    rows.append({"ConfigurationSetName": "bad name!", "TlsPolicy": "REQUIRE", "tag:team": "x"})
    return write_csv(tmp_path / "in.csv", rows)


def plan(path: Path, emu: Emulator, *more: str) -> Any:
    return cli("plan", path, "--service", "sesv2", "--endpoint-url", emu.url, *more)


def test_counts_and_drift_without_a_mutating_call(tmp_path: Path, seeded: Emulator) -> None:
    path = input_file(tmp_path)
    before = calls(seeded)

    result = plan(path, seeded, "--diff", "--json")

    made = {op: n - before.get(op, 0) for op, n in calls(seeded).items() if n != before.get(op)}
    assert set(made) <= READS, f"only reads: {made}"
    assert made["GetConfigurationSet"] == 2  # acme and same, once each
    assert result.exit_code == 1, result.output  # an invalid row
    found = json.loads(result.stdout)
    assert found["totals"] == {"create": 3, "exists": 2, "settled": 0, "invalid": 1, "drift": 1}
    (lane,) = found["lanes"]
    assert (lane["lane"], lane["live"], lane["create"], lane["exists"]) == (
        "sesv2/default/us-east-1",
        5,
        3,
        2,
    )
    assert found["drift"] == [
        {
            "row": 2,
            "name": "acme",
            "lane": "sesv2/default/us-east-1",
            "differences": {
                "TlsPolicy": {"live": "OPTIONAL", "input": "REQUIRE"},
                "tag:team": {"live": "legacy", "input": "blue"},
            },
        }
    ]
    assert not Path(f"{path}.ledger.jsonl").exists(), "a plan writes no ledger"


def test_the_table(tmp_path: Path, seeded: Emulator) -> None:
    result = plan(input_file(tmp_path), seeded, "--diff")

    lines = result.stdout.splitlines()
    assert lines[0] == (
        "plan: create 3 · exists 2 (live, no create call) · settled 0 (ledger) · invalid 1 "
        "· drift 1"
    )
    assert lines[1].split() == [
        "lane", "live", "create", "exists", "settled", "invalid", "drift", "rate", "eta",
    ]  # fmt: skip
    lane = ["sesv2/default/us-east-1", "5", "3", "2", "0", "1", "1", "1/s", "3s"]
    assert lines[2].split() == lane
    assert "drift: row 2 acme (sesv2/default/us-east-1): TlsPolicy 'OPTIONAL' → 'REQUIRE'" in (
        result.stdout
    )


def test_without_diff_no_set_is_read(tmp_path: Path, seeded: Emulator) -> None:
    before = calls(seeded)

    result = plan(input_file(tmp_path), seeded, "--json")

    assert calls(seeded).get("GetConfigurationSet", 0) == before.get("GetConfigurationSet", 0)
    assert json.loads(result.stdout)["totals"]["drift"] == 0


def test_a_lane_that_would_run_out_of_quota(tmp_path: Path, seeded: Emulator) -> None:
    result = plan(input_file(tmp_path), seeded, "--quota", "6", "--json")

    assert result.exit_code == 1
    (lane,) = json.loads(result.stdout)["lanes"]
    assert (lane["live"], lane["create"], lane["overflow"]) == (5, 3, 2)
    table = plan(input_file(tmp_path), seeded, "--quota", "6")
    assert (
        "quota: sesv2/default/us-east-1 holds 5 sets; 3 more would pass its quota of 6: "
        "the last 2 rows would fail (LimitExceeded)"
    ) in table.stdout


def test_rows_the_ledger_settled(tmp_path: Path, seeded: Emulator) -> None:
    """After a provision, its rows are settled by the ledger, not planned again."""
    path = input_file(tmp_path)
    made = cli("provision", path, "--service", "sesv2", "--endpoint-url", seeded.url, "--rate", "0")
    assert made.exit_code == 1, made.output  # the invalid row

    result = plan(path, seeded, "--json")

    totals = json.loads(result.stdout)["totals"]
    assert totals == {"create": 0, "exists": 0, "settled": 5, "invalid": 1, "drift": 0}


def test_a_file_with_several_lanes(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]
) -> None:
    rows = [
        {"ConfigurationSetName": "a", "Region": "us-east-1"},
        {"ConfigurationSetName": "b", "Region": "eu-west-1"},
        {"ConfigurationSetName": "c", "Region": "eu-west-1"},
    ]
    path = write_csv(tmp_path / "lanes.csv", rows)
    with threaded_emulator() as emu:
        boto3_client(emu, "sesv2", region="eu-west-1").create_configuration_set(
            ConfigurationSetName="b"
        )
        result = plan(path, emu, "--json", "--rate", "0.5")
    assert result.exit_code == 0, result.output
    lanes = {lane["lane"]: lane for lane in json.loads(result.stdout)["lanes"]}
    eu, us = lanes["sesv2/default/eu-west-1"], lanes["sesv2/default/us-east-1"]
    assert (eu["live"], eu["create"], eu["exists"], eu["eta_s"]) == (1, 1, 1, 2.0)
    assert (us["live"], us["create"], us["exists"], us["eta_s"]) == (0, 1, 0, 2.0)


def test_an_endpoint_that_does_not_answer_is_exit_3(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [{"ConfigurationSetName": "a"}])
    result = cli("plan", path, "--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "2")
    assert result.exit_code == 3, result.output
    assert "endpoint unreachable" in result.stdout


def test_a_bad_input_file_is_one_line_and_exit_2(tmp_path: Path, seeded: Emulator) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("ConfigurationSetNme\nx\n")
    before = calls(seeded)
    result = plan(path, seeded)
    assert result.exit_code == 2
    assert "ConfigurationSetName" in one_line_error(result.stderr)
    assert calls(seeded) == before, "nothing sent"
