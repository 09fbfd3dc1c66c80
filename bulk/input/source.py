"""Reading the input file: a CSV or Parquet file of tenants, streamed as `InputRow`s.

`open_source` checks everything it can before a single request is sent: the file exists,
has a known extension, is text (CSV) or Parquet, and has a usable header (no unknown,
duplicate or unnamed columns, a ``ConfigurationSetName`` column, Parquet types that fit: see
:mod:`bulk.input.header`) and at least one data row. `Source.count` then reads the whole
file once, so a damaged row deep in the file (ragged, bad quoting, not UTF-8, a corrupt
Parquet page) stops the run before anything is sent.

Records stream from polars lazy scans in batches of ``batch_size`` rows; memory does not
grow with the file (CSV: one streaming query; Parquet: one slice of the scan at a time).
Cells are trimmed; an empty or blank cell is ``None`` ("not set"). A row whose every cell
is empty (a blank line, spreadsheet padding) is skipped, but still counts for numbering:
row N is the N-th line under the header, as a spreadsheet shows it (a quoted cell spanning
lines is one row).

Polars 2.1 reads a CSV file in byte chunks whose default size grows with the file (a
100 MB file in one go), so this module sets ``POLARS_CSV_CHUNK_SIZE`` (bytes) to 64 KiB
unless the environment already sets it; with it, peak memory stays flat from ten thousand
to a million rows.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

import polars as pl

from bulk.errors import InputError
from bulk.input.columns import Column, show
from bulk.input.csv_check import (
    check_head,
    check_rows,
    check_separator,
    compressed_error,
    compressed_suffix_error,
    csv_rows,
    ragged_error,
)
from bulk.input.header import allowed_columns, check_header, check_parquet_types
from bulk.models import InputRow
from bulk.polars_errors import POLARS_ERRORS

__all__ = ["Source", "open_source"]

_CSV_SUFFIXES: Final = (".csv",)
_PARQUET_SUFFIXES: Final = (".parquet", ".pq")
_ACCEPTED: Final = ".csv, .parquet or .pq"
_CSV_CHUNK_ENV: Final = "POLARS_CSV_CHUNK_SIZE"
_CSV_CHUNK_BYTES: Final = 64 * 1024
_ROW_INDEX: Final = "\x00row"  # cannot clash: a header with a NUL byte is refused
# What a polars read of the input can raise: polars' own errors and panics, and the file's.
_READ_ERRORS: Final[tuple[type[BaseException], ...]] = (*POLARS_ERRORS, OSError)

Format = Literal["csv", "parquet"]


@dataclass(frozen=True)
class Source:
    """An input file that passed `open_source`'s checks: its format and columns.

    ``columns`` are the header's names, trimmed, in file order. `records` streams the data
    rows; `count` reads the whole file and reports the first damaged row as `InputError`.
    Both may be called any number of times; each call reads the file afresh.
    """

    path: Path
    format: Format
    columns: tuple[str, ...]
    batch_size: int = 5000
    # Filled by `count` when it is given columns to tally: rows per combination of cells.
    tallied: Counter[tuple[Any, ...]] = field(default_factory=Counter, compare=False)

    def records(self) -> Iterator[InputRow]:
        """Data rows in file order, numbered from 1, as `InputRow`s (blank rows skipped).

        Raises `InputError` when the file turns out to be damaged part-way (call `count`
        first to find out before sending anything).
        """
        columns = self.columns
        for frame in self.frames():
            for number, *cells in frame.iter_rows():
                yield InputRow(number, dict(zip(columns, cells, strict=True)))

    def frames(self) -> Iterator[pl.DataFrame]:
        """The rows `records` gives, a batch at a time, as frames.

        Column 0 is the row number, then one column per entry of `columns`: cells trimmed,
        blank ones null, blank rows left out.
        """
        try:
            yield from self._batches()
        except _READ_ERRORS as exc:
            raise self._read_error(exc) from None

    def count(self, tally: Sequence[str] = ()) -> int:
        """The number of data rows `records` yields; reads the whole file to prove it can.

        With ``tally`` (columns of the file), :attr:`tallied` then counts the rows of each
        combination of those columns' cells (the cells as `frames` gives them).

        Raises `InputError` naming the row (as near as can be told) of the first problem:
        a row with more or fewer cells than the header, bad quoting, bytes that are not
        UTF-8, a corrupt Parquet file; or, if every row is blank, "no data rows".
        """
        if self.format == "csv":
            self._check_csv_rows()
        total = 0
        self.tallied.clear()
        try:
            for frame in self._batches():
                total += frame.height
                if tally:
                    self.tallied.update(tally_rows(frame, tally))
        except _READ_ERRORS as exc:
            raise self._read_error(exc) from None
        if total == 0:
            raise InputError(f"{self.path}: no data rows (every row is blank); {_ADD_ROWS}")
        return total

    # -- internals ----------------------------------------------------------------------

    def _batches(self) -> Iterator[pl.DataFrame]:
        """The file as frames of at most `batch_size` rows: row number first, then cells.

        CSV streams through one query (`collect_batches` has back-pressure: a slow reader
        holds a few chunks, not the file). Parquet is read one slice at a time instead:
        the streaming scan decodes and prefetches whole row groups (200+ MB for a million
        rows), while a slice decodes only the pages it needs.
        """
        if self.format == "csv":
            os.environ.setdefault(_CSV_CHUNK_ENV, str(_CSV_CHUNK_BYTES))
            scan = pl.scan_csv(self.path, infer_schema=False, raise_if_empty=True, glob=False)
            yield from _prepared(scan, 0).collect_batches(chunk_size=self.batch_size)
            return
        scan = pl.scan_parquet(self.path, glob=False)
        total = scan.select(pl.len()).collect().item()
        for offset in range(0, total, self.batch_size):
            yield _prepared(scan.slice(offset, self.batch_size), offset).collect()

    def _check_csv_rows(self) -> None:
        """The csv module's pass over the file (see :func:`~bulk.input.csv_check.check_rows`).

        Polars pads a row with too few cells silently and reports other damage without a
        row number; this pass catches both, exactly.
        """
        with _open_binary(self.path) as stream:
            check_rows(self.path, stream, len(self.columns))

    def _read_error(self, exc: BaseException) -> InputError:
        """An InputError for a polars failure: the csv pass's exact diagnosis if it has one."""
        if self.format == "csv":
            try:
                self._check_csv_rows()
            except InputError as precise:
                return precise
        what = "CSV" if self.format == "csv" else "Parquet"
        return InputError(f"{self.path}: cannot read it as {what}: {_first_line(exc)}")


