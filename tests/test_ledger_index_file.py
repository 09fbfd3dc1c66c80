"""The resume index saved beside a ledger (bulk.ledger.index_file): same answers as the ledger,
or not used at all."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import bulk.engine.pipeline
import bulk.ledger.index_file as index_file
from bulk import Settings, provision
from bulk.emulator import Emulator
from bulk.ledger.index import ResumeIndex
from bulk.ledger.index_keys import IndexImage
from bulk.ledger.reader import scan
from bulk.ledger.records import RunHeader
from bulk.ledger.rules import carries_ambiguity
from bulk.ledger.writer import Ledger, save_index
from bulk.models import Destination, Lane, Outcome, Status
from tests.test_engine import row_records, settings, tenants, write_csv

from .ledger_helpers import LANE, OTHER_LANE, action, open_ledger

NAMES = [f"n{i}" for i in range(37)] + ["café", "lone-\udc80", 'quote"back\\slash']
DIGESTS = ["00112233aabbccdd", "ffeeddccbbaa9988", "odd digest", ""]


def outcome(i: int, *, name: str | None = None, lane: Lane = LANE, **changes: Any) -> Outcome:
    fields: dict[str, Any] = {
        "row": i,
        "name": NAMES[i % len(NAMES)] if name is None else name,
        "status": list(Status)[i % 5],
        "lane": lane,
        "digest": DIGESTS[i % 7 % 4],
        "code": f"C{i % 3}" if i % 5 else None,
        "fingerprint": (i * 2654435761) % (1 << 64) if i % 4 else None,
        "extra": {"ambiguous": True} if i % 13 == 0 else {},
    }
    fields.update(changes)
    return Outcome(**fields)


def history(count: int, start: int = 0) -> list[Outcome]:
    """Records of every status, repeated names in two lanes, codes, odd digests, fingerprints."""
    return [
        outcome(i, lane=OTHER_LANE if i % 6 == 0 else LANE) for i in range(start, start + count)
    ]


def write(path: Path, outcomes: Sequence[Outcome], *, rate: float | None = None) -> None:
    with open_ledger(path) as ledger:
        ledger.append_many(outcomes)
        if rate is not None:
            ledger.append_rate(LANE, rate)


def contents(index: ResumeIndex) -> dict[str, Any]:
    """Every answer the index gives, for every name (and one never recorded) in both lanes."""
    lookups: dict[str, Any] = {}
    for lane in (LANE, OTHER_LANE):
        for name in [*NAMES, "never recorded"]:
            key = f"{lane} {name}"
            lookups[key] = index.get(lane, name)
            lookups[key + " ambiguous"] = carries_ambiguity(index.get(lane, name))
            for digest in DIGESTS:
                lookups[f"{key} {digest}"] = (
                    index.get(lane, name, digest),
                    action(index, lane, name, digest),
                )
                lookups[f"{key} {digest} invalid rows"] = [
                    row for row in range(200) if index.recorded_invalid(lane, name, digest, row)
                ]
    return {
        "length": len(index),
        "counts": index.counts,
        "rates": (index.learned_rate(LANE), index.learned_rate(OTHER_LANE)),
        "unchanged": index.unchanged.rows(),
        "lookups": lookups,
    }


def read_in_full(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the ledger alone says: the saved index hidden from the reader."""
    with monkeypatch.context() as patch:
        patch.setattr(index_file, "load", lambda *args: None)
        with open_ledger(path, dry_run=True) as ledger:
            return contents(ledger.index)


