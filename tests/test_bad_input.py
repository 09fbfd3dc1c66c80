"""A catalogue of bad input, each case with the exit code and the line a user sees.

File-level problems stop the run before anything is sent: exit 2, exactly one line on stderr
starting ``bulk: error:``, no traceback, no ledger written, no call made (not even the
pre-flight: the file is read to its end before the service is touched). Row-level problems
make that row ``invalid`` in the ledger, with a code and a message naming the column and the
value, and the other rows are created. Most cases run the command line in this process with
click's runner; a few run it as a real subprocess.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import os
import shlex
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulk.emulator import Emulator, EmulatorConfig, threaded_emulator

from .conftest import ACCESS_KEY, REGION
from .torture import bulk_command, cli, latest_by_row, one_line_error, run_bulk, write_csv

SCOPE = (ACCESS_KEY, REGION)
HEADER = b"ConfigurationSetName,TlsPolicy,tag:team\n"
GOOD = b"acme,REQUIRE,blue\nglobex,OPTIONAL,red\n"


@pytest.fixture
def served() -> Iterator[Emulator]:
    """An unthrottled emulator served from a thread, as the command line's target."""
    with threaded_emulator(EmulatorConfig(rate=0)) as emulator:
        yield emulator


def provision(path: Path, emulator: Emulator, *more: str) -> Any:
    return cli("provision", path, "--endpoint-url", emulator.url, "--rate", "0", *more)


def assert_nothing_happened(path: Path, emulator: Emulator) -> None:
    assert emulator.stats()["calls"] == {}, "a call was made"
    assert not Path(f"{path}.ledger.jsonl").exists(), "a ledger was written"


def parquet(path: Path, columns: dict[str, Any], schema: dict[str, Any] | None = None) -> bytes:
    pl.DataFrame(columns, schema=schema).write_parquet(path)
    return path.read_bytes()


def big_csv(rows: int, last: bytes) -> bytes:
    """``rows`` good rows and ``last`` as the very last line."""
    body = b"".join(b"tenant-%06d,REQUIRE,blue\n" % i for i in range(rows - 1))
    return HEADER + body + last


# -- file-level problems -----------------------------------------------------------------------

Maker = Callable[[Path], bytes | None]


def content(data: bytes) -> Maker:
    return lambda _: data


def directory(path: Path) -> None:
    path.mkdir()


def parquet_content(columns: dict[str, Any], schema: dict[str, Any] | None = None) -> Maker:
    def make(path: Path) -> bytes:
        scratch = path.with_name("scratch.parquet")
        data = parquet(scratch, columns, schema)
        scratch.unlink()
        return data

    return make


def fifo(path: Path) -> None:
    os.mkfifo(path)


def gzipped_parquet(path: Path) -> bytes:
    scratch = path.with_name("scratch.parquet")
    data = parquet(scratch, {"ConfigurationSetName": ["acme"]})
    scratch.unlink()
    return gzip.compress(data)


