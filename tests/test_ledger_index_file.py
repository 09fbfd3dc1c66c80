"""The resume index saved beside a ledger (bulk.ledger.index_file): same answers as the ledger,
or not used at all."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import threading
import time
import zlib
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
from bulk.ledger.reader import read_records, scan
from bulk.ledger.records import RunHeader
from bulk.ledger.rules import carries_ambiguity
from bulk.ledger.writer import Ledger, save_index
from bulk.models import Destination, Lane, Outcome, Status
from tests.test_engine import settings, tenants, write_csv

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


def _other_format(path: Path) -> None:
    """The index a later bulk saved, in a format of its own."""
    index = index_file.index_path(path)
    data = index.read_bytes()
    index.write_bytes(data.replace(index_file.MAGIC, b"bulk resume index 9\n", 1))


def _format_1(path: Path) -> None:
    """What bulk saved before the format was numbered (its footer was 16 bytes)."""
    index = index_file.index_path(path)
    index.write_bytes(b"bulk resume index\n" + bytes(64) + b'{"format":1}' + bytes(16))


def _footer(data: bytes) -> tuple[int, int, int]:
    """The header's offset, length and CRC-32, from the last 24 bytes of an index."""
    return tuple(int.from_bytes(data[i : i + 8], "little") for i in (-24, -16, -8))  # type: ignore[return-value]


def header_of(path: Path) -> dict[str, Any]:
    data = index_file.index_path(path).read_bytes()
    at, length, _ = _footer(data)
    header: dict[str, Any] = json.loads(data[at : at + length])
    return header


Change = Callable[[dict[str, Any]], Any]


def rewrite_header(path: Path, change: Change, *, sign: bool) -> None:
    """Change the index's header in place (``change`` edits it, or returns what replaces it):
    ``sign``ed, its CRC-32 made to match (as a writer of wrong values would), else left as it
    was (as a careless edit leaves it)."""
    index = index_file.index_path(path)
    data = index.read_bytes()
    at, length, crc = _footer(data)
    header = json.loads(data[at : at + length])
    header = change(header) or header
    encoded = json.dumps(header, separators=(",", ":")).encode()
    footer = (at, len(encoded), zlib.crc32(encoded) if sign else crc)
    index.write_bytes(data[:at] + encoded + b"".join(n.to_bytes(8, "little") for n in footer))


def _signed(change: Change) -> Callable[[Path], None]:
    return lambda path: rewrite_header(path, change, sign=True)


def _set(key: str, value: Any) -> Change:
    return lambda header: header.__setitem__(key, value)


def _flip_a_header_byte(path: Path) -> None:
    index = index_file.index_path(path)
    data = bytearray(index.read_bytes())
    data[len(data) - 100] ^= 0x55  # in the header: its CRC-32 no longer matches
    index.write_bytes(bytes(data))


