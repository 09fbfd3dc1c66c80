"""`bulk export`'s OUTPUT: written whole or not at all, and resumable when interrupted.

Sets read from the service go first to a partial file beside OUTPUT, ``NAME.partial.jsonl``:
a header line (``{"bulk_export": 1, "service": ..., "identity": {...}}``, the arguments the
export runs with), then one JSON object per set. Running the same export again resumes from
it (`ExportFile.done`); other arguments start it over. `ExportFile.finish` writes OUTPUT to a
temporary file and moves it into place with one ``os.replace``, so OUTPUT is never half
written: it is absent (or still the old file, under ``--force``) until the export is done.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import polars as pl

from bulk.errors import BulkError, UsageError
from bulk.input.columns import NAME_COLUMN, REGION_COLUMN, show
from bulk.live.cells import CellValue, column_order, csv_text

__all__ = ["ExportFile", "write_atomically"]

_FORMATS: Final = (".csv", ".parquet")
_MARK: Final = "bulk_export"  # the header's key, holding the partial format's version
_VERSION: Final = 1
_PARTIAL_SUFFIX: Final = ".partial.jsonl"
_Rows = Sequence[Mapping[str, Any]]
# A Parquet column's dtype by the Python types of its values (no values at all: String).
_DTYPES: Final[Mapping[frozenset[type], Any]] = {
    frozenset(): pl.String,
    frozenset({str}): pl.String,
    frozenset({bool}): pl.Boolean,
    frozenset({int}): pl.Int64,
    frozenset({float}): pl.Float64,
    frozenset({int, float}): pl.Float64,
    frozenset({list}): pl.List(pl.String),
}


class ExportFile:
    """OUTPUT of one export, open for appending sets; `finish` writes it.

    Use it as a context manager (or call `close`): leaving before `finish` keeps the partial
    file, so running the export again carries on from what was read. ``notes`` holds one
    line for each thing the user should know about the partial found at open (resumed,
    replaced, damaged lines dropped).
    """

    def __init__(self, path: Path, service: str, partial: Path) -> None:
        self.path = path
        self.service = service
        self.partial = partial
        self.notes: list[str] = []
        self._file: IO[bytes] | None = None
        self._done: dict[str, set[str]] = {}

    @classmethod
    def open(
        cls, path: Path, *, service: str, identity: Mapping[str, Any], force: bool
    ) -> ExportFile:
        """Check OUTPUT and open its partial file: resumed if ``identity`` matches, else new.

        Raises `UsageError` for an extension other than ``.csv``/``.parquet``, a missing
        parent directory, a directory, an existing OUTPUT without ``force``, or a partial
        file that is not bulk's.
        """
        path = Path(path)
        where = _quoted(path)
        if path.suffix.lower() not in _FORMATS:
            got = f"extension {show(path.suffix)}" if path.suffix else "no extension"
            raise UsageError(f"{where}: {got}; bulk export writes .csv or .parquet files")
        if not path.parent.is_dir():
            raise UsageError(
                f"{where}: no directory {_quoted(path.parent)}; create it or choose another path"
            )
        if path.is_dir():
            raise UsageError(f"{where}: is a directory; give the path of a .csv or .parquet file")
        if os.path.lexists(path) and not force:
            raise UsageError(f"{where}: already exists; use --force to replace it")
        partial = path.with_name(path.name + _PARTIAL_SUFFIX)
        # Compared as they read back from JSON (a tuple of Regions comes back a list, a Path
        # as text).
        header = {_MARK: _VERSION, "service": service, "identity": identity}
        header = json.loads(json.dumps(header, default=str))
        export = cls(path, service, partial)
        with _reported(partial, "cannot use the partial export", UsageError):
            records = export._resume(header) if partial.exists() else []
            if not records:  # a partial that holds nothing is as good as a new one
                write_atomically(partial, lambda file: file.write(_line(header)))
            export._file = partial.open("ab")
        for record in records:
            export._done.setdefault(record[REGION_COLUMN], set()).add(record[NAME_COLUMN])
        return export

    def _resume(self, header: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The records of the partial file if ``header`` is its header, else none (noted)."""
        where = _quoted(self.partial)
        found, records, end, dropped = _parse(self.partial, self.partial.read_bytes())
        if found != header:
            self.notes.append(
                f"{where}: left by an export with other arguments "
                f"({_differences(found, header)}); starting over"
            )
            return []
        os.truncate(self.partial, end)  # a torn or damaged tail: those sets are read again
        if dropped:
            self.notes.append(f"{where}: {dropped}; those sets are read again")
        if records:
            self.notes.append(f"{where}: resuming ({len(records)} sets already read)")
        return records

    def done(self, region: str) -> frozenset[str]:
        """The names of the sets already recorded for ``region`` (read before, or appended)."""
        return frozenset(self._done.get(region, ()))

    def append(self, records: Sequence[Mapping[str, CellValue]]) -> None:
        """Record sets, each with its ``ConfigurationSetName``, ``Region`` and cells.

        Blocking file I/O: an async caller runs it in a thread.
        """
        if self._file is None:
            raise ValueError(f"{self.partial}: the export is closed")
        # Checked before writing: `_parse` ends the records at a line without them.
        keys = [(record[REGION_COLUMN], record[NAME_COLUMN]) for record in records]
        if not all(isinstance(each, str) for key in keys for each in key):
            raise ValueError(f"a Region or ConfigurationSetName that is not text in {keys}")
        with _reported(self.partial, "cannot write the partial export"):
            self._file.write(b"".join(map(_line, records)))
            # No fsync per batch: a killed process's writes already belong to the kernel and
            # reach the disk without one. Only a crash of the machine can lose them, and what
            # is lost is reads, made again on resume (`_parse` drops a damaged tail).
            self._file.flush()
        for region, name in keys:
            self._done.setdefault(str(region), set()).add(str(name))

    def finish(self, *, with_region: bool) -> int:
        """Write OUTPUT from the partial file, remove the partial, return the number of rows.

        The last record of each (Region, name) wins; rows are sorted by Region, then name.
        The ``Region`` column is written only ``with_region``.
        """
        self.close()
        with _reported(self.partial, "cannot read the partial export"):
            _, records, _, _ = _parse(self.partial, self.partial.read_bytes())
        latest = {(record[REGION_COLUMN], record[NAME_COLUMN]): record for record in records}
        rows = [latest[key] for key in sorted(latest)]
        present = {NAME_COLUMN, REGION_COLUMN}.union(*rows)
        if not with_region:
            present.discard(REGION_COLUMN)
        columns = column_order(self.service, present)
        write = _write_csv if self.path.suffix.lower() == ".csv" else _write_parquet
        with _reported(self.path, "cannot write the export"):
            write_atomically(self.path, lambda file: write(file, columns, rows))
            self.partial.unlink()
        return len(rows)

    def close(self) -> None:
        """Close the partial file, keeping it: an export run again resumes from it."""
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _quoted(path: Path) -> str:
    """A path quoted for a message (whole: `show` would cut a long one)."""
    return repr(str(path))


