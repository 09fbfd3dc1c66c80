"""`bulk export`'s OUTPUT (bulk.live.output): checks, read-back by provision, resume, atomicity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulk.errors import UsageError
from bulk.input.source import open_source
from bulk.live.cells import CellValue, csv_text
from bulk.live.output import ExportFile

SERVICE = "sesv2"
IDENTITY: dict[str, Any] = {"service": SERVICE, "regions": ["us-east-1"], "profile": None}
EAST, WEST = "us-east-1", "eu-west-1"

# Cells that CSV quoting and type handling could break, as `bulk.live.cells` types them.
TRICKY: list[dict[str, CellValue]] = [
    {
        "ConfigurationSetName": "commas-and-quotes",
        "Region": EAST,
        "CustomRedirectDomain": 'a, b "quoted", c',
        "SendingEnabled": True,
        "ReputationMetricsEnabled": False,
        "MaxDeliverySeconds": 300,
        "SuppressedReasons": ["BOUNCE", "COMPLAINT"],
        "EventDestinations": json.dumps(
            [{"Name": "d, 1", "Enabled": True, "MatchingEventTypes": ["SEND", "BOUNCE"]}]
        ),
        "tag:Team": 'say "hi", then\nleave\r\nfor good',
        "TenantName": "t1,t2",
        "LastFreshStart": "2024-05-01T12:00:00Z",
    },
    {
        "ConfigurationSetName": "empty-list-and-missing",
        "Region": EAST,
        "SendingEnabled": False,
        "MaxDeliverySeconds": 0,
        "SuppressedReasons": [],
        "tag:Team": "ünïcødé ✓",
    },
    {"ConfigurationSetName": "name-only", "Region": EAST},
]


def open_export(path: Path, *, force: bool = False, **identity: Any) -> ExportFile:
    return ExportFile.open(path, service=SERVICE, identity={**IDENTITY, **identity}, force=force)


def record(name: str, region: str = EAST, **cells: CellValue) -> dict[str, CellValue]:
    return {"ConfigurationSetName": name, "Region": region, **cells}


def refusal(path: Path, *, force: bool = False) -> str:
    """The one-line UsageError message `ExportFile.open` refuses ``path`` with."""
    with pytest.raises(UsageError) as caught:
        open_export(path, force=force)
    message = str(caught.value)
    assert "\n" not in message
    return message


def read_back(path: Path) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """OUTPUT as provision reads it: its columns and each row's cells (row number dropped)."""
    source = open_source(path, service=SERVICE)
    rows = [
        dict(zip(source.columns, row[1:], strict=True)) for f in source.frames() for row in f.rows()
    ]
    assert source.count() == len(rows)
    return source.columns, rows


def partial_of(path: Path) -> Path:
    return path.with_name(path.name + ".partial.jsonl")


