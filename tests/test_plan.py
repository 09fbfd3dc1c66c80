"""Deciding rows on resume: unchanged rows skipped unread, every other row decided in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulk import provision
from bulk.emulator import Emulator
from bulk.engine.intake import row_fingerprints
from bulk.input.source import open_source
from bulk.input.validate import Validator
from bulk.ledger.reader import read_records
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


def _without_cells(line: str) -> str:
    """The record without its ``cells`` key (the last one the ledger writes)."""
    head, sep, _ = line.partition(',"cells":"')
    return head + "}" if sep else line