@contextlib.contextmanager
def _reported(path: Path, what: str, error: type[BulkError] = BulkError) -> Iterator[None]:
    """An OSError inside as a one-line ``error`` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise error(f"{_quoted(path)}: {what}: {exc.strerror or exc}") from None


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, synced, then moved."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    with contextlib.suppress(OSError):  # the new directory entry, durable (where allowed)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _line(value: Any) -> bytes:
    """One JSON line of the partial file."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _parse(partial: Path, data: bytes) -> tuple[Any, list[dict[str, Any]], int, str]:
    """(header, records, end of the last good line, what was dropped) of a partial file.

    Records end at the first line that is not a whole record: a kill tears only the last
    line, and a crash of the machine may leave garbage after what reached the disk.
    """
    head, newline, rest = data.partition(b"\n")
    header = _json(head) if newline else None
    if not (
        isinstance(header, dict)
        and header.get(_MARK) == _VERSION
        and isinstance(header.get("identity"), dict)
    ):
        raise UsageError(
            f"{_quoted(partial)}: not a partial export written by this bulk (its first "
            "line is not its header); move or delete it, or choose another OUTPUT"
        )
    records: list[dict[str, Any]] = []
    end = len(head) + 1
    lines = rest.split(b"\n")  # the last item is b"" or a torn line (no newline after it)
    for line in lines[:-1]:
        record = _json(line)
        if not (
            isinstance(record, dict)
            and isinstance(record.get(NAME_COLUMN), str)
            and isinstance(record.get(REGION_COLUMN), str)
        ):
            break
        records.append(record)
        end += len(line) + 1
    damaged = len(lines) - 1 - len(records)  # whole lines that are not records
    dropped = f"dropped {damaged} damaged lines from line {len(records) + 2} on" if damaged else ""
    return header, records, end, dropped


def _json(line: bytes) -> Any:
    """A line's JSON value, or None if it is not JSON."""
    try:
        return json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _differences(found: Any, header: Mapping[str, Any]) -> str:
    """The arguments whose values differ between two headers, for a note."""
    ours, theirs = header["identity"], found["identity"]
    differ = {key for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key)}
    if found.get("service") != header["service"]:
        differ.add("service")
    return ", ".join(sorted(differ))


def _write_csv(file: IO[bytes], columns: Sequence[str], rows: _Rows) -> None:
    """Rows as CSV provision reads back: cells through `csv_text`, missing ones empty."""
    text = io.TextIOWrapper(file, encoding="utf-8", newline="")
    # QUOTE_MINIMAL quotes a cell holding a comma, quote or line break (JSON text, say).
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_text(row[name]) if name in row else "" for name in columns])
    text.flush()
    text.detach()  # ``file`` stays open for the caller's fsync


def _write_parquet(file: IO[bytes], columns: Sequence[str], rows: _Rows) -> None:
    """Rows as Parquet, each column's dtype by its values' Python types (`_DTYPES`)."""
    series = []
    for name in columns:
        values = [row.get(name) for row in rows]
        dtype = _DTYPES.get(frozenset(type(value) for value in values if value is not None))
        if dtype is None:  # mixed types: text, as CSV holds them (provision reads both)
            values, dtype = [None if each is None else csv_text(each) for each in values], pl.String
        series.append(pl.Series(name, values, dtype=dtype))
    pl.DataFrame(series).write_parquet(file)
