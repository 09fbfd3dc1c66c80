"""What earlier runs recorded, and what a resumed run must still do: the resume index.

:func:`bulk.ledger_file.scan` reads a ledger into a :class:`ResumeIndex`; the engine asks it,
row by row, for the :class:`Prior` record of a (lane, name) or straight for the
:class:`Action` to take. The resume rules (DESIGN.md, "Ledger"): settled rows (created,
exists, invalid) are skipped; an invalid row only while its content (digest) is unchanged; a
created/exists row whose content changed is drift, reported and never re-sent; failed and
deleted rows are sent again.

A million rows must fit in under 200 MB, so each (lane, name) keeps one packed int in a
per-lane dict keyed by the name's UTF-8 bytes, and the rest lives in flat arrays indexed by
the record's position in the file: no Python object per record beyond the key and its int.
"""

from __future__ import annotations

import contextlib
import enum
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import polars as pl

from bulk.errors import LedgerError
from bulk.models import Lane, Status

__all__ = ["ROW_LIMIT", "Action", "Prior", "ResumeIndex"]

# A key's dict value packs ``row << 32 | position``; the record's status, ambiguity and code id
# live in ``_meta[position]`` as ``status | ambiguous << 3 | code_id << 4``.
_POS_BITS = 32
_POS_MASK = (1 << _POS_BITS) - 1
ROW_LIMIT = 1 << 32  # row numbers are in [0, ROW_LIMIT)
_CODE_LIMIT = 1 << 28
_STATUSES: tuple[Status, ...] = tuple(Status)
_STATUS_ID = {status.value: i for i, status in enumerate(_STATUSES)}
_AMBIGUOUS = 8
_INVALID = _STATUSES.index(Status.INVALID)  # ids above it are failed and deleted
_HEX = r"^(?:[0-9a-f]{2})+$"

_Names = dict[bytes, int] | None  # a lane's name -> packed record, if the lane has any


class Action(enum.StrEnum):
    """What a resumed run does with an input row, given what the ledger holds for it."""

    SEND = "send"  # never recorded, failed or deleted, or invalid and changed since
    SKIP = "skip"  # settled and unchanged
    DRIFT = "drift"  # created/exists, but the row's request changed since: report, never re-send


@dataclass(frozen=True, slots=True)
class Prior:
    """What an earlier run recorded for one (lane, name): a row record (see ResumeIndex.get).

    ``ambiguous`` is true on a ``failed`` record when an attempt may have created the
    configuration set without the run learning it (timeout, 5xx, dropped connection): an
    ``AlreadyExists`` answer on a resumed run then means ``created``, not ``exists``.
    """

    row: int
    status: Status
    digest: str
    code: str | None = None
    ambiguous: bool = False

    def action(self, digest: str) -> Action:
        """Decide a row whose request now hashes to ``digest`` (the resume rules of DESIGN.md)."""
        if self.status is Status.CREATED or self.status is Status.EXISTS:
            return Action.SKIP if digest == self.digest else Action.DRIFT
        if self.status is Status.INVALID and digest == self.digest:
            return Action.SKIP
        return Action.SEND


