"""Deciding rows on resume: unchanged rows skipped unread, every other row decided in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import bulk.ledger.index_file as index_file
from bulk import provision
from bulk.emulator import Emulator
from bulk.engine.intake import row_fingerprints
from bulk.input.source import open_source
from bulk.input.validate import Validator
from bulk.ledger.reader import read_records
from bulk.ledger.records import FINGERPRINTS
from tests.test_engine import settings, tenants, write_csv


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row numbers the validator is asked about, in order."""
    seen: list[int] = []
    real = Validator.validate

    def counting(self: Validator, record: Any) -> Any:
        seen.append(record.number)
        return real(self, record)

    monkeypatch.setattr(Validator, "validate", counting)
    return seen


def fingerprints(path: Path, validator: Validator) -> list[int]:
    source = open_source(path)
    salt = validator.fingerprint_salt(source.columns)
    found: list[int] = []
    for frame in source.frames():
        prints = row_fingerprints(frame, salt)
        assert prints is not None
        found += prints.to_list()
    return found


class TestFingerprints:
    def test_a_row_is_told_apart_by_its_number_its_cells_and_the_header(
        self, tmp_path: Path
    ) -> None:
        validator = Validator("pinpoint-email", region="us-east-1")
        rows = [{"ConfigurationSetName": "a", "TlsPolicy": "REQUIRE"}] * 2
        base = fingerprints(write_csv(tmp_path / "a.csv", rows), validator)
        assert base[0] != base[1]  # same cells, another row
        assert base == fingerprints(write_csv(tmp_path / "b.csv", rows), validator)

        # A cell boundary moved: "ab" + "" is not "a" + "b".
        moved = [{"ConfigurationSetName": "a", "TlsPolicy": "bREQUIRE"}] * 2
        assert fingerprints(write_csv(tmp_path / "c.csv", moved), validator)[0] != base[0]
        renamed = [{"ConfigurationSetName": "a", "tag:TlsPolicy": "REQUIRE"}] * 2
        assert fingerprints(write_csv(tmp_path / "d.csv", renamed), validator)[0] != base[0]
        elsewhere = Validator("pinpoint-email", region="eu-west-1")
        assert fingerprints(tmp_path / "a.csv", elsewhere)[0] != base[0]

    def test_a_fingerprint_is_xxhash64_of_the_rows_text_as_the_scheme_says(
        self, tmp_path: Path
    ) -> None:
        """The scheme named in every run header, pinned against a reference xxHash64: a
        fingerprint that changed with a package's version would make every resume slow."""
        assert FINGERPRINTS == "xxhash64-v1"
        assert xxh64(b"") == 0xEF46DB3751D8E999 and xxh64(b"abc") == 0x44BC2CF5AD770999
        validator = Validator("pinpoint-email", region="us-east-1")
        rows = [
            {"ConfigurationSetName": "café", "TlsPolicy": "REQUIRE"},
            {"ConfigurationSetName": "b" * 40, "TlsPolicy": ""},  # 32 bytes and more: stripes
        ]
        path = write_csv(tmp_path / "a.csv", rows)
        salt = validator.fingerprint_salt(open_source(path).columns)
        texts = [f"{salt}:1:5:café:7:REQUIRE", f"{salt}:2:40:{'b' * 40}:-:"]  # null: "-:"
        expected = [xxh64(text.encode(), seed=0x6275_6C6B) for text in texts]
        assert fingerprints(path, validator) == expected

    def test_parquet_native_values_are_fingerprinted(self, tmp_path: Path) -> None:
        path = tmp_path / "t.parquet"
        pl.DataFrame(
            {"ConfigurationSetName": ["a", "b"], "SendingEnabled": [True, None]}
        ).write_parquet(path)
        prints = fingerprints(path, Validator("sesv2", region="us-east-1"))
        assert len(set(prints)) == 2