def truncated_parquet(path: Path) -> bytes:
    scratch = path.with_name("scratch.parquet")
    data = parquet(scratch, {"ConfigurationSetName": [f"t{i}" for i in range(100)]})
    scratch.unlink()
    return data[: len(data) // 2]


FILE_ERRORS: list[tuple[str, str, Maker | None, str]] = [
    ("missing", "tenants.csv", None, "tenants.csv: no such file; check the path"),
    ("empty", "tenants.csv", content(b""), "the file is empty (0 bytes)"),
    ("directory", "tenants.csv", directory, "is a directory; give the path of a .csv"),
    (
        "binary",
        "tenants.csv",
        content(bytes(range(256)) * 8),
        "binary data (NUL bytes) near the start; this is not CSV text",
    ),
    (
        "excel-named-csv",
        "tenants.csv",
        content(b"PK\x03\x04\x14\x00" + b"\x00" * 64),
        "this is a ZIP archive (an Excel workbook?), not CSV text; export it as CSV",
    ),
    (
        "utf16",
        "tenants.csv",
        content(codecs.BOM_UTF16_LE + (HEADER + GOOD).decode().encode("utf-16-le")),
        "the file is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8)",
    ),
    (
        "xlsx-extension",
        "tenants.xlsx",
        content(HEADER + GOOD),
        "tenants.xlsx: extension '.xlsx'; bulk reads .csv, .parquet or .pq files",
    ),
    ("txt-extension", "tenants.txt", content(HEADER + GOOD), "extension '.txt'"),
    ("no-extension", "tenants", content(HEADER + GOOD), "tenants: no extension; bulk reads"),
    (
        "ragged-long",
        "tenants.csv",
        content(HEADER + GOOD + b"initech,REQUIRE,blue,extra\n"),
        "row 3 has 4 cells but the header has 3 columns; quote cells that contain commas",
    ),
    (
        "ragged-short",
        "tenants.csv",
        content(HEADER + GOOD + b"initech,REQUIRE\n"),
        "row 3 has 2 cells but the header has 3 columns; add the missing commas",
    ),
    (
        "bad-quoting",
        "tenants.csv",
        content(HEADER + GOOD + b'"initech"x,REQUIRE,blue\n'),
        "row 3: bad quoting (text after a closing '\"')",
    ),
    (
        "unclosed-quote",
        "tenants.csv",
        content(HEADER + GOOD + b'initech,"REQUIRE,blue\n'),
        "row 3: a quoted cell is never closed",
    ),
    (
        "not-utf8",
        "tenants.csv",
        content(HEADER + GOOD + b"caf\xe9,REQUIRE,blue\n"),
        "not UTF-8 text: byte 0xe9 in row 3 (line 4); save it as UTF-8",
    ),
    (
        "latin1-header",
        "tenants.csv",
        content(b"ConfigurationSetName,tag:\xe9quipe\n" + b"acme,x\n"),
        "not UTF-8 text: byte 0xe9 in the header (line 1)",
    ),
    (
        "header-only",
        "tenants.csv",
        content(HEADER),
        "no data rows under the header; add one row per tenant under the header",
    ),
    ("blank-rows-only", "tenants.csv", content(HEADER + b",,\n\n  ,  ,\n"), "no data rows"),
    (
        "duplicate-header",
        "tenants.csv",
        content(b"ConfigurationSetName,TlsPolicy,TlsPolicy\nacme,REQUIRE,OPTIONAL\n"),
        "column 'TlsPolicy' appears twice in the header (columns 2 and 3); keep one",
    ),
    (
        "unnamed-column",
        "tenants.csv",
        content(b"ConfigurationSetName,,TlsPolicy\nacme,x,REQUIRE\n"),
        "column 2 of the header has no name; name it or delete the column",
    ),
    (
        "unknown-column",
        "tenants.csv",
        content(b"ConfigurationSetName,SendingEnabld\nacme,true\n"),
        "unknown column 'SendingEnabld' in ",
    ),
    (
        "no-name-column",
        "tenants.csv",
        content(b"TlsPolicy\nREQUIRE\n"),
        "no ConfigurationSetName column; every row needs a name",
    ),
    (
        "sesv2-column-for-pinpoint",
        "tenants.csv",
        content(b"ConfigurationSetName,HttpsPolicy\nacme,REQUIRE\n"),
        "column 'HttpsPolicy' is not a pinpoint-email field (it is one of sesv2)",
    ),
    (
        "sesv2-list-column-for-pinpoint",
        "tenants.csv",
        content(b"ConfigurationSetName,SuppressedReasons\nacme,BOUNCE\n"),
        "column 'SuppressedReasons' is not a pinpoint-email field (it is one of sesv2); remove "
        "the column or use --service sesv2",
    ),
    (
        "tenant-name-for-pinpoint",
        "tenants.csv",
        content(b"ConfigurationSetName,TenantName\nacme,tenant-a\n"),
        "column 'TenantName': Pinpoint Email has no tenants; use --service sesv2, or drop the "
        "column",
    ),
    (
        "parquet-event-destinations-as-a-struct",
        "tenants.parquet",
        parquet_content({"ConfigurationSetName": ["acme"], "EventDestinations": [{"Name": "a"}]}),
        "column 'EventDestinations' has type Struct({'Name': String}); expected JSON text",
    ),
    (
        "tag-key-too-long",
        "tenants.csv",
        content(b"ConfigurationSetName,tag:" + b"k" * 129 + b"\nacme,x\n"),
        "is 129 characters; a tag key is at most 128; rename the column",
    ),
    (
        "tag-key-reserved",
        "tenants.csv",
        content(b"ConfigurationSetName,tag:aws:team\nacme,x\n"),
        "tag key 'aws:team' starts with 'aws:', which AWS reserves",
    ),
    (
        "tag-key-bad-character",
        "tenants.csv",
        content(b"ConfigurationSetName,tag:te#am\nacme,x\n"),
        "tag key 'te#am' contains '#'",
    ),
    (
        "parquet-boolean-as-float",
        "tenants.parquet",
        parquet_content({"ConfigurationSetName": ["acme"], "SendingEnabled": [1.5]}),
        "column 'SendingEnabled' has type Float64; expected Boolean",
    ),
    (
        "parquet-name-as-list",
        "tenants.parquet",
        parquet_content({"ConfigurationSetName": [["acme", "globex"]]}),
        "column 'ConfigurationSetName' has type List(String); expected text (String)",
    ),
    (
        "parquet-timestamp-as-boolean",
        "tenants.parquet",
        parquet_content({"ConfigurationSetName": ["acme"], "LastFreshStart": [True]}),
        "column 'LastFreshStart' has type Boolean; expected Datetime, Date, epoch seconds",
    ),
    (
        "parquet-no-rows",
        "tenants.parquet",
        parquet_content({"ConfigurationSetName": []}, {"ConfigurationSetName": pl.String}),
        "no data rows",
    ),
    ("parquet-truncated", "tenants.parquet", truncated_parquet, "tenants.parquet: "),
    (
        "csv-named-parquet",
        "tenants.parquet",
        content(HEADER + GOOD),
        "not a Parquet file (CSV text: no PAR1 marker at both ends",
    ),
    (
        "parquet-named-csv",
        "tenants.csv",
        parquet_content({"ConfigurationSetName": ["acme"]}),
        "this is a Parquet file, not CSV text; rename it to .parquet",
    ),
    (
        "gzip",
        "tenants.csv",
        content(gzip.compress(HEADER + GOOD)),
        "the file is gzip-compressed, not CSV text; decompress it first (gunzip -c tenants.csv",
    ),
    (
        "bzip2",
        "tenants.csv",
        content(bz2.compress(HEADER + GOOD)),
        "the file is bzip2-compressed, not CSV text; decompress it first (bunzip2 -c",
    ),
    (
        "xz",
        "tenants.csv",
        content(lzma.compress(HEADER + GOOD)),
        "the file is xz-compressed, not CSV text; decompress it first (unxz -c",
    ),
    (
        "gz-extension",
        "tenants.csv.gz",
        content(gzip.compress(HEADER + GOOD)),
        "tenants.csv.gz: the file is gzip-compressed (extension '.gz'); decompress it first "
        "(gunzip tenants.csv.gz) and pass the .csv or .parquet file",
    ),
    (
        "gzipped-parquet",
        "tenants.parquet",
        gzipped_parquet,
        "the file is gzip-compressed, not Parquet; decompress it first (gunzip -c",
    ),
    (
        "tab-separated",
        "tenants.csv",
        content((HEADER + GOOD).replace(b",", b"\t")),
        "the header reads as one column, 'ConfigurationSetName\\tTlsPolicy\\ttag:team': the "
        "file looks tab-separated; bulk reads comma-separated CSV: save it as CSV with commas",
    ),
    (
        "semicolon-separated",
        "tenants.csv",
        content((HEADER + GOOD).replace(b",", b";")),
        "the file looks semicolon-separated; bulk reads comma-separated CSV: save it as CSV "
        "with commas",
    ),
    (
        "comment-line",
        "tenants.csv",
        content(b'# tenants for "phase 2", exported today\n' + HEADER + GOOD),
        "line 1 is a comment, '# tenants for \"phase 2\", exported today'; comment lines are "
        "not allowed: the first line must be the header (ConfigurationSetName,...)",
    ),
    (
        "fifo",
        "tenants.csv",
        fifo,
        "tenants.csv: is a pipe (standard input or <(...) process substitution?); bulk reads "
        "INPUT twice (to count the rows, then to send them), so it must be a regular file; "
        "save the data to a file first",
    ),
    (
        "large-file-ragged-last-row",
        "tenants.csv",
        content(big_csv(50_000, b"last,REQUIRE,blue,extra\n")),
        "row 50000 has 4 cells but the header has 3 columns",
    ),
    (
        "large-file-undecodable-last-row",
        "tenants.csv",
        content(big_csv(50_000, b"l\xffst,REQUIRE,blue\n")),
        "not UTF-8 text: byte 0xff in row 50000 (line 50001)",
    ),
]


class TestFileLevel:
    @pytest.mark.parametrize(
        ("name", "make", "expect"),
        [case[1:] for case in FILE_ERRORS],
        ids=[case[0] for case in FILE_ERRORS],
    )
    def test_exit_2_one_line_no_ledger_no_call(
        self, tmp_path: Path, served: Emulator, name: str, make: Maker | None, expect: str
    ) -> None:
        path = tmp_path / name
        if make is not None:
            data = make(path)
            if data is not None:
                path.write_bytes(data)
        result = provision(path, served)
        assert result.exit_code == 2, result.output
        assert expect in one_line_error(result.stderr)
        assert result.stdout == ""
        assert_nothing_happened(path, served)

    def test_an_unknown_column_names_the_closest_known_one(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = tmp_path / "tenants.csv"
        path.write_bytes(b"ConfigurationSetName,tlspolicy\nacme,REQUIRE\n")
        result = provision(path, served)
        assert result.exit_code == 2
        line = one_line_error(result.stderr)
        assert line.startswith(f"bulk: error: unknown column 'tlspolicy' in {path} ")
        assert "(did you mean 'TlsPolicy'?)" in line
        assert_nothing_happened(path, served)

    def test_a_bad_option_is_a_usage_error(self, tmp_path: Path, served: Emulator) -> None:
        path = tmp_path / "tenants.csv"
        path.write_bytes(HEADER + GOOD)
        result = provision(path, served, "--burst", "0")
        assert result.exit_code == 2
        assert one_line_error(result.stderr) == "bulk: error: --burst 0 must be at least 1"
        assert_nothing_happened(path, served)

    def test_standard_input_is_refused(
        self, tmp_path: Path, served: Emulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        result = provision(Path("-"), served)
        assert result.exit_code == 2, result.output
        assert one_line_error(result.stderr) == (
            "bulk: error: -: standard input cannot be INPUT; bulk reads INPUT twice (to count "
            "the rows, then to send them), so it must be a regular file; save the data to a "
            "file first and pass its path"
        )
        assert_nothing_happened(tmp_path / "-", served)

    def test_a_device_is_refused(self, tmp_path: Path, served: Emulator) -> None:
        result = cli(
            "provision", "/dev/null", "--endpoint-url", served.url, "--ledger", tmp_path / "l"
        )
        assert result.exit_code == 2, result.output
        assert "/dev/null: is a character device; bulk reads INPUT twice" in one_line_error(
            result.stderr
        )
        assert served.stats()["calls"] == {}
        assert not (tmp_path / "l").exists()

    def test_process_substitution_is_refused_as_a_subprocess(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        (tmp_path / "tenants.csv").write_bytes(HEADER + GOOD)
        command = shlex.join(bulk_command("provision"))
        script = f"{command} <(cat tenants.csv) --endpoint-url {shlex.quote(served.url)}"
        result = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr
        line = one_line_error(result.stderr)
        assert ": is a pipe (standard input or <(...) process substitution?); bulk reads" in line
        assert result.stdout == ""
        assert served.stats()["calls"] == {}
        assert sorted(os.listdir(tmp_path)) == ["tenants.csv"]

    @pytest.mark.parametrize(
        ("ledger", "expect"),
        [
            ("input", "is the input file itself; the ledger must be a file of its own"),
            ("hard-link", "is the input file itself"),
            ("symlink", "is the input file itself"),
            ("/dev/null", "ledger /dev/null is a device, not a regular file; bulk appends"),
            ("directory", "is a directory, not a regular file"),
            ("fifo", "is a pipe (FIFO), not a regular file"),
        ],
    )
    def test_a_ledger_that_cannot_be_one_is_refused_before_any_call(
        self, tmp_path: Path, served: Emulator, ledger: str, expect: str
    ) -> None:
        path = tmp_path / "tenants.csv"
        path.write_bytes(HEADER + GOOD)
        where = tmp_path / ledger
        if ledger == "input":
            where = path
        elif ledger == "hard-link":
            os.link(path, where)
        elif ledger == "symlink":
            where.symlink_to(path)
        elif ledger == "directory":
            where.mkdir()
        elif ledger == "fifo":
            os.mkfifo(where)
        else:
            where = Path(ledger)
        for _ in range(2):  # not once, not on any later run either
            result = provision(path, served, "--ledger", str(where))
            assert result.exit_code == 2, result.output
            line = one_line_error(result.stderr)
            assert line.startswith("bulk: error: ") and expect in line
            assert "pass --ledger" in line
        assert path.read_bytes() == HEADER + GOOD  # the input file is untouched
        assert_nothing_happened(path, served)

    @pytest.mark.parametrize(
        ("name", "data", "expect"),
        [
            ("missing.csv", None, "missing.csv: no such file; check the path"),
            (
                "big.csv",
                big_csv(50_000, b"last,REQUIRE,blue,extra\n"),
                "row 50000 has 4 cells but the header has 3 columns",
            ),
            (
                "latin1.csv",
                HEADER + GOOD + b"caf\xe9,REQUIRE,blue\n",
                "not UTF-8 text: byte 0xe9 in row 3 (line 4)",
            ),
        ],
        ids=["missing", "large-ragged-last-row", "not-utf8"],
    )
    def test_as_a_subprocess(
        self, tmp_path: Path, served: Emulator, name: str, data: bytes | None, expect: str
    ) -> None:
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        result = run_bulk("provision", path, "--endpoint-url", served.url, cwd=tmp_path)
        assert result.returncode == 2
        assert expect in one_line_error(result.stderr)
        assert result.stdout == ""
        assert_nothing_happened(path, served)


# -- files that must work ----------------------------------------------------------------------


class TestQuirksThatWork:
    @pytest.mark.parametrize(
        ("bom", "newline"),
        [(True, b"\n"), (False, b"\r\n"), (True, b"\r\n")],
        ids=["bom", "crlf", "bom-and-crlf"],
    )
    def test_a_bom_and_crlf_line_ends_are_read_as_plain_utf8(
        self, tmp_path: Path, served: Emulator, bom: bool, newline: bytes
    ) -> None:
        lines = [
            "ConfigurationSetName,SendingPoolName,tag:team",
            "acme,pool-a,blue",
            'globex,"pool, b",red green',
            "café-not-a-name,pool-a,blue",
        ]
        data = newline.join(line.encode() for line in lines) + newline
        path = tmp_path / "tenants.csv"
        path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)

        result = provision(path, served)

        assert result.exit_code == 1, result.output  # the third row's name is invalid
        assert served.state.names(SCOPE) == ["acme", "globex"]
        acme = served.state.get(SCOPE, "acme")
        globex = served.state.get(SCOPE, "globex")
        assert acme is not None and globex is not None
        # No BOM glued to the first column, no carriage return left on the last.
        assert acme["DeliveryOptions"] == {"SendingPoolName": "pool-a"}
        assert acme["Tags"] == [{"Key": "team", "Value": "blue"}]
        assert globex["DeliveryOptions"] == {"SendingPoolName": "pool, b"}
        assert globex["Tags"] == [{"Key": "team", "Value": "red green"}]
        latest = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert latest[3]["status"] == "invalid" and latest[3]["code"] == "InvalidName"

    def test_upper_case_extension_quoted_newlines_and_a_missing_final_newline(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = tmp_path / "TENANTS.CSV"
        path.write_bytes(b'ConfigurationSetName,SendingPoolName\nacme,"two\nlines"\nglobex,x')
        result = provision(path, served)
        assert result.exit_code == 0, result.output
        assert served.state.names(SCOPE) == ["acme", "globex"]
        acme = served.state.get(SCOPE, "acme")
        assert acme is not None
        assert acme["DeliveryOptions"] == {"SendingPoolName": "two\nlines"}

    def test_a_report_files_bulk_columns_are_ignored(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        # `bulk report -o` adds them; the file, fixed in a spreadsheet, is provisioned as it is.
        path = tmp_path / "fixed.csv"
        path.write_bytes(
            b"ConfigurationSetName,TlsPolicy,bulk_status,bulk_code,bulk_message\n"
            b"acme,REQUIRE,invalid,InvalidEnum,\"column TlsPolicy: 'SOMETIMES' is not one of\"\n"
        )
        result = provision(path, served)
        assert result.exit_code == 0, result.output
        acme = served.state.get(SCOPE, "acme")
        assert acme is not None
        assert acme["DeliveryOptions"] == {"TlsPolicy": "REQUIRE"}


# -- row-level problems ------------------------------------------------------------------------

# (case, column values for one row, expected code, expected part of the message)
ROW_ERRORS: list[tuple[str, dict[str, str], str, str]] = [
    (
        "name-too-long",
        {"ConfigurationSetName": "n" * 65},
        "InvalidName",
        "is 65 characters long; a name is 1-64 characters of A-Z a-z 0-9 _ -",
    ),
    (
        "name-with-space",
        {"ConfigurationSetName": "acme corp"},
        "InvalidName",
        "'acme corp' contains ' '",
    ),
    (
        "name-with-dot-and-slash",
        {"ConfigurationSetName": "acme.io/x"},
        "InvalidName",
        "contains '.', '/'",
    ),
    (
        "name-not-ascii",
        {"ConfigurationSetName": "café"},
        "InvalidName",
        "contains 'é'",
    ),
    (
        "name-empty",
        {"ConfigurationSetName": "", "tag:team": "nameless"},
        "MissingName",
        "column ConfigurationSetName is empty; every row needs a name",
    ),
    (
        "name-duplicated",
        {"ConfigurationSetName": "good-0000", "tag:team": "copy"},
        "DuplicateName",
        "'good-0000' duplicates row 1 (the first row with a name wins)",
    ),
    (
        "boolean",
        {"SendingEnabled": "maybe"},
        "InvalidBoolean",
        "column SendingEnabled: 'maybe' is not a boolean (use true/false, 1/0, yes/no)",
    ),
    (
        "boolean-yes-please",
        {"ReputationMetricsEnabled": "yes please"},
        "InvalidBoolean",
        "column ReputationMetricsEnabled: 'yes please' is not a boolean",
    ),
    (
        "timestamp-words",
        {"LastFreshStart": "yesterday"},
        "InvalidTimestamp",
        "column LastFreshStart: 'yesterday' is not a timestamp (ISO-8601",
    ),
    (
        "timestamp-milliseconds",
        {"LastFreshStart": "1714567890000"},
        "InvalidTimestamp",
        "(epoch seconds, not milliseconds)",
    ),
    (
        "timestamp-impossible-date",
        {"LastFreshStart": "2024-02-30"},
        "InvalidTimestamp",
        "'2024-02-30' is not a timestamp",
    ),
    (
        "enum",
        {"TlsPolicy": "SOMETIMES"},
        "InvalidEnum",
        "column TlsPolicy: 'SOMETIMES' is not one of REQUIRE, OPTIONAL",
    ),
    (
        "tag-value-too-long",
        {"tag:team": "v" * 257},
        "InvalidTag",
        "is 257 characters; a tag value is at most 256",
    ),
    (
        "tag-value-bad-character",
        {"tag:team": "blue;drop"},
        "InvalidTag",
        "column 'tag:team': 'blue;drop' contains ';'",
    ),
    (
        "tag-value-reserved",
        {"tag:team": "aws:blue"},
        "InvalidTag",
        "starts with 'aws:', which AWS reserves",
    ),
    (
        "too-many-tags",
        {f"tag:k{i:02d}": "x" for i in range(51)},
        "TooManyTags",
        "51 tag: columns are set in this row; a configuration set can have at most 50 tags "
        "(SES API reference, Tag); empty 1 of them",
    ),
    (
        "sending-pool-name-too-long",
        {"SendingPoolName": "p" * 65},
        "ValueTooLong",
        f"column SendingPoolName: '{'p' * 65}' is 65 characters; a dedicated IP pool name is "
        "at most 64 characters; shorten it",
    ),
    (
        "custom-redirect-domain-too-long",
        {"CustomRedirectDomain": "a" * 250 + ".com"},
        "ValueTooLong",
        "(254 characters) is too long; a domain name is at most 253 characters; shorten it",
    ),
    (
        "region",
        {"Region": "mars-north-1x"},
        "InvalidRegion",
        "column Region: 'mars-north-1x' is not a Region name like 'us-east-1'",
    ),
    (
        "empty-list-in-a-single-value-column",
        {"TlsPolicy": "[]"},
        "NotAList",
        "column TlsPolicy: '[]' is an empty list, but TlsPolicy holds one value, not a list",
    ),
    (
        "event-destinations-not-json",
        {"EventDestinations": '[{"Name": "to-sns"'},
        "InvalidEventDestinations",
        "column EventDestinations: not valid JSON: Expecting ',' delimiter: line 1 column 19",
    ),
    (
        "event-destinations-unknown-event-type",
        {
            "EventDestinations": '[{"Name": "to-sns", "MatchingEventTypes": ["OPENED"], '
            '"SnsDestination": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"}}]'
        },
        "InvalidEventDestinations",
        "column EventDestinations: destination 'to-sns': MatchingEventTypes[1]: 'OPENED' is "
        "not one of SEND, REJECT",
    ),
    (
        "control-characters",
        {"ConfigurationSetName": "evil\x1b[31mred"},
        "InvalidName",
        "'evil\\x1b[31mred' contains '\\x1b', '['",
    ),
]
GOOD_ROWS = 40


@pytest.fixture(scope="module")
def row_level(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One file with every bad row among good ones, provisioned once for the module's tests."""
    directory = tmp_path_factory.mktemp("rows")
    rows: list[dict[str, Any]] = []
    bad_rows: dict[str, int] = {}  # case -> its data row number
    for i in range(GOOD_ROWS):
        rows.append(
            {"ConfigurationSetName": f"good-{i:04d}", "TlsPolicy": "REQUIRE", "tag:team": "blue"}
        )
        if i < len(ROW_ERRORS):
            case, values, _, _ = ROW_ERRORS[i]
            rows.append({"ConfigurationSetName": f"bad-{i:02d}", **values})
            bad_rows[case] = len(rows)
    path = write_csv(directory / "tenants.csv", rows)
    with (
        threaded_emulator(EmulatorConfig(rate=0)) as emulator,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        env.setenv("AWS_SECRET_ACCESS_KEY", "emulator-secret")
        env.setenv("AWS_DEFAULT_REGION", REGION)  # as conftest's per-test environment does
        env.setenv("AWS_CONFIG_FILE", "/dev/null")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        result = provision(path, emulator)
        yield {
            "result": result,
            "latest": latest_by_row(Path(f"{path}.ledger.jsonl")),
            "bad_rows": bad_rows,
            "names": set(emulator.state.names(SCOPE)),
            "attempts": dict(emulator.stats()["create_attempts"]),
        }


class TestRowLevel:
    def test_the_run_ends_with_exit_1_and_only_the_good_rows_created(
        self, row_level: dict[str, Any]
    ) -> None:
        result = row_level["result"]
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.stderr
        assert f"invalid {len(ROW_ERRORS)} " in result.stdout
        assert "next: fix the invalid rows (see the ledger), then run the same command" in (
            result.stdout
        )
        assert row_level["names"] == {f"good-{i:04d}" for i in range(GOOD_ROWS)}
        # Row errors go to the ledger, not to the terminal one by one.
        assert "bad-" not in result.stdout + result.stderr

    @pytest.mark.parametrize(
        ("case", "code", "message"),
        [(case, code, message) for case, _, code, message in ROW_ERRORS],
        ids=[case[0] for case in ROW_ERRORS],
    )
    def test_the_row_is_invalid_with_its_reason_and_never_sent(
        self, row_level: dict[str, Any], case: str, code: str, message: str
    ) -> None:
        record = row_level["latest"][row_level["bad_rows"][case]]
        assert record["status"] == "invalid"
        assert record["code"] == code
        assert message in record["message"]
        assert record["attempts"] == 0
        if code != "DuplicateName":
            assert record["name"] not in row_level["attempts"]


class TestLargeFileWithOneBadRowAtTheEnd:
    def test_a_dry_run_of_fifty_thousand_rows_finds_the_last_one(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = tmp_path / "big.csv"
        path.write_bytes(big_csv(50_000, b"last,SOMETIMES,blue\n"))
        result = provision(path, served, "--dry-run")
        assert result.exit_code == 1, result.output
        assert "dry run: 50000 rows · created 0 · exists 0 · invalid 1" in result.stdout
        assert "would send 49999 rows" in result.stdout
        assert served.stats()["calls"] == {}

    def test_the_bad_row_is_invalid_and_every_other_row_created(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        rows = 1_500
        path = tmp_path / "big.csv"
        path.write_bytes(big_csv(rows, b"last,REQUIRE,blue;red\n"))
        result = provision(path, served, "--concurrency", "32")
        assert result.exit_code == 1, result.output
        assert len(served.state.names(SCOPE)) == rows - 1
        latest = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert latest[rows]["status"] == "invalid" and latest[rows]["code"] == "InvalidTag"
        assert sum(r["status"] == "created" for r in latest.values()) == rows - 1

    @pytest.mark.soak
    def test_soak_fifty_thousand_rows_created_but_the_last(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        rows = 50_000
        path = tmp_path / "big.csv"
        path.write_bytes(big_csv(rows, b"last,REQUIRE,blue;red\n"))
        result = provision(path, served, "--concurrency", "32")
        assert result.exit_code == 1, result.output
        assert len(served.state.names(SCOPE)) == rows - 1
        latest = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert latest[rows]["status"] == "invalid"


class TestParquetRowValues:
    def test_native_values_of_the_right_type_but_a_bad_value_make_the_row_invalid(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = tmp_path / "tenants.parquet"
        parquet(
            path,
            {
                "ConfigurationSetName": ["acme", "globex", "initech", "umbrella"],
                "SendingEnabled": [1, 2, 0, None],  # an integer 0/1 is a boolean; 2 is not
                "LastFreshStart": [datetime(2026, 1, 2), None, None, None],
                "TlsPolicy": ["REQUIRE", "OPTIONAL", "MAYBE", None],
            },
        )
        result = provision(path, served)
        assert result.exit_code == 1, result.output
        assert served.state.names(SCOPE) == ["acme", "umbrella"]
        latest = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert (latest[2]["code"], latest[3]["code"]) == ("InvalidBoolean", "InvalidEnum")
        assert "column SendingEnabled: 2 is not a boolean" in latest[2]["message"]


class TestDocumentedLimits:
    @pytest.mark.parametrize("service", ["pinpoint-email", "sesv2"])
    def test_a_million_character_pool_name_and_51_tags_are_never_sent(
        self, tmp_path: Path, served: Emulator, service: str
    ) -> None:
        path = tmp_path / "tenants.parquet"
        tags = {f"tag:k{i:02d}": ["x", "x", None] for i in range(51)}
        parquet(
            path,
            {
                "ConfigurationSetName": ["huge-pool", "many-tags", "fine"],
                "SendingPoolName": ["p" * 1_000_000, None, "p" * 64],
                **tags,
            },
        )
        result = provision(path, served, "--service", service)
        assert result.exit_code == 1, result.output
        assert served.state.names(SCOPE) == ["fine"]
        assert set(served.stats()["create_attempts"]) == {"fine"}
        latest = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert latest[1]["status"] == latest[2]["status"] == "invalid"
        assert latest[1]["code"] == "ValueTooLong"  # and its 51 tags, second
        assert latest[1]["message"].startswith(
            f"column SendingPoolName: '{'p' * 80}'... (1000000 characters) is too long; "
            "a dedicated IP pool name is at most 64 characters; shorten it; 51 tag: columns"
        )
        assert len(latest[1]["message"]) < 400
        assert latest[2]["code"] == "TooManyTags"
        assert latest[2]["message"].startswith("51 tag: columns are set in this row")


class TestFileNames:
    """The input is the file named, never files a glob pattern in its name would match."""

    @pytest.mark.parametrize("name", ["t[1].csv", "t?.csv", "t*.csv", "t[.csv", "t[1].parquet"])
    def test_glob_characters_in_the_name_are_just_characters(
        self, tmp_path: Path, served: Emulator, name: str
    ) -> None:
        suffix = Path(name).suffix
        for decoy, tenant in ((f"t1{suffix}", "decoy-one"), (f"tt{suffix}", "decoy-two")):
            write_tenants(tmp_path / decoy, [tenant])
        path = write_tenants(tmp_path / name, ["acme", "globex"])
        result = provision(path, served)
        assert result.exit_code == 0, result.output
        assert served.state.names(SCOPE) == ["acme", "globex"]
        assert Path(f"{path}.ledger.jsonl").exists()


def write_tenants(path: Path, names: list[str]) -> Path:
    if path.suffix == ".parquet":
        parquet(path, {"ConfigurationSetName": names})
    else:
        path.write_text("ConfigurationSetName\n" + "".join(f"{n}\n" for n in names))
    return path