_ADD_ROWS: Final = "add one row per tenant under the header"


def _prepared(frame: pl.LazyFrame, offset: int) -> pl.LazyFrame:
    """Row numbers (from ``offset + 1``), trimmed cells (blank -> null), blank rows dropped."""
    schema = frame.collect_schema()
    raw = schema.names()
    cells: list[pl.Expr] = []
    for name, dtype in schema.items():
        base = dtype.base_type()
        if base in (pl.Categorical, pl.Enum):
            cells.append(_trimmed(pl.col(name).cast(pl.String)).alias(name))
        elif base == pl.String:
            cells.append(_trimmed(pl.col(name)).alias(name))
        else:
            cells.append(pl.col(name))
    return (
        frame.select(cells)
        .with_row_index(_ROW_INDEX, offset=offset + 1)
        .filter(pl.any_horizontal(pl.col(raw).is_not_null()))
        .select(_ROW_INDEX, *raw)
    )


def _trimmed(cell: pl.Expr) -> pl.Expr:
    """Surrounding white space removed; blank -> null.

    (Not ``.replace("", None)``: polars 2.1 runs that outside the streaming engine, holding
    the whole file in memory.)
    """
    trimmed = cell.str.strip_chars()
    return pl.when(trimmed != "").then(trimmed)


