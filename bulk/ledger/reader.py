"""Reading a ledger file: its torn tail, its run headers, and its records into an index.

A ledger is JSONL written by :class:`bulk.ledger.writer.Ledger` in the format of
:mod:`~bulk.ledger.records`: one run header per run (``kind: "run"``), one record per row (it
has a ``status``), and the odd ``kind: "rate"`` or ``kind: "end"`` record. This module owns
reading it: :func:`scan` (at open, into a :class:`~bulk.ledger.index.ResumeIndex`),
:func:`read_records` (every record as a dict), :func:`usable_end`, and the chunk parsing they
share. Reading follows two rules:

- the tail of the file that a crash may have torn (bytes after the last newline, and a last
  line that is not a JSON object) is ignored; :func:`usable_end` says where it starts, so the
  writer can cut it away before appending;
- any other line that is not a valid record is an error naming the file and the line.

A ledger's index saved beside it (:mod:`~bulk.ledger.index_file`) is loaded when it is
valid, and only the records appended since are parsed. Without one, a million-row ledger must
still load in a second or two, so the file is parsed in chunks by polars with a fixed schema,
one chunk ahead in a thread, and folded into the index column-wise; run headers, rare and
nested, are found by polars and read by :mod:`json`. A chunk polars cannot parse, or that
fails a check, is parsed again line by line with :mod:`json`, which finds the line to blame;
both paths feed the same fold.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from bulk.errors import LedgerError
from bulk.ledger import index_file
from bulk.ledger.index import ResumeIndex
from bulk.ledger.records import (
    INTENT_CODE,
    ROW_LIMIT,
    STATUS_VALUES,
    RunHeader,
    parse_run_header,
)
from bulk.models import Status
from bulk.polars_errors import ANY_POLARS_ERROR

__all__ = ["Scan", "read_records", "scan", "usable_end"]

_CHUNK = 2 << 20  # bytes parsed at once (two in flight): bounds the memory a load needs
_TAIL_BLOCK = 64 << 10
_STATUS_VALUES = list(STATUS_VALUES)  # a list, as polars' is_in takes it

_SCHEMA: dict[str, Any] = {
    "kind": pl.String,
    "lane": pl.String,
    "name": pl.String,
    "status": pl.String,
    "digest": pl.String,
    "row": pl.Int64,
    "code": pl.String,
    "ambiguous": pl.Boolean,
    "rate": pl.Float64,
    "cells": pl.String,
    "operation": pl.String,  # a rate record's, unless CreateConfigurationSet's
    "fingerprints": pl.String,  # a run header's: the scheme of its records' cells (last)
}
# polars decodes a lone surrogate escape as U+0000, json keeps it: such chunks take the slow path.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


_Parsed = tuple[pl.DataFrame, list[RunHeader]]  # a chunk's row/rate records, its run headers


@dataclass
class Scan:
    """A ledger file as read at open: its index, run headers, and where its usable part ends."""

    index: ResumeIndex = field(default_factory=ResumeIndex)
    runs: list[RunHeader] = field(default_factory=list)
    end: int = 0  # offset just past the last usable line; bytes beyond it are a torn tail
    size: int = 0
    start: int = 0  # where parsing started: the end of the prefix a saved index covered
    # The saved index, if it was damaged (and so not used): for a note to the user.
    damaged: index_file.Damaged | None = None


def scan(
    fd: int,
    path: Path,
    *,
    keep_names: bool = False,
    only_if_unsaved: bool = False,
    end: int | None = None,
) -> Scan:
    """Read the ledger open on ``fd`` (any read position; it is not moved) into a :class:`Scan`.

    Starts from the ledger's saved index if it is valid; if it is damaged, reads the ledger in
    full and says so in :attr:`Scan.damaged`. ``keep_names``: build an index that
    can be saved (:func:`bulk.ledger.writer.save_index`); with ``only_if_unsaved``, only when
    the saved index leaves enough of the ledger out to be worth saving again (the names cost
    memory). ``end``: read only the first ``end`` bytes, known to end with a whole record (a
    ledger being appended to), instead of finding where its usable part ends. Raises
    :class:`LedgerError` naming ``path`` and the line for a line that is not a valid record,
    other than a torn last line.
    """
    size = os.fstat(fd).st_size
    if end is None:
        end = usable_end(fd, size)
    result = _from_saved(fd, path, end, keep_names=keep_names, only_if_unsaved=only_if_unsaved)
    result.size = size
    with contextlib.closing(_parsed_chunks(fd, result.start, end, path)) as chunks:
        for offset, chunk, parsed in chunks:
            if parsed is None:
                parsed = _parse_slow(chunk, _count_lines(fd, offset) + 1, path)
            frame, runs = parsed
            result.runs.extend(runs)
            result.index.fold(frame)
    result.index.seal()
    return result


def _from_saved(fd: int, path: Path, end: int, *, keep_names: bool, only_if_unsaved: bool) -> Scan:
    """A scan of the prefix the saved index covers, or of nothing if it is not valid."""
    loaded = index_file.load(fd, path, end)
    if isinstance(loaded, index_file.Loaded):
        unsaved = end - loaded.end  # bytes: records are about the same size
        if only_if_unsaved and unsaved < end * index_file.UNSAVED_SHARE:
            keep_names = False
        try:
            index = ResumeIndex.from_image(loaded.image, keep_names=keep_names)
        except ValueError as error:
            loaded = index_file.Damaged(index_file.index_path(path), str(error))
        else:
            return Scan(index=index, runs=loaded.runs, end=end, start=loaded.end)
    return Scan(index=ResumeIndex(keep_names=keep_names), end=end, damaged=loaded)


def _parsed_chunks(
    fd: int, start: int, end: int, path: Path
) -> Generator[tuple[int, bytes, _Parsed | None], None, None]:
    """``(offset, chunk, fast parse or None)``, parsing one chunk ahead in a thread.

    polars parses without the GIL, so on two cores the parse of a chunk overlaps the fold of
    the one before it. At most two chunks are in memory at once.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-ledger") as pool:
        ahead: deque[tuple[int, bytes, Future[_Parsed | None]]] = deque()
        for offset, chunk in _chunks(fd, start, end, path):
            ahead.append((offset, chunk, pool.submit(_parse_fast, chunk)))
            if len(ahead) > 1:
                first, text, parsed = ahead.popleft()
                yield first, text, parsed.result()
        while ahead:
            first, text, parsed = ahead.popleft()
            yield first, text, parsed.result()


