"""``bulk report``: a ledger's counts, runs and the rows that need attention, through the CLI.

The round trip the report exists for: a run with invalid rows and rows the service failed
(a dedicated IP pool that does not exist: ``NotFoundException``), ``-o`` writes exactly those
rows with their cells and reasons, and the file, fixed, provisions as it is.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulk.emulator import Emulator
from bulk.ledger.reader import read_records

from .torture import cli, latest_by_row, one_line_error, write_csv

ThreadedEmulator = Callable[..., Any]


def rows() -> list[dict[str, str]]:
    """Ten rows: two invalid (a bad name, a bad boolean), two in a pool that does not exist."""
    made = [
        {"ConfigurationSetName": f"t-{i}", "SendingEnabled": "true", "SendingPoolName": ""}
        for i in range(10)
    ]
    made[2]["ConfigurationSetName"] = "bad name!"
    made[5]["SendingEnabled"] = "maybe"
    made[6]["SendingPoolName"] = "no-such-pool"
    made[8]["SendingPoolName"] = "no-such-pool"
    return made


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator answers a set in an unknown dedicated IP pool as AWS does: 404."""
    from bulk.emulator import operations as emulator_operations
    from bulk.emulator.protocol import ServiceError

    create = emulator_operations.HANDLERS["CreateConfigurationSet"]

    def no_such_pool(call: Any) -> dict[str, Any]:
        pool = (call.params.get("DeliveryOptions") or {}).get("SendingPoolName")
        if pool == "no-such-pool":
            raise ServiceError(404, "NotFoundException", f"Pool <{pool}> does not exist.")
        return create(call)

    monkeypatch.setitem(emulator_operations.HANDLERS, "CreateConfigurationSet", no_such_pool)


def provision(path: Path, emu: Emulator, *more: str) -> Any:
    return cli("provision", path, "--endpoint-url", emu.url, "--rate", "0", *more)


def test_the_rows_to_fix_round_trip(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, pools: None
) -> None:
    path = write_csv(tmp_path / "t.csv", rows())
    fix = tmp_path / "fix.csv"
    with threaded_emulator() as emu:
        first = provision(path, emu)
        assert first.exit_code == 1, first.output

        result = cli("report", path, "-o", fix)

        assert result.exit_code == 0, result.output
        written = list(csv.DictReader(fix.open()))
        assert [(r["ConfigurationSetName"], r["bulk_status"], r["bulk_code"]) for r in written] == [
            ("bad name!", "invalid", "InvalidName"),
            ("t-5", "invalid", "InvalidBoolean"),
            ("t-6", "failed", "NotFoundException"),
            ("t-8", "failed", "NotFoundException"),
        ]
        assert written[1]["SendingEnabled"] == "maybe", "the cells as the input has them"
        assert "does not exist" in written[2]["bulk_message"]
        assert "wrote " + str(fix) + ": 4 rows (failed, invalid)" in result.stdout

        # Fixed in a spreadsheet: the bulk_ columns stay, and provision ignores them.
        for row in written:
            row["ConfigurationSetName"] = row["ConfigurationSetName"].replace(" name!", "-name")
            row["SendingEnabled"] = "true"
            row["SendingPoolName"] = ""
        with fix.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(written[0]))
            writer.writeheader()
            writer.writerows(written)
        fixed = provision(fix, emu)

        assert fixed.exit_code == 0, fixed.output
        made = emu.state.names(("123456789012", "us-east-1"))
    assert {f"t-{i}" for i in range(10) if i != 2} | {"bad-name"} == set(made)
    assert {r["status"] for r in latest_by_row(Path(f"{fix}.ledger.jsonl")).values()} == {"created"}


def test_json_counts_match_the_ledger(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, pools: None
) -> None:
    path = write_csv(tmp_path / "t.csv", rows())
    with threaded_emulator() as emu:
        provision(path, emu)
    ledger = Path(f"{path}.ledger.jsonl")

    found = json.loads(cli("report", path, "--json").stdout)

    latest = latest_by_row(ledger)
    by_status: dict[str, int] = {}
    for record in latest.values():
        by_status[record["status"]] = by_status.get(record["status"], 0) + 1
    assert found["counts"] == by_status == {"created": 6, "invalid": 2, "failed": 2}
    assert found["rows"] == 10
    assert found["codes"] == {"NotFoundException": 2, "InvalidName": 1, "InvalidBoolean": 1}
    (run,) = found["runs"]
    assert run["exit_code"] == 1 and run["this_run"] == by_status
    assert found["lanes"] == {"pinpoint-email/default/us-east-1": by_status}