def open_source(path: str | Path, *, batch_size: int = 5000, service: str | None = None) -> Source:
    """Check an input file and return it as a `Source`; nothing is read past the header.

    Accepts ``.csv`` (UTF-8, a BOM and CRLF line ends are fine) and ``.parquet``/``.pq``.
    Raises `InputError` with one line saying what is wrong, where, and what to do: missing
    file, a directory, ``-``, a pipe or device (INPUT is read twice: it must be a regular
    file), empty file, wrong extension, compressed, not text, a comment line or another
    separator than the comma, no ``ConfigurationSetName`` column, an unknown, duplicate or
    unnamed column, a Parquet column of the wrong type, no data rows. With ``service``, a
    column that service lacks (``HttpsPolicy`` or ``TenantName`` for ``pinpoint-email``) is
    refused too; without it, columns of any service are accepted. Columns named
    ``bulk_...`` (a report file's) are ignored.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    path = Path(path)
    if str(path) == "-":
        raise InputError(f"-: standard input cannot be INPUT; {_REGULAR_ONLY}")
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory; give the path of a .csv or .parquet file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: is {_kind_of_file(mode)}; {_REGULAR_ONLY}")
    suffix = path.suffix.lower()
    fmt: Format
    if suffix in _CSV_SUFFIXES:
        fmt = "csv"
    elif suffix in _PARQUET_SUFFIXES:
        fmt = "parquet"
    else:
        compressed = compressed_suffix_error(path)
        if compressed is not None:
            raise compressed
        got = f"extension {show(path.suffix)}" if path.suffix else "no extension"
        raise InputError(f"{path}: {got}; bulk reads {_ACCEPTED} files")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}") from None
    if size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); it needs a header row and data")
    allowed = allowed_columns(service)
    if fmt == "csv":
        columns = _open_csv(path, allowed, service)
    else:
        columns = _open_parquet(path, allowed, service)
    return Source(path, fmt, columns, batch_size)


# Why INPUT must be a regular file: `Source.count` reads it to its end before anything is
# sent, then `Source.records` reads it again; a pipe can be read only once.
_REGULAR_ONLY: Final = (
    "bulk reads INPUT twice (to count the rows, then to send them), so it must be a "
    "regular file; save the data to a file first and pass its path"
)


def _kind_of_file(mode: int) -> str:
    """What a file that is neither a regular file nor a directory is, for a message."""
    if stat.S_ISFIFO(mode):
        return "a pipe (standard input or <(...) process substitution?)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


# -- CSV ----------------------------------------------------------------------------------


def _open_binary(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}") from None


def _open_csv(path: Path, allowed: Mapping[str, Column], service: str | None) -> tuple[str, ...]:
    with _open_binary(path) as stream:
        check_head(path, stream)
        rows = csv_rows(path, stream)
        _, header = next(rows, (0, []))
        names = tuple(name.strip() for name in header)
        check_separator(path, names)
        check_header(path, names, allowed, service)
        # One non-blank data row proves the file is not header-only; the rest is count()'s.
        for number, cells in rows:
            if any(cell.strip() for cell in cells):
                if len(cells) != len(names):
                    raise ragged_error(path, number, len(cells), len(names))
                break
        else:
            raise InputError(f"{path}: no data rows under the header; {_ADD_ROWS}")
    try:
        polars_names = pl.scan_csv(path, infer_schema=False, glob=False).collect_schema().names()
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: cannot read it as CSV: {_first_line(exc)}") from None
    if len(polars_names) != len(names):  # pragma: no cover - the two parsers disagree
        raise InputError(
            f"{path}: the header reads as {len(polars_names)} columns one way and "
            f"{len(names)} another; check its quoting"
        )
    return names


# -- Parquet ------------------------------------------------------------------------------


def _open_parquet(
    path: Path, allowed: Mapping[str, Column], service: str | None
) -> tuple[str, ...]:
    with _open_binary(path) as stream:
        head = stream.read(10)
        stream.seek(-4 if path.stat().st_size >= 8 else 0, os.SEEK_END)
        tail = stream.read(4)
    compressed = compressed_error(path, head, "Parquet")
    if compressed is not None:
        raise compressed
    head = head[:4]
    if head != b"PAR1" or tail != b"PAR1":
        what = "CSV text" if head.isascii() and head.strip() else "not Parquet"
        raise InputError(
            f"{path}: not a Parquet file ({what}: no PAR1 marker at both ends; "
            "truncated or misnamed?); write it as Parquet or use a .csv name for CSV"
        )
    try:
        lazy = pl.scan_parquet(path, glob=False)
        schema = lazy.collect_schema()
        rows = lazy.select(pl.len()).collect().item()
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: cannot read it as Parquet: {_first_line(exc)}") from None
    names = tuple(name.strip() for name in schema.names())
    check_header(path, names, allowed, service)
    check_parquet_types(path, names, schema.dtypes(), allowed)
    if rows == 0:
        raise InputError(f"{path}: no data rows; {_ADD_ROWS}")
    return names


def _first_line(exc: BaseException) -> str:
    """The first meaningful line of a polars error (they run to many lines of advice)."""
    text = str(exc)
    marker = "Original error: ```"
    if marker in text:
        text = text.split(marker, 1)[1]
    for line in text.splitlines():
        line = line.strip().strip("`").strip()
        if line:
            return line if len(line) <= 200 else line[:200] + "..."
    return type(exc).__name__


def tally_rows(frame: pl.DataFrame, columns: Sequence[str]) -> Counter[tuple[Any, ...]]:
    """Rows of a `Source.frames` batch per combination of the cells of ``columns``."""
    counts = frame.group_by(list(columns)).len(name="__rows")
    return Counter({row[:-1]: row[-1] for row in counts.iter_rows()})