def usable_end(fd: int, size: int) -> int:
    """Offset where the torn tail of a ledger starts (``size`` if nothing is torn).

    Torn: the bytes after the last newline, and the last complete line if it is not a JSON
    object (a crash on some file systems leaves NUL bytes there). Every record is written
    with one ``write`` call, so nothing else can be torn by a crash.
    """
    newline = _rfind_newline(fd, size)
    if newline < 0:
        return 0
    start = _rfind_newline(fd, newline) + 1
    line = os.pread(fd, newline - start, start)
    if line.strip() and not isinstance(_loads(line), dict):
        return start
    return newline + 1


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every record of a ledger as a dict, in file order, without its torn tail.

    Meant for tests and reports; a resumed run uses :func:`scan`, which is much faster.
    """
    path = Path(path)
    try:
        file = path.open("rb")
    except OSError as error:
        raise LedgerError(f"cannot read ledger {path}: {error.strerror}") from error
    with file:
        end = usable_end(file.fileno(), os.fstat(file.fileno()).st_size)
        offset = 0
        for number, line in enumerate(file, 1):
            offset += len(line)
            if offset > end:
                return
            if line.strip():
                yield _record(line, number, path)


def _parse_fast(chunk: bytes) -> _Parsed | None:
    """Parse a chunk with polars; ``None`` if it cannot be parsed or fails a check."""
    if chunk.find(b"\\") >= 0 and _SURROGATE.search(chunk):  # find(1 byte) is a memchr
        return None
    try:
        frame = pl.read_ndjson(chunk, schema=_SCHEMA)
    except ANY_POLARS_ERROR:
        return None
    frame = _intents_as_records(frame)
    kind = pl.col("kind")
    status = pl.col("status")
    row = pl.col("row")
    bad_row = (
        kind.is_null()
        & status.is_not_null()
        & (
            pl.col("name").is_null()
            | pl.col("lane").is_null()
            | pl.col("digest").is_null()
            | row.is_null()
            | (row < 0)
            | (row >= ROW_LIMIT)
            | ~status.is_in(_STATUS_VALUES)
        )
    )
    unknown = kind.is_null() & status.is_null()
    checks = frame.select(
        bad=(bad_row | unknown).fill_null(False).any(), runs=(kind == "run").fill_null(False).sum()
    )
    if checks["bad"].item():
        return None
    if not checks["runs"].item():
        return frame, []
    # Run headers are rare and nested: polars only finds them, json reads them.
    lines = [line for line in chunk.split(b"\n") if line.strip()]
    if len(lines) != frame.height:  # polars skipped a line json would not
        return None
    runs = []
    for position in frame.select(pl.arg_where(kind == "run")).to_series().to_list():
        record = _loads(lines[position])
        header = parse_run_header(record) if isinstance(record, dict) else None
        if not isinstance(header, RunHeader):
            return None
        runs.append(header)
    return frame, runs


def _intents_as_records(frame: pl.DataFrame) -> pl.DataFrame:
    """Intent lines as what a resume reads them as: ambiguous ``failed`` records (see
    :func:`~bulk.ledger.records.intent_to_json`); a later record of the row supersedes it."""
    intent = (pl.col("kind") == "intent").fill_null(False)
    if not frame.select(intent.any()).item():
        return frame
    return frame.with_columns(
        kind=pl.when(intent).then(None).otherwise(pl.col("kind")),
        status=pl.when(intent).then(pl.lit(Status.FAILED.value)).otherwise(pl.col("status")),
        code=pl.when(intent).then(pl.lit(INTENT_CODE)).otherwise(pl.col("code")),
        ambiguous=pl.when(intent).then(True).otherwise(pl.col("ambiguous")),
    )


def _parse_slow(chunk: bytes, first_line: int, path: Path) -> _Parsed:
    """Parse a chunk line by line, raising :class:`LedgerError` at the first bad line."""
    columns: dict[str, list[Any]] = {name: [] for name in _SCHEMA}
    runs = []
    for number, line in enumerate(chunk.split(b"\n"), first_line):
        if not line.strip():
            continue
        record = _record(line, number, path)
        values = _columns(record)
        if isinstance(values, str):
            raise LedgerError(
                f"ledger {path} line {number} is not a valid bulk record ({values}); "
                "the file was edited or corrupted: restore it or pass --ledger NEW"
            )
        if isinstance(values, RunHeader):
            runs.append(values)
            # Kept in place, as the fast path keeps it: its scheme covers the records after it.
            scheme = record.get("fingerprints")
            scheme = scheme if isinstance(scheme, str) else None
            values = ("run", *([None] * (len(_SCHEMA) - 2)), scheme)
        for name, value in zip(_SCHEMA, values, strict=True):
            columns[name].append(value)
    # Names are keys: they go in as bytes, lone surrogates and all (a CSV decoded with
    # surrogateescape has them). Elsewhere polars' strings need valid UTF-8.
    columns["name"] = [_name_key(name) for name in columns["name"]]
    for name in ("kind", "lane", "status", "digest", "code", "fingerprints"):
        columns[name] = [_utf8(value) for value in columns[name]]
    return pl.DataFrame(columns, schema=_SCHEMA | {"name": pl.Binary}), runs


def _name_key(name: str | None) -> bytes | None:
    return None if name is None else name.encode("utf-8", "surrogatepass")


def _utf8(value: str | None) -> str | None:
    """``value`` with any lone surrogate replaced, so that polars can hold it."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _columns(record: dict[str, Any]) -> tuple[Any, ...] | RunHeader | str:
    """A record's values in ``_SCHEMA`` order, its run header, or why it is not valid."""
    kind = record.get("kind")
    if kind is not None:
        kind = kind if isinstance(kind, str) else json.dumps(kind)
        if kind == "run":
            return parse_run_header(record)
        if kind == "rate":
            lane, rate = record.get("lane"), record.get("rate")
            operation = record.get("operation")
            if not isinstance(lane, str) or not _is_number(rate):
                lane = rate = None  # malformed rate records are advisory: ignore them
            if not isinstance(operation, str):
                operation = None
            return (kind, lane, None, None, None, None, None, None, rate, None, operation, None)
        if kind != "intent":
            return (kind, *([None] * (len(_SCHEMA) - 1)))
        # An intent line: read as the row's record (see _intents_as_records).
        record = {**record, "status": Status.FAILED.value, "code": INTENT_CODE, "ambiguous": True}
    status = record.get("status")
    if status is None:
        return "neither 'kind' nor 'status'"
    if status not in _STATUS_VALUES:
        return f"unknown status {status!r}"
    name, lane, digest, row = (record.get(key) for key in ("name", "lane", "digest", "row"))
    code = record.get("code")
    for key, value in (("name", name), ("lane", lane), ("digest", digest)):
        if not isinstance(value, str):
            return f"{key!r} is not a string"
    if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < ROW_LIMIT:
        return "'row' is not a row number"
    if code is not None and not isinstance(code, str):
        return "'code' is not a string or null"
    ambiguous = record.get("ambiguous") is True
    cells = record.get("cells")
    if not isinstance(cells, str) or not cells.isascii():
        cells = None  # the row's fingerprint is a hint: without it the row is read in full
    return (None, lane, name, status, digest, row, code, ambiguous, None, cells, None, None)


