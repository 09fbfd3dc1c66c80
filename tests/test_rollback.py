"""``bulk rollback``: deletes exactly what a ledger created, through the CLI against the
emulator: never a set that existed before, never a name the ledger does not hold; resumes
after ``kill -9``; asks on a terminal and refuses without one."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk.emulator import Emulator, EmulatorConfig
from bulk.ledger.reader import read_records

from .test_chain_crash import destination
from .torture import cli, latest_by_row, one_line_error, running_bulk, start_bulk, write_csv

ThreadedEmulator = Callable[..., Any]
SCOPE = ("123456789012", "us-east-1")


def names(emu: Emulator) -> set[str]:
    return set(emu.state.names(SCOPE))


def statuses(path: Path) -> dict[str, str]:
    return {r["name"]: r["status"] for r in latest_by_row(Path(f"{path}.ledger.jsonl")).values()}


@pytest.fixture
def account(threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]) -> Any:
    """An emulator holding ``legacy`` (named in the input) and ``unrelated`` (not)."""
    with threaded_emulator() as emu:
        client = boto3_client(emu, "pinpoint-email")
        for name in ("legacy", "unrelated"):
            client.create_configuration_set(ConfigurationSetName=name)
        yield emu


def test_deletes_what_the_ledger_created_and_nothing_else(
    tmp_path: Path, account: Emulator
) -> None:
    rows = [{"ConfigurationSetName": n} for n in ("a", "legacy", "b", "bad name!", "c")]
    path = write_csv(tmp_path / "t.csv", rows)
    made = cli("provision", path, "--endpoint-url", account.url, "--rate", "0")
    assert made.exit_code == 1, made.output  # the invalid row
    assert statuses(path)["legacy"] == "exists"

    result = cli("rollback", path, "--yes", "--rate", "0")

    assert result.exit_code == 0, result.output
    assert "rollback: 3 sets deleted" in result.stdout
    assert names(account) == {"legacy", "unrelated"}
    assert statuses(path) == {
        "a": "deleted",
        "legacy": "exists",
        "b": "deleted",
        "bad name!": "invalid",
        "c": "deleted",
    }
    again = cli("rollback", path, "--yes")
    assert again.exit_code == 0 and "nothing to delete" in again.stdout
    # After a rollback, the same provision makes the sets again.
    remade = cli("provision", path, "--endpoint-url", account.url, "--rate", "0")
    assert remade.exit_code == 1, remade.output
    assert names(account) == {"a", "b", "c", "legacy", "unrelated"}
    assert {statuses(path)[n] for n in "abc"} == {"created"}


def test_a_set_live_before_whose_create_would_have_met_a_5xx_is_not_deleted(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]
) -> None:
    """Every create answered 500 after storing: without the listing of live names, a set
    that existed before would get a 5xx, then AlreadyExists, and be recorded created."""
    config = EmulatorConfig(rate=0, ambiguous_rate=1.0, ambiguous_drop_share=0.0, seed=3)
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": n} for n in ("mine", "old")])
    with threaded_emulator(config) as emu:
        emu.state.create(SCOPE, "old", {}, max_sets=None)  # live before the run
        made = cli("provision", path, "--endpoint-url", emu.url, "--rate", "0")
        assert made.exit_code == 0, made.output
        assert statuses(path) == {"mine": "created", "old": "exists"}

        result = cli("rollback", path, "--yes", "--rate", "0")

        assert result.exit_code == 0, result.output
        assert names(emu) == {"old"}


def test_chains_lose_their_associations_and_the_tenants_bulk_made(
    tmp_path: Path,
    threaded_emulator: ThreadedEmulator,
    boto3_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        {
            "ConfigurationSetName": f"s-{i}",
            "TenantName": "acme,shared" if i % 2 else "acme",
            "EventDestinations": json.dumps([destination("bounces")]),
        }
        for i in range(4)
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    with threaded_emulator() as emu:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emu.url)
        client = boto3_client(emu, "sesv2")
        # "shared" existed before the run, with a set of its own: it is not bulk's to delete.
        client.create_tenant(TenantName="shared")
        client.create_configuration_set(ConfigurationSetName="theirs")
        client.create_tenant_resource_association(
            TenantName="shared",
            ResourceArn="arn:aws:ses:us-east-1:123456789012:configuration-set/theirs",
        )
        made = cli(
            "provision", path, "--service", "sesv2", "--endpoint-url", emu.url, "--rate", "0"
        )
        assert made.exit_code == 0, made.output

        result = cli("rollback", path, "--yes", "--rate", "0")

        assert result.exit_code == 0, result.output
        assert "rollback: 4 sets deleted, 6 tenant associations, 1 tenants" in result.stdout
        assert names(emu) == {"theirs"}
        assert emu.state.tenants(SCOPE) == ["shared"]
        assert emu.state.associations(SCOPE) == [
            ("shared", "arn:aws:ses:us-east-1:123456789012:configuration-set/theirs")
        ]
        assert emu.stats()["deleted_by_kind"]["event_destinations"] == 4


def test_killed_with_faults_it_resumes_and_deletes_each_set_once(
    tmp_path: Path, threaded_emulator: ThreadedEmulator
) -> None:
    sets = 150
    path = write_csv(
        tmp_path / "t.csv", [{"ConfigurationSetName": f"s-{i:03d}"} for i in range(sets)]
    )
    ledger = Path(f"{path}.ledger.jsonl")
    with threaded_emulator(EmulatorConfig(rate=0)) as emu:
        made = cli("provision", path, "--endpoint-url", emu.url, "--rate", "0")
        assert made.exit_code == 0, made.output
        emu.configure(
            latency_ms=10,
            fault_rate=0.05,
            ambiguous_rate=0.05,
            fault_operations=["DeleteConfigurationSet"],
        )
        args = ("rollback", path, "--yes", "--rate", "0", "--concurrency", "8")
        with running_bulk(*args, cwd=tmp_path) as proc:
            deadline = time.monotonic() + 60
            while sum(r.get("status") == "deleted" for r in read_records(ledger)) < 30:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            proc.kill()
            proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL

        final = start_bulk(*args, cwd=tmp_path)
        _, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
        assert names(emu) == set()
        assert emu.stats()["deleted_by_kind"]["configuration_sets"] == sets, "each deleted once"
        assert emu.stats()["ambiguous"] > 0, "the faults fired"
    assert set(statuses(path).values()) == {"deleted"}


def test_no_terminal_and_no_yes_refuses(tmp_path: Path, account: Emulator) -> None:
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "a"}])
    cli("provision", path, "--endpoint-url", account.url, "--rate", "0")

    result = cli("rollback", path)

    assert result.exit_code == 2
    assert "pass --yes" in one_line_error(result.stderr)
    assert "a" in names(account), "nothing deleted"


def test_a_ledger_of_exists_only_deletes_nothing(tmp_path: Path, account: Emulator) -> None:
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "legacy"}])
    cli("provision", path, "--endpoint-url", account.url, "--rate", "0")

    result = cli("rollback", path, "--yes")

    assert result.exit_code == 0, result.output
    assert "left as they are: 1 exists" in result.stdout and "nothing to delete" in result.stdout
    assert names(account) == {"legacy", "unrelated"}


def test_dry_run_shows_and_deletes_nothing(tmp_path: Path, account: Emulator) -> None:
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": n} for n in ("a", "legacy")])
    cli("provision", path, "--endpoint-url", account.url, "--rate", "0")

    result = cli("rollback", path, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "pinpoint-email/default/us-east-1: 1 sets, 0 tenant associations" in result.stdout
    assert "dry run: nothing deleted" in result.stdout
    assert names(account) == {"a", "legacy", "unrelated"}


def test_the_prompt_on_a_terminal(tmp_path: Path, account: Emulator) -> None:
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": n} for n in ("a", "b")])
    cli("provision", path, "--endpoint-url", account.url, "--rate", "0")

    def run(answer: bytes) -> tuple[int, str]:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bulk", "rollback", str(path), "--rate", "0"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200"},
        )
        os.close(follower)
        seen = b""
        deadline = time.monotonic() + 60
        answered = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(leader, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        proc.wait(timeout=60)
        os.close(leader)
        return proc.returncode, seen.decode(errors="replace")

    code, shown = run(b"n\n")
    assert code == 0 and "Delete these 2 sets?" in shown and "nothing deleted" in shown
    assert {"a", "b"} <= names(account)
    code, shown = run(b"y\n")
    assert code == 0, shown
    assert "pinpoint-email/default/us-east-1: 2 sets" in shown
    assert "rollback: 2 sets deleted" in shown
    assert names(account) == {"legacy", "unrelated"}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("nowhere.csv",), "no ledger at nowhere.csv.ledger.jsonl"),
        (("t.csv", "--region", "eu-west-1", "--yes"), "eu-west-1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    account: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "a"}])
    cli("provision", path, "--endpoint-url", account.url, "--rate", "0")

    result = cli("rollback", *args)

    assert result.exit_code == 2, result.output
    assert said in one_line_error(result.stderr)
    assert "a" in names(account)


def test_a_ledger_of_the_embedded_emulator_is_refused(tmp_path: Path) -> None:
    """Its sets lived in an emulator gone with the run: never AWS's sets of those names."""
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "a"}])
    made = cli("provision", path, "--emulator", "--region", "us-east-1", "--emulator-rate", "0")
    assert made.exit_code == 0, made.output

    result = cli("rollback", path, "--yes")

    assert result.exit_code == 2
    assert "embedded emulator" in one_line_error(result.stderr)


def test_ctrl_c_stops_and_the_same_command_resumes(
    tmp_path: Path, threaded_emulator: ThreadedEmulator
) -> None:
    path = write_csv(
        tmp_path / "t.csv", [{"ConfigurationSetName": f"s-{i:02d}"} for i in range(60)]
    )
    ledger = Path(f"{path}.ledger.jsonl")
    with threaded_emulator(EmulatorConfig(rate=0)) as emu:
        cli("provision", path, "--endpoint-url", emu.url, "--rate", "0")
        args = ("rollback", path, "--yes", "--rate", "20")
        with running_bulk(*args, cwd=tmp_path) as proc:
            deadline = time.monotonic() + 60
            while sum(r.get("status") == "deleted" for r in read_records(ledger)) < 5:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130, out
        left = len(names(emu))
        assert 0 < left < 60 and "left: run the same command again" in out

        again = cli("rollback", path, "--yes", "--rate", "0")

        assert again.exit_code == 0, again.output
        assert f"rollback: {left} sets deleted" in again.stdout
        assert names(emu) == set()
    assert set(statuses(path).values()) == {"deleted"}