def test_the_text_report(tmp_path: Path, threaded_emulator: ThreadedEmulator, pools: None) -> None:
    path = write_csv(tmp_path / "t.csv", rows())
    with threaded_emulator() as emu:
        provision(path, emu)

    lines = cli("report", path).stdout.splitlines()

    assert lines[0] == f"report: {path}.ledger.jsonl · pinpoint-email us-east-1 · 1 run"
    assert lines[1] == "rows: 10 · created 6 · exists 0 · invalid 2 · failed 2 · in flight 0"
    assert lines[2] == (
        "needs attention: 4 rows (NotFoundException 2, InvalidName 1, InvalidBoolean 1)"
    )
    assert lines[3].startswith("run ") and "created 6, failed 2, invalid 2, exit 1" in lines[3]
    assert (
        lines[-1]
        == f"next: bulk report {path} -o FIX.csv writes those rows with their cells, to fix"
    )


def test_a_run_in_flight_is_read_without_holding_it(tmp_path: Path) -> None:
    """A ledger a killed run left (intent lines, no end record): read as a resume would."""
    path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "a"}])
    ledger = Path(f"{path}.ledger.jsonl")
    ledger.write_text(
        json.dumps({"kind": "run", "run_id": "r1", "time": "2026-12-07T10:00:00.000Z",
                    "input": "t.csv", "target": {"service": "sesv2", "region": "us-east-1"}})
        + "\n"
        + json.dumps({"kind": "intent", "row": 1, "name": "a", "lane": "sesv2/default/us-east-1",
                      "digest": "d", "time": "2026-12-07T10:00:01.000Z"})
        + '\n{"row": 1, "na'  # torn by the kill
    )  # fmt: skip

    result = cli("report", path)

    assert result.exit_code == 0, result.output
    assert "rows: 1 · created 0 · exists 0 · invalid 0 · failed 0 · in flight 1" in result.stdout
    assert "no end record (killed, or still running)" in result.stdout
    assert list(read_records(ledger))[-1]["kind"] == "intent", "the ledger is left as it was"


def test_an_edited_input_is_matched_by_name(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, pools: None
) -> None:
    path = write_csv(tmp_path / "t.csv", rows())
    with threaded_emulator() as emu:
        provision(path, emu)
    edited = rows()
    edited.insert(0, {"ConfigurationSetName": "new", "SendingEnabled": "", "SendingPoolName": ""})
    write_csv(path, edited)
    out = tmp_path / "fix.parquet"

    result = cli("report", path, "-o", out, "--status", "failed")

    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out)["ConfigurationSetName"].to_list() == ["t-6", "t-8"]
    assert "the input changed since the run: 2 rows were matched by name" in result.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("nowhere.csv",), "no ledger at nowhere.csv.ledger.jsonl"),
        ((), "give INPUT"),
        (("t.csv", "--status", "bogus"), "--status: unknown 'bogus'"),
        (("t.csv", "-o", "missing/fix.csv"), "no directory missing"),
        (("t.csv", "-o", "fix.xlsx"), "write a .csv or .parquet file"),
        (("t.csv", "-o", "t.csv"), "write the report to a file of its own"),
        (("--ledger", "t.csv.ledger.jsonl", "-o", "fix.csv"), "-o needs INPUT"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "a"}])
    Path("t.csv.ledger.jsonl").write_text(
        json.dumps({"kind": "run", "run_id": "r", "time": "t", "input": "t.csv", "target": {}})
        + "\n"
    )
    result = cli("report", *args)
    assert result.exit_code == 2, result.output
    assert said in one_line_error(result.stderr)


def test_reads_a_ledger_a_running_provision_is_writing(
    tmp_path: Path, threaded_emulator: ThreadedEmulator
) -> None:
    """The provision holds its ledger's lock; the report reads beside it, and the run goes on."""
    from bulk.emulator import EmulatorConfig

    from .torture import running_bulk, wait_for_rows

    path = write_csv(
        tmp_path / "t.csv", [{"ConfigurationSetName": f"s-{i:02d}"} for i in range(40)]
    )
    with threaded_emulator(EmulatorConfig(rate=20, burst=1)) as emu:
        args = ("provision", path, "--endpoint-url", emu.url, "--rate", "20")
        with running_bulk(*args, cwd=tmp_path) as proc:
            assert wait_for_rows(Path(f"{path}.ledger.jsonl"), 5, proc)

            found = json.loads(cli("report", path, "--json").stdout)

            assert proc.poll() is None, "the run was still going"
            assert 5 <= found["counts"]["created"] < 40
            assert found["runs"][0]["ended"] is None
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert json.loads(cli("report", path, "--json").stdout)["counts"] == {"created": 40}
