"""The resume index saved beside its ledger: a resume reads it instead of the whole ledger.

``tenants.csv.ledger.jsonl.index`` holds the :class:`~bulk.ledger.index_keys.IndexImage` of a
sealed :class:`~bulk.ledger.index.ResumeIndex` as it stood after the first ``end`` bytes of its
ledger, and the run headers of those bytes. This module owns that file: its format, when it is
valid (:func:`load`, which the ledger's reader calls), when it is worth writing again
(:func:`worth_saving`), and writing it (:func:`save`, which the ledger's writer calls). A run
that finds it valid loads it and parses only the records appended since; a million settled
rows then load in a fraction of a second instead of parsing 260 MB of JSON. It is a cache:
deleting it loses nothing, and anything wrong with it only means the ledger is read in full
(and the index saved again). :func:`load` tells two kinds of wrong apart: an index that is
not for this ledger's bytes or this version (missing, saved before the ledger was cut,
replaced or edited, another format, byte order or fingerprint scheme) is ``None``, the
ordinary case; one that fails its own checks (torn, truncated, garbage, a value of the wrong
type, a section that fails its CRC) is :class:`Damaged`, which the run notes once.

Valid means: the right magic; a header whose CRC-32 matches, whose every value has the type
and shape :func:`save` writes, with the format, byte order and fingerprint scheme of this
version; every section within the file, of the size the header implies and matching its
CRC-32; and the ledger's first ``end`` bytes as they were when it was saved: the same CRC-32,
and the same hash of their first and last 64 KiB. The ledger is append-only, so a ledger
that grew since matches; one cut shorter than ``end``, replaced, or edited does not (a
tenth of a second to check a million records, against 1.5 s to parse them). Loading never
raises: any error while loading (a polars panic included) makes the index :class:`Damaged`.

Layout: the magic line; the sections, each 8-byte aligned: the per-record arrays as native
``uint32``, the decoded digests, and two Arrow IPC frames (the fingerprint table and the
keys' latest records); the JSON header, which lists each section's offset, length and
CRC-32; then the header's offset, length and CRC-32, 8 bytes little-endian each. The file is
memory-mapped: what a run never reads stays on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import mmap
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import polars as pl

from bulk.errors import LedgerError
from bulk.ledger.index_keys import ENTRIES_SCHEMA, UNCHANGED_SCHEMA, IndexImage
from bulk.ledger.records import FINGERPRINTS, RunHeader
from bulk.models import Destination
from bulk.polars_errors import ANY_POLARS_ERROR, POLARS_ERRORS

__all__ = [
    "MIN_RECORDS",
    "UNSAVED_SHARE",
    "Damaged",
    "Loaded",
    "index_path",
    "load",
    "save",
    "worth_saving",
]

# 2: the format in the magic line, the header's CRC-32 in the footer, the fingerprint scheme,
# a bit per record for a fingerprint (see bulk.ledger.index). Format 1's magic line had no
# number.
FORMAT = 2
_MAGIC_NAME = b"bulk resume index"
MAGIC = b"%s %d\n" % (_MAGIC_NAME, FORMAT)
_FOOTER = 24  # the header's offset, length and CRC-32, 8 bytes little-endian each
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


@dataclass(frozen=True)
class Damaged:
    """An index file that fails its own checks: ``reason`` says which, in a few words."""

    path: Path
    reason: str


class _Unfit(Exception):
    """The index is sound but not for this ledger's bytes or this version: not damage."""


class _Damage(Exception):
    """The index fails a check of its own: its message says which."""


def worth_saving(records: int, covered: int) -> bool:
    """Whether a ledger of ``records`` row records, ``covered`` of them by its saved index, is
    worth saving the index of: it is big, and much of it would be parsed again otherwise."""
    return records >= MIN_RECORDS and records - covered >= records * UNSAVED_SHARE


def index_path(ledger: Path) -> Path:
    """Where the index of ``ledger`` is kept: beside it, named after it."""
    return ledger.with_name(ledger.name + ".index")


def load(ledger_fd: int, ledger: Path, usable_end: int) -> Loaded | Damaged | None:
    """The index saved for a prefix of the ledger open on ``ledger_fd`` within ``usable_end``.

    ``None`` if there is none for it (missing, saved for other bytes, by another version),
    :class:`Damaged` if the file fails its own checks (see the module's docstring). Never
    raises: whatever goes wrong while loading, the ledger can still be read in full.
    """
    path = index_path(ledger)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as error:
        return Damaged(path, f"cannot be opened: {error.strerror}")
    try:
        return _load(fd, path, ledger_fd, usable_end)
    except _Unfit:
        return None
    except _Damage as damage:
        return Damaged(path, str(damage))
    except ANY_POLARS_ERROR as error:  # anything at all, a panic in polars included
        return Damaged(path, f"cannot be read ({type(error).__name__})")
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
            "fingerprints": FINGERPRINTS,
            "ledger": {"end": end, "probe": _probe(ledger_fd, end)},
            "records": len(image.meta) // 4,
            "width": image.width,
            "odd": {str(pos): digest for pos, digest in image.odd.items()},
            "codes": image.codes,
            "invalid_rows": image.invalid_rows,
            "rates": image.rates,
            "current_scheme": image.current_scheme,
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
            footer = (file.tell(), len(encoded), zlib.crc32(encoded))
            file.write(encoded + b"".join(n.to_bytes(8, "little") for n in footer))
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