def flip_a_section_byte(path: Path, section: str = "meta") -> None:
    index = index_file.index_path(path)
    offset, size, _ = header_of(path)["sections"][section]
    data = bytearray(index.read_bytes())
    data[offset + size // 2] ^= 0x01
    index.write_bytes(bytes(data))


def cut_index(path: Path) -> None:
    index = index_file.index_path(path)
    index.write_bytes(index.read_bytes()[:-1000])  # the footer and the end of the header gone


def garbage_in_index(path: Path, at: int | None = None) -> None:
    """4 KiB of it (its middle, or from ``at``) overwritten with random bytes, as a bad copy
    leaves it."""
    index = index_file.index_path(path)
    data = bytearray(index.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at : at + 4096] = random.Random(7).randbytes(4096)
    index.write_bytes(bytes(data))


def header_value_made_a_list(path: Path) -> None:
    """The issue's case: one of the header's objects became a list, its CRC-32 made to match."""
    rewrite_header(path, _set("odd", [["2", "odd digest"]]), sign=True)


def _an_ipc_panic(*args: Any, **kwargs: Any) -> Any:
    raise pl.exceptions.PanicException("polars panicked reading the frame")


UNFIT: dict[str, Callable[[Path], None]] = {
    "ledger-cut": _cut_ledger,
    "ledger-cut-and-grown": _cut_and_grow_ledger,
    "ledger-edited": _edit_ledger,
    "ledger-replaced": _replace_ledger,
    "other-format": _other_format,
    "format-1": _format_1,
    "other-fingerprint-scheme": _signed(_set("fingerprints", "polars-hash-1.0")),
    "other-byte-order": _signed(
        _set("byteorder", "big" if sys.byteorder == "little" else "little")
    ),
    "index-deleted": lambda path: index_file.index_path(path).unlink(),
}

DAMAGED: dict[str, Callable[[Path], None]] = {
    "header-byte-flipped": _flip_a_header_byte,
    "header-edited-carelessly": lambda path: rewrite_header(path, _set("odd", []), sign=False),
    "header-value-made-a-list": header_value_made_a_list,
    **{
        f"header-{key}-of-wrong-type": _signed(_set(key, value))
        for key, value in [
            ("rates", [["x", 1.0]]),
            ("invalid_rows", []),
            ("counts", [1, 2]),
            ("codes", {"0": None}),
            ("lanes", {"0": "sesv2/default/eu-west-1"}),
            ("ledger", [1, "probe"]),
            ("meta", []),
            ("sections", []),
            ("records", "600"),
            ("width", -1),
            ("current_scheme", "yes"),
            ("format", "2"),
            ("length", None),
        ]
    },
    "header-key-missing": _signed(lambda header: header.pop("lanes") and None),
    "header-emptied": _signed(lambda header: header.clear()),
    "header-not-an-object": _signed(lambda header: [header]),
    "header-run-malformed": _signed(lambda header: header["meta"].__setitem__("runs", [[1, 2]])),
    "header-odd-position-out-of-range": _signed(
        lambda header: header["odd"].__setitem__("100000", "x")
    ),
    "header-rates-not-finite": _signed(
        lambda header: header["rates"].__setitem__("x", float("inf"))
    ),
    "header-records-off-by-one": _signed(
        lambda header: header.__setitem__("records", header["records"] + 1)
    ),
    "section-beyond-the-file": _signed(
        lambda header: header["sections"].__setitem__("meta", [10**12, 2400, 0])
    ),
    "section-overlapping-the-header": _signed(
        lambda header: header["sections"]["entries"].__setitem__(1, 10**9)
    ),
    "section-byte-flipped": flip_a_section_byte,
    "entries-byte-flipped": lambda path: flip_a_section_byte(path, "entries"),
    "index-cut": cut_index,
    "garbage": garbage_in_index,
    "garbage-over-the-sections": lambda path: garbage_in_index(path, at=len(index_file.MAGIC)),
    "empty": lambda path: index_file.index_path(path).write_bytes(b""),
    "junk": lambda path: index_file.index_path(path).write_bytes(b"not an index at all\n" * 10),
}


@pytest.mark.parametrize("damage", list(UNFIT.values()), ids=list(UNFIT))
def test_an_index_that_does_not_fit_its_ledger_is_not_used_and_not_worth_a_note(
    path: Path, monkeypatch: pytest.MonkeyPatch, damage: Callable[[Path], None]
) -> None:
    write(path, history(600))  # longer than the two 64 KiB ends the cheap check reads
    saved(path)
    damage(path)
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 0
        assert ledger.notes == []  # an index for other bytes or another version: no damage
        answers = contents(ledger.index)
    assert answers == read_in_full(path, monkeypatch)


@pytest.mark.parametrize("damage", list(DAMAGED.values()), ids=list(DAMAGED))
def test_a_damaged_index_is_ignored_with_one_note_and_saved_again(
    path: Path, monkeypatch: pytest.MonkeyPatch, damage: Callable[[Path], None]
) -> None:
    monkeypatch.setattr(index_file, "MIN_RECORDS", 100)
    write(path, history(600))
    assert index_file.index_path(path).is_file()
    damage(path)
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 0
        [note] = ledger.notes
        assert f"resume index {index_file.index_path(path)} is damaged (" in note
        assert note.endswith("and was ignored: the ledger was read in full")
        answers = contents(ledger.index)
    assert answers == read_in_full(path, monkeypatch)

    with open_ledger(path) as ledger:  # a run: the index is saved again as the ledger opens
        [note] = ledger.notes
        assert note.endswith("the ledger was read in full, and the index written again")
    with open_ledger(path, dry_run=True) as ledger:
        assert ledger.index.image_records == 600 and ledger.notes == []
        assert contents(ledger.index) == answers


def test_a_panic_while_loading_the_index_is_damage_not_a_crash(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(path, history(300))
    saved(path)
    expected = read_in_full(path, monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(index_file, "_runs", _an_ipc_panic)  # a BaseException, not an Exception
        fd = os.open(path, os.O_RDONLY)
        try:
            loaded = index_file.load(fd, path, path.stat().st_size)
        finally:
            os.close(fd)
        assert isinstance(loaded, index_file.Damaged)
        assert loaded.reason == "cannot be read (PanicException)"
        with open_ledger(path, dry_run=True) as ledger:
            assert len(ledger.notes) == 1 and contents(ledger.index) == expected
    with monkeypatch.context() as patch:
        patch.setattr(pl, "read_ipc", _an_ipc_panic)
        with open_ledger(path, dry_run=True) as ledger:
            [note] = ledger.notes
            assert "(its fingerprint table cannot be read)" in note
            assert contents(ledger.index) == expected


def test_every_value_of_a_saved_header_is_checked(path: Path) -> None:
    """The shape check knows every key :func:`index_file.save` writes: a new key without a
    check would let a wrong value through to the run."""
    write(path, history(300))
    saved(path)
    header = header_of(path)
    for key in header:
        if key in ("format",):
            continue
        broken = dict(header, **{key: object()})
        assert index_file._shape(broken, 1 << 40) is not None, key


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
                assert not isinstance(loaded, index_file.Damaged)  # old or new, never torn
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
    records = [r for r in read_records(copy) if r.get("kind") in (None, "intent")]
    settled = {r["name"] for r in records if "status" in r}
    in_flight = {r["name"] for r in records if r.get("kind") == "intent"} - settled
    assert 25 <= len(settled) < 300 and len(records) >= 50
    target = Destination("pinpoint-email", "us-east-1", endpoint="emulator")
    with open_ledger(copy, dry_run=True, input_name="t.csv", target=target) as ledger:
        assert ledger.index.image_records == len(records)  # the resume parses nothing
    calls = emulator.stats()["calls"]["CreateConfigurationSet"]
    second = await provision(path, settings(emulator, ledger=copy))
    assert second.skipped == len(settled)
    # Created by the killed run, unrecorded: its own where its intent line made the copy.
    unrecorded = 300 - len(settled) - len(in_flight)
    expected = {"created": len(in_flight), "exists": unrecorded}
    assert second.this_run == {status: n for status, n in expected.items() if n}
    # Every name left is live: the resume's listing finds them all, and creates none.
    assert emulator.stats()["calls"]["CreateConfigurationSet"] == calls


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
