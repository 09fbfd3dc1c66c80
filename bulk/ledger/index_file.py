"""The resume index saved beside its ledger: a resume reads it instead of the whole ledger.

``tenants.csv.ledger.jsonl.index`` holds the :class:`~bulk.ledger.index_keys.IndexImage` of a
sealed :class:`~bulk.ledger.index.ResumeIndex` as it stood after the first ``end`` bytes of its
ledger, and the run headers of those bytes. This module owns that file: its format, when it is
valid (:func:`load`, which the ledger's reader calls), when it is worth writing again
(:func:`worth_saving`), and writing it (:func:`save`, which the ledger's writer calls). A run
that finds it valid loads it and parses only the records appended since; a million settled
rows then load in a fraction of a second instead of parsing 260 MB of JSON. It is a cache:
deleting it loses nothing, and anything wrong with it (missing, torn, written for other bytes,
another format) only means the ledger is read in full.

Valid means: the right magic and format, every section within the file and matching its
CRC-32, and the ledger's first ``end`` bytes as they were when it was saved: the same CRC-32,
and the same hash of their first and last 64 KiB. The ledger is append-only, so a ledger
that grew since matches; one cut shorter than ``end``, replaced, or edited does not (a
tenth of a second to check a million records, against 1.5 s to parse them).

Layout: the magic line; the sections, each 8-byte aligned: the per-record arrays as native
``uint32``, the decoded digests, and two Arrow IPC frames (the fingerprint table and the
keys' latest records); the JSON header, which lists each section's offset, length and
CRC-32; then the header's offset and length, 8 bytes little-endian each. The file is
memory-mapped: what a run never reads stays on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import mmap
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bulk.errors import LedgerError
from bulk.ledger.index_keys import ENTRIES_SCHEMA, UNCHANGED_SCHEMA, IndexImage
from bulk.ledger.records import RunHeader
from bulk.models import Destination
from bulk.polars_errors import ANY_POLARS_ERROR, POLARS_ERRORS

__all__ = [
    "MIN_RECORDS",
    "UNSAVED_SHARE",
    "Loaded",
    "index_path",
    "load",
    "save",
    "worth_saving",
]

MAGIC = b"bulk resume index\n"
FORMAT = 1
# Ledgers with fewer row records than this are read in full: it takes well under a second.
MIN_RECORDS = 50_000
# A saved index is saved again when at least this share of the ledger is not in it.
UNSAVED_SHARE = 1 / 8
_PROBE = 64 << 10  # ledger bytes hashed at each end of the covered prefix
_BLOCK = 1 << 20  # bytes read at a time to check a section's CRC
_ALIGN = 8
_SECTIONS = ("meta", "rows", "blob", "unchanged", "entries")
# What a failed save raises: polars sees a full disk too, when it writes a frame.
_SAVE_ERRORS: tuple[type[BaseException], ...] = (OSError, *POLARS_ERRORS)


@dataclass(frozen=True)
class Loaded:
    """A valid index file: the index image, the run headers and the ledger bytes it covers."""

    image: IndexImage
    runs: list[RunHeader]
    end: int


def worth_saving(records: int, covered: int) -> bool:
    """Whether a ledger of ``records`` row records, ``covered`` of them by its saved index, is
    worth saving the index of: it is big, and much of it would be parsed again otherwise."""
    return records >= MIN_RECORDS and records - covered >= records * UNSAVED_SHARE


def index_path(ledger: Path) -> Path:
    """Where the index of ``ledger`` is kept: beside it, named after it."""
    return ledger.with_name(ledger.name + ".index")


def load(ledger_fd: int, ledger: Path, usable_end: int) -> Loaded | None:
    """The index saved for a prefix of the ledger open on ``ledger_fd``; ``None`` if there is
    no valid one (see the module's docstring) for a prefix within ``usable_end``."""
    try:
        fd = os.open(index_path(ledger), os.O_RDONLY)
    except OSError:
        return None
    try:
        return _load(fd, index_path(ledger), ledger_fd, usable_end)
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return None
    finally:
        os.close(fd)


def save(
    ledger_fd: int, ledger: Path, image: IndexImage, end: int, runs: Sequence[RunHeader]
) -> bool:
    """Save ``image`` (of the index of the ledger's first ``end`` bytes, whose run headers
    are ``runs``) beside the ledger, for :func:`load` to hand back.

    Written to a temporary file, then renamed over the old one: a reader sees the old file
    or the new one, and a crash leaves at worst a file that fails its checks (or a temporary
    file, which the next save removes). Returns whether it was saved; a failure (a full disk,
    a read-only directory) is not an error.
    """
    path = index_path(ledger)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove_stale(path)
    try:
        sections: dict[str, bytes | memoryview | pl.DataFrame] = {
            "meta": image.meta,
            "rows": image.rows,
            "blob": image.blob,
            "unchanged": image.unchanged,
            "entries": image.entries(),
        }
        header: dict[str, Any] = {
            "format": FORMAT,
            "byteorder": sys.byteorder,
            "ledger": {"end": end, "probe": _probe(ledger_fd, end)},
            "records": len(image.meta) // 4,
            "width": image.width,
            "odd": {str(pos): digest for pos, digest in image.odd.items()},
            "codes": image.codes,
            "invalid_rows": image.invalid_rows,
            "rates": image.rates,
            "lanes": image.lanes,
            "length": image.length,
            "counts": image.counts,
            "meta": {"runs": [_run_fields(run) for run in runs]},
        }
        with open(temporary, "w+b") as file:
            file.write(MAGIC)
            placed = {}
            for name, data in sections.items():
                offset = _aligned(file.tell())
                file.seek(offset)
                if isinstance(data, pl.DataFrame):
                    data.write_ipc(file, compression="uncompressed")
                else:
                    file.write(data)
                file.flush()
                size = file.tell() - offset
                placed[name] = [offset, size, _crc(file.fileno(), offset, size)]
            header["sections"] = placed
            encoded = json.dumps(header, separators=(",", ":")).encode()
            at = file.tell()
            file.write(encoded + at.to_bytes(8, "little") + len(encoded).to_bytes(8, "little"))
        os.replace(temporary, path)
    except _SAVE_ERRORS:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return False
    return True


def _remove_stale(path: Path) -> None:
    """Remove the temporary files of saves that a killed process left beside ``path``.

    The caller holds the ledger's exclusive lock, so no other save of this index is running.
    """
    prefix = f".{path.name}."
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            name = entry.name  # .NAME.index.<pid>.tmp
            if (
                name.startswith(prefix)
                and name.endswith(".tmp")
                and name[len(prefix) : -4].isdigit()
            ):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _load(fd: int, path: Path, ledger_fd: int, usable_end: int) -> Loaded | None:
    size = os.fstat(fd).st_size
    if size < len(MAGIC) + 16 or os.pread(fd, len(MAGIC), 0) != MAGIC:
        return None
    footer = os.pread(fd, 16, size - 16)
    at, length = int.from_bytes(footer[:8], "little"), int.from_bytes(footer[8:], "little")
    if at < len(MAGIC) or at + length != size - 16:
        return None
    header = json.loads(os.pread(fd, length, at))
    if header["format"] != FORMAT or header["byteorder"] != sys.byteorder:
        return None
    end = header["ledger"]["end"]
    if not isinstance(end, int) or not 0 < end <= usable_end:
        return None
    if not _prefix_matches(ledger_fd, end, header["ledger"]["probe"]):
        return None
    sections: dict[str, tuple[int, int]] = {}
    for name in _SECTIONS:
        offset, section_size, crc = header["sections"][name]
        if offset < len(MAGIC) or section_size < 0 or offset + section_size > at:
            return None
        if _crc(fd, offset, section_size) != crc:
            return None
        sections[name] = (offset, section_size)
    mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    view = memoryview(mapped)

    def section(name: str) -> memoryview:
        first, section_size = sections[name]
        return view[first : first + section_size]

    # Read, not mapped: it is all read now, and mapped pages would stay in the run's memory.
    first, section_size = sections["unchanged"]
    unchanged = _frame(memoryview(os.pread(fd, section_size, first)))
    records = header["records"]
    if not isinstance(records, int) or len(section("meta")) != 4 * records:
        return None
    if unchanged is None or dict(unchanged.schema) != UNCHANGED_SCHEMA:
        return None
    image = IndexImage(
        meta=section("meta"),
        rows=section("rows"),
        blob=section("blob"),
        width=int(header["width"]),
        odd={int(pos): str(digest) for pos, digest in header["odd"].items()},
        codes=[None if code is None else str(code) for code in header["codes"]],
        invalid_rows={
            str(lane): [(str(name), str(digest), int(row)) for name, digest, row in rows]
            for lane, rows in header["invalid_rows"].items()
        },
        rates={str(lane): float(rate) for lane, rate in header["rates"].items()},
        lanes=[str(lane) for lane in header["lanes"]],
        length=int(header["length"]),
        counts={str(status): int(n) for status, n in header["counts"].items()},
        unchanged=unchanged,
        entries=_entries_reader(mapped, sections["entries"], path),
    )
    meta = header["meta"]
    runs = _runs(meta.get("runs")) if isinstance(meta, dict) else None
    if runs is None:
        return None
    return Loaded(image=image, runs=runs, end=end)


def _run_fields(run: RunHeader) -> list[str | None]:
    """How a run header is kept in the file: its input file name and target, as a list."""
    target = run.target
    return [run.input, target.service, target.region, target.profile, target.endpoint]


def _runs(saved: Any) -> list[RunHeader] | None:
    """The run headers :func:`_run_fields` kept, or ``None`` if they are malformed."""
    if not isinstance(saved, list):
        return None
    runs = []
    for fields in saved:
        if not isinstance(fields, list) or len(fields) != 5:
            return None
        source, service, region, profile, endpoint = fields
        if not all(isinstance(value, str) for value in (source, service, region)):
            return None
        if not all(value is None or isinstance(value, str) for value in (profile, endpoint)):
            return None
        runs.append(
            RunHeader(source, Destination(service, region, profile=profile, endpoint=endpoint))
        )
    return runs


def _entries_reader(
    mapped: mmap.mmap, section: tuple[int, int], path: Path
) -> Callable[[], pl.DataFrame]:
    """Read the entries when first needed (a resume that skips every row never does).

    polars copies them: the mapped pages are dropped from the run's memory once read.
    """
    first, size = section

    def read() -> pl.DataFrame:
        with memoryview(mapped) as view:
            frame = _frame(view[first : first + size])
        page = first - first % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(mmap.MADV_DONTNEED, page, first + size - page)
        if frame is None or dict(frame.schema) != ENTRIES_SCHEMA:
            # Its CRC matched at load: only a file written by something else gets here.
            raise LedgerError(f"resume index {path} cannot be read; delete it and run again")
        return frame

    return read


def _frame(data: memoryview) -> pl.DataFrame | None:
    try:
        return pl.read_ipc(io.BytesIO(data))
    except ANY_POLARS_ERROR:
        return None


def _probe(ledger_fd: int, end: int) -> str:
    """What the ledger's first ``end`` bytes must still be (see :func:`_prefix_matches`)."""
    return f"{_ends(ledger_fd, end)} {_crc(ledger_fd, 0, end):08x}"


def _prefix_matches(ledger_fd: int, end: int, probe: object) -> bool:
    """Whether the ledger's first ``end`` bytes are still those ``probe`` was made from: the
    hash of their ends first (cheap), then the CRC-32 of all of them."""
    if not isinstance(probe, str):
        return False
    ends, _, crc = probe.partition(" ")
    return ends == _ends(ledger_fd, end) and crc == f"{_crc(ledger_fd, 0, end):08x}"


def _ends(ledger_fd: int, end: int) -> str:
    """A hash of ``end`` and of the first and last ``_PROBE`` bytes before it."""
    digest = hashlib.sha256(str(end).encode())
    digest.update(os.pread(ledger_fd, min(end, _PROBE), 0))
    low = max(0, end - _PROBE)
    digest.update(os.pread(ledger_fd, end - low, low))
    return digest.hexdigest()


def _crc(fd: int, offset: int, size: int) -> int:
    crc = 0
    for at in range(offset, offset + size, _BLOCK):
        crc = zlib.crc32(os.pread(fd, min(_BLOCK, offset + size - at), at), crc)
    return crc


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN
