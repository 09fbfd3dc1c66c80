"""The command line as a user runs it: a subprocess, its exit code, its stdout and stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulk.emulator import Emulator, EmulatorConfig
from bulk.ledger.reader import read_records

from .test_engine import tenants, write_csv
from .torture import cli, latest_by_row, one_line_error, run_bulk, running_bulk, wait_for_rows

EAST, WEST = "pinpoint-email/default/us-east-1", "pinpoint-email/default/eu-west-1"
ALLOWED_ROLE = "arn:aws:iam::111111111111:role/bulk-provisioner"
DENIED_ROLE = "arn:aws:iam::333333333333:role/locked"


@pytest.fixture
def served(threaded_emulator: Any) -> Iterator[Emulator]:
    """An emulator in this process's background thread, outliving the bulk subprocesses."""
    with threaded_emulator(EmulatorConfig(rate=200, burst=5)) as emulator:
        yield emulator


class TestFileErrors:
    """Every file-level error: exit 2, one line, no call made, no ledger written."""

    @pytest.mark.parametrize(
        ("name", "content", "expect"),
        [
            ("missing.csv", None, "no such file"),
            ("empty.csv", b"", "empty"),
            ("noname.csv", b"SendingEnabled\ntrue\n", "ConfigurationSetName"),
            ("typo.csv", b"ConfigurationSetName,SendingEnabld\na,true\n", "SendingEnabld"),
            ("ragged.csv", b"ConfigurationSetName,TlsPolicy\na,REQUIRE\nb,REQUIRE,x,y\n", "row"),
            ("broken.parquet", b"PAR1 not really parquet", "broken.parquet"),
        ],
    )
    def test_exit_2_with_one_line(
        self, tmp_path: Path, served: Emulator, name: str, content: bytes | None, expect: str
    ) -> None:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        result = run_bulk("provision", path, "--endpoint-url", served.url, cwd=tmp_path)
        assert result.returncode == 2
        assert expect in one_line_error(result.stderr)
        assert served.stats()["calls"] == {}
        assert not Path(f"{path}.ledger.jsonl").exists()

    def test_bad_file_with_emulator_is_still_one_line(self, tmp_path: Path) -> None:
        path = tmp_path / "typo.csv"
        path.write_text("ConfigurationSetName,Tlspolicy\na,REQUIRE\n")
        result = run_bulk("provision", path, "--emulator", cwd=tmp_path)
        assert result.returncode == 2
        assert "Tlspolicy" in one_line_error(result.stderr)

    def test_bad_option_is_a_usage_error(self, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "t.csv", tenants(1))
        result = run_bulk("provision", path, "--rate", "-3", cwd=tmp_path)
        assert result.returncode == 2
        assert "--rate" in one_line_error(result.stderr)


