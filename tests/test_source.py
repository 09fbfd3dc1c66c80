"""Reading input files: file-level and header checks, CSV cells, Parquet types, streaming, samples.

The CSV diagnostics (not CSV text, separators, ragged rows, quoting, bytes): test_csv_check.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulk.errors import InputError
from bulk.input.destinations import load_event_destinations
from bulk.input.source import Source, open_source
from bulk.input.validate import Validator
from bulk.models import Outcome, Row

HEADER = "ConfigurationSetName,SendingEnabled,TlsPolicy"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def write(tmp_path: Path, content: str | bytes, name: str = "tenants.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def input_error(path: Path, **kwargs: Any) -> str:
    """open_source + count: the one-line message of the InputError they raise."""
    with pytest.raises(InputError) as caught:
        open_source(path, **kwargs).count()
    message = str(caught.value)
    assert "\n" not in message
    return message


def cells(source: Source) -> list[tuple[int, dict[str, Any]]]:
    return [(record.number, dict(record.values)) for record in source.records()]


class TestOpenSource:
    def test_a_good_csv(self, tmp_path: Path) -> None:
        path = write(tmp_path, f"{HEADER}\ntenant-1,true,REQUIRE\n")
        source = open_source(path)
        assert (source.path, source.format, source.columns) == (
            path,
            "csv",
            ("ConfigurationSetName", "SendingEnabled", "TlsPolicy"),
        )
        assert source.count() == 1

    def test_missing_file(self, tmp_path: Path) -> None:
        message = input_error(tmp_path / "nope.csv")
        assert message == f"{tmp_path / 'nope.csv'}: no such file; check the path"

    def test_directory(self, tmp_path: Path) -> None:
        folder = tmp_path / "in.csv"
        folder.mkdir()
        assert "is a directory; give the path of a .csv or .parquet file" in input_error(folder)

    @pytest.mark.parametrize("name", ["tenants.xlsx", "tenants.txt", "tenants"])
    def test_wrong_extension(self, tmp_path: Path, name: str) -> None:
        message = input_error(write(tmp_path, f"{HEADER}\nt,1,\n", name))
        suffix = Path(name).suffix
        got = f"extension {suffix!r}" if suffix else "no extension"
        assert message.endswith(f": {got}; bulk reads .csv, .parquet or .pq files")

    def test_upper_case_extension_is_fine(self, tmp_path: Path) -> None:
        assert open_source(write(tmp_path, f"{HEADER}\nt,1,\n", "T.CSV")).format == "csv"

    def test_empty_file(self, tmp_path: Path) -> None:
        assert "the file is empty (0 bytes)" in input_error(write(tmp_path, b""))

    def test_header_only(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, f"{HEADER}\n"))
        assert message.endswith(
            "no data rows under the header; add one row per tenant under the header"
        )

    def test_header_and_blank_lines_only(self, tmp_path: Path) -> None:
        assert "no data rows" in input_error(write(tmp_path, f"{HEADER}\n\n,,\n  \n"))

    def test_standard_input_and_pipes(self, tmp_path: Path) -> None:
        assert input_error(Path("-")).startswith("-: standard input cannot be INPUT; bulk reads")
        fifo = tmp_path / "tenants.csv"
        os.mkfifo(fifo)
        assert "tenants.csv: is a pipe" in input_error(fifo)
        assert "/dev/null: is a character device" in input_error(Path("/dev/null"))

    def test_no_name_column(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, "SendingEnabled\ntrue\n"))
        assert "no ConfigurationSetName column; every row needs a name" in message

    def test_unknown_column_suggests_the_close_match(self, tmp_path: Path) -> None:
        path = write(tmp_path, "ConfigurationSetName,SendingEnabld\nt,true\n")
        message = input_error(path)
        assert message.startswith(
            f"unknown column 'SendingEnabld' in {path} (did you mean 'SendingEnabled'?); "
            "column names are the API's member names: ConfigurationSetName, "
        )
        assert message.endswith("tag:KEY")

    @pytest.mark.parametrize(
        ("column", "suggestion"),
        [
            ("sendingenabled", "SendingEnabled"),
            ("Tag:team", "tag:team"),
            ("tags:team", "tag:team"),
            ("tag_team", "tag:team"),
            ("TLSPolicy", "TlsPolicy"),
        ],
    )
    def test_suggestions(self, tmp_path: Path, column: str, suggestion: str) -> None:
        path = write(tmp_path, f"ConfigurationSetName,{column}\nt,x\n")
        assert f"(did you mean {suggestion!r}?)" in input_error(path)

    def test_unknown_column_without_a_close_match(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, "ConfigurationSetName,Colour\nt,red\n"))
        assert "unknown column 'Colour' in" in message
        assert "did you mean" not in message

    def test_duplicate_header(self, tmp_path: Path) -> None:
        path = write(tmp_path, "ConfigurationSetName,TlsPolicy,TlsPolicy\nt,REQUIRE,OPTIONAL\n")
        assert input_error(path) == (
            f"{path}: column 'TlsPolicy' appears twice in the header (columns 2 and 3); keep one"
        )

    def test_unnamed_column(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, "ConfigurationSetName,\nt,\n"))
        assert "column 2 of the header has no name; name it or delete the column" in message

    def test_bad_tag_key_in_header(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, "ConfigurationSetName,tag:aws:owner\nt,x\n"))
        assert "column 'tag:aws:owner': tag key 'aws:owner' starts with 'aws:'" in message

    def test_column_of_another_service(self, tmp_path: Path) -> None:
        path = write(tmp_path, "ConfigurationSetName,HttpsPolicy\nt,REQUIRE\n")
        message = input_error(path, service="pinpoint-email")
        assert message == (
            f"{path}: column 'HttpsPolicy' is not a pinpoint-email field (it is one of sesv2); "
            "remove the column or use --service sesv2"
        )
        assert open_source(path, service="sesv2").count() == 1
        assert open_source(path).count() == 1  # without a service: any service's columns

    def test_header_names_are_trimmed(self, tmp_path: Path) -> None:
        source = open_source(write(tmp_path, " ConfigurationSetName , TlsPolicy\nt,REQUIRE\n"))
        assert source.columns == ("ConfigurationSetName", "TlsPolicy")
        assert cells(source) == [(1, {"ConfigurationSetName": "t", "TlsPolicy": "REQUIRE"})]


class TestCsv:
    def test_bom_does_not_end_up_in_the_first_column(self, tmp_path: Path) -> None:
        source = open_source(write(tmp_path, b"\xef\xbb\xbfConfigurationSetName\r\nt-1\r\n"))
        assert source.columns == ("ConfigurationSetName",)
        assert cells(source) == [(1, {"ConfigurationSetName": "t-1"})]

    def test_crlf_line_ends_leave_no_carriage_returns(self, tmp_path: Path) -> None:
        path = write(tmp_path, f"{HEADER}\r\nt-1,true,REQUIRE\r\nt-2,false,\r\n")
        assert cells(open_source(path)) == [
            (1, {"ConfigurationSetName": "t-1", "SendingEnabled": "true", "TlsPolicy": "REQUIRE"}),
            (2, {"ConfigurationSetName": "t-2", "SendingEnabled": "false", "TlsPolicy": None}),
        ]

    def test_empty_and_blank_cells_are_not_set_and_cells_are_trimmed(self, tmp_path: Path) -> None:
        path = write(tmp_path, f'{HEADER}\n  t-1  ,   ,""\n')
        assert cells(open_source(path)) == [
            (1, {"ConfigurationSetName": "t-1", "SendingEnabled": None, "TlsPolicy": None})
        ]

    def test_quoted_cells_keep_commas_quotes_and_newlines(self, tmp_path: Path) -> None:
        path = write(tmp_path, 'ConfigurationSetName,tag:note\nt-1,"a, ""b""\nc"\nt-2,x\n')
        assert cells(open_source(path)) == [
            (1, {"ConfigurationSetName": "t-1", "tag:note": 'a, "b"\nc'}),
            (2, {"ConfigurationSetName": "t-2", "tag:note": "x"}),
        ]

    def test_blank_rows_are_skipped_but_keep_their_numbers(self, tmp_path: Path) -> None:
        path = write(tmp_path, f"{HEADER}\nt-1,,\n\n,,\nt-4,,\n\n")
        source = open_source(path)
        assert [number for number, _ in cells(source)] == [1, 4]
        assert source.count() == 2

    def test_no_final_newline(self, tmp_path: Path) -> None:
        assert open_source(write(tmp_path, f"{HEADER}\nt-1,,\nt-2,,")).count() == 2

    def test_damage_found_by_records_is_an_input_error_too(self, tmp_path: Path) -> None:
        rows = "".join(f"t-{n},,\n" for n in range(1, 50))
        path = write(tmp_path, f"{HEADER}\n{rows}".encode() + b"bad\xff,,\n")
        source = open_source(path, batch_size=10)
        with pytest.raises(InputError, match=r"not UTF-8 text: byte 0xff in row 50 \(line 51\)"):
            list(source.records())


class TestParquet:
    def test_native_types(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        stamp = datetime(2024, 5, 1, 12, tzinfo=UTC)
        pl.DataFrame(
            {
                "ConfigurationSetName": ["t-1", " t-2 "],
                "SendingEnabled": [True, None],
                "LastFreshStart": [stamp, None],
                "TlsPolicy": pl.Series(["REQUIRE", "  "], dtype=pl.Categorical),
                "tag:cost-center": [1001, 1002],
            }
        ).write_parquet(path)
        source = open_source(path)
        assert source.format == "parquet"
        assert cells(source) == [
            (
                1,
                {
                    "ConfigurationSetName": "t-1",
                    "SendingEnabled": True,
                    "LastFreshStart": stamp,
                    "TlsPolicy": "REQUIRE",
                    "tag:cost-center": 1001,
                },
            ),
            (
                2,
                {
                    "ConfigurationSetName": "t-2",
                    "SendingEnabled": None,
                    "LastFreshStart": None,
                    "TlsPolicy": None,
                    "tag:cost-center": 1002,
                },
            ),
        ]

    def test_pq_extension_and_epoch_integers(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.pq"
        pl.DataFrame({"ConfigurationSetName": ["t"], "LastFreshStart": [1714564800]}).write_parquet(
            path
        )
        [record] = open_source(path).records()
        result = Validator("pinpoint-email", region="us-east-1").validate(record)
        assert isinstance(result, Row)
        assert result.request["ReputationOptions"]["LastFreshStart"] == datetime(
            2024, 5, 1, 12, tzinfo=UTC
        )

    @pytest.mark.parametrize(
        ("column", "values", "dtype"),
        [
            ("SendingEnabled", [[True]], "List(Boolean)"),
            ("SendingEnabled", [{"on": True}], "Struct({'on': Boolean})"),
            ("LastFreshStart", [[1]], "List(Int64)"),
            ("ConfigurationSetName", [1.5], "Float64"),
            ("tag:team", [True], "Boolean"),
        ],
    )
    def test_wrong_types(self, tmp_path: Path, column: str, values: list[Any], dtype: str) -> None:
        path = tmp_path / "tenants.parquet"
        frame = {"ConfigurationSetName": ["t"], column: values}
        pl.DataFrame(frame).write_parquet(path)
        message = input_error(path)
        assert f"{path}: column {column!r} has type {dtype}; expected " in message
        assert message.endswith("; convert the column")

    def test_no_rows(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        pl.DataFrame(
            {"ConfigurationSetName": []}, schema={"ConfigurationSetName": pl.String}
        ).write_parquet(path)
        assert input_error(path).endswith("no data rows; add one row per tenant under the header")

    def test_not_parquet(self, tmp_path: Path) -> None:
        path = write(tmp_path, f"{HEADER}\nt,,\n", "tenants.parquet")
        message = input_error(path)
        assert "not a Parquet file (CSV text: no PAR1 marker at both ends" in message

    def test_truncated(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        pl.DataFrame({"ConfigurationSetName": ["t"] * 100}).write_parquet(path)
        path.write_bytes(path.read_bytes()[:-20])
        assert "not a Parquet file" in input_error(path)

    def test_corrupt_data_is_found_by_count(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        frame = pl.DataFrame(
            {"ConfigurationSetName": [f"t-{n}" for n in range(2000)], "SendingEnabled": True}
        )
        frame.write_parquet(path, compression="uncompressed", statistics=False)
        data = bytearray(path.read_bytes())
        data[100 : len(data) // 2] = b"\xff" * (len(data) // 2 - 100)
        path.write_bytes(bytes(data))
        source = open_source(path)  # the footer is intact: the header checks pass
        with pytest.raises(InputError, match=r"cannot read it as Parquet: .") as caught:
            source.count()
        assert "\n" not in str(caught.value)


class TestStreaming:
    def test_rows_in_order_across_batches(self, tmp_path: Path) -> None:
        rows = "".join(f"t-{n},{'yes' if n % 2 else 'no'},\n" for n in range(1, 24))
        source = open_source(write(tmp_path, f"{HEADER}\n{rows}"), batch_size=5)
        records = list(source.records())
        assert [record.number for record in records] == list(range(1, 24))
        assert [record.values["ConfigurationSetName"] for record in records] == [
            f"t-{n}" for n in range(1, 24)
        ]
        assert records[9].values["SendingEnabled"] == "no"
        assert source.count() == 23

    def test_blank_rows_at_batch_boundaries(self, tmp_path: Path) -> None:
        lines = [f"t-{n},," if n % 4 else ",," for n in range(1, 30)]
        source = open_source(write(tmp_path, HEADER + "\n" + "\n".join(lines) + "\n"), batch_size=4)
        expected = [n for n in range(1, 30) if n % 4]
        assert [record.number for record in source.records()] == expected
        assert source.count() == len(expected)

    def test_parquet_rows_in_order_across_batches(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        names = [f"t-{n}" if n % 5 else None for n in range(1, 42)]
        pl.DataFrame({"ConfigurationSetName": names, "SendingEnabled": [True] * 41}).write_parquet(
            path, row_group_size=8
        )
        source = open_source(path, batch_size=3)
        records = list(source.records())
        assert [record.number for record in records] == list(range(1, 42))
        assert records[4].values == {"ConfigurationSetName": None, "SendingEnabled": True}
        assert records[40].values["ConfigurationSetName"] == "t-41"
        assert source.count() == 41

    @pytest.mark.parametrize("name", ["tenants.csv", "tenants.parquet"])
    def test_records_can_be_read_again(self, name: str) -> None:
        source = open_source(SAMPLES / name, batch_size=64)
        first = [record.number for record in source.records()]
        assert first == [record.number for record in source.records()]

    @pytest.mark.parametrize("name", ["tenants.csv", "tenants.parquet"])
    def test_records_can_be_pulled_from_changing_threads(self, name: str) -> None:
        # The engine reads the next batch in whichever worker thread anyio gives it.
        records = open_source(SAMPLES / name, batch_size=16).records()
        numbers: list[int] = []

        def pull() -> None:
            numbers.extend(next(records).number for _ in range(37))

        for _ in range(10):
            thread = threading.Thread(target=pull)
            thread.start()
            thread.join()
        assert numbers == list(range(1, 371))


# The sample's deliberately invalid rows (see samples/make_samples.py).
SAMPLE_INVALID = {
    50: "InvalidName",
    120: "InvalidName",
    200: "InvalidBoolean",
    280: "InvalidEnum",
    360: "InvalidTimestamp",
    440: "DuplicateName",
}


class TestSamples:
    @pytest.mark.parametrize("name", ["tenants.csv", "tenants.parquet"])
    def test_samples(self, name: str) -> None:
        source = open_source(SAMPLES / name, service="pinpoint-email")
        assert source.count() == 500
        assert {"tag:team", "tag:env", "tag:cost-center", "LastFreshStart"} <= set(source.columns)
        check = Validator("pinpoint-email", region="us-east-1")
        results = [check.validate(record) for record in source.records()]
        bad = {r.row: r.code for r in results if isinstance(r, Outcome)}
        if name.endswith(".parquet"):
            # 'maybe' and 'last tuesday' have no native form: those cells are null there.
            expected = {n: c for n, c in SAMPLE_INVALID.items() if n not in (200, 360)}
        else:
            expected = SAMPLE_INVALID
        assert bad == expected

    def test_csv_and_parquet_give_the_same_requests(self) -> None:
        def digests(name: str) -> dict[int, str]:
            check = Validator("pinpoint-email", region="us-east-1")
            source = open_source(SAMPLES / name)
            return {
                r.number: r.digest
                for r in map(check.validate, source.records())
                if isinstance(r, Row)
            }

        csv_rows, parquet_rows = digests("tenants.csv"), digests("tenants.parquet")
        assert len(csv_rows) == 494
        assert {n: d for n, d in parquet_rows.items() if n in csv_rows} == csv_rows

    def test_samples_are_generated_deterministically(self, tmp_path: Path) -> None:
        subprocess.run(
            [sys.executable, str(SAMPLES / "make_samples.py"), "--out", str(tmp_path)],
            check=True,
            capture_output=True,
        )
        assert (tmp_path / "tenants.csv").read_bytes() == (SAMPLES / "tenants.csv").read_bytes()
        assert pl.read_parquet(tmp_path / "tenants.parquet").equals(
            pl.read_parquet(SAMPLES / "tenants.parquet")
        )


class TestSesSample:
    """samples/ses-tenants.csv, the SES v2 demo's file (see samples/make_ses_samples.py)."""

    def test_every_row_is_a_chain_and_two_are_invalid(self) -> None:
        source = open_source(SAMPLES / "ses-tenants.csv", service="sesv2")
        defaults = load_event_destinations(SAMPLES / "event-destinations.json", "sesv2")
        check = Validator("sesv2", region="us-east-1", default_destinations=defaults)
        results = [check.validate(record) for record in source.records()]
        bad = {r.row: r.code for r in results if isinstance(r, Outcome)}
        assert bad == {40: "InvalidEventDestinations", 80: "InvalidEnum"}
        rows = [r for r in results if isinstance(r, Row)]
        assert len(rows) == 118 and all(row.tenants for row in rows)
        shared = {tenant for row in rows for tenant in row.tenants}
        assert len(shared) < len(rows) / 4, "rows share their tenants"
        with_own = sum(len(row.destinations) == 2 for row in rows)
        without = sum(not row.destinations for row in rows)
        assert with_own and without, "cells of their own, and empty lists, beside the file's"

    def test_the_sample_is_generated_deterministically(self, tmp_path: Path) -> None:
        subprocess.run(
            [sys.executable, str(SAMPLES / "make_ses_samples.py"), "--out", str(tmp_path)],
            check=True,
            capture_output=True,
        )
        for name in ("ses-tenants.csv", "event-destinations.json"):
            assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes()


