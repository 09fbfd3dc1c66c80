"""CSV diagnostics: what is not CSV text, other separators, and the exact row to blame."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
from pathlib import Path
from typing import Any

import pytest

import bulk.input.csv_check as csv_check
from bulk.errors import InputError
from bulk.input.source import open_source

from .test_source import HEADER, input_error, write


class TestHead:
    def test_binary_junk(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, bytes(range(256)) * 8))
        assert "binary data (NUL bytes) near the start; this is not CSV text" in message

    @pytest.mark.parametrize(
        ("head", "what"),
        [
            (b"PK\x03\x04\x14\x00", "a ZIP archive (an Excel workbook?)"),
            (b"PAR1\x15\x04", "a Parquet file, not CSV text; rename it to .parquet"),
            (b"\xff\xfeC\x00o\x00", "UTF-16 text; save it as UTF-8"),
        ],
    )
    def test_other_formats_named_csv(self, tmp_path: Path, head: bytes, what: str) -> None:
        assert what in input_error(write(tmp_path, head + b"\x00" * 64))

    @pytest.mark.parametrize(
        ("compress", "what"),
        [
            (gzip.compress, "gzip-compressed, not CSV text; decompress it first (gunzip -c"),
            (bz2.compress, "bzip2-compressed, not CSV text; decompress it first (bunzip2 -c"),
            (lzma.compress, "xz-compressed, not CSV text; decompress it first (unxz -c"),
            (lambda data: b"\x28\xb5\x2f\xfd" + data, "zstd-compressed, not CSV text"),
        ],
        ids=["gzip", "bzip2", "xz", "zstd"],
    )
    def test_compressed(self, tmp_path: Path, compress: Any, what: str) -> None:
        assert what in input_error(
            write(tmp_path, compress(f"{HEADER}\nacme,true,REQUIRE\n".encode()))
        )

    @pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
    def test_compressed_by_its_extension(self, tmp_path: Path, suffix: str) -> None:
        message = input_error(write(tmp_path, "x", f"tenants.csv{suffix}"))
        assert f"-compressed (extension '{suffix}'); decompress it first" in message

    def test_a_header_starting_like_bzip2_is_not_taken_for_it(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, "BZh9,ConfigurationSetName\nx,acme\n"))
        assert message.startswith("unknown column 'BZh9'")

    def test_a_compressed_parquet_file(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        path.write_bytes(gzip.compress(b"PAR1" + b"\x00" * 64 + b"PAR1"))
        assert input_error(path) == (
            f"{path}: the file is gzip-compressed, not Parquet; decompress it first "
            "(gunzip -c tenants.parquet > plain.parquet) and pass the decompressed file"
        )

    @pytest.mark.parametrize("bom", ["", "\ufeff"])
    def test_a_comment_line(self, tmp_path: Path, bom: str) -> None:
        message = input_error(write(tmp_path, f'{bom}# from "crm"\n{HEADER}\nacme,true,REQUIRE\n'))
        assert "line 1 is a comment, '# from \"crm\"'; comment lines are not allowed" in message


class TestSeparator:
    @pytest.mark.parametrize(("sep", "word"), [("\t", "tab"), (";", "semicolon")])
    def test_another_separator(self, tmp_path: Path, sep: str, word: str) -> None:
        data = f"{HEADER}\nacme,true,REQUIRE\n".replace(",", sep)
        message = input_error(write(tmp_path, data))
        assert f"the file looks {word}-separated; bulk reads comma-separated CSV" in message

    def test_a_one_column_file_is_fine(self, tmp_path: Path) -> None:
        assert open_source(write(tmp_path, "ConfigurationSetName\nacme\n")).count() == 1


class TestRows:
    def test_ragged_long_row(self, tmp_path: Path) -> None:
        path = write(tmp_path, f"{HEADER}\nt-1,,\nt-2,yes,REQUIRE,extra\n")
        assert input_error(path) == (
            f"{path}: row 2 has 4 cells but the header has 3 columns; "
            "quote cells that contain commas, or remove the extra cells"
        )

    def test_ragged_short_row(self, tmp_path: Path) -> None:
        # Polars would pad it silently, dropping the settings the user meant to give.
        path = write(tmp_path, f"{HEADER}\nt-1,,\nt-2,,\nt-3,yes\n")
        message = input_error(path)
        assert "row 3 has 2 cells but the header has 3 columns; add the missing commas" in message

    def test_ragged_first_row_is_caught_when_opening(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="row 1 has 4 cells"):
            open_source(write(tmp_path, f"{HEADER}\nt-1,,,\n"))

    @pytest.mark.parametrize("block", [1, 5, 64, 1 << 20])
    def test_the_row_check_reads_in_blocks_of_any_size(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
    ) -> None:
        # Lines cross block ends; a quoted cell spans lines; a BOM, \r\n, no final newline.
        monkeypatch.setattr(csv_check, "_CHECK_BLOCK", block)
        good = f'\ufeff{HEADER}\r\nt-é,,\r\n"t-\n2",yes,\r\n\r\nt-3,"a,b",x'
        assert open_source(write(tmp_path, good)).count() == 3
        # One short row among good ones, and a row broken by a bare \f: each is caught.
        short = f"{HEADER}\n" + "t,,\n" * 40 + "t-41,yes\n" + "t,,\n" * 3
        assert "row 41 has 2 cells" in input_error(write(tmp_path, short, "short.csv"))
        feed = f"{HEADER}\nt-1,,\fx,y\n"
        assert "row 1 has 4 cells" in input_error(write(tmp_path, feed, "feed.csv"))

    def test_bad_quoting(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, f'{HEADER}\nt-1,,\n"t-2"x,,\n'))
        assert "row 2: bad quoting (text after a closing '\"')" in message

    def test_unterminated_quote(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, f'{HEADER}\nt-1,,\nt-2,"yes,\nt-3,,\n'))
        assert "row 2: a quoted cell is never closed" in message

    def test_non_utf8_bytes_name_the_row(self, tmp_path: Path) -> None:
        path = write(tmp_path, f"{HEADER}\nt-1,,\nt-2,,\n".encode() + b"caf\xe9,,\n")
        assert input_error(path) == (
            f"{path}: not UTF-8 text: byte 0xe9 in row 3 (line 4); "
            "save it as UTF-8 (in Excel: CSV UTF-8)"
        )

    def test_non_utf8_in_the_header(self, tmp_path: Path) -> None:
        message = input_error(write(tmp_path, b"ConfigurationSetName,tag:caf\xe9\nt,x\n"))
        assert "not UTF-8 text: byte 0xe9 in the header (line 1)" in message


class TestRowWidthCheck:
    """The width check's comma count agrees with the csv module on every file it decides."""

    @staticmethod
    def csv_module_fit(data: bytes, width: int) -> bool:
        """The check as the csv module alone makes it: the reference."""
        try:
            lines = csv_check._block_lines(io.BytesIO(data))
            return set(map(len, csv.reader(lines, strict=True))) <= {width, 0}
        except (csv.Error, UnicodeDecodeError):
            return False

    @pytest.mark.parametrize(
        "data",
        [
            b"a,b,c\n1,2,3\n",
            b"a,b,c\n1,2,3",  # no final newline
            b"a,b,c\r\n1,2,3\r\n",
            b"\xef\xbb\xbfa,b,c\n1,2,3\n",
            b"a,b,c\n1,2\n3,4,5,6\n",  # the commas add up, the rows do not
            b"a,b,c\n1,2\n",
            b"a,b,c\n1,2,3,4\n",
            b"a,b,c\n\n1,2,3\n\n",  # blank lines
            b"a,b,c\n   \n1,2,3\n",
            b"a,b,c\r\n\r\n1,2,3\r\n",
            b"a,b,c\n1,2\r3\n",  # a carriage return inside a line
            b"a,b,c\n1,2\r,3\n",
            b"a,b,c\n1,\x002,3\n",  # a NUL: the csv module reads it as a character
            b'a,b,c\n1,"2,x",3\n',  # a quoted comma
            b'a,b,c\n"1,2",3\n',  # the commas fit, the cells do not
            b'a,b,c\n1,"2\nx",3\n',  # a quoted newline
            b'a,b,c\n1,"2,3\n',  # an unclosed quote
            b"a,b,c\n1,\xff,3\n",  # not UTF-8
            b"a\n1\n\n2\n",  # one column
            b"a\n1,2\n",
        ],
    )
    def test_agrees_with_the_csv_module(self, data: bytes) -> None:
        width = 1 if data.startswith(b"a\n") else 3
        expected = self.csv_module_fit(data, width)
        assert csv_check._all_rows_fit(io.BytesIO(data), width) is expected

    def test_a_file_without_quotes_is_decided_by_its_commas(self) -> None:
        data = b"a,b,c\n" + b"1,2,3\n" * 10
        assert csv_check._unquoted_rows_fit(io.BytesIO(data), 3)
        assert not csv_check._unquoted_rows_fit(io.BytesIO(data + b"1,2\n"), 3)
        assert not csv_check._unquoted_rows_fit(io.BytesIO(b'a,b,c\n"1",2,3\n'), 3)