class TestOpen:
    @pytest.mark.parametrize("name", ["sets.xlsx", "sets", "sets.pq", "sets.csv.gz"])
    def test_only_csv_and_parquet_are_written(self, tmp_path: Path, name: str) -> None:
        path = tmp_path / name
        message = refusal(path)
        assert repr(str(path)) in message
        assert ".csv or .parquet" in message
        assert not partial_of(path).exists()

    @pytest.mark.parametrize("name", ["sets.CSV", "sets.Parquet"])
    def test_the_extension_is_read_in_any_case(self, tmp_path: Path, name: str) -> None:
        with open_export(tmp_path / name) as export:
            export.append([record("a")])
            assert export.finish(with_region=False) == 1
        assert (tmp_path / name).exists()

    def test_the_parent_directory_must_exist(self, tmp_path: Path) -> None:
        path = tmp_path / "missing" / "sets.csv"
        message = refusal(path)
        assert repr(str(path)) in message
        assert f"no directory {str(path.parent)!r}" in message

    def test_an_existing_output_needs_force(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        path.write_text("old\n")
        message = refusal(path)
        assert repr(str(path)) in message
        assert "already exists; use --force to replace it" in message
        assert not partial_of(path).exists()

    def test_a_directory_is_refused_even_with_force(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        path.mkdir()
        message = refusal(path, force=True)
        assert repr(str(path)) in message
        assert "is a directory" in message

    @pytest.mark.parametrize(
        "content",
        [b"", b"ConfigurationSetName\na\n", b'{"some": "json"}\n', b'{"bulk_export": 1'],
        ids=["empty", "csv", "other-json", "no-newline"],
    )
    def test_a_partial_file_that_is_not_ours_is_refused(
        self, tmp_path: Path, content: bytes
    ) -> None:
        path = tmp_path / "sets.csv"
        partial_of(path).write_bytes(content)
        message = refusal(path)
        assert repr(str(partial_of(path))) in message
        assert "not a partial export" in message
        assert "move or delete it" in message
        assert partial_of(path).read_bytes() == content  # left as it was


class TestReadBack:
    """What `finish` writes, read back exactly as `bulk provision` reads its input."""

    def test_csv_cells_read_back_as_written(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        with open_export(path) as export:
            export.append(TRICKY)
            assert export.finish(with_region=True) == len(TRICKY)
        columns, rows = read_back(path)
        assert columns[0] == "ConfigurationSetName"
        assert columns[-1] == "Region"
        assert set(columns) == {name for each in TRICKY for name in each}
        by_name = {row["ConfigurationSetName"]: row for row in rows}
        for each in TRICKY:
            expected = {name: csv_text(each[name]) if name in each else None for name in columns}
            assert by_name[each["ConfigurationSetName"]] == expected
        # Spelled out, the cells a broken quoting or type mapping would change first:
        first = by_name["commas-and-quotes"]
        assert first["tag:Team"] == 'say "hi", then\nleave\r\nfor good'
        assert json.loads(first["EventDestinations"])[0]["Name"] == "d, 1"
        assert (first["SendingEnabled"], first["ReputationMetricsEnabled"]) == ("true", "false")
        assert first["SuppressedReasons"] == "BOUNCE,COMPLAINT"
        second = by_name["empty-list-and-missing"]
        assert (second["SuppressedReasons"], second["MaxDeliverySeconds"]) == ("[]", "0")
        assert second["CustomRedirectDomain"] is None

    def test_parquet_cells_read_back_with_native_types(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.parquet"
        with open_export(path) as export:
            export.append(TRICKY)
            assert export.finish(with_region=True) == len(TRICKY)
        columns, rows = read_back(path)
        by_name = {row["ConfigurationSetName"]: row for row in rows}
        for each in TRICKY:
            expected = {name: each.get(name) for name in columns}
            assert by_name[each["ConfigurationSetName"]] == expected
        schema = pl.read_parquet_schema(path)
        assert schema["SendingEnabled"] == pl.Boolean
        assert schema["MaxDeliverySeconds"] == pl.Int64
        assert schema["SuppressedReasons"] == pl.List(pl.String)
        assert schema["tag:Team"] == pl.String
        # The empty list stays a list, distinct from a missing cell.
        assert by_name["empty-list-and-missing"]["SuppressedReasons"] == []
        assert by_name["name-only"]["SuppressedReasons"] is None

    def test_a_parquet_column_s_dtype_follows_its_values(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.parquet"
        with open_export(path) as export:
            export.append(
                [
                    record("a", b=True, f=1.5, i=1, mixed=True, n=1, s="x", v=["p"]),
                    record("b", b=False, f=2, mixed="text", n=2.5, v=[]),
                ]
            )
            export.finish(with_region=False)
        frame = pl.read_parquet(path)
        assert dict(frame.schema) == {
            "ConfigurationSetName": pl.String,
            "b": pl.Boolean,
            "f": pl.Float64,
            "i": pl.Int64,
            "mixed": pl.String,  # values of two types: as CSV would hold them
            "n": pl.Float64,
            "s": pl.String,
            "v": pl.List(pl.String),
        }
        assert frame["mixed"].to_list() == ["true", "text"]
        assert frame["n"].to_list() == [1.0, 2.5]

    @pytest.mark.parametrize("suffix", [".csv", ".parquet"])
    def test_rows_are_sorted_and_the_last_record_of_a_set_wins(
        self, tmp_path: Path, suffix: str
    ) -> None:
        path = tmp_path / f"sets{suffix}"
        with open_export(path) as export:
            export.append([record("b", WEST), record("b", EAST, SendingPoolName="old")])
            export.append([record("a", WEST), record("b", EAST, SendingPoolName="new")])
            assert export.finish(with_region=True) == 3
        _, rows = read_back(path)
        assert [
            (row["Region"], row["ConfigurationSetName"], row["SendingPoolName"]) for row in rows
        ] == [
            (WEST, "a", None),
            (WEST, "b", None),
            (EAST, "b", "new"),
        ]

    @pytest.mark.parametrize("suffix", [".csv", ".parquet"])
    def test_region_is_written_only_when_asked(self, tmp_path: Path, suffix: str) -> None:
        path = tmp_path / f"sets{suffix}"
        with open_export(path) as export:
            export.append([record("a", SendingPoolName="p")])
            export.finish(with_region=False)
        columns, _ = read_back(path)
        assert columns == ("ConfigurationSetName", "SendingPoolName")


class TestEmptyAccount:
    @pytest.mark.parametrize(
        ("with_region", "header"),
        [(False, "ConfigurationSetName\n"), (True, "ConfigurationSetName,Region\n")],
    )
    def test_csv_is_the_header_alone(self, tmp_path: Path, with_region: bool, header: str) -> None:
        path = tmp_path / "sets.csv"
        with open_export(path) as export:
            assert export.finish(with_region=with_region) == 0
        assert path.read_text(encoding="utf-8") == header

    @pytest.mark.parametrize("with_region", [False, True])
    def test_parquet_has_the_string_columns_and_no_rows(
        self, tmp_path: Path, with_region: bool
    ) -> None:
        path = tmp_path / "sets.parquet"
        with open_export(path) as export:
            assert export.finish(with_region=with_region) == 0
        frame = pl.read_parquet(path)
        expected: dict[str, Any] = {"ConfigurationSetName": pl.String} | (
            {"Region": pl.String} if with_region else {}
        )
        assert (dict(frame.schema), frame.height) == (expected, 0)


class TestWholeOrNothing:
    @pytest.mark.parametrize("suffix", [".csv", ".parquet"])
    def test_output_appears_only_at_finish_and_the_partial_goes(
        self, tmp_path: Path, suffix: str
    ) -> None:
        path = tmp_path / f"sets{suffix}"
        with open_export(path) as export:
            export.append([record("a")])
            assert sorted(os.listdir(tmp_path)) == [partial_of(path).name]
            export.finish(with_region=False)
        assert sorted(os.listdir(tmp_path)) == [path.name]  # no partial, no temporary file

    def test_force_keeps_the_old_output_until_finish(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        path.write_text("ConfigurationSetName\nold\n")
        with open_export(path, force=True) as export:
            export.append([record("new")])
            assert path.read_text() == "ConfigurationSetName\nold\n"
            export.finish(with_region=False)
        assert path.read_text() == "ConfigurationSetName\nnew\n"

    def test_leaving_before_finish_keeps_the_partial_and_writes_no_output(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "sets.csv"
        with pytest.raises(KeyboardInterrupt), open_export(path) as export:
            export.append([record("a")])
            raise KeyboardInterrupt
        assert not path.exists()
        assert b'"a"' in partial_of(path).read_bytes()
        with pytest.raises(ValueError, match="closed"):
            export.append([record("b")])


class TestAppend:
    def test_a_record_without_region_or_name_is_refused_before_writing(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "sets.csv"
        with open_export(path) as export:
            export.append([record("a")])
            before = partial_of(path).read_bytes()
            with pytest.raises(KeyError):
                export.append([record("b"), {"ConfigurationSetName": "c"}])
            with pytest.raises(ValueError, match="not text"):
                export.append([record("b", Region=7)])
            assert partial_of(path).read_bytes() == before
            export.append([record("d")])
        with open_export(path) as export:
            assert export.done(EAST) == frozenset({"a", "d"})


class TestResume:
    def test_the_same_export_resumes_from_what_it_read(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        with open_export(path, regions=(EAST, WEST)) as export:
            export.append([record("a"), record("b"), record("c", WEST)])
            assert export.done(EAST) == {"a", "b"}
        # The same arguments (a tuple of Regions then, a list now) resume.
        with open_export(path, regions=[EAST, WEST]) as export:
            assert export.notes == [f"{str(partial_of(path))!r}: resuming (3 sets already read)"]
            assert (export.done(EAST), export.done(WEST), export.done("ap-south-1")) == (
                frozenset({"a", "b"}),
                frozenset({"c"}),
                frozenset(),
            )
            export.append([record("d", WEST)])
            assert export.done(WEST) == {"c", "d"}
            assert export.finish(with_region=True) == 4
        _, rows = read_back(path)
        assert [row["ConfigurationSetName"] for row in rows] == ["c", "d", "a", "b"]

    def test_a_new_export_has_no_notes_and_nothing_done(self, tmp_path: Path) -> None:
        with open_export(tmp_path / "sets.csv") as export:
            assert (export.notes, export.done(EAST)) == ([], frozenset())

    def test_a_torn_last_line_is_ignored_and_cut_off(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.parquet"
        header = {"bulk_export": 1, "service": SERVICE, "identity": IDENTITY}
        good = [json.dumps(header), json.dumps(record("a")), json.dumps(record("b", WEST))]
        torn = json.dumps(record("c"))[:25]
        partial_of(path).write_text("\n".join(good) + "\n" + torn, encoding="utf-8")
        with open_export(path) as export:
            assert (export.done(EAST), export.done(WEST)) == (frozenset("a"), frozenset("b"))
            assert partial_of(path).read_text(encoding="utf-8") == "\n".join(good) + "\n"
            export.append([record("c")])
            assert export.finish(with_region=True) == 3
        _, rows = read_back(path)
        assert [row["ConfigurationSetName"] for row in rows] == ["b", "a", "c"]

    def test_damaged_lines_are_dropped_with_a_note(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        with open_export(path) as export:
            export.append([record("a")])
        with partial_of(path).open("ab") as file:  # what a crash of the machine can leave
            file.write(b"\x00\x00\x00\n" + json.dumps(record("b")).encode() + b"\n")
        with open_export(path) as export:
            assert export.done(EAST) == {"a"}
            assert export.notes[0] == (
                f"{str(partial_of(path))!r}: dropped 2 damaged lines from line 3 on; "
                "those sets are read again"
            )

    def test_another_identity_replaces_the_partial_with_a_note(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        with open_export(path) as export:
            export.append([record("a")])
        with open_export(path, regions=[WEST], profile="other") as export:
            assert export.notes == [
                f"{str(partial_of(path))!r}: left by an export with other arguments "
                "(profile, regions); starting over"
            ]
            assert export.done(EAST) == frozenset()
            export.append([record("z", WEST)])
            export.finish(with_region=False)
        _, rows = read_back(path)
        assert [row["ConfigurationSetName"] for row in rows] == ["z"]

    def test_another_service_replaces_the_partial(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        with open_export(path) as export:
            export.append([record("a")])
        other = ExportFile.open(path, service="pinpoint-email", identity=IDENTITY, force=False)
        with other:
            assert "(service)" in other.notes[0]
            assert other.done(EAST) == frozenset()

    def test_a_kill_loses_at_most_the_line_being_written(self, tmp_path: Path) -> None:
        path = tmp_path / "sets.csv"
        # Batches of ~2 KB: without its flush, `append` would leave them in the file's buffer.
        script = textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from bulk.live.output import ExportFile
            export = ExportFile.open(
                Path({str(path)!r}), service={SERVICE!r}, identity={IDENTITY!r}, force=False
            )
            for batch in range(10**9):
                export.append(
                    [{{"ConfigurationSetName": f"s{{batch}}-{{i}}", "Region": {EAST!r},
                       "EventDestinations": "x" * 50}} for i in range(20)]
                )
                print(batch, flush=True)
            """
        )
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        for _ in range(50):  # at least 50 batches appended and flushed before the kill
            reported = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        child.wait()
        with open_export(path) as export:
            done = export.done(EAST)
            # Every batch reported as appended is there, whole; nothing else is torn.
            assert {f"s{b}-{i}" for b in range(reported + 1) for i in range(20)} <= done
            assert not any("damaged" in note for note in export.notes)
            assert export.finish(with_region=False) == len(done)


def test_cells_of_every_type_survive_the_partial_file(tmp_path: Path) -> None:
    """The partial file is JSON: what was appended is what `finish` writes, type for type."""
    path = tmp_path / "sets.parquet"
    cells: Mapping[str, CellValue] = {"b": True, "i": -7, "f": 0.1, "s": 'é\n"', "l": ["x", "y"]}
    with open_export(path) as export:
        export.append([{**record("a"), **cells}])
    with open_export(path) as export:
        export.finish(with_region=False)
    row = pl.read_parquet(path).row(0, named=True)
    assert row == {"ConfigurationSetName": "a", **cells}