def saved(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        assert save_index(fd, path)
    finally:
        os.close(fd)


def test_a_saved_index_answers_as_the_ledger_does_and_reads_no_name_until_a_lookup(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(path, history(150), rate=42.5)
    expected = read_in_full(path, monkeypatch)
    saved(path)
    assert index_file.index_path(path).exists()
    reads: list[int] = []
    real_reader = index_file._entries_reader

    def counted(*args: Any) -> Callable[[], pl.DataFrame]:
        read = real_reader(*args)

        def wrapper() -> pl.DataFrame:
            reads.append(1)
            return read()

        return wrapper

    monkeypatch.setattr(index_file, "_entries_reader", counted)
    with open_ledger(path, dry_run=True) as ledger:
        index = ledger.index
        assert index.image_records == index.records == 150
        assert (len(index), index.counts, index.unchanged.height) == (
            expected["length"],
            expected["counts"],
            len(expected["unchanged"]),
        )
        assert reads == []  # counts and the fingerprint table come without the names
        assert contents(index) == expected
        assert reads == [1]  # the keys are made once, at the first lookup by name


def test_records_appended_after_the_save_are_read_from_the_ledger(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(path, history(120), rate=3.0)
    saved(path)
    # Later runs: new names, and new records for saved names (settled, failed, deleted, invalid).
    write(path, [*history(90, start=120), outcome(7, status=Status.DELETED)], rate=9.0)
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 120
        assert ledger.index.records == 211
        assert contents(ledger.index) == read_in_full(path, monkeypatch)


def test_an_index_saved_over_an_index_and_a_tail_matches_the_ledger(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(path, history(100))
    saved(path)
    write(path, history(100, start=100))
    saved(path)  # built from the first index and the records after it
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 200
        assert contents(ledger.index) == read_in_full(path, monkeypatch)


def _cut_ledger(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


def _cut_and_grow_ledger(path: Path) -> None:
    """Cut to a whole line in the middle, then longer than before: other bytes at the end."""
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\n", len(data) // 2) + 1])
    write(path, history(400, start=600))


def _edit_ledger(path: Path) -> None:
    """One record in the middle edited in place: same length, still a valid record."""
    data = path.read_bytes()
    middle = data.index(b'"status":"created"', len(data) // 2)
    path.write_bytes(data[:middle] + b'"status":"deleted"' + data[middle + 18 :])


def _replace_ledger(path: Path) -> None:
    """Another ledger, longer than the one the index was saved for."""
    path.unlink()
    write(path, history(700, start=1))


def _flip_a_byte(path: Path) -> None:
    index = index_file.index_path(path)
    data = bytearray(index.read_bytes())
    data[len(data) - 100] ^= 0x55
    index.write_bytes(bytes(data))


def _cut_index(path: Path) -> None:
    index = index_file.index_path(path)
    index.write_bytes(index.read_bytes()[:-1000])


def _other_format(path: Path) -> None:
    index = index_file.index_path(path)
    data = index.read_bytes()
    index.write_bytes(data.replace(b'"format":1', b'"format":9', 1))


@pytest.mark.parametrize(
    "damage",
    [
        _cut_ledger,
        _cut_and_grow_ledger,
        _edit_ledger,
        _replace_ledger,
        _flip_a_byte,
        _cut_index,
        _other_format,
        lambda path: index_file.index_path(path).write_bytes(b""),
        lambda path: index_file.index_path(path).write_bytes(b"not an index at all\n" * 10),
    ],
    ids=[
        "ledger-cut",
        "ledger-cut-and-grown",
        "ledger-edited",
        "ledger-replaced",
        "byte-flipped",
        "index-cut",
        "format",
        "empty",
        "junk",
    ],
)
def test_an_index_that_does_not_fit_its_ledger_is_not_used(
    path: Path, monkeypatch: pytest.MonkeyPatch, damage: Callable[[Path], None]
) -> None:
    write(path, history(600))  # longer than the two 64 KiB ends the cheap check reads
    saved(path)
    damage(path)
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 0
        answers = contents(ledger.index)
    assert answers == read_in_full(path, monkeypatch)


def test_closing_saves_the_index_of_a_big_ledger_when_much_of_it_is_not_saved(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 100)
    index = index_file.index_path(path)
    write(path, history(90))
    assert not index.exists()  # too small to be worth it
    write(path, history(30, start=90))
    assert index.exists()
    saved_once = index.read_bytes()
    write(path, history(10, start=120))
    assert index.read_bytes() == saved_once  # 10 records more are cheap to parse
    with open_ledger(path, dry_run=True) as ledger:
        ledger.index.get(LANE, "n1")
    assert index.read_bytes() == saved_once  # a dry run writes nothing
    write(path, history(40, start=130))
    assert index.read_bytes() != saved_once
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == ledger.index.records == 170
        assert contents(ledger.index) == read_in_full(path, monkeypatch)


@pytest.mark.parametrize("where", ["rename", "polars"])
def test_an_index_that_cannot_be_saved_is_not_an_error(
    path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 10)

    def full_disk(*args: object, **kwargs: object) -> None:
        if where == "polars":
            raise pl.exceptions.ComputeError("No space left on device (os error 28)")
        raise OSError(28, "No space left on device")

    if where == "polars":
        monkeypatch.setattr(pl.DataFrame, "write_ipc", full_disk)
    else:
        monkeypatch.setattr(os, "replace", full_disk)
    write(path, history(50))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left
    with open_ledger(path, dry_run=True) as ledger:
        assert len(ledger.index) > 0


async def test_a_resume_from_a_saved_index_sends_nothing_settled_and_the_rest(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 50)
    rows = tenants(200)
    path = write_csv(tmp_path / "t.csv", rows)
    first = await provision(path, settings(emulator))
    assert first.counts["created"] == 200
    ledger = Settings().ledger_path(path)
    assert index_file.index_path(ledger).exists()
    calls = emulator.stats()["calls"]["CreateConfigurationSet"]

    rows[5]["TlsPolicy"] = "REQUIRE" if rows[5]["TlsPolicy"] == "OPTIONAL" else "OPTIONAL"
    write_csv(path, rows + tenants(20, start=200))
    second = await provision(path, settings(emulator))

    assert second.skipped == 200
    assert second.drift == 1
    assert second.this_run == {"created": 20}
    assert emulator.stats()["calls"]["CreateConfigurationSet"] == calls + 20


def test_a_run_that_finds_much_of_a_big_ledger_unsaved_saves_the_index_as_it_opens(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(path, history(150))  # under the default threshold: no index
    assert not index_file.index_path(path).exists()
    monkeypatch.setattr(index_file, "MIN_RECORDS", 100)
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 0
    assert not index_file.index_path(path).exists()  # a dry run writes nothing
    with open_ledger(path) as ledger:
        # Saved before anything is sent: a run killed from here on still finds it.
        saved_at_open = index_file.index_path(path).read_bytes()
        expected = contents(ledger.index)
    assert index_file.index_path(path).read_bytes() == saved_at_open  # nothing new to save
    with open_ledger(path, dry_run=True) as reopened:
        assert reopened.index.image_records == 150
        assert contents(reopened.index) == expected


def test_names_are_kept_only_when_the_saved_index_leaves_much_of_the_ledger_out(
    path: Path,
) -> None:
    write(path, history(160))
    fd = os.open(path, os.O_RDONLY)
    try:
        found = scan(fd, path, keep_names=True, only_if_unsaved=True)
        assert found.index.image_records == 0 and found.index.names_kept  # nothing saved yet
        assert save_index(fd, path, found)
    finally:
        os.close(fd)
    write(path, history(5, start=160))  # a few records after the saved ones
    fd = os.open(path, os.O_RDONLY)
    try:
        found = scan(fd, path, keep_names=True, only_if_unsaved=True)
        assert found.index.image_records == 160 and not found.index.names_kept
        assert contents(found.index)["length"] == len({(str(o.lane), o.name) for o in history(165)})
        # Saving anyway reads the names it needs.
        assert save_index(fd, path, found)
    finally:
        os.close(fd)
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 165


def copy_as_killed(ledger: Path, end: int, into: Path) -> Path:
    """The ledger's first ``end`` bytes and its saved index, as a run killed now leaves them."""
    into.mkdir()
    copy = into / ledger.name
    with ledger.open("rb") as file:
        copy.write_bytes(file.read(end))
    shutil.copy(index_file.index_path(ledger), index_file.index_path(copy))
    return copy


def test_a_checkpoint_saves_what_is_written_so_far_as_closing_would(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 100)
    index = index_file.index_path(path)
    with open_ledger(path) as ledger:
        ledger.append_many(history(90))
        ledger.checkpoint()
        assert not index.exists()  # too small to be worth it
        ledger.append_many(history(40, start=90))
        ledger.checkpoint()
        killed = copy_as_killed(path, path.stat().st_size, path.parent / "killed")
        saved_once = index.read_bytes()
        ledger.append_many(history(10, start=130))
        ledger.checkpoint()
        assert index.read_bytes() == saved_once  # 10 records more are cheap to parse
    with open_ledger(killed, dry_run=True) as resumed:
        assert resumed.index.image_records == resumed.index.records == 130  # nothing parsed
        assert contents(resumed.index) == read_in_full(killed, monkeypatch)
    with open_ledger(path, dry_run=True) as ledger:
        ledger.checkpoint()  # a dry run writes nothing
        ledger.close()
        ledger.checkpoint()  # nor does a closed ledger
    assert index.read_bytes() == saved_once  # nor did closing: 10 more are cheap to parse


def test_checkpoints_in_a_thread_beside_the_appends_save_indexes_that_fit(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 20)
    stop = threading.Event()
    covered: list[int] = []

    def checkpoints(ledger: Ledger) -> None:
        reader = os.open(path, os.O_RDONLY)
        try:
            while not stop.is_set():
                ledger.checkpoint()
                loaded = index_file.load(reader, path, os.fstat(reader).st_size)
                if loaded is not None:  # valid for the ledger's prefix it names
                    covered.append(loaded.end)
        finally:
            os.close(reader)

    with open_ledger(path) as ledger:
        thread = threading.Thread(target=checkpoints, args=(ledger,))
        thread.start()
        try:
            for start in range(0, 3000, 7):
                ledger.append_many(history(7, start=start))
                time.sleep(0.001)  # the checkpoints take turns with the appends
        finally:
            stop.set()
            thread.join()
    assert len(set(covered)) > 3 and covered == sorted(covered)
    with open_ledger(path, dry_run=True) as reopened:
        assert reopened.index.records == 3003
        assert reopened.index.image_records >= 3003 * 7 / 8  # the rest is cheap to parse
        assert contents(reopened.index) == read_in_full(path, monkeypatch)


async def test_a_run_killed_after_a_checkpoint_resumes_from_its_saved_index(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 50)
    monkeypatch.setattr(bulk.engine.pipeline, "_CHECKPOINT_INTERVAL", 0.1)
    killed: list[Path] = []
    save = index_file.save

    def save_and_copy(
        fd: int, ledger: Path, image: IndexImage, end: int, runs: list[RunHeader]
    ) -> bool:
        saved = save(fd, ledger, image, end, runs)
        if saved and threading.current_thread() is not threading.main_thread():
            killed.append(copy_as_killed(ledger, end, tmp_path / f"killed-{len(killed)}"))
        return saved

    monkeypatch.setattr(index_file, "save", save_and_copy)
    path = write_csv(tmp_path / "t.csv", tenants(300))
    first = await provision(path, settings(emulator, rate=200))
    assert first.counts["created"] == 300

    assert killed, "no checkpoint during the run"
    copy = killed[0]
    settled = len(row_records(copy))
    assert 50 <= settled < 300
    target = Destination("pinpoint-email", "us-east-1", endpoint="emulator")
    with open_ledger(copy, dry_run=True, input_name="t.csv", target=target) as ledger:
        assert ledger.index.image_records == settled  # the resume parses nothing
    calls = emulator.stats()["calls"]["CreateConfigurationSet"]
    second = await provision(path, settings(emulator, ledger=copy))
    assert second.skipped == settled
    assert second.this_run == {"exists": 300 - settled}  # created by the killed run, unrecorded
    assert emulator.stats()["calls"]["CreateConfigurationSet"] == calls + 300 - settled


def test_a_save_removes_what_a_save_killed_midway_left(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 10)
    index = index_file.index_path(path)
    left = path.with_name(f".{index.name}.4242.tmp")  # a save by a process killed since
    others = [path.with_name(f".{index.name}.old.tmp"), path.with_name(f"{index.name}.4242.tmp")]
    for file in [left, *others]:
        file.write_bytes(b"bulk resume index\n")
    write(path, history(50))
    assert index.exists()
    assert not left.exists()
    assert all(other.exists() for other in others)  # not ours to remove
