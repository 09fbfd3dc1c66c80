"""The resume index's sealed tables: its keys sorted, its counts, its fingerprint table, its image.

A (lane, name) is found by its 64-bit key, Python's hash of the pair, in an ascending array of
keys beside the position (in the ledger) of its latest record: a binary search per lookup
(:func:`find`). Sealing (:func:`seal`) makes those arrays from the records folded into a
:class:`~bulk.ledger.index.ResumeIndex`, with polars, a slice of the key space at a time, and
counts the statuses and makes the fingerprint table on the way. A sealed index is saved as an
:class:`IndexImage` (:mod:`~bulk.ledger.index_file` writes it) without its keys, which are
seeded per process: an image keeps each key's latest records with their names, and
:func:`keyed` makes the keys from them again.

Invariants: within a slice, records sort stably by key, so a key's latest record is its last
one; slice ``i`` holds only keys below those of slice ``i + 1``, so the slices concatenated
are sorted.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from bulk.models import Status

__all__ = [
    "ENTRIES_SCHEMA",
    "INVALID",
    "NAMES_SCHEMA",
    "PARTS_SCHEMA",
    "STATUSES",
    "UNCHANGED_SCHEMA",
    "IndexImage",
    "Keys",
    "Sealed",
    "find",
    "keyed",
    "seal",
    "sorted_keys",
    "writable",
]

#: Status ids, as a record's status is stored: its position here.
STATUSES: tuple[Status, ...] = tuple(Status)
#: The id of ``invalid``; ids above it are failed and deleted.
INVALID = STATUSES.index(Status.INVALID)
_SETTLED = (STATUSES.index(Status.CREATED), STATUSES.index(Status.EXISTS))
_STATUS_ENUM = pl.Enum([status.value for status in STATUSES])
#: Per folded record: its key, position, status id and input-row fingerprint (0 if none).
PARTS_SCHEMA = {"key": pl.Int64, "pos": pl.UInt32, "status": pl.UInt8, "fingerprint": pl.UInt64}
#: With names kept (to save an image), per position: the lane's id and the name.
NAMES_SCHEMA = {"pos": pl.UInt32, "lane": pl.UInt32, "name": pl.Binary}
#: The fingerprint table: see ResumeIndex.unchanged.
UNCHANGED_SCHEMA = {"fingerprint": pl.UInt64, "status": _STATUS_ENUM}
#: An image's entries: each key's latest records (one per family), in file order.
ENTRIES_SCHEMA = {
    "lane": pl.UInt32,
    "name": pl.Binary,
    "pos": pl.UInt32,
    "status": pl.UInt8,
    "fingerprint": pl.UInt64,
}
_TO_LIST = 1 << 16  # values converted to Python ints at a time, to bound the transient lists
_LAST = (pl.col("key") != pl.col("key").shift(-1)).fill_null(True)  # of its key, once sorted
_IS_INVALID = pl.col("status") == INVALID
_SLICE_BITS = 4
_SLICES = 1 << _SLICE_BITS  # the key space is sorted in this many slices


@dataclass(frozen=True)
class IndexImage:
    """A sealed :class:`~bulk.ledger.index.ResumeIndex` as plain data: what
    :mod:`bulk.ledger.index_file` saves.

    ``meta``, ``rows`` (native ``uint32`` each) and ``blob`` are bytes per position;
    ``entries`` gives, when called, each key's latest records (``ENTRIES_SCHEMA``, in file
    order), which the keys are made from. Its fingerprints are all of the scheme
    :data:`~bulk.ledger.records.FINGERPRINTS`; ``current_scheme``: whether the last run it
    covers made its fingerprints with that scheme (records after the image may be that run's).
    """

    meta: bytes | memoryview
    rows: bytes | memoryview
    blob: bytes | memoryview
    width: int
    odd: dict[int, str]
    codes: list[str | None]
    invalid_rows: dict[str, list[tuple[str, str, int]]]
    rates: dict[str, float]
    current_scheme: bool
    lanes: list[str]
    length: int
    counts: dict[str, int]
    unchanged: pl.DataFrame
    entries: Callable[[], pl.DataFrame]


@dataclass(frozen=True, slots=True)
class Keys:
    """A sealed index's lookup tables: per family, keys ascending beside their positions."""

    state_keys: array[int]  # keys with a record about the configuration set
    state_positions: array[int]  # the latest such record of each
    invalid_keys: array[int]  # keys with an ``invalid`` record
    invalid_positions: array[int]  # the latest such record of each


@dataclass(slots=True)
class Sealed:
    """A sealed index: its counts, its fingerprint table, and its keys once made."""

    length: int
    counts: dict[str, int]
    unchanged: pl.DataFrame
    keys: Keys | None  # None until made from an image's entries
    entries: pl.DataFrame | None  # with names kept: each key's latest records (see IndexImage)


def seal(parts: list[pl.DataFrame], names: list[pl.DataFrame] | None) -> Sealed:
    """Sort the keys of the folded ``parts`` (``PARTS_SCHEMA``, in file order; see
    :func:`sorted_keys`); count, and make the fingerprint table, on the way.

    ``names``: the folded names (``NAMES_SCHEMA``), to keep each key's latest records with
    theirs for an image; ``None`` if they were not kept. Both lists are emptied as they are
    used, so that what they hold is freed early.
    """
    records = pl.concat(parts) if parts else pl.DataFrame(schema=PARTS_SCHEMA)
    parts.clear()
    tally = [0] * len(STATUSES)
    settled: list[pl.DataFrame] = []
    latest: list[pl.DataFrame] = []
    named = names is not None

    def each(part: pl.DataFrame, state: pl.DataFrame, rejected: pl.DataFrame) -> None:
        for status, count in part.filter(_LAST)["status"].value_counts().iter_rows():
            tally[status] += count
        if named:
            latest.extend((state.drop("key"), rejected.drop("key")))
        settled.append(
            state.filter(pl.col("status").is_in(_SETTLED) & (pl.col("fingerprint") != 0)).select(
                "fingerprint", "status"
            )
        )

    keys = sorted_keys(records, each)
    del records
    found = pl.concat(settled, rechunk=True)
    settled.clear()
    slice_of = _slice("fingerprint", signed=False)
    unchanged = pl.concat(
        [found.filter(slice_of == i).sort("fingerprint") for i in range(_SLICES)],
        rechunk=True,
    ).select(
        "fingerprint",
        status=pl.col("status").replace_strict(
            dict(enumerate(_STATUS_ENUM.categories.to_list())), return_dtype=_STATUS_ENUM
        ),
    )
    return Sealed(
        length=sum(tally),
        counts={status.value: n for status, n in zip(STATUSES, tally, strict=True)},
        unchanged=unchanged,
        keys=keys,
        entries=_entries(latest, names) if names is not None else None,
    )


def _entries(latest: list[pl.DataFrame], names: list[pl.DataFrame]) -> pl.DataFrame:
    """Each key's latest records with their lanes and names, in file order."""
    entries = pl.concat(latest).sort("pos")
    positions = entries["pos"]
    found: list[pl.DataFrame] = [pl.DataFrame(schema={"lane": pl.UInt32, "name": pl.Binary})]
    names.reverse()
    while names:  # in file order; popped, so that each is freed once its names are taken
        part = names.pop()
        if not part.height:
            continue
        low = positions.search_sorted(part["pos"][0], side="left")
        high = positions.search_sorted(part["pos"][-1], side="right")
        at = part["pos"].search_sorted(positions.slice(low, high - low))
        found.append(part.select(pl.col("lane", "name").gather(at)))
    return pl.concat([entries, pl.concat(found)], how="horizontal").select(list(ENTRIES_SCHEMA))


def keyed(entries: pl.DataFrame, lanes: list[str]) -> pl.DataFrame:
    """An image's entries as a part (``PARTS_SCHEMA``): each key's latest records stand for
    all of its. ``lanes``: the lane of each lane id.

    The names become Python strings a slice at a time, to bound the transient objects.
    """
    keys = []
    for start in range(0, entries.height, _TO_LIST):
        chunk = entries.slice(start, _TO_LIST)
        pairs = zip(chunk["lane"].to_list(), chunk["name"].to_list(), strict=True)
        hashes = [
            hash((lanes[lane], name.decode("utf-8", "surrogatepass"))) for lane, name in pairs
        ]
        keys.append(pl.Series(hashes, dtype=pl.Int64))
    key = pl.concat(keys) if keys else pl.Series(dtype=pl.Int64)
    return entries.select(list(PARTS_SCHEMA)[1:]).with_columns(key=key).select(list(PARTS_SCHEMA))


def sorted_keys(
    records: pl.DataFrame,
    each: Callable[[pl.DataFrame, pl.DataFrame, pl.DataFrame], None] | None = None,
) -> Keys:
    """Sort the keys and pick each one's latest records, a slice of the key space at a time
    (polars needs several times a frame's size to sort it: in slices, a few tens of MB).

    ``each(part, state, rejected)`` sees every slice: its records sorted by key, and the
    latest record about the set and the latest ``invalid`` one of each key in it.
    """
    state_keys, state_positions = array("q"), array("I")
    invalid_keys, invalid_positions = array("q"), array("I")
    for number in range(_SLICES):
        # The sort is stable: a key's records stay in file order, its latest one last.
        part = records.filter(_slice("key", signed=True) == number)
        part = part.sort("key", maintain_order=True)
        state = part.filter(~_IS_INVALID).filter(_LAST)
        rejected = part.filter(_IS_INVALID).filter(_LAST)
        _extend(state_keys, state["key"])
        _extend(state_positions, state["pos"])
        _extend(invalid_keys, rejected["key"])
        _extend(invalid_positions, rejected["pos"])
        if each is not None:
            each(part, state, rejected)
    return Keys(state_keys, state_positions, invalid_keys, invalid_positions)


def find(keys: array[int], positions: array[int], key: int) -> int | None:
    """The position beside ``key`` in the ascending ``keys``, or None."""
    i = bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        return positions[i]
    return None


def writable(values: array[int] | memoryview) -> array[int]:
    """An image's read-only ``uint32`` view as an array that can grow."""
    if isinstance(values, array):
        return values
    out = array("I")
    out.frombytes(values.cast("B"))
    return out


def _extend(out: array[int], values: pl.Series) -> None:
    """Append ``values`` to a compact array, converted to Python ints a slice at a time."""
    for start in range(0, values.len(), _TO_LIST):
        out.extend(values.slice(start, _TO_LIST).to_list())


def _slice(column: str, *, signed: bool) -> pl.Expr:
    """Which of ``_SLICES`` slices of its range a 64-bit ``column``'s value is in: its top bits.

    Slice ``i`` holds only values below those of slice ``i + 1``, signed or not.
    """
    top = pl.col(column) // (1 << (64 - _SLICE_BITS))  # a floor: -8..7 for Int64, 0..15 for UInt64
    return (top + _SLICES // 2 if signed else top).cast(pl.UInt8)