class ResumeIndex:
    """What earlier runs recorded, per (lane, name), and the learned rate per lane.

    Built by :func:`scan`; an empty index (``ResumeIndex()``) stands for a new ledger. Lookups
    take a :class:`~bulk.models.Lane` or its string form (``"sesv2/default/us-east-1"``).

    Two records are kept per (lane, name): the latest about the configuration set (``created``,
    ``exists``, ``failed``, ``deleted``) and the latest ``invalid`` one, which is about an
    input row, not the set. Without a digest a lookup answers the later of the two; with the
    row's digest it answers the record about that very content, so that a duplicate row's
    ``invalid`` record does not hide the original row's ``created`` one, and a row edited into
    an invalid state and back is still known to be created.

    Several rows of one file can share a name (duplicates, rows without a name): each row
    recorded ``invalid`` is remembered on its own, by row number and content, for
    :meth:`recorded_invalid`.
    """

    def __init__(self) -> None:
        self._state: dict[str, dict[bytes, int]] = {}  # lane -> name -> packed, set records
        self._invalid: dict[str, dict[bytes, int]] = {}  # lane -> name -> packed, invalid ones
        # lane -> (name, digest, row) of every invalid record; invalid rows are few: a set.
        self._invalid_rows: dict[str, set[tuple[bytes, str, int]]] = {}
        self._meta = array("I")
        self._fingerprints = array("Q")  # position -> the input row's fingerprint, 0 if none
        self._codes: list[str | None] = [None]
        self._code_ids: dict[str, int] = {}
        self._width = 0  # bytes per digest in _blob; 0 until a hex digest is seen
        self._blob = bytearray()  # hex digests, decoded, one fixed-width slot per position
        self._odd: dict[int, str] = {}  # position -> digest that is not hex of _width bytes
        self._rates: dict[str, float] = {}
        self._lane_keys: dict[Lane, str] = {}
        # _dicts() cache, one attribute so that a reader in another thread sees a whole triple.
        self._last: tuple[Lane | str | None, _Names, _Names] = (None, None, None)

    def get(self, lane: Lane | str, name: str, digest: str | None = None) -> Prior | None:
        """What earlier runs recorded for ``name`` in ``lane``; ``None`` if nothing.

        Without ``digest``: the latest record. With the row's current ``digest``: the latest
        ``invalid`` record if it is about this content, else the latest record about the
        configuration set, else the latest ``invalid`` record.
        """
        packed = self._packed(lane, name, digest)
        return None if packed is None else self._prior(packed)

    def action(self, lane: Lane | str, name: str, digest: str) -> Action:
        """What a resumed run does with the row ``name`` whose request hashes to ``digest``.

        Same answer as ``get(lane, name, digest).action(digest)``, without building a Prior.
        """
        packed = self._packed(lane, name, digest)
        if packed is None:
            return Action.SEND
        pos = packed & _POS_MASK
        status = self._meta[pos] & 7
        if status > _INVALID:  # failed, deleted
            return Action.SEND
        width = self._width
        if self._odd and pos in self._odd:
            same = self._odd[pos] == digest
        else:
            same = self._blob[pos * width : (pos + 1) * width].hex() == digest
        if same:
            return Action.SKIP
        return Action.SEND if status == _INVALID else Action.DRIFT

    def recorded_invalid(self, lane: Lane | str, name: str, digest: str, row: int) -> bool:
        """Whether an earlier run recorded data row ``row`` invalid with this very content.

        Unlike :meth:`get`, which answers the latest ``invalid`` record of a name only, this
        knows each of several rows sharing a name (duplicates, rows without a name): such a
        row stays settled while it is unchanged, whatever was recorded for the others since,
        and a row identical to another gets a record of its own.
        """
        recorded = self._invalid_rows.get(self._key(lane))
        key = (name.encode("utf-8", "surrogatepass"), digest, row)
        return recorded is not None and key in recorded

    def ambiguous(self, lane: Lane | str, name: str) -> bool:
        """Whether the latest record about this configuration set is an ambiguous failure."""
        state = self._state.get(self._key(lane))
        packed = None if state is None else state.get(name.encode("utf-8", "surrogatepass"))
        return packed is not None and bool(self._meta[packed & _POS_MASK] & _AMBIGUOUS)

    def learned_rate(self, lane: Lane | str) -> float | None:
        """The adaptive limiter's last recorded rate for ``lane`` (requests/s), if any."""
        return self._rates.get(self._key(lane))

    def items(self) -> Iterator[tuple[str, str, Prior]]:
        """Every (lane, name, latest record), lane by lane in first-seen order."""
        for lane in dict.fromkeys([*self._state, *self._invalid]):
            state = self._state.get(lane, {})
            invalid = self._invalid.get(lane, {})
            for name, packed in state.items():
                other = invalid.get(name)
                latest = packed if other is None else self._choose(packed, other, None)
                yield lane, name.decode("utf-8", "surrogatepass"), self._prior(latest)
            for name, packed in invalid.items():
                if name not in state:
                    yield lane, name.decode("utf-8", "surrogatepass"), self._prior(packed)

    def __len__(self) -> int:
        total = sum(len(names) for names in self._state.values())
        for lane, invalid in self._invalid.items():
            state = self._state.get(lane, {})
            total += sum(1 for name in invalid if name not in state)
        return total

    @cached_property
    def counts(self) -> dict[str, int]:
        """How many (lane, name) keys have each status as their latest record."""
        tally = [0] * len(_STATUSES)
        meta = self._meta
        for names in self._state.values():
            for packed in names.values():
                tally[meta[packed & _POS_MASK] & 7] += 1
        for lane, invalid in self._invalid.items():
            state = self._state.get(lane, {})
            for name, packed in invalid.items():
                earlier = state.get(name)
                if earlier is not None:
                    if earlier & _POS_MASK > packed & _POS_MASK:
                        continue
                    tally[meta[earlier & _POS_MASK] & 7] -= 1
                tally[_INVALID] += 1
        return {status.value: n for status, n in zip(_STATUSES, tally, strict=True)}

    @cached_property
    def unchanged(self) -> pl.DataFrame:
        """The fingerprints of input rows a resumed run may skip unread, sorted, with statuses.

        One row per (lane, name) whose latest record about the configuration set is
        ``created`` or ``exists`` and carries the fingerprint of the input row it was made
        from: an input row with that very fingerprint (same row number, same cells, same
        defaults) would validate to the same request, so the decision is already known.
        Columns ``fingerprint`` (UInt64, ascending) and ``status`` (``Status`` values).
        """
        meta, fingerprints = self._meta, self._fingerprints
        settled = (_STATUS_ID[Status.CREATED.value], _STATUS_ID[Status.EXISTS.value])
        found: list[int] = []
        codes: list[int] = []
        for names in self._state.values():
            for packed in names.values():
                pos = packed & _POS_MASK
                status = meta[pos] & 7
                if status in settled and fingerprints[pos]:
                    found.append(fingerprints[pos])
                    codes.append(status)
        frame = pl.DataFrame(
            {"fingerprint": found, "code": codes},
            schema={"fingerprint": pl.UInt64, "code": pl.UInt8},
        )
        return frame.sort("fingerprint").select(
            "fingerprint",
            status=pl.col("code").replace_strict(
                {i: status.value for i, status in enumerate(_STATUSES)}, return_dtype=pl.String
            ),
        )

    # -- lookups -------------------------------------------------------------------------------

    def _key(self, lane: Lane | str) -> str:
        if isinstance(lane, str):
            return lane
        key = self._lane_keys.get(lane)
        if key is None:
            key = self._lane_keys[lane] = str(lane)
        return key

    def _dicts(self, lane: Lane | str) -> tuple[_Names, _Names]:
        """The lane's two name dicts; remembered, as the engine asks about one lane at a time."""
        key = self._key(lane)
        state, invalid = self._state.get(key), self._invalid.get(key)
        self._last = (lane, state, invalid)
        return state, invalid

    def _packed(self, lane: Lane | str, name: str, digest: str | None) -> int | None:
        """The packed record that answers a lookup of ``name`` in ``lane`` (see :meth:`get`)."""
        last_lane, state, invalid = self._last
        if lane is not last_lane:
            state, invalid = self._dicts(lane)
        key = name.encode("utf-8", "surrogatepass")
        packed = None if state is None else state.get(key)
        if invalid:
            other = invalid.get(key)
            if other is not None:
                packed = self._choose(packed, other, digest)
        return packed

    def _choose(self, state: int | None, invalid: int, digest: str | None) -> int:
        """Which of a key's two records answers a lookup (see :meth:`get`)."""
        if state is None:
            return invalid
        newer = invalid if invalid & _POS_MASK > state & _POS_MASK else state
        if digest is None:
            return newer
        if self._digest(invalid & _POS_MASK) != digest:
            return state
        if self._digest(state & _POS_MASK) != digest:
            return invalid
        return newer

    def _prior(self, packed: int) -> Prior:
        pos = packed & _POS_MASK
        meta = self._meta[pos]
        return Prior(
            row=packed >> _POS_BITS,
            status=_STATUSES[meta & 7],
            digest=self._digest(pos),
            code=self._codes[meta >> 4],
            ambiguous=bool(meta & _AMBIGUOUS),
        )

    def _digest(self, pos: int) -> str:
        odd = self._odd.get(pos) if self._odd else None
        if odd is not None:
            return odd
        width = self._width
        return self._blob[pos * width : (pos + 1) * width].hex()

    # -- building ------------------------------------------------------------------------------

    def fold(self, frame: pl.DataFrame) -> None:
        """Fold in one checked chunk of records (``bulk.ledger_file``'s schema), in file order."""
        kind = frame["kind"]
        if kind.null_count() == frame.height:  # the usual chunk: row records only
            if frame.height:
                self._add_rows(frame)
            return
        rows = frame.filter(kind.is_null() & frame["status"].is_not_null())
        if rows.height:
            self._add_rows(rows)
        rates = frame.filter(
            (kind == "rate").fill_null(False)
            & frame["lane"].is_not_null()
            & frame["rate"].is_not_null()
        )
        if rates.height:
            self._rates.update(zip(rates["lane"].to_list(), rates["rate"].to_list(), strict=True))

    def _add_rows(self, rows: pl.DataFrame) -> None:
        self.__dict__.pop("counts", None)
        self.__dict__.pop("unchanged", None)
        self._last = (None, None, None)
        n = rows.height
        base = len(self._meta)
        if base + n > _POS_MASK:
            raise LedgerError("ledger holds more than 4 billion records: pass --ledger NEW")
        positions = pl.int_range(base, base + n, dtype=pl.UInt64, eager=True)
        packed = rows["row"].cast(pl.UInt64) * (1 << _POS_BITS) + positions
        status = rows["status"].replace_strict(_STATUS_ID, return_dtype=pl.UInt32)
        ambiguous = rows["ambiguous"].fill_null(False).cast(pl.UInt32) * _AMBIGUOUS
        self._meta.extend((status + ambiguous + self._code_ids_of(rows["code"]) * 16).to_list())
        if "cells" in rows.columns:
            cells = rows["cells"].str.to_integer(base=16, dtype=pl.UInt64, strict=False)
            self._fingerprints.extend(cells.fill_null(0).to_list())
        else:
            self._fingerprints.frombytes(bytes(8 * n))
        self._add_digests(rows["digest"], positions, base)
        names = rows["name"]
        if names.dtype != pl.Binary:
            names = names.cast(pl.Binary)
        lanes = rows["lane"]
        invalid = status == _INVALID
        if lanes.n_unique() == 1 and not invalid.any():  # the usual chunk
            _family(self._state, lanes[0]).update(
                zip(names.to_list(), packed.to_list(), strict=True)
            )
            return
        parts = pl.DataFrame(
            {
                "lane": lanes,
                "invalid": invalid,
                "name": names,
                "packed": packed,
                "digest": rows["digest"],
            }
        )
        for (lane, is_invalid), part in parts.partition_by(
            "lane", "invalid", as_dict=True, maintain_order=True
        ).items():
            family = self._invalid if is_invalid else self._state
            part_names = part["name"].to_list()
            part_packed = part["packed"].to_list()
            _family(family, str(lane)).update(zip(part_names, part_packed, strict=True))
            if is_invalid:
                numbers = [each >> _POS_BITS for each in part_packed]
                self._invalid_rows.setdefault(str(lane), set()).update(
                    zip(part_names, part["digest"].to_list(), numbers, strict=True)
                )

    def _code_ids_of(self, codes: pl.Series) -> pl.Series:
        """Intern error codes: a record stores a small id, the index one string per code."""
        for code in codes.drop_nulls().unique(maintain_order=True).to_list():
            if code not in self._code_ids:
                if len(self._codes) >= _CODE_LIMIT:
                    raise LedgerError(
                        "ledger holds too many distinct error codes: pass --ledger NEW"
                    )
                self._code_ids[code] = len(self._codes)
                self._codes.append(code)
        if not self._code_ids:
            return pl.repeat(0, codes.len(), dtype=pl.UInt32, eager=True)
        ids = codes.replace_strict(self._code_ids, default=0, return_dtype=pl.UInt32)
        return ids.fill_null(0)

    def _add_digests(self, digests: pl.Series, positions: pl.Series, base: int) -> None:
        """Store hex digests decoded in fixed-width slots; anything else goes to ``_odd``."""
        if not self._width:
            first = digests.filter(digests.str.contains(_HEX)).head(1).to_list()
            if first and len(first[0]) <= 256:
                self._width = len(first[0]) // 2
                self._blob.extend(bytes(base * self._width))  # earlier slots: all in _odd
        width = self._width
        if not width:
            self._odd.update(zip(positions.to_list(), digests.to_list(), strict=True))
            return
        lengths = digests.str.len_bytes()
        if lengths.min() == lengths.max() == 2 * width:
            joined: str = digests.str.join("").item()
            # fromhex also takes upper case and spaces, which would not give the digest back.
            if joined == joined.lower():
                with contextlib.suppress(ValueError):
                    raw = bytes.fromhex(joined)
                    if len(raw) == len(joined) // 2:
                        self._blob += raw
                        return
        fits = (lengths == 2 * width) & digests.str.contains("^[0-9a-f]*$")
        odd = ~fits
        self._odd.update(
            zip(positions.filter(odd).to_list(), digests.filter(odd).to_list(), strict=True)
        )
        filler = pl.repeat("00" * width, digests.len(), eager=True)
        self._blob += bytes.fromhex(digests.zip_with(fits, filler).str.join("").item())


def _family(family: dict[str, dict[bytes, int]], lane: str) -> dict[bytes, int]:
    names = family.get(lane)
    if names is None:
        names = family[lane] = {}
    return names