_MEMORY_PROBE = """
import resource, sys
from bulk.input.source import open_source
from bulk.input.validate import Validator
source = open_source(sys.argv[1])
rows = source.count()
check = Validator("pinpoint-email", region="us-east-1", expected_rows=rows)
for record in source.records():
    check.validate(record)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.soak
def test_memory_stays_flat_from_ten_thousand_to_a_million_rows(tmp_path: Path) -> None:
    def peak_mb(rows: int) -> int:
        path = tmp_path / f"t{rows}.csv"
        with path.open("w") as stream:
            stream.write(f"{HEADER},tag:team,LastFreshStart\n")
            for n in range(rows):
                stream.write(f"tenant-acme-corp-{n:07d},yes,REQUIRE,team{n % 7},{1714564800 + n}\n")
        probe = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        return int(probe.stdout.strip())

    small, large = peak_mb(10_000), peak_mb(1_000_000)
    assert large < 250
    # Flat but for the duplicate table (16 bytes a name): see bulk.input.names.FirstSeen.
    assert large <= small * 1.25, (small, large)


class TestNewColumns:
    """List, union, tenant and destination columns in the header and in Parquet; bulk_ ones."""

    def test_a_native_parquet_list(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        pl.DataFrame(
            {
                "ConfigurationSetName": ["a", "b", "c"],
                "SuppressedReasons": pl.Series(
                    [["BOUNCE", "COMPLAINT"], [], None], dtype=pl.List(pl.String)
                ),
            }
        ).write_parquet(path)
        records = list(open_source(path, service="sesv2").records())
        check = Validator("sesv2", region="us-east-1")
        results = [check.validate(record) for record in records]
        requests = [result.request for result in results if isinstance(result, Row)]
        assert requests == [
            {
                "ConfigurationSetName": "a",
                "SuppressionOptions": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
            },
            {"ConfigurationSetName": "b", "SuppressionOptions": {"SuppressedReasons": []}},
            {"ConfigurationSetName": "c"},  # null: not set
        ]

    def test_a_parquet_list_column_may_be_text_too(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        frame = {"ConfigurationSetName": ["a"], "SuppressedReasons": ["BOUNCE, complaint"]}
        pl.DataFrame(frame).write_parquet(path)
        [record] = open_source(path, service="sesv2").records()
        result = Validator("sesv2", region="us-east-1").validate(record)
        assert isinstance(result, Row)
        assert result.request["SuppressionOptions"] == {
            "SuppressedReasons": ["BOUNCE", "COMPLAINT"]
        }

    def test_a_list_of_the_wrong_items_is_a_file_error(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        pl.DataFrame({"ConfigurationSetName": ["a"], "SuppressedReasons": [[True]]}).write_parquet(
            path
        )
        assert input_error(path, service="sesv2") == (
            f"{path}: column 'SuppressedReasons' has type List(Boolean); expected a list of text "
            "(String) (or text: items separated by commas); convert the column"
        )

    def test_a_union_column_is_text(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        pl.DataFrame({"ConfigurationSetName": ["a"], "SigningScheme": [1.5]}).write_parquet(path)
        assert "column 'SigningScheme' has type Float64; expected text (String): the name of" in (
            input_error(path, service="sesv2")
        )

    def test_bulk_columns_are_ignored_in_the_header_and_their_types(self, tmp_path: Path) -> None:
        csv = write(tmp_path, "ConfigurationSetName,bulk_status,bulk_message,bulk_\nt,invalid,x,\n")
        assert open_source(csv, service="pinpoint-email").count() == 1
        path = tmp_path / "tenants.parquet"
        pl.DataFrame(
            {"ConfigurationSetName": ["t"], "bulk_status": [{"any": True}], "bulk_code": [1.5]}
        ).write_parquet(path)
        assert open_source(path, service="pinpoint-email").count() == 1

    def test_a_near_miss_of_a_new_column_is_named(self, tmp_path: Path) -> None:
        path = write(tmp_path, "ConfigurationSetName,SupressedReasons\nt,BOUNCE\n")
        message = input_error(path, service="sesv2")
        assert message.startswith(
            f"unknown column 'SupressedReasons' in {path} (did you mean 'SuppressedReasons'?); "
        )

    @pytest.mark.parametrize("column", ["SuppressedReasons", "SigningScheme", "ArchiveArn"])
    def test_a_sesv2_column_with_pinpoint_email_says_so(self, tmp_path: Path, column: str) -> None:
        path = write(tmp_path, f"ConfigurationSetName,{column}\nt,x\n")
        assert input_error(path, service="pinpoint-email") == (
            f"{path}: column {column!r} is not a pinpoint-email field (it is one of sesv2); "
            "remove the column or use --service sesv2"
        )