class TestRowErrors:
    def test_invalid_rows_are_recorded_and_good_rows_created(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        rows = tenants(20)
        bad = {
            2: ("ConfigurationSetName", "has space"),
            4: ("ConfigurationSetName", "x" * 65),
            6: ("SendingEnabled", "maybe"),
            8: ("TlsPolicy", "SOMETIMES"),
            10: ("LastFreshStart", "yesterday"),
            12: ("ConfigurationSetName", rows[0]["ConfigurationSetName"]),
            14: ("tag:team", "v" * 300),
        }
        for index, (column, value) in bad.items():
            rows[index][column] = value
        path = write_csv(tmp_path / "t.csv", rows)

        result = run_bulk(
            "provision", path, "--endpoint-url", served.url, "--rate", "0", cwd=tmp_path
        )

        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        records = {r["row"]: r for r in read_records(Path(f"{path}.ledger.jsonl")) if "row" in r}
        for index, (column, _) in bad.items():
            record = records[index + 1]
            assert record["status"] == "invalid"
            assert record["code"]
            assert column.split(":")[0] in record["message"] or "duplicate" in record["message"]
        assert sum(r["status"] == "created" for r in records.values()) == 20 - len(bad)
        assert served.stats()["created"] == 20 - len(bad)


class TestSystemicErrors:
    def test_unreachable_endpoint_aborts_before_any_row(self, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "t.csv", tenants(3))
        result = run_bulk("provision", path, "--endpoint-url", "http://127.0.0.1:9", cwd=tmp_path)
        assert result.returncode == 3
        assert "unreachable" in one_line_error(result.stderr)
        assert not Path(f"{path}.ledger.jsonl").exists()

    def test_missing_credentials_abort_with_a_hint(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: Emulator
    ) -> None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        path = write_csv(tmp_path / "t.csv", tenants(3))
        result = run_bulk("provision", path, "--endpoint-url", served.url, cwd=tmp_path)
        assert result.returncode == 3
        assert "credentials" in one_line_error(result.stderr)
        assert served.stats()["calls"] == {}


class TestCrashAndResume:
    def test_sigkill_mid_run_then_resume_creates_each_name_once(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = write_csv(tmp_path / "t.csv", tenants(400))
        ledger = Path(f"{path}.ledger.jsonl")
        args = ("provision", path, "--endpoint-url", served.url, "--rate", "150", "--burst", "5")
        with running_bulk(*args, cwd=tmp_path) as proc:
            assert wait_for_rows(ledger, 120, proc, limit=60)
            proc.kill()
            proc.communicate(timeout=30)
        settled_before = {r["name"] for r in read_records(ledger) if r.get("status") == "created"}
        attempts_before = dict(served.stats()["create_attempts"])

        result = run_bulk(*args, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        stats = served.stats()
        assert len(served.state.all_names()) == 400
        for name in settled_before:  # no row settled before the kill was sent again
            assert stats["create_attempts"][name] == attempts_before[name]
        # Nothing created twice: every name was accepted once (the store refuses a second).
        assert stats["created"] == 400
        assert all(v >= 1 for v in stats["create_accepted"].values())

    def test_sigterm_stops_cleanly_and_says_how_to_resume(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        served.configure(rate=40, burst=1)
        path = write_csv(tmp_path / "t.csv", tenants(200))
        ledger = Path(f"{path}.ledger.jsonl")
        args = ("provision", path, "--endpoint-url", served.url, "--rate", "40")
        with running_bulk(*args, cwd=tmp_path) as proc:
            assert wait_for_rows(ledger, 20, proc, limit=60)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)

        assert proc.returncode == 130, err
        assert "run the same command to resume" in out
        records = list(read_records(ledger))  # every line whole
        assert records[-1]["kind"] == "end"
        latest = {r["row"]: r["status"] for r in records if "status" in r}
        # Rows whose retry the stop cut short are recorded failed, and sent again.
        done = sum(1 for status in latest.values() if status in ("created", "exists", "invalid"))
        assert 20 <= done < 200

        served.configure(rate=0)
        result = run_bulk(*args[:-2], "--rate", "0", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"{done} rows settled by earlier runs skipped" in result.stdout
        assert len(served.state.all_names()) == 200


class TestProcess:
    # Prints the allocator setting in the environment at the moment polars is first imported.
    _POLARS_LOADS = """
import os, sys
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "polars":
            print(os.environ.get("_RJEM_MALLOC_CONF"))
sys.meta_path.insert(0, Spy())
import bulk.cli
"""

    @pytest.mark.parametrize(
        ("operator", "seen"),
        [
            (None, "narenas:1"),
            ("narenas:2", "narenas:2"),
            # What a parent process that imported polars leaves in its children's environment.
            (
                "dirty_decay_ms:500,muzzy_decay_ms:1000",
                "dirty_decay_ms:500,muzzy_decay_ms:1000,narenas:1",
            ),
        ],
    )
    def test_polars_allocator_is_set_up_before_polars_loads(
        self, operator: str | None, seen: str
    ) -> None:
        """One jemalloc arena (a big ledger loads in less memory), unless the operator set it."""
        env = {key: value for key, value in os.environ.items() if key != "_RJEM_MALLOC_CONF"}
        if operator is not None:
            env["_RJEM_MALLOC_CONF"] = operator
        probe = [sys.executable, "-c", self._POLARS_LOADS]
        loaded = subprocess.run(probe, env=env, capture_output=True, text=True, check=True)
        assert loaded.stdout.split() == [seen]


class TestDryRunAfterARun:
    """A dry run shows the ledger's truth: rows failed earlier, rows never sent."""

    def test_failed_rows_are_counted_as_failed_and_would_be_sent(
        self, tmp_path: Path, threaded_emulator: Any
    ) -> None:
        path = write_csv(
            tmp_path / "t.csv", [{"ConfigurationSetName": f"t-{i}"} for i in range(10)]
        )
        with threaded_emulator(EmulatorConfig(rate=0, fault_rate=1.0)) as emulator:
            args = ("provision", path, "--endpoint-url", emulator.url, "--rate", "0")
            failed = run_bulk(*args, "--max-attempts", "1", cwd=tmp_path)
            assert failed.returncode == 1
            assert "failed 10 · pending 0" in failed.stdout
            creates = emulator.stats()["calls"]["CreateConfigurationSet"]
            plan = run_bulk(*args, "--dry-run", cwd=tmp_path)
            assert emulator.stats()["calls"]["CreateConfigurationSet"] == creates
        assert plan.returncode == 0, plan.stderr
        assert "failed 10 · pending 0" in plan.stdout
        assert "would send 10 rows: 10 recorded earlier but not settled, 0 never sent" in (
            plan.stdout
        )


def two_regions(tmp_path: Path) -> Path:
    """Ten rows in each of two Regions; in each, one with a bad TlsPolicy."""
    rows = tenants(20)
    for index, row in enumerate(rows):
        row["Region"] = "us-east-1" if index < 10 else "eu-west-1"
    rows[3]["TlsPolicy"] = rows[14]["TlsPolicy"] = "SOMETIMES"
    return write_csv(tmp_path / "t.csv", rows)


def by_lane(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lane["lane"]: lane for lane in summary["lanes"]}


class TestPerLane:
    def test_json_is_the_only_stdout_and_matches_the_ledger_lane_by_lane(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = two_regions(tmp_path)

        result = cli("provision", path, "--endpoint-url", served.url, "--rate", "0", "--json")

        assert result.exit_code == 1, result.stderr  # two invalid rows
        summary = json.loads(result.stdout)  # nothing else on stdout
        assert summary["exit_code"] == 1
        latest = latest_by_row(Path(f"{path}.ledger.jsonl")).values()
        assert summary["counts"] == {
            "created": 18, "exists": 0, "invalid": 2, "failed": 0
        }  # fmt: skip
        assert Counter(r["status"] for r in latest) == {"created": 18, "invalid": 2}
        lanes = by_lane(summary)
        assert set(lanes) == {EAST, WEST}
        for lane in (EAST, WEST):
            got = {k: lanes[lane][k] for k in ("rows", "created", "invalid", "failed", "pending")}
            assert got == {"rows": 10, "created": 9, "invalid": 1, "failed": 0, "pending": 0}
            in_ledger = Counter(r["status"] for r in latest if r["lane"] == lane)
            assert in_ledger == {"created": 9, "invalid": 1}
        assert summary["stopped_lanes"] == {}

    def test_the_text_summary_has_a_line_per_region(self, tmp_path: Path, served: Emulator) -> None:
        path = two_regions(tmp_path)

        result = cli("provision", path, "--endpoint-url", served.url, "--rate", "0")

        assert result.exit_code == 1, result.stderr
        lines = result.stdout.splitlines()
        assert "lanes: 2" in lines
        for lane in (EAST, WEST):
            row = next(line.split() for line in lines if line.startswith(f"  {lane} "))
            assert row[1:7] == ["10", "9", "0", "1", "0", "0"]  # rows created exists ...

    def test_a_dry_run_prints_json_too_and_sends_nothing(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = two_regions(tmp_path)

        result = cli("provision", path, "--endpoint-url", served.url, "--dry-run", "--json")

        assert result.exit_code == 1, result.stderr
        summary = json.loads(result.stdout)
        assert (summary["dry_run"], summary["would_send"], summary["exit_code"]) == (True, 18, 1)
        for lane in by_lane(summary).values():
            assert (lane["invalid"], lane["pending"], lane["created"]) == (1, 9, 0)
        assert served.stats()["calls"] == {}

    def test_json_with_a_bad_input_file_prints_one_error_line_and_no_json(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = tmp_path / "typo.csv"
        path.write_text("ConfigurationSetName,SendingEnabld\na,true\n")

        result = cli("provision", path, "--endpoint-url", served.url, "--json")

        assert result.exit_code == 2
        assert result.stdout == ""
        assert "SendingEnabld" in one_line_error(result.stderr)

    def test_a_lane_whose_role_is_refused_stops_alone_and_says_why(
        self, tmp_path: Path, served: Emulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        served.configure(denied_roles=[DENIED_ROLE])
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", served.url)  # botocore's own convention
        rows = [
            {"ConfigurationSetName": f"t-{i}", "RoleArn": DENIED_ROLE if i % 2 else ALLOWED_ROLE}
            for i in range(10)
        ]
        path = write_csv(tmp_path / "roles.csv", rows)
        args = ("provision", path, "--endpoint-url", served.url, "--rate", "0")
        denied, allowed = (
            f"pinpoint-email/{role}/us-east-1" for role in (DENIED_ROLE, ALLOWED_ROLE)
        )

        result = cli(*args, "--json")

        assert result.exit_code == 3, result.stderr
        summary = json.loads(result.stdout)
        assert summary["exit_code"] == 3
        reason = summary["stopped_lanes"][denied]
        assert DENIED_ROLE in reason and "AccessDenied" in reason
        lanes = by_lane(summary)
        assert (lanes[denied]["created"], lanes[denied]["pending"]) == (0, 5)
        assert lanes[denied]["stopped"] == reason
        assert (lanes[allowed]["created"], lanes[allowed]["pending"]) == (5, 0)
        assert lanes[allowed]["stopped"] is None
        assert f"bulk: error: {reason}" in result.stderr.splitlines()

        again = cli(*args)  # the text summary names the lane and why, advice included

        assert again.exit_code == 3, again.stderr
        lines = again.stdout.splitlines()
        stopped = lines.index("stopped: 1 lane; their rows stay pending:")
        assert lines[stopped + 1] == f"  {reason}"
