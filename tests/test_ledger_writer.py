"""The open ledger (bulk.ledger.writer): appends, compatibility, locks, kills, write failures."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import bulk.ledger.reader as reader
from bulk.errors import LedgerError, LedgerWriteError
from bulk.ledger.reader import read_records
from bulk.ledger.rules import Action
from bulk.ledger.writer import Ledger
from bulk.models import Destination, Status

from .ledger_helpers import INPUT, LANE, action, lines, open_ledger, outcome, write


class TestAppend:
    def test_a_learned_rate_must_be_a_finite_number(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            for bad in (float("nan"), float("inf"), -1.0):
                with pytest.raises(ValueError):
                    ledger.append_rate(LANE, bad)

    def test_the_index_holds_earlier_runs_only(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))
            assert ledger.index.get(LANE, "a") is None

    def test_a_record_is_written_as_the_engine_handed_it_over(self, path: Path) -> None:
        # The engine owns the ambiguous mark (bulk.ledger.rules.carries_ambiguity): the writer
        # adds none, even after an earlier run's ambiguous failure of the same set.
        write(path, [outcome("a", Status.FAILED, ambiguous=True)])
        write(path, [outcome("a", Status.FAILED, code="TooManyRequestsException")])
        records = [r for r in read_records(path) if "status" in r]
        assert [r.get("ambiguous") for r in records] == [True, None]


class TestCompatibility:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (
                {"target": Destination("pinpoint-email", "eu-west-1")},
                "another service: 'sesv2' in the ledger, 'pinpoint-email' for this run",
            ),
            (
                {"target": Destination("sesv2", "us-east-1")},
                "another region: 'eu-west-1' in the ledger, 'us-east-1' for this run",
            ),
            (
                {"target": Destination("sesv2", "eu-west-1", "prod")},
                "another profile: none in the ledger, 'prod' for this run",
            ),
            (
                {"target": Destination("sesv2", "eu-west-1", endpoint="emulator")},
                "another endpoint: none in the ledger, 'emulator' for this run",
            ),
            (
                {"input_name": "customers.csv"},
                "another input file: 'tenants.csv' in the ledger, 'customers.csv' for this run",
            ),
        ],
    )
    def test_another_target_or_input_is_refused(
        self, path: Path, change: dict[str, Any], message: str
    ) -> None:
        write(path, [outcome("a")])
        before = path.read_bytes()
        with pytest.raises(LedgerError) as raised:
            open_ledger(path, **change)
        assert str(raised.value) == (
            f"ledger {path} belongs to {message}; "
            "pass --ledger NEW to keep this run's records in another file"
        )
        assert path.read_bytes() == before
        with pytest.raises(LedgerError, match="belongs to another"):
            open_ledger(path, dry_run=True, **change)
        with open_ledger(path):  # the refusal released the lock
            pass

    def test_every_run_header_is_checked(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        for run in range(3):
            write(path, [outcome(f"r{run}-{i}", row=i, nested={"kind": "run"}) for i in range(50)])
        records = lines(path)
        assert [i for i, r in enumerate(records) if r.get("kind") == "run"] == [0, 51, 102]
        records[51]["target"]["region"] = "us-west-2"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        monkeypatch.setattr(reader, "_CHUNK", 2000)  # headers in different chunks
        with pytest.raises(LedgerError, match="another region: 'us-west-2' in the ledger"):
            open_ledger(path)
        records[51]["target"]["region"] = "eu-west-1"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        with open_ledger(path) as ledger:
            assert len(ledger.index) == 150

    def test_an_edited_input_in_another_directory_is_the_same_input(
        self, path: Path, tmp_path: Path
    ) -> None:
        write(path, [outcome("a", digest="00000000000000aa")])
        with open_ledger(path, input_name=str(tmp_path / "fixed" / "tenants.csv")) as ledger:
            assert action(ledger.index, LANE, "a", "00000000000000bb") is Action.DRIFT


class TestCheckPath:
    """Paths that can never hold a ledger are refused before anything is sent."""

    def test_a_new_or_existing_ledger_file_is_fine(self, tmp_path: Path) -> None:
        source = tmp_path / "tenants.csv"
        source.write_text("ConfigurationSetName\nacme\n")
        Ledger.check_path(tmp_path / "new.jsonl", source)
        (tmp_path / "old.jsonl").write_text("")
        Ledger.check_path(tmp_path / "old.jsonl", source)

    @pytest.mark.parametrize("how", ["same", "relative", "hard-link", "symlink", "missing"])
    def test_the_input_file_itself(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
    ) -> None:
        monkeypatch.chdir(tmp_path)
        source = tmp_path / "tenants.csv"
        if how != "missing":
            source.write_text("ConfigurationSetName\nacme\n")
        ledger = {"same": source, "relative": Path("tenants.csv"), "missing": source}.get(
            how, tmp_path / "other.csv"
        )
        if how == "hard-link":
            os.link(source, ledger)
        elif how == "symlink":
            ledger.symlink_to(source)
        with pytest.raises(LedgerError, match="is the input file itself; the ledger must be"):
            Ledger.check_path(ledger, source)

    @pytest.mark.parametrize("kind", ["device", "directory", "fifo"])
    def test_not_a_regular_file(self, tmp_path: Path, kind: str) -> None:
        ledger = tmp_path / "ledger.jsonl"
        if kind == "device":
            ledger = Path("/dev/null")
        elif kind == "directory":
            ledger.mkdir()
        else:
            os.mkfifo(ledger)
        with pytest.raises(LedgerError, match="not a regular file; bulk appends to the ledger"):
            Ledger.check_path(ledger, tmp_path / "tenants.csv")


class TestLock:
    def test_a_second_open_in_this_process_is_refused(self, path: Path) -> None:
        with open_ledger(path):
            with pytest.raises(LedgerError) as raised:
                open_ledger(path)
            assert str(raised.value).startswith(
                f"ledger {path} is in use by another bulk run (pid {os.getpid()})"
            )
            with pytest.raises(LedgerError, match="in use by another bulk run"):
                open_ledger(path, dry_run=True)
        with open_ledger(path):
            pass

    def test_dry_runs_share_the_ledger_but_keep_a_writer_out(self, path: Path) -> None:
        write(path, [outcome("a")])
        with (
            open_ledger(path, dry_run=True),
            open_ledger(path, dry_run=True),
            pytest.raises(LedgerError, match="in use"),
        ):
            open_ledger(path)

    def test_a_run_in_another_process_is_named_by_its_pid(self, path: Path) -> None:
        script = textwrap.dedent(
            f"""
            import sys
            from bulk.ledger.writer import Ledger
            from bulk.models import Destination
            ledger = Ledger.open({str(path)!r}, input_name={INPUT!r},
                                 target=Destination("sesv2", "eu-west-1"), settings={{}})
            print("locked", flush=True)
            sys.stdin.readline()
            ledger.close()
            """
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == "locked\n"
            with pytest.raises(
                LedgerError, match=rf"in use by another bulk run \(pid {child.pid}\)"
            ):
                open_ledger(path)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)
        with open_ledger(path) as ledger:  # the lock died with the run
            assert len(ledger.index) == 0


class TestKilledRun:
    def test_a_run_killed_mid_write_resumes_from_every_whole_record(self, path: Path) -> None:
        script = textwrap.dedent(
            f"""
            from bulk.ledger.writer import Ledger
            from bulk.models import Lane, Outcome, Status, Destination
            ledger = Ledger.open({str(path)!r}, input_name={INPUT!r},
                                 target=Destination("sesv2", "eu-west-1"), settings={{}})
            lane = Lane("sesv2", "eu-west-1")
            print("started", flush=True)
            for i in range(1, 10_000_000):
                ledger.append(Outcome(i, f"n{{i}}", Status.CREATED, lane, "00112233aabbccdd",
                                      message="x" * (i % 300)))
            """
        )
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "started\n"
        while path.stat().st_size < 200_000 and child.poll() is None:
            pass
        child.kill()
        child.wait(timeout=30)
        written = [r for r in read_records(path) if "status" in r]
        with open_ledger(path) as ledger:
            assert len(ledger.index) == len(written) > 0
            assert ledger.index.counts["created"] == len(written)
        assert len(lines(path)) == len(written) + 2  # two headers; nothing torn or glued


class TestWriteFailures:
    def test_a_ledger_that_cannot_be_created_fails_before_anything_is_sent(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(LedgerError, match=r"cannot create ledger .*No such file or directory"):
            open_ledger(tmp_path / "missing" / "ledger.jsonl")
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(LedgerError, match=r"cannot create ledger .*Not a directory"):
            open_ledger(blocker / "ledger.jsonl")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
    def test_a_read_only_directory_is_refused(self, tmp_path: Path) -> None:
        tmp_path.chmod(0o555)
        try:
            with pytest.raises(LedgerError, match="Permission denied"):
                open_ledger(tmp_path / "ledger.jsonl")
        finally:
            tmp_path.chmod(0o755)

    def test_a_dry_run_without_a_ledger_creates_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "missing" / "ledger.jsonl"
        with open_ledger(path, dry_run=True) as ledger:
            assert len(ledger.index) == 0
        assert not path.parent.exists()

    def test_a_full_disk_stops_the_run_with_one_clear_line(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ledger = open_ledger(path)
        ledger.append(outcome("a", row=1))
        ledger.append(outcome("b", row=2))
        real_write = os.write

        def full(fd: int, data: Any) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(LedgerWriteError) as raised:
            ledger.append(outcome("c", row=3))
        assert str(raised.value) == (
            f"cannot write ledger {path}: No space left on device; 2 records written before; "
            "free space and run the same command to resume"
        )
        assert raised.value.exit_code == 3
        monkeypatch.setattr(os, "write", real_write)
        with pytest.raises(LedgerWriteError):  # the run does not carry on with holes
            ledger.append(outcome("d", row=4))
        ledger.close()
        assert [r.get("name") for r in lines(path)] == [None, "a", "b"]

    def test_a_line_cut_short_by_a_full_disk_is_removed(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_write = os.write
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))

            def half(fd: int, data: Any) -> int:
                if len(data) > 20:
                    return real_write(fd, bytes(data)[:20])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(os, "write", half)
            with pytest.raises(LedgerWriteError, match="1 records written before"):
                ledger.append(outcome("b"))
            monkeypatch.setattr(os, "write", real_write)
        assert [r.get("name") for r in lines(path)] == [None, "a"]

    def test_a_batch_goes_in_with_one_write(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_write = os.write
        writes: list[bytes] = []

        def counting(fd: int, data: Any) -> int:
            writes.append(bytes(data))
            return real_write(fd, data)

        with open_ledger(path) as ledger:
            monkeypatch.setattr(os, "write", counting)
            ledger.append_many([outcome(name, row=n) for n, name in enumerate("abc", 1)])
            ledger.append_many([])  # nothing to record: no write
            monkeypatch.setattr(os, "write", real_write)
            assert ledger.records_written == 3
        assert len(writes) == 1 and writes[0].count(b"\n") == 3
        assert [r.get("name") for r in lines(path)] == [None, "a", "b", "c"]

    def test_a_batch_the_disk_took_only_part_of_is_undone_whole(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_write = os.write
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))

            def first_line_only(fd: int, data: Any) -> int:
                line = bytes(data).split(b"\n", 1)[0] + b"\n"
                if len(line) < len(data):
                    return real_write(fd, line)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(os, "write", first_line_only)
            with pytest.raises(LedgerWriteError, match="1 records written before"):
                ledger.append_many([outcome("b", row=2), outcome("c", row=3)])
            monkeypatch.setattr(os, "write", real_write)
        # "b" reached the file whole, but its batch did not: the ledger keeps what it reported.
        assert [r.get("name") for r in lines(path)] == [None, "a"]

    @pytest.mark.parametrize("code", [errno.EROFS, errno.EBADF, errno.EIO])
    def test_other_write_errors(
        self, path: Path, monkeypatch: pytest.MonkeyPatch, code: int
    ) -> None:
        def broken(fd: int, data: Any) -> int:
            raise OSError(code, os.strerror(code))

        with open_ledger(path) as ledger:
            monkeypatch.setattr(os, "write", broken)
            with pytest.raises(LedgerWriteError, match=os.strerror(code)):
                ledger.append(outcome("a"))

    def test_a_failed_fsync_is_a_write_error(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(fd: int) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        ledger = open_ledger(path)
        ledger.append(outcome("a"))
        monkeypatch.setattr(os, "fsync", broken)
        with pytest.raises(LedgerWriteError, match="Input/output error"):
            ledger.sync()
        ledger.close()

    def test_an_error_inside_the_with_block_is_not_masked_by_close(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with pytest.raises(KeyError), open_ledger(path) as ledger:
            ledger.append(outcome("a"))
            monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "x")))
            raise KeyError("original")

    def test_sync_and_close_are_safe_to_repeat(self, path: Path) -> None:
        ledger = open_ledger(path)
        ledger.append(outcome("a"))
        ledger.sync()
        ledger.sync()
        ledger.close()
        ledger.close()
        ledger.sync()
        assert ledger.records_written == 1
        with pytest.raises(ValueError, match="closed"):
            ledger.append(outcome("b"))
