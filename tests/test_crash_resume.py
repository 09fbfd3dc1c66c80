"""Crashes, signals and ledger faults, then resume: nothing lost, nothing created twice.

The command line runs as a subprocess (``SIGKILL``, ``SIGTERM``, Ctrl-C) or through click's
runner in this process (ledger faults injected with ``monkeypatch``), against an emulator
served from a thread of this process, so that it outlives every run. After the last resume
the invariants of ``tests/torture.py`` hold.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bulk.ledger.index_file as index_file
from bulk.emulator import Emulator, EmulatorConfig
from bulk.ledger.reader import read_records
from bulk.ledger.rules import Action, carries_ambiguity, decide
from bulk.models import Outcome, Status

from .ledger_helpers import (
    DIGESTS,
    LANE,
    NAMES,
    OTHER_LANE,
    as_prior,
    model_action,
    model_prior,
    open_ledger,
    outcomes_strategy,
)
from .test_ledger_index_file import (
    cut_index,
    flip_a_section_byte,
    garbage_in_index,
    header_value_made_a_list,
)
from .torture import (
    SETTLED,
    NoResend,
    Tenants,
    check_invariants,
    cli,
    emulator_settings,
    latest_by_row,
    one_line_error,
    row_records,
    run_engine,
    running_bulk,
    start_bulk,
    tenants_file,
    wait_for_rows,
)

ThreadedEmulator = Callable[..., Any]
CONCURRENCY = 8


def provision_args(tenants: Tenants, emulator: Emulator, *more: str) -> tuple[str | Path, ...]:
    return (
        "provision",
        tenants.path,
        "--endpoint-url",
        emulator.url,
        "--concurrency",
        str(CONCURRENCY),
        *more,
    )


def settled_rows(ledger: Path) -> int:
    return sum(r["status"] in SETTLED for r in latest_by_row(ledger).values())


def skipped_line(output: str) -> int:
    found = re.search(r"; (\d+) rows settled by earlier runs skipped", output)
    assert found, output
    return int(found.group(1))


# -- SIGKILL at random points ------------------------------------------------------------------


def kill_and_resume(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, *, rows: int, kills: int, seed: int
) -> None:
    """Kill the run at ``kills`` seeded random points, resuming each time, then finish it.

    The first point is a time (it may fall before the first record, even during start-up);
    the others fall a random number of rows further on, plus a random few milliseconds, so
    some kills land in the middle of a ledger write.
    """
    rng = random.Random(seed)
    tenants = tenants_file(tmp_path / "t.csv", rows)
    ledger = tenants.ledger
    config = EmulatorConfig(rate=200, burst=5, fault_rate=0.03, ambiguous_rate=0.03, seed=seed)
    step = max(10, rows // (kills + 1))
    with threaded_emulator(config) as emu:
        args = provision_args(tenants, emu, "--rate", "200", "--burst", "5")
        killed = 0
        for point in range(kills):
            guard = NoResend(ledger, emu.stats)
            before = settled_rows(ledger) if ledger.exists() else 0
            with running_bulk(*args, cwd=tmp_path) as proc:
                if point == 0:
                    time.sleep(rng.uniform(0.2, 2.0))
                    alive = proc.poll() is None
                else:
                    target = before + rng.randint(5, step)
                    alive = wait_for_rows(ledger, target, proc)
                    time.sleep(rng.uniform(0.0, 0.03))
                if alive:
                    proc.kill()
                _, err = proc.communicate(timeout=60)
            if proc.returncode == -signal.SIGKILL:
                killed += 1
            else:  # the run finished before the kill point came
                assert proc.returncode == 1, err
            guard.check()
            if ledger.exists():
                row_records(ledger)  # every record whole; a torn last line is ignored

        guard = NoResend(ledger, emu.stats)
        settled = settled_rows(ledger)
        final = start_bulk(*args, cwd=tmp_path)
        out, err = final.communicate(timeout=120)
        assert final.returncode == 1, err  # the invalid rows still need fixing
        assert "Traceback" not in err
        assert skipped_line(out) == settled
        assert "next: fix the invalid rows (see the ledger), then run the same command" in out
        guard.check()
        latest = check_invariants(
            tenants,
            emu.state.all_names(),
            emu.stats(),
            # Nothing existed before: every set a killed run created without living to
            # record it has its intent line, so the resume records it created, not exists.
            exists_allowed=0,
        )
    assert killed >= kills - 1, f"only {killed} of {kills} kill points hit a running process"
    # A row a killed run created without living to record it: its intent line made the
    # resume's AlreadyExists its own.
    found = [r for r in latest.values() if r.get("message", "").startswith("created by an")]
    assert all(r["status"] == "created" for r in found)


class TestSigkill:
    def test_killed_at_six_random_points_and_resumed_to_completion(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        kill_and_resume(tmp_path, threaded_emulator, rows=400, kills=6, seed=20260501)

    @pytest.mark.soak
    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_soak_killed_at_thirty_points(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator, seed: int
    ) -> None:
        kill_and_resume(tmp_path, threaded_emulator, rows=3000, kills=30, seed=seed)


# -- SIGTERM and Ctrl-C ------------------------------------------------------------------------


class TestSignals:
    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
    def test_a_signal_stops_cleanly_and_the_resume_says_what_remains(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator, signum: int
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        ledger = tenants.ledger
        with threaded_emulator(EmulatorConfig(rate=40, burst=1)) as emu:
            args = provision_args(tenants, emu, "--rate", "40")
            with running_bulk(*args, cwd=tmp_path) as proc:
                assert wait_for_rows(ledger, 20, proc)
                proc.send_signal(signum)
                out, err = proc.communicate(timeout=60)

            assert proc.returncode == 130, err
            assert "Traceback" not in err
            records = list(read_records(ledger))  # every line whole
            assert records[-1]["kind"] == "end" and records[-1]["interrupted"] is True
            latest = latest_by_row(ledger)
            # A row whose retry the stop cut short is recorded failed (not a call in flight).
            unsettled = [r for r in latest.values() if r["status"] not in SETTLED]
            assert all(r["status"] == "failed" and "ambiguous" not in r for r in unsettled)
            assert all(r["message"].startswith("stopped before an answer") for r in unsettled)
            pending = tenants.total - len(latest)
            assert 0 < pending <= tenants.total - 20
            assert f"interrupted: {pending} rows left; run the same command to resume" in out

            plan = cli(*args, "--dry-run")  # what remains, without sending
            to_send = sum(
                1
                for row in range(1, tenants.total + 1)
                if row not in latest and row not in tenants.invalid_rows
            )
            assert f"pending {to_send}" in plan.stdout
            assert (
                f"would send {to_send + len(unsettled)} rows: {len(unsettled)} recorded earlier "
                "but not settled, "
            ) in plan.stdout
            assert f"; {len(latest) - len(unsettled)} settled by earlier runs" in plan.stdout

            guard = NoResend(ledger, emu.stats)
            emu.configure(rate=0)
            resumed = cli(*args, "--rate", "0")
            assert resumed.exit_code == 1, resumed.stderr
            assert skipped_line(resumed.stdout) == len(latest) - len(unsettled)
            guard.check()
            check_invariants(tenants, emu.state.all_names(), emu.stats())

    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
    def test_after_the_signal_no_new_call_starts_at_one_per_second(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator, signum: int
    ) -> None:
        """AWS's operating point: 1 create/s, a bucket of one, the default concurrency (16
        workers waiting on the lane's limiter). Only the call in flight may still arrive."""
        tenants = tenants_file(tmp_path / "t.csv", 60, bad_every=1000)
        ledger = tenants.ledger
        with threaded_emulator(EmulatorConfig(rate=1, burst=1)) as emu:
            args = ("provision", tenants.path, "--endpoint-url", emu.url)
            with running_bulk(*args, cwd=tmp_path) as proc:
                assert wait_for_rows(ledger, 3, proc)
                before = emu.stats()["calls"]["CreateConfigurationSet"]
                proc.send_signal(signum)
                signalled = time.monotonic()
                out, err = proc.communicate(timeout=60)
                took = time.monotonic() - signalled
            after = emu.stats()["calls"]["CreateConfigurationSet"]
        assert proc.returncode == 130, err
        assert "stopping" in err
        assert after - before <= 1, f"{after - before} creates arrived after the signal"
        assert took < 10, f"took {took:.1f} s to stop"
        assert "interrupted:" in out

    def test_a_signal_stops_a_run_waiting_on_a_very_slow_limit(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 20, bad_every=1000)
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            args = ("provision", tenants.path, "--endpoint-url", emu.url, "--rate", "0.0001")
            with running_bulk(*args, cwd=tmp_path) as proc:
                assert wait_for_rows(tenants.ledger, 1, proc)
                proc.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                _, err = proc.communicate(timeout=60)
                took = time.monotonic() - signalled
            assert emu.stats()["calls"]["CreateConfigurationSet"] == 1
        assert proc.returncode == 130, err
        assert took < 10, f"took {took:.1f} s to stop"

    def test_a_second_ctrl_c_exits_at_once_with_the_ledger_whole(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        ledger = tenants.ledger
        # Slow calls: the first Ctrl-C waits for those in flight, the second does not.
        config = EmulatorConfig(rate=0, latency_ms=400, latency_jitter=0.0)
        with threaded_emulator(config) as emu:
            args = provision_args(tenants, emu, "--rate", "0")
            with running_bulk(*args, cwd=tmp_path) as proc:
                assert wait_for_rows(ledger, 16, proc)
                proc.send_signal(signal.SIGINT)
                time.sleep(0.1)
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, err
            assert "Traceback" not in err
            assert "exiting now" in err
            before = list(read_records(ledger))  # whole lines only
            assert not any(r.get("kind") == "end" for r in before)  # it did not wait to finish

            guard = NoResend(ledger, emu.stats)
            emu.configure(latency_ms=0)
            resumed = cli(*args)
            assert resumed.exit_code == 1, resumed.stderr
            guard.check()
            check_invariants(
                tenants,
                emu.state.all_names(),
                emu.stats(),
                exists_allowed=0,
            )


# -- ledger faults -----------------------------------------------------------------------------


class TestTornLine:
    async def test_a_torn_last_line_is_cut_away_and_its_row_settled_by_the_resume(
        self, tmp_path: Path, emulator_factory: Any
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 120)
        ledger = tenants.ledger
        async with emulator_factory(EmulatorConfig(rate=0, max_sets=50)) as emu:
            first = await run_engine(tenants.path, emulator_settings(emu, concurrency=1))
            assert first.quota_stops
            # A crash in the middle of writing the last created row's record.
            data = ledger.read_bytes()
            body = data.rstrip(b"\n").split(b"\n")
            last_row = max(i for i, line in enumerate(body) if b'"status":"created"' in line)
            torn = json.loads(body[last_row])
            kept = b"\n".join(body[:last_row]) + b"\n" + body[last_row][: len(body[last_row]) // 2]
            ledger.write_bytes(kept)

            emu.configure(max_sets=None)
            guard = NoResend(ledger, emu.stats)
            assert torn["name"] not in guard.names
            resumed = await run_engine(tenants.path, emulator_settings(emu))
            guard.check()
            assert resumed.pending == 0
            for line in ledger.read_bytes().split(b"\n")[:-1]:
                json.loads(line)  # the torn bytes are gone: every line is a whole record
            latest = check_invariants(tenants, emu.state.all_names(), emu.stats())
        # Its record was lost, its intent line was not: the resume found the set already
        # there after its own call, so it is the run's.
        assert latest[torn["row"]]["status"] == "created"
        assert (
            latest[torn["row"]]["message"] == "created by an earlier attempt whose answer was lost"
        )


OTHER_ROLE = "arn:aws:iam::111122223333:role/Other"


class TestForeignLedger:
    @pytest.mark.parametrize(
        ("change", "expect"),
        [
            ("input", "belongs to another input file: 't.csv' in the ledger, 'u.csv' for this run"),
            ("service", "belongs to another service: 'pinpoint-email' in the ledger, 'sesv2'"),
            ("region", "belongs to another region: 'us-east-1' in the ledger, 'eu-west-1'"),
            ("endpoint", "belongs to another endpoint"),
            ("role", f"belongs to another role: none in the ledger, {OTHER_ROLE!r} for this run"),
        ],
    )
    def test_a_ledger_of_another_input_or_target_is_refused(
        self,
        tmp_path: Path,
        threaded_emulator: ThreadedEmulator,
        monkeypatch: pytest.MonkeyPatch,
        change: str,
        expect: str,
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 20, bad_every=5)
        ledger = tenants.ledger
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            first = cli(*provision_args(tenants, emu, "--rate", "0"))
            assert first.exit_code == 1, first.stderr
            kept = ledger.read_bytes()
            creates = emu.stats()["calls"]["CreateConfigurationSet"]
            args: list[str | Path] = [*provision_args(tenants, emu), "--ledger", ledger]
            if change == "input":
                other = tmp_path / "u.csv"
                other.write_bytes(tenants.path.read_bytes())
                args[1] = other
            elif change == "service":
                args += ["--service", "sesv2"]
            elif change == "region":
                args += ["--region", "eu-west-1"]
            elif change == "role":
                monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emu.url)
                args += ["--role-arn", OTHER_ROLE]
            else:
                args[3] = emu.url.replace("127.0.0.1", "localhost")

            refused = cli(*args)

            assert refused.exit_code == 2
            line = one_line_error(refused.stderr)
            assert expect in line
            assert line.endswith("pass --ledger NEW to keep this run's records in another file")
            assert ledger.read_bytes() == kept
            assert emu.stats()["calls"]["CreateConfigurationSet"] == creates


class TestDamagedIndex:
    @pytest.mark.parametrize(
        "damage",
        [header_value_made_a_list, cut_index, garbage_in_index, flip_a_section_byte],
        ids=["header-value-of-wrong-type", "truncated", "garbage", "section-byte-flipped"],
    )
    def test_a_damaged_index_means_a_normal_resume_and_one_note(
        self,
        tmp_path: Path,
        threaded_emulator: ThreadedEmulator,
        monkeypatch: pytest.MonkeyPatch,
        damage: Callable[[Path], None],
    ) -> None:
        """Issue 19: a settled ledger whose saved index was damaged resumed with
        ``unexpected AttributeError`` and exit 1. The index is a cache: ignored, said once."""
        monkeypatch.setattr(index_file, "MIN_RECORDS", 50)
        tenants = tenants_file(tmp_path / "t.csv", 200, bad_every=10**6)
        ledger, index = tenants.ledger, index_file.index_path(tenants.ledger)
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            args = provision_args(tenants, emu, "--rate", "0")
            assert cli(*args).exit_code == 0
            assert index.is_file()
            damage(ledger)
            records = len(row_records(ledger))
            creates = emu.stats()["calls"]["CreateConfigurationSet"]

            resumed = cli(*args)

            assert resumed.exit_code == 0, resumed.stderr
            assert skipped_line(resumed.stdout) == 200
            assert emu.stats()["calls"]["CreateConfigurationSet"] == creates  # nothing sent
            assert len(row_records(ledger)) == records
            region, note = resumed.stderr.strip().splitlines()  # one note, no error
            assert region.startswith("bulk: Region ")
            assert note.startswith(f"bulk: note: resume index {index} is damaged (")
            assert note.endswith("the ledger was read in full, and the index written again")
            fd = os.open(ledger, os.O_RDONLY)
            try:
                loaded = index_file.load(fd, ledger, os.fstat(fd).st_size)
            finally:
                os.close(fd)
            assert isinstance(loaded, index_file.Loaded) and loaded.image.counts["created"] == 200

            again = cli(*args)

            assert again.exit_code == 0 and skipped_line(again.stdout) == 200
            assert [line.split(" ")[1] for line in again.stderr.splitlines()] == ["Region"]
            assert emu.stats()["calls"]["CreateConfigurationSet"] == creates


class FailingWrites:
    """A disk that fills up under one ledger: whole lines go in until some have, then no more.

    The write that crosses the limit stores only the lines that fit (a short write, as a full
    disk gives); the next write to the ledger raises the ``OSError``.
    """

    def __init__(self) -> None:
        self._real_write = os.write

    def fail(self, ledger: Path, after: int, code: int) -> None:
        target = os.path.realpath(ledger)
        real_write = self._real_write
        lines_written = 0

        def write(fd: int, data: Any) -> int:
            nonlocal lines_written
            try:
                is_ledger = os.readlink(f"/proc/self/fd/{fd}") == target
            except OSError:
                is_ledger = False
            if not is_ledger:
                return real_write(fd, data)
            if lines_written >= after:
                raise OSError(code, os.strerror(code))
            lines = bytes(data).splitlines(keepends=True)[: after - lines_written]
            lines_written += len(lines)
            return real_write(fd, b"".join(lines))

        os.write = write

    def restore(self) -> None:
        os.write = self._real_write


@pytest.fixture
def ledger_writes() -> Iterator[FailingWrites]:
    failing = FailingWrites()
    try:
        yield failing
    finally:
        failing.restore()


class TestLedgerWriteFailures:
    @pytest.mark.parametrize(
        ("code", "advice"),
        [
            (errno.ENOSPC, "free space and run the same command to resume"),
            (errno.EROFS, "fix that and run the same command to resume"),
            (errno.EIO, "fix that and run the same command to resume"),
        ],
        ids=["disk-full", "read-only", "io-error"],
    )
    def test_the_run_stops_with_exit_3_and_keeps_every_record(
        self,
        tmp_path: Path,
        threaded_emulator: ThreadedEmulator,
        ledger_writes: FailingWrites,
        code: int,
        advice: str,
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        ledger = tenants.ledger
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            args = provision_args(tenants, emu, "--rate", "0")
            ledger_writes.fail(ledger, 1 + 60, code)  # the run header, then 60 records
            stopped = cli(*args)
            ledger_writes.restore()  # the disk has room again

            assert stopped.exit_code == 3, stopped.stderr
            records = list(read_records(ledger))
            assert records[0]["kind"] == "run"
            # Records go in by the batch, and a batch the disk took only part of is undone:
            # what the message counts is exactly what the ledger keeps, nothing after it.
            kept = len(records) - 1
            assert 0 < kept <= 60
            # Row records and intent lines only: no rate, no end.
            assert all(r.get("status") or r.get("kind") == "intent" for r in records[1:])
            assert one_line_error(stopped.stderr) == (
                f"bulk: error: cannot write ledger {ledger}: {os.strerror(code)}; "
                f"{kept} records written before; {advice}"
            )
            assert ledger.read_bytes().endswith(b"\n")
            calls_then = emu.stats()["calls"]["CreateConfigurationSet"]
            assert calls_then < 200  # it stopped taking rows

            guard = NoResend(ledger, emu.stats)
            created = sum(record.get("status") == "created" for record in records)
            assert len(guard.names) == created
            resumed = cli(*args)
            assert resumed.exit_code == 1, resumed.stderr
            settled = sum(record.get("status") in ("created", "invalid") for record in records)
            assert skipped_line(resumed.stdout) == settled
            guard.check()
            check_invariants(
                tenants,
                emu.state.all_names(),
                emu.stats(),
                exists_allowed=0,
            )

    def test_a_ledger_that_cannot_be_created_stops_before_any_create(
        self,
        tmp_path: Path,
        threaded_emulator: ThreadedEmulator,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # As root a chmod-ed directory stays writable: a read-only file system is simulated.
        tenants = tenants_file(tmp_path / "t.csv", 20, bad_every=5)
        real_open = os.open

        def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if str(path) == str(tenants.ledger) and flags & os.O_CREAT:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            monkeypatch.setattr(os, "open", read_only)
            result = cli(*provision_args(tenants, emu))
            monkeypatch.setattr(os, "open", real_open)
            assert result.exit_code == 2
            assert one_line_error(result.stderr) == (
                f"bulk: error: cannot create ledger {tenants.ledger}: Read-only file system; "
                "check that its directory exists and is writable, or pass --ledger PATH"
            )
            assert "CreateConfigurationSet" not in emu.stats()["calls"]
        assert not tenants.ledger.exists()

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
    def test_a_read_only_directory_stops_before_any_create(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 20, bad_every=5)
        tmp_path.chmod(0o555)
        try:
            with threaded_emulator(EmulatorConfig(rate=0)) as emu:
                result = cli(*provision_args(tenants, emu))
                assert result.exit_code == 2
                assert "Permission denied" in one_line_error(result.stderr)
                assert "CreateConfigurationSet" not in emu.stats()["calls"]
        finally:
            tmp_path.chmod(0o755)


class TestLock:
    def test_a_second_run_on_the_same_ledger_is_refused_while_the_first_runs(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        ledger = tenants.ledger
        with threaded_emulator(EmulatorConfig(rate=40, burst=1)) as emu:
            args = provision_args(tenants, emu, "--rate", "40")
            with running_bulk(*args, cwd=tmp_path) as first:
                assert wait_for_rows(ledger, 5, first)
                second = cli(*args)
                assert second.exit_code == 2
                assert one_line_error(second.stderr) == (
                    f"bulk: error: ledger {ledger} is in use by another bulk run "
                    f"(pid {first.pid}); wait for it to finish, or pass --ledger NEW "
                    "to keep this run's records in another file"
                )
                emu.configure(rate=0)
                _, err = first.communicate(timeout=60)
            assert first.returncode == 1, err
            runs = [r for r in read_records(ledger) if r.get("kind") == "run"]
            assert len(runs) == 1  # the second run wrote nothing
            check_invariants(tenants, emu.state.all_names(), emu.stats())


# -- the ledger as a property: any outcomes, any crash points, several runs -------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=st.lists(outcomes_strategy, min_size=1, max_size=5), data=st.data())
def test_runs_crashed_at_any_byte_and_resumed_replay_to_the_same_state(
    runs: list[list[Outcome]], data: st.DataObject
) -> None:
    """Several runs, each crashed at a random byte of what it wrote, each resumed by the next.

    Replaying the surviving records gives the answers a resumed run acts on (the index's, and
    what the resume rules make of them, as the engine applies them: settled set, the work a
    resumed run does), and an ambiguous failure stays ambiguous, across crashes and later
    failures, until a record settles the set. As in the engine, a run records a set at most
    once per (lane, name), records a failure only for a row it sends, and starts the attempt
    ambiguous when the row's prior record says so (``carries_ambiguity``).
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ledger.jsonl"
        ambiguous: dict[tuple[str, str], bool] = {}  # the model, over surviving records
        for items in runs:
            with open_ledger(path) as ledger:
                start = path.stat().st_size
                written: list[tuple[Outcome, int]] = []
                seen: set[tuple[str, str]] = set()
                for item in items:
                    if item.status is not Status.FAILED:
                        # The engine marks only failures ambiguous ("it may have been created").
                        item = dataclasses.replace(item, extra={})
                    key = (str(item.lane), item.name)
                    if item.status is not Status.INVALID:
                        if key in seen:
                            continue
                        seen.add(key)
                    if item.status is Status.FAILED:
                        # What the engine does: a row is sent (so can fail) only if the rules
                        # say so, and its attempt is ambiguous if this one was (drawn) or its
                        # prior record is.
                        prior = ledger.index.get(item.lane, item.name, item.digest)
                        if decide(prior, item.digest) is not Action.SEND:
                            continue
                        if carries_ambiguity(prior):
                            item = dataclasses.replace(item, extra={"ambiguous": True})
                    ledger.append(item)
                    written.append((item, path.stat().st_size))
            end = path.stat().st_size
            cut = data.draw(st.integers(start, end), label="crash point")
            with path.open("r+b") as file:
                file.truncate(cut)
            for item, line_end in written:
                if line_end > cut or item.status is Status.INVALID:
                    continue
                key = (str(item.lane), item.name)
                ambiguous[key] = item.status is Status.FAILED and (
                    item.extra.get("ambiguous") is True or ambiguous.get(key, False)
                )

        survivors = [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1]]
        invalid_rows = {
            (r["lane"], r["name"], r["digest"], r["row"])
            for r in survivors
            if r.get("status") == "invalid"
        }
        with open_ledger(path, dry_run=True) as ledger:
            index = ledger.index
            for lane in (LANE, OTHER_LANE):
                for name in NAMES:
                    latest = model_prior(survivors, lane, name, None)
                    assert index.get(lane, name) == as_prior(latest)
                    for digest in DIGESTS:
                        expected = model_prior(survivors, lane, name, digest)
                        prior = index.get(lane, name, digest)
                        assert prior == as_prior(expected)
                        # What Intake decides for a valid row, and what a send starts from.
                        assert decide(prior, digest) is model_action(expected, digest)
                        if decide(prior, digest) is Action.SEND:
                            assert carries_ambiguity(prior) is ambiguous.get(
                                (str(lane), name), False
                            )
                        # Each row recorded invalid stays settled while unchanged (duplicates).
                        for row in range(1, 10):
                            assert index.recorded_invalid(lane, name, digest, row) is (
                                (str(lane), name, digest, row) in invalid_rows
                            )
            keys = {(r["lane"], r["name"]) for r in survivors if "status" in r}
            latest = [model_prior(survivors, lane, name, None) for lane, name in keys]  # type: ignore[arg-type]
            assert len(index) == len(keys)
            assert index.counts == {
                status.value: sum(r is not None and r["status"] == status.value for r in latest)
                for status in Status
            }