def _load(fd: int, path: Path, ledger_fd: int, usable_end: int) -> Loaded:
    """The index in ``fd``; raises :class:`_Unfit` or :class:`_Damage` (or anything else, which
    :func:`load` takes for damage too)."""
    size = os.fstat(fd).st_size
    header, at = _header(fd, size)
    end, sections = _fit(header, at, ledger_fd, usable_end)
    records: int = header["records"]
    width: int = header["width"]
    expected = {"meta": 4 * records, "rows": 4 * records, "blob": width * records}
    for name, want in expected.items():
        if sections[name][1] != want:
            raise _Damage(f"its {name} section is not the size its header says")
    for name, (offset, section_size, crc) in sections.items():
        if _crc(fd, offset, section_size) != crc:
            raise _Damage(f"its {name} section fails its CRC-32")
    mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    view = memoryview(mapped)

    def section(name: str) -> memoryview:
        first, section_size, _ = sections[name]
        return view[first : first + section_size]

    # Read, not mapped: it is all read now, and mapped pages would stay in the run's memory.
    first, section_size, _ = sections["unchanged"]
    unchanged = _frame(memoryview(os.pread(fd, section_size, first)))
    if unchanged is None or dict(unchanged.schema) != UNCHANGED_SCHEMA:
        raise _Damage("its fingerprint table cannot be read")
    runs = _runs(header["meta"]["runs"])
    if runs is None:
        raise _Damage("its run headers are malformed")
    image = IndexImage(
        meta=section("meta"),
        rows=section("rows"),
        blob=section("blob"),
        width=width,
        odd={int(pos): digest for pos, digest in header["odd"].items()},
        codes=header["codes"],
        invalid_rows={
            lane: [(name, digest, row) for name, digest, row in rows]
            for lane, rows in header["invalid_rows"].items()
        },
        rates={lane: float(rate) for lane, rate in header["rates"].items()},
        current_scheme=header["current_scheme"],
        lanes=header["lanes"],
        length=header["length"],
        counts=header["counts"],
        unchanged=unchanged,
        entries=_entries_reader(mapped, sections["entries"], len(header["lanes"]), records, path),
    )
    return Loaded(image=image, runs=runs, end=end)


def _header(fd: int, size: int) -> tuple[dict[str, Any], int]:
    """The header of the file open on ``fd`` and its offset, its CRC-32 checked."""
    first = os.pread(fd, 64, 0).partition(b"\n")[0]
    if first != MAGIC[:-1]:
        number = first.removeprefix(_MAGIC_NAME + b" ")
        if first == _MAGIC_NAME or (number != first and number.isdigit()):
            raise _Unfit  # another format's: format 1 had no number
        raise _Damage("it is not a bulk resume index (torn, truncated or overwritten)")
    if size < len(MAGIC) + _FOOTER:
        raise _Damage("it is truncated")
    footer = os.pread(fd, _FOOTER, size - _FOOTER)
    at, length, crc = (int.from_bytes(footer[i : i + 8], "little") for i in (0, 8, 16))
    if at < len(MAGIC) or at + length != size - _FOOTER:
        raise _Damage("its footer does not point at its header (torn or truncated)")
    encoded = os.pread(fd, length, at)
    if zlib.crc32(encoded) != crc:
        raise _Damage("its header fails its CRC-32")
    try:
        header = json.loads(encoded)
    except ValueError:
        raise _Damage("its header is not JSON") from None
    if not isinstance(header, dict):
        raise _Damage("its header is not a JSON object")
    return header, at


def _fit(
    header: dict[str, Any], at: int, ledger_fd: int, usable_end: int
) -> tuple[int, dict[str, tuple[int, int, int]]]:
    """The ledger bytes the index covers and its sections, once the header has the shape
    :func:`save` writes (else :class:`_Damage`) and is for this version and this ledger
    (else :class:`_Unfit`)."""
    what = header.get("format")
    if not _is_int(what):
        raise _Damage("its header has no format number")
    if what != FORMAT:
        raise _Unfit  # another version's: not damage
    problem = _shape(header, at)
    if problem is not None:
        raise _Damage(f"its header {problem}")
    if header["byteorder"] != sys.byteorder or header["fingerprints"] != FINGERPRINTS:
        raise _Unfit
    end, probe = header["ledger"]["end"], header["ledger"]["probe"]
    if not 0 < end <= usable_end or not _prefix_matches(ledger_fd, end, probe):
        raise _Unfit  # saved for other bytes: the ledger was cut, replaced or edited since
    places = header["sections"]
    return end, {name: (places[name][0], places[name][1], places[name][2]) for name in _SECTIONS}