class TestResume:
    async def test_unchanged_rows_are_skipped_without_being_validated(
        self, tmp_path: Path, emulator: Emulator, validations: list[int]
    ) -> None:
        path = write_csv(tmp_path / "t.csv", tenants(300))
        first = await provision(path, settings(emulator))
        assert first.this_run == {"created": 300}
        assert all(
            "cells" in r for r in read_records(Path(f"{path}.ledger.jsonl")) if "status" in r
        )
        validations.clear()

        second = await provision(path, settings(emulator))

        assert second.skipped == 300 and second.this_run == {} and second.exit_code == 0
        assert validations == []
        assert emulator.stats()["calls"]["CreateConfigurationSet"] == 300

    async def test_edited_rows_take_the_full_path_and_drift_is_still_reported(
        self, tmp_path: Path, emulator: Emulator, validations: list[int]
    ) -> None:
        rows = tenants(50)
        path = write_csv(tmp_path / "t.csv", rows)
        await provision(path, settings(emulator))
        validations.clear()

        rows[7]["TlsPolicy"] = "REQUIRE" if rows[7]["TlsPolicy"] == "OPTIONAL" else "OPTIONAL"
        rows.append({"ConfigurationSetName": "tenant-new"})
        write_csv(path, rows)
        second = await provision(path, settings(emulator))

        assert validations == [8, 51]  # the edited row and the new one, nothing else
        assert second.drift == 1 and "tenant-00007" in second.drift_examples[0]
        assert second.this_run == {"created": 1}
        assert second.skipped == 50

    async def test_a_row_an_earlier_edit_made_a_duplicate_is_recorded_invalid(
        self, tmp_path: Path, emulator: Emulator
    ) -> None:
        rows = tenants(10)
        path = write_csv(tmp_path / "t.csv", rows)
        await provision(path, settings(emulator))

        rows[2]["ConfigurationSetName"] = rows[6]["ConfigurationSetName"]  # row 3 takes row 7's
        write_csv(path, rows)
        second = await provision(path, settings(emulator))

        latest = {r["row"]: r for r in read_records(Path(f"{path}.ledger.jsonl")) if "row" in r}
        assert latest[7]["status"] == "invalid" and latest[7]["code"] == "DuplicateName"
        assert "duplicates row 3" in latest[7]["message"]
        assert second.this_run == {"invalid": 1}

    async def test_a_new_row_with_the_name_of_an_unchanged_row_is_its_duplicate(
        self, tmp_path: Path, emulator: Emulator, validations: list[int]
    ) -> None:
        rows = tenants(10)
        path = write_csv(tmp_path / "t.csv", rows)
        await provision(path, settings(emulator))
        validations.clear()

        rows.append({"ConfigurationSetName": rows[1]["ConfigurationSetName"]})  # row 2's name
        write_csv(path, rows)
        second = await provision(path, settings(emulator))

        assert validations == [11]  # rows 1-10 skipped unread, their names still noted
        latest = {r["row"]: r for r in read_records(Path(f"{path}.ledger.jsonl")) if "row" in r}
        assert latest[11]["code"] == "DuplicateName" and "duplicates row 2" in latest[11]["message"]
        assert second.this_run == {"invalid": 1} and second.skipped == 10

    async def test_a_ledger_without_fingerprints_still_resumes(
        self, tmp_path: Path, emulator: Emulator, validations: list[int]
    ) -> None:
        path = write_csv(tmp_path / "t.csv", tenants(20))
        await provision(path, settings(emulator))
        ledger = Path(f"{path}.ledger.jsonl")
        # A ledger written before rows carried fingerprints: the same records, no "cells".
        old = ledger.read_text().splitlines()
        ledger.write_text("".join(_without_cells(line) + "\n" for line in old))
        validations.clear()

        second = await provision(path, settings(emulator))

        assert second.skipped == 20 and second.this_run == {}
        assert sorted(validations) == list(range(1, 21))
        assert emulator.stats()["calls"]["CreateConfigurationSet"] == 20
        assert second.notes == ()  # the ledger's runs are of this scheme: nothing to explain
        validations.clear()

        third = await provision(path, settings(emulator))  # the rows were restated with theirs

        assert third.skipped == 20 and third.this_run == {} and validations == []

    @pytest.mark.parametrize("header", ["another scheme", "no scheme"])
    async def test_a_ledger_fingerprinted_with_another_scheme_is_validated_once_then_fast(
        self,
        tmp_path: Path,
        emulator: Emulator,
        validations: list[int],
        monkeypatch: pytest.MonkeyPatch,
        header: str,
    ) -> None:
        monkeypatch.setattr(index_file, "MIN_RECORDS", 50)  # with the saved index, too
        path = write_csv(tmp_path / "t.csv", tenants(300))
        await provision(path, settings(emulator))
        ledger = Path(f"{path}.ledger.jsonl")
        # As an earlier bulk wrote it: its run header names another scheme, or none (polars'
        # own hash, not stable across polars versions). Its "cells" are left as they are: that
        # they would match is no reason to trust them.
        ours = f'"fingerprints":"{FINGERPRINTS}",'
        theirs = '"fingerprints":"polars-hash",' if header == "another scheme" else ""
        assert ledger.read_text().count(ours) == 1
        ledger.write_text(ledger.read_text().replace(ours, theirs))
        calls = emulator.stats()["calls"]["CreateConfigurationSet"]
        dry = await provision(path, settings(emulator, dry_run=True))
        assert dry.skipped == 300 and dry.would_send == 0
        assert len(dry.notes) == 1 and dry.notes[0].endswith("a run records their new fingerprints")
        assert not any(r.get("restated") for r in read_records(ledger))  # a dry run writes none
        validations.clear()

        second = await provision(path, settings(emulator))

        assert second.skipped == 300 and second.this_run == {} and second.exit_code == 0
        assert sorted(validations) == list(range(1, 301))  # the full path, every row once
        assert emulator.stats()["calls"]["CreateConfigurationSet"] == calls  # nothing sent
        [note] = second.notes
        assert note.startswith("this ledger's row fingerprints were made with another scheme")
        restated = [r for r in read_records(ledger) if r.get("restated")]
        assert len(restated) == 300
        assert all(r["status"] == "created" and r["attempts"] == 0 for r in restated)
        validations.clear()

        third = await provision(path, settings(emulator))

        assert third.skipped == 300 and third.this_run == {} and third.notes == ()
        assert validations == []  # every row skipped unread again
        assert len([r for r in read_records(ledger) if r.get("restated")]) == 300
        assert emulator.stats()["calls"]["CreateConfigurationSet"] == calls