def _record(line: bytes, number: int, path: Path) -> dict[str, Any]:
    record = _loads(line)
    if record is None:
        raise LedgerError(
            f"ledger {path} line {number} is not valid JSON; "
            "the file was edited or corrupted: restore it or pass --ledger NEW"
        )
    if not isinstance(record, dict):
        raise LedgerError(
            f"ledger {path} line {number} is not a JSON object; "
            "the file was edited or corrupted: restore it or pass --ledger NEW"
        )
    return record


def _loads(line: bytes) -> Any:
    """The JSON value of ``line``, or ``None`` if it is not valid JSON."""
    try:
        return json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _chunks(fd: int, start: int, end: int, path: Path) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` of consecutive whole-line chunks of ``[start, end)``."""
    offset = start
    while offset < end:
        chunk = os.pread(fd, min(_CHUNK, end - offset), offset)
        cut = chunk.rfind(b"\n")
        while cut < 0:
            # A line longer than a chunk: read on to its end (``end`` always follows a newline).
            more = os.pread(fd, min(_CHUNK, end - offset - len(chunk)), offset + len(chunk))
            if not more:
                raise LedgerError(f"ledger {path} changed while it was being read")
            if (found := more.rfind(b"\n")) >= 0:
                cut = len(chunk) + found
            chunk += more
        chunk = chunk[: cut + 1]
        yield offset, chunk
        offset += len(chunk)


def _count_lines(fd: int, end: int) -> int:
    """Newlines in ``[0, end)``: line numbers are only needed to blame a line, so counted late."""
    count = 0
    for offset in range(0, end, _CHUNK):
        count += os.pread(fd, min(_CHUNK, end - offset), offset).count(b"\n")
    return count


def _rfind_newline(fd: int, before: int) -> int:
    """Offset of the last newline before ``before``, or -1."""
    while before > 0:
        low = max(0, before - _TAIL_BLOCK)
        found = os.pread(fd, before - low, low).rfind(b"\n")
        if found >= 0:
            return low + found
        before = low
    return -1