def _shape(header: dict[str, Any], at: int) -> str | None:
    """What is wrong with the shape of a header :func:`save` wrote, or ``None``; ``at``: where
    the header starts (every section ends before it)."""
    checks: list[tuple[str, Callable[[Any], bool]]] = [
        ("byteorder", lambda v: v in ("little", "big")),
        ("fingerprints", lambda v: isinstance(v, str)),
        (
            "ledger",
            lambda v: (
                isinstance(v, dict) and _is_int(v.get("end")) and isinstance(v.get("probe"), str)
            ),
        ),
        ("records", lambda v: _is_int(v) and v >= 0),
        ("width", lambda v: _is_int(v) and 0 <= v <= 128),
        ("odd", lambda v: _is_map(v, lambda pos: pos.isdigit(), _is_str)),
        ("codes", lambda v: _is_list(v, _is_code) and v[:1] == [None]),
        (
            "invalid_rows",
            lambda v: _is_map(v, _is_str, lambda rows: _is_list(rows, _is_invalid_row)),
        ),
        ("rates", lambda v: _is_map(v, _is_str, _is_rate)),
        ("current_scheme", lambda v: isinstance(v, bool)),
        ("lanes", lambda v: _is_list(v, _is_str)),
        ("length", lambda v: _is_int(v) and v >= 0),
        ("counts", lambda v: _is_map(v, _is_str, lambda n: _is_int(n) and n >= 0)),
        ("meta", lambda v: isinstance(v, dict) and isinstance(v.get("runs"), list)),
        (
            "sections",
            lambda v: (
                isinstance(v, dict)
                and sorted(v) == sorted(_SECTIONS)
                and all(_is_section(place, at) for place in v.values())
            ),
        ),
    ]
    for key, valid in checks:
        if key not in header:
            return f"has no {key!r}"
        if not valid(header[key]):
            return f"has a malformed {key!r}"
    records: int = header["records"]
    if any(int(pos) >= records for pos in header["odd"]):
        return "has a digest for a record it does not hold"
    return None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: Any) -> TypeGuard[str]:
    return isinstance(value, str)


def _is_code(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_rate(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0


def _is_invalid_row(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and _is_str(value[0])
        and _is_str(value[1])
        and _is_int(value[2])
    )


def _is_list(value: Any, item: Callable[[Any], bool]) -> bool:
    return isinstance(value, list) and all(item(element) for element in value)


def _is_map(value: Any, key: Callable[[str], bool], item: Callable[[Any], bool]) -> bool:
    return isinstance(value, dict) and all(key(k) and item(v) for k, v in value.items())


def _is_section(place: Any, at: int) -> bool:
    """Whether ``place`` is ``[offset, size, crc]`` within the file's sections."""
    if not (isinstance(place, list) and len(place) == 3 and all(_is_int(n) for n in place)):
        return False
    offset, size, crc = place
    return bool(len(MAGIC) <= offset and size >= 0 and offset + size <= at and 0 <= crc < 1 << 32)


def _run_fields(run: RunHeader) -> list[str | None]:
    """How a run header is kept in the file: its input file name and target, as a list."""
    target = run.target
    fields = [run.input, target.service, target.region, target.profile, target.endpoint]
    return fields if target.role_arn is None else [*fields, target.role_arn]


def _runs(saved: Any) -> list[RunHeader] | None:
    """The run headers :func:`_run_fields` kept, or ``None`` if they are malformed."""
    if not isinstance(saved, list):
        return None
    runs = []
    for fields in saved:
        if not isinstance(fields, list) or len(fields) not in (5, 6):
            return None
        source, service, region, profile, endpoint, *role = fields
        role_arn = role[0] if role else None
        if not all(isinstance(value, str) for value in (source, service, region)):
            return None
        if not all(value is None or isinstance(value, str) for value in (profile, endpoint)):
            return None
        if not isinstance(role_arn, str | None):
            return None
        target = Destination(service, region, profile=profile, endpoint=endpoint, role_arn=role_arn)
        runs.append(RunHeader(source, target))
    return runs


def _entries_reader(
    mapped: mmap.mmap, section: tuple[int, int, int], lanes: int, records: int, path: Path
) -> Callable[[], pl.DataFrame]:
    """Read the entries when first needed (a resume that skips every row never does).

    polars copies them: the mapped pages are dropped from the run's memory once read.
    ``lanes`` and ``records``: how many lanes and records the header holds, which the
    entries' lane ids and positions must be below.
    """
    first, size, _ = section

    def read() -> pl.DataFrame:
        with memoryview(mapped) as view:
            frame = _frame(view[first : first + size])
        page = first - first % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(mmap.MADV_DONTNEED, page, first + size - page)
        if not _entries_fit(frame, lanes, records):
            # Its CRC and its header's matched at load: only a file written by something
            # else than bulk gets here, and too late to read the ledger in full instead.
            raise LedgerError(f"resume index {path} cannot be read; delete it and run again")
        assert frame is not None
        return frame

    return read


def _entries_fit(frame: pl.DataFrame | None, lanes: int, records: int) -> bool:
    if frame is None or dict(frame.schema) != ENTRIES_SCHEMA:
        return False
    if not frame.height:
        return True
    return bool(frame["lane"].max() < lanes and frame["pos"].max() < records)  # type: ignore[operator]


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