def _without_cells(line: str) -> str:
    """The record without its ``cells`` key (the last one the ledger writes)."""
    head, sep, _ = line.partition(',"cells":"')
    return head + "}" if sep else line


_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5, _M = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5, (1 << 64) - 1


def xxh64(data: bytes, seed: int = 0) -> int:
    """xxHash64 as its specification gives it: a reference to pin polars-hash's against."""

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (64 - r))) & _M

    def round_(acc: int, lane: int) -> int:
        return rotl((acc + lane * _P2) & _M, 31) * _P1 & _M

    def lane(at: int, size: int = 8) -> int:
        return int.from_bytes(data[at : at + size], "little")

    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed, (seed - _P1) & _M]
        while i + 32 <= n:
            v = [round_(acc, lane(i + 8 * k)) for k, acc in enumerate(v)]
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & _M
        for acc in v:
            h = ((h ^ round_(0, acc)) * _P1 + _P4) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        h = (rotl(h ^ round_(0, lane(i)), 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (lane(i, 4) * _P1 & _M), 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h = rotl(h ^ (data[i] * _P5 & _M), 11) * _P1 & _M
        i += 1
    h = (h ^ (h >> 33)) * _P2 & _M
    h = (h ^ (h >> 29)) * _P3 & _M
    return h ^ (h >> 32)
