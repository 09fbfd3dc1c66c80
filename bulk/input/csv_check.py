"""Why a CSV file cannot be read, said exactly: the checks the reader runs beside polars.

Polars pads a row with too few cells silently and reports other damage without a row number,
so :mod:`bulk.input.source` asks this module instead. It refuses, by its first bytes, what is
not UTF-8 CSV text (a compressed file, a workbook, UTF-16, binary data), a comment line
above the header and a header that reads as one column (another separator than the comma);
and it names the row to blame for a ragged row, bad quoting or bytes that are not UTF-8,
reading the file with Python's csv module after a fast check that every row has the
header's width. Compression is sniffed here for Parquet files too.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from bulk.errors import InputError
from bulk.input.columns import NAME_COLUMN, show

__all__ = [
    "check_head",
    "check_rows",
    "check_separator",
    "compressed_error",
    "compressed_suffix_error",
    "csv_rows",
    "ragged_error",
]

_SNIFF_BYTES: Final = 64 * 1024
_UTF8_HINT: Final = "save it as UTF-8 (in Excel: CSV UTF-8)"
_ENCODING_HINTS: Final = (
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_SIGNATURES: Final = (
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook?)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document"),
    (b"PAR1", "a Parquet file"),
    (b"%PDF", "a PDF document"),
)
# Compressed files, by magic bytes and by extension: (magic, extension, format, command).
# bzip2's "BZh" is followed by the block size digit and a block (or end-of-stream) marker;
# checking all of it keeps a CSV whose first column starts with "BZh" from looking compressed.
_COMPRESSED: Final = (
    (b"\x1f\x8b", ".gz", "gzip", "gunzip"),
    (b"\xfd7zXZ\x00", ".xz", "xz", "unxz"),
    (b"\x28\xb5\x2f\xfd", ".zst", "zstd", "unzstd"),
    (b"BZh", ".bz2", "bzip2", "bunzip2"),
)
_BZIP2_MARKERS: Final = (b"1AY&SY", b"\x17rE8P\x90")
_SEPARATORS: Final = (("\t", "tab"), (";", "semicolon"))


def _compression(head: bytes) -> tuple[str, str] | None:
    """(format, command) of a compressed file, judging by its first bytes; None for others."""
    for magic, _, compression, command in _COMPRESSED:
        if head.startswith(magic):
            if magic == b"BZh" and not (head[3:4].isdigit() and head[4:10] in _BZIP2_MARKERS):
                continue
            return compression, command
    return None


def compressed_error(path: Path, head: bytes, what: str) -> InputError | None:
    """The error for a compressed file, or None if ``head`` is not one."""
    found = _compression(head)
    if found is None:
        return None
    compression, command = found
    return InputError(
        f"{path}: the file is {compression}-compressed, not {what}; decompress it first "
        f"({command} -c {path.name} > plain{path.suffix}) and pass the decompressed file"
    )


def compressed_suffix_error(path: Path) -> InputError | None:
    """The error for a file named as compressed (``tenants.csv.gz``), or None."""
    suffix = path.suffix.lower()
    for _, extension, compression, command in _COMPRESSED:
        if suffix == extension:
            return InputError(
                f"{path}: the file is {compression}-compressed (extension {show(suffix)}); "
                f"decompress it first ({command} {path.name}) and pass the .csv or "
                ".parquet file"
            )
    return None


def check_head(path: Path, stream: IO[bytes]) -> None:
    """Refuse a file that is not CSV text or whose first line is a comment, by its first bytes.

    Reads the start of ``stream`` and leaves it at its beginning again.
    """
    head = stream.read(_SNIFF_BYTES)
    _check_text(path, head)
    _check_first_line(path, head)
    stream.seek(0)


def check_rows(path: Path, stream: IO[bytes], width: int) -> None:
    """Read a binary CSV stream with Python's csv module, which can say which row is damaged.

    Raises `InputError` for the first row with more or fewer cells than ``width`` (the
    header's), bad quoting or bytes that are not UTF-8; a blank row of any width is fine.
    """
    if _all_rows_fit(stream, width):
        return
    stream.seek(0)
    for number, cells in csv_rows(path, stream):
        if number and len(cells) != width and any(cell.strip() for cell in cells):
            raise ragged_error(path, number, len(cells), width)


def _check_text(path: Path, head: bytes) -> None:
    """Refuse what is plainly not a UTF-8 CSV file, judging by its first bytes."""
    compressed = compressed_error(path, head, "CSV text")
    if compressed is not None:
        raise compressed
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            advice = "rename it to .parquet" if signature == b"PAR1" else "export it as CSV"
            raise InputError(f"{path}: this is {what}, not CSV text; {advice}")
    for bom, encoding in _ENCODING_HINTS:
        if head.startswith(bom):
            raise InputError(f"{path}: the file is {encoding} text; {_UTF8_HINT}")
    if b"\x00" in head:
        raise InputError(
            f"{path}: binary data (NUL bytes) near the start; this is not CSV text, "
            "export the data as CSV"
        )


def _check_first_line(path: Path, head: bytes) -> None:
    """Refuse a comment line above the header (read before the csv module sees its quotes)."""
    line = head.split(b"\n", 1)[0].decode("utf-8", "replace").removeprefix("\ufeff").strip()
    if line.startswith("#"):
        raise InputError(
            f"{path}: line 1 is a comment, {show(line)}; comment lines are not allowed: the "
            f"first line must be the header ({NAME_COLUMN},...); delete the comment lines"
        )


def check_separator(path: Path, names: Sequence[str]) -> None:
    """Refuse a header that reads as one column holding tabs or semicolons: wrong separator."""
    if len(names) != 1:
        return
    counts = [(names[0].count(sep), word) for sep, word in _SEPARATORS]
    found, word = max(counts)
    if found:
        raise InputError(
            f"{path}: the header reads as one column, {show(names[0])}: the file looks "
            f"{word}-separated; bulk reads comma-separated CSV: save it as CSV with commas "
            "(in Excel: CSV UTF-8)"
        )


def csv_rows(path: Path, stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) from a binary CSV stream, header as row 0; errors as InputError.

    Lines are decoded one at a time, so bytes that are not UTF-8 are reported in the row
    that holds them, even inside a quoted cell spanning lines.
    """
    state = _LineState()
    reader = csv.reader(_decoded_lines(stream, state), strict=True)
    number = -1
    try:
        # `number` outlives the loop: after a failure it is the last good row.
        for number, cells in enumerate(reader):
            yield number, cells
    except _Undecodable as exc:
        where = "in the header" if number < 0 else f"in row {number + 1}"
        raise InputError(
            f"{path}: not UTF-8 text: byte 0x{exc.byte:02x} {where} (line {exc.line}); {_UTF8_HINT}"
        ) from None
    except csv.Error as exc:
        where = "the header" if number < 0 else f"row {number + 1}"
        raise InputError(f"{path}: {where}: {_csv_problem(str(exc))}") from None


def _all_rows_fit(stream: IO[bytes], width: int) -> bool:
    """Whether every row of a binary CSV stream has ``width`` cells (or none: a blank line).

    The common case, proven at C speed: big blocks decoded at once; in a file without quotes
    a row is a line and its cells are its commas plus one, else the blocks are split into the
    same lines :func:`csv_rows` reads and cells are counted by ``map(len, csv.reader(...))``.
    ``False`` for anything else (other widths, bad bytes, bad quoting): :func:`csv_rows`
    then finds the row to blame, or finds that its cells are all blank.
    """
    try:
        if _unquoted_rows_fit(stream, width):
            return True
        stream.seek(0)
        lengths = set(map(len, csv.reader(_block_lines(stream), strict=True)))
    except (csv.Error, UnicodeDecodeError):
        return False
    return lengths <= {width, 0}


def _unquoted_rows_fit(stream: IO[bytes], width: int) -> bool:
    """Whether every line has ``width - 1`` commas, in a file where that settles it.

    Without quotes, and without carriage returns other than line ends, a line is one row and
    the csv module would split it at each comma. ``False`` when unsure: a quote, such a
    carriage return, a blank line, a line of another width.
    """
    commas = {width - 1}
    for text in _blocks(stream):
        if '"' in text or "\r" in text.replace("\r\n", ""):
            return False
        lines = text.split("\n")
        if not lines[-1]:
            lines.pop()  # the empty string after the block's last newline
        if not set(map(str.count, lines, itertools.repeat(","))) <= commas:
            return False
    return True


def _block_lines(stream: IO[bytes]) -> Iterator[str]:
    """The stream's lines, split at ``\n`` only as binary iteration does, a block at a time."""
    for text in _blocks(stream):
        lines = text.split("\n")
        last = lines.pop()  # after the last newline: empty, or the end of a file without one
        yield from [line + "\n" for line in lines]
        if last:
            yield last


def _blocks(stream: IO[bytes]) -> Iterator[str]:
    """The stream decoded a big block at a time, each block ending at a ``\n`` (but the last)."""
    rest = b""
    first = True
    while block := stream.read(_CHECK_BLOCK):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        if not cut:
            continue
        text = block[:cut].decode("utf-8")  # a block ending in a newline ends a character
        if first:
            text = text.removeprefix("\ufeff")
            first = False
        yield text
    if rest:
        text = rest.decode("utf-8")
        yield text.removeprefix("\ufeff") if first else text


_CHECK_BLOCK: Final = 1 << 20


class _Undecodable(Exception):
    def __init__(self, line: int, byte: int) -> None:
        super().__init__(line, byte)
        self.line = line
        self.byte = byte


@dataclass
class _LineState:
    line: int = 0


def _decoded_lines(stream: IO[bytes], state: _LineState) -> Iterator[str]:
    for raw in stream:
        state.line += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Undecodable(state.line, raw[exc.start]) from None
        if state.line == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield text


def _csv_problem(message: str) -> str:
    """The csv module's complaint as advice."""
    if message.startswith("unexpected end of data"):
        return (
            "a quoted cell is never closed (a stray '\"'?); close the quote, "
            "or double quotes inside a quoted cell"
        )
    if "expected after" in message:
        return (
            "bad quoting (text after a closing '\"'); quote the whole cell and double "
            'quotes inside it: "say ""hi"""'
        )
    if "new-line character seen in unquoted field" in message:
        return "a bare carriage return inside a cell; use LF or CRLF line ends"
    if "field larger than field limit" in message:
        return "a cell longer than 131072 characters; is this really a tenants file?"
    return message


def ragged_error(path: Path, number: int, cells: int, width: int) -> InputError:
    """The error for data row ``number``, which has ``cells`` cells under ``width`` columns."""
    if cells > width:
        advice = "quote cells that contain commas, or remove the extra cells"
    else:
        advice = "add the missing commas (an empty cell means 'not set')"
    return InputError(
        f"{path}: row {number} has {cells} cells but the header has {width} columns; {advice}"
    )
