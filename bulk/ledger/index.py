"""What earlier runs recorded, per (lane, name): the resume index a resumed run consults.

:func:`bulk.ledger.reader.scan` reads a ledger into a :class:`ResumeIndex`; the engine asks it,
row by row, for the :class:`~bulk.ledger.records.Prior` record of a (lane, name), which the
resume rules (:mod:`~bulk.ledger.rules`) judge, and whether a row was recorded ``invalid``.

A million records must load in about a second and fit in a few tens of MB, so the index
holds no Python object per record. What a record says (status, row, digest, code) lives in
flat arrays indexed by its position in the file. A (lane, name) is found by its 64-bit key
in sorted arrays of keys beside the position of its latest record; the keys are sorted, and
the latest record per key chosen, by polars, once all records are in (:meth:`ResumeIndex.seal`,
with :mod:`~bulk.ledger.index_keys`, which also holds the :class:`IndexImage` a sealed index is
saved as and loaded back from without parsing the ledger again).

Two names whose keys collide (odds about 3e-8 for a million names against a million
records, the hash seed being random per process) would share one entry: the later name's
row would be judged against the other's record, whose digest (the request, name included)
differs, so the row is reported as drift rather than sent; it is never skipped silently.
"""

from __future__ import annotations

import contextlib
import threading
from array import array
from collections.abc import Callable

import polars as pl

from bulk.errors import LedgerError
from bulk.ledger.index_keys import (
    INVALID,
    NAMES_SCHEMA,
    PARTS_SCHEMA,
    STATUSES,
    IndexImage,
    Keys,
    Sealed,
    find,
    keyed,
    seal,
    sorted_keys,
    writable,
)
from bulk.ledger.records import FINGERPRINTS, Prior, rate_key
from bulk.models import Lane

__all__ = ["ResumeIndex"]

# A record's status, ambiguity, fingerprint's presence and code id live in
# ``_meta[position]`` as ``status | ambiguous << 3 | fingerprinted << 4 | code_id << 5``; its
# row number in ``_rows[position]``.
_POS_LIMIT = (1 << 32) - 1
_CODE_LIMIT = 1 << 27
_STATUS_ID = {status.value: i for i, status in enumerate(STATUSES)}
_AMBIGUOUS = 8
_FINGERPRINTED = 16
_CODE_SHIFT = 5
_HEX = r"^(?:[0-9a-f]{2})+$"


class ResumeIndex:
    """What earlier runs recorded, per (lane, name), and the learned rate per lane.

    Built by :func:`~bulk.ledger.reader.scan` (``fold`` each chunk of records, then ``seal``);
    an empty index (``ResumeIndex()``) stands for a new ledger. Lookups take a
    :class:`~bulk.models.Lane` or its string form (``"sesv2/default/us-east-1"``), and seal the
    index if need be.

    Two records are kept per (lane, name): the latest about the configuration set (``created``,
    ``exists``, ``failed``, ``deleted``) and the latest ``invalid`` one, which is about an
    input row, not the set. Without a digest a lookup answers the later of the two; with the
    row's digest it answers the record about that very content, so that a duplicate row's
    ``invalid`` record does not hide the original row's ``created`` one, and a row edited into
    an invalid state and back is still known to be created.

    Several rows of one file can share a name (duplicates, rows without a name): each row
    recorded ``invalid`` is remembered on its own, by row number and content, for
    :meth:`recorded_invalid`.

    A record's input-row fingerprint (its ``cells``) is kept only if the run that wrote it,
    as its run header says, made fingerprints with this version's scheme
    (:data:`~bulk.ledger.records.FINGERPRINTS`); any other is dropped as it is folded in, and
    its record answers ``fingerprinted=False``. This is the one place a fingerprint's scheme
    is judged: the fingerprint table (:attr:`unchanged`) and everything saved from the index
    hold only fingerprints of that scheme.
    """

    def __init__(self, *, keep_names: bool = False) -> None:
        # position -> status | ambiguous << 3 | code id << 4; an image's are read-only views
        self._meta: array[int] | memoryview = array("I")
        self._rows: array[int] | memoryview = array("I")  # position -> row number
        # Until sealed, per folded chunk: each record's key, position, status and input-row
        # fingerprint (0 if none); with ``keep_names``, its lane id and name, by position.
        self._parts: list[pl.DataFrame] = []
        self._keep_names = keep_names
        self._names: list[pl.DataFrame] = []
        self._lanes: list[str] = []  # lane id -> lane
        self._lane_ids: dict[str, int] = {}
        # lane -> (name, digest, row) of every invalid record; invalid rows are few: a set.
        self._invalid_rows: dict[str, set[tuple[str, str, int]]] = {}
        self._codes: list[str | None] = [None]
        self._code_ids: dict[str, int] = {}
        self._width = 0  # bytes per digest in _blob; 0 until a hex digest is seen
        # hex digests, decoded, one fixed-width slot per position
        self._blob: bytearray | memoryview = bytearray()
        self._odd: dict[int, str] = {}  # position -> digest that is not hex of _width bytes
        self._rates: dict[str, float] = {}
        # Whether the run whose records are folded in now made fingerprints with FINGERPRINTS:
        # set by each run header; records before any header (none, in a ledger bulk wrote)
        # are not trusted.
        self._current_scheme = False
        self._lane_keys: dict[Lane, str] = {}
        self._sealed: Sealed | None = None
        self._sealing = threading.Lock()
        # Loaded from an image: its tables, until a record is folded in after it.
        self._image: Sealed | None = None
        self._image_entries: Callable[[], pl.DataFrame] | None = None
        self._image_records = 0

    @classmethod
    def from_image(cls, image: IndexImage, *, keep_names: bool = False) -> ResumeIndex:
        """The index an image was saved from; records folded in after it extend it."""
        index = cls(keep_names=keep_names)
        index._meta = memoryview(image.meta).cast("B").cast("I")
        index._rows = memoryview(image.rows).cast("B").cast("I")
        if len(index._meta) != len(index._rows):
            raise ValueError("index image: meta and rows differ in length")
        index._width = image.width
        index._blob = memoryview(image.blob).cast("B")
        if len(index._blob) != image.width * len(index._meta):
            raise ValueError("index image: digests do not fill one slot per record")
        index._odd = dict(image.odd)
        index._codes = list(image.codes)
        index._code_ids = {code: i for i, code in enumerate(image.codes) if code is not None}
        index._invalid_rows = {lane: set(rows) for lane, rows in image.invalid_rows.items()}
        index._rates = dict(image.rates)
        index._current_scheme = image.current_scheme
        index._lanes = list(image.lanes)
        index._lane_ids = {lane: i for i, lane in enumerate(image.lanes)}
        index._image = Sealed(
            length=image.length,
            counts=dict(image.counts),
            unchanged=image.unchanged,
            keys=None,
            entries=None,
        )
        index._image_entries = image.entries
        index._image_records = len(index._meta)
        return index

    def drop_names(self) -> None:
        """Forget the names kept to save an image: a run needs only the keys."""
        sealed = self._ready()
        sealed.entries = None
        self._keep_names = False

    @property
    def names_kept(self) -> bool:
        """Whether :meth:`image` can be made: names kept, or an image loaded and unchanged."""
        return self._keep_names or self._image is not None

    @property
    def current_scheme(self) -> bool:
        """Whether the ledger's last run made its row fingerprints with this version's scheme
        (:data:`~bulk.ledger.records.FINGERPRINTS`). False for a ledger written before the
        scheme was recorded, or with another: its settled rows are validated once more."""
        return self._current_scheme

    @property
    def records(self) -> int:
        """How many row records were folded in (an image's included)."""
        return len(self._meta)

    @property
    def image_records(self) -> int:
        """How many of :attr:`records` came from the image the index was loaded from."""
        return self._image_records

    def image(self) -> IndexImage:
        """What a file needs to load this index back (:meth:`from_image`).

        Only for an index built with ``keep_names`` (or loaded from an image and left as it
        was); seals it if need be.
        """
        sealed = self._ready()
        entries = sealed.entries
        if entries is None:
            if self._image_entries is None or sealed is not self._image:
                raise RuntimeError("the resume index was built without its names")
            entries = self._image_entries()
        loaded_entries = entries
        return IndexImage(
            meta=memoryview(self._meta).cast("B"),
            rows=memoryview(self._rows).cast("B"),
            blob=memoryview(self._blob).cast("B"),
            width=self._width,
            odd=dict(self._odd),
            codes=list(self._codes),
            invalid_rows={lane: sorted(rows) for lane, rows in self._invalid_rows.items()},
            rates=dict(self._rates),
            current_scheme=self._current_scheme,
            lanes=list(self._lanes),
            length=sealed.length,
            counts=dict(sealed.counts),
            unchanged=sealed.unchanged,
            entries=lambda: loaded_entries,
        )

    def get(self, lane: Lane | str, name: str, digest: str | None = None) -> Prior | None:
        """What earlier runs recorded for ``name`` in ``lane``; ``None`` if nothing.

        Without ``digest``: the latest record. With the row's current ``digest``: the latest
        ``invalid`` record if it is about this content, else the latest record about the
        configuration set, else the latest ``invalid`` record.
        """
        pos = self._position(lane, name, digest)
        return None if pos is None else self._prior(pos)

    def recorded_invalid(self, lane: Lane | str, name: str, digest: str, row: int) -> bool:
        """Whether an earlier run recorded data row ``row`` invalid with this very content.

        Unlike :meth:`get`, which answers the latest ``invalid`` record of a name only, this
        knows each of several rows sharing a name (duplicates, rows without a name): such a
        row stays settled while it is unchanged, whatever was recorded for the others since,
        and a row identical to another gets a record of its own.
        """
        recorded = self._invalid_rows.get(self._key(lane))
        return recorded is not None and (name, digest, row) in recorded

    def learned_rate(self, lane: Lane | str, operation: str | None = None) -> float | None:
        """The adaptive limiter's last recorded rate for ``lane``'s ``operation`` (requests/s;
        None: ``CreateConfigurationSet``), if any."""
        return self._rates.get(rate_key(self._key(lane), operation))

    def __len__(self) -> int:
        """How many (lane, name) keys have a record."""
        return self._ready().length

    @property
    def counts(self) -> dict[str, int]:
        """How many (lane, name) keys have each status as their latest record."""
        return dict(self._ready().counts)

    @property
    def unchanged(self) -> pl.DataFrame:
        """The fingerprints of input rows a resumed run may skip unread, sorted, with statuses.

        One row per (lane, name) whose latest record about the configuration set is
        ``created`` or ``exists`` and carries the fingerprint of the input row it was made
        from: an input row with that very fingerprint (same row number, same cells, same
        defaults) would validate to the same request, so the decision is already known.
        Columns ``fingerprint`` (UInt64, ascending) and ``status`` (an Enum of ``Status``
        values).
        """
        return self._ready().unchanged

    # -- lookups -------------------------------------------------------------------------------

    def _key(self, lane: Lane | str) -> str:
        if isinstance(lane, str):
            return lane
        key = self._lane_keys.get(lane)
        if key is None:
            key = self._lane_keys[lane] = str(lane)
        return key

    def _position(self, lane: Lane | str, name: str, digest: str | None) -> int | None:
        """The position of the record that answers a lookup of ``name`` (see :meth:`get`)."""
        tables = self._tables()
        key = hash((self._key(lane), name))
        state = find(tables.state_keys, tables.state_positions, key)
        if tables.invalid_keys:
            invalid = find(tables.invalid_keys, tables.invalid_positions, key)
            if invalid is not None:
                return self._choose(state, invalid, digest)
        return state

    def _choose(self, state: int | None, invalid: int, digest: str | None) -> int:
        """Which of a key's two records answers a lookup (see :meth:`get`)."""
        if state is None:
            return invalid
        newer = max(invalid, state)
        if digest is None:
            return newer
        if self._digest(invalid) != digest:
            return state
        if self._digest(state) != digest:
            return invalid
        return newer

    def _prior(self, pos: int) -> Prior:
        meta = self._meta[pos]
        return Prior(
            row=self._rows[pos],
            status=STATUSES[meta & 7],
            digest=self._digest(pos),
            code=self._codes[meta >> _CODE_SHIFT],
            ambiguous=bool(meta & _AMBIGUOUS),
            fingerprinted=bool(meta & _FINGERPRINTED),
        )

    def _digest(self, pos: int) -> str:
        odd = self._odd.get(pos) if self._odd else None
        if odd is not None:
            return odd
        width = self._width
        return self._blob[pos * width : (pos + 1) * width].hex()

    # -- building ------------------------------------------------------------------------------

    def fold(self, frame: pl.DataFrame) -> None:
        """Fold in one checked chunk of records (``bulk.ledger.reader``'s schema), in file order.

        Raises ``RuntimeError`` once the index is sealed.
        """
        if self._sealed is not None:
            raise RuntimeError("the resume index is sealed: fold every chunk before a lookup")
        kind = frame["kind"]
        if kind.null_count() == frame.height:  # the usual chunk: row records only
            if frame.height:
                self._thaw()
                self._add_rows(frame, self._current_scheme)
            return
        is_row = kind.is_null() & frame["status"].is_not_null()
        trusted = self._trusted(frame).filter(is_row)
        rows = frame.filter(is_row)
        if rows.height:
            self._thaw()
            self._add_rows(rows, trusted)
        rates = frame.filter(
            (kind == "rate").fill_null(False)
            & frame["lane"].is_not_null()
            & frame["rate"].is_not_null()
        )
        if rates.height:
            lanes, operations = rates["lane"].to_list(), rates["operation"].to_list()
            keys = map(rate_key, lanes, operations)
            self._rates.update(zip(keys, rates["rate"].to_list(), strict=True))

    def _trusted(self, frame: pl.DataFrame) -> pl.Series:
        """Per record of ``frame``: whether the run it belongs to (the run header before it)
        made fingerprints with ``FINGERPRINTS``. Moves ``_current_scheme`` on to the last run."""
        is_run = (frame["kind"] == "run").fill_null(False)
        if not is_run.any():
            return pl.repeat(self._current_scheme, frame.height, dtype=pl.Boolean, eager=True)
        if "fingerprints" in frame.columns:
            scheme = frame["fingerprints"].fill_null("")
        else:
            scheme = pl.repeat("", frame.height, dtype=pl.String, eager=True)
        marks = (
            pl.select(pl.when(is_run).then(scheme == FINGERPRINTS))
            .to_series()
            .forward_fill()
            .fill_null(self._current_scheme)
        )
        self._current_scheme = bool(marks[-1])
        return marks

    def seal(self) -> None:
        """Sort the keys and pick each one's latest records: the index is ready for lookups.

        Done by the first lookup if not before; :func:`~bulk.ledger.reader.scan` seals as it
        finishes, so that a run's threads only ever read the index.
        """
        self._ready()

    def _ready(self) -> Sealed:
        sealed = self._sealed
        if sealed is None:
            with self._sealing:
                sealed = self._sealed
                if sealed is None:
                    sealed = self._sealed = self._image or self._seal()
        return sealed

    def _seal(self) -> Sealed:
        """Seal what was folded in (see :func:`~bulk.ledger.index_keys.seal`); the parts and
        names are handed over, so that they are freed as the sealing goes."""
        parts, self._parts = self._parts, []
        names, self._names = self._names, []
        return seal(parts, names if self._keep_names else None)

    def _tables(self) -> Keys:
        """The sorted keys, made from an image's names at the first lookup by name."""
        sealed = self._ready()
        keys = sealed.keys
        if keys is None:
            with self._sealing:
                keys = sealed.keys
                if keys is None:
                    assert self._image_entries is not None
                    keys = sealed.keys = sorted_keys(keyed(self._image_entries(), self._lanes))
        assert keys is not None
        return keys

    def _thaw(self) -> None:
        """Before a record is folded in after an image: its entries become the first part."""
        if self._image is None:
            return
        assert self._image_entries is not None
        entries = self._image_entries()
        self._parts.append(keyed(entries, self._lanes))
        if self._keep_names:
            self._names.append(entries.select(list(NAMES_SCHEMA)))
        self._image = None
        self._image_entries = None
        self._meta = writable(self._meta)
        self._rows = writable(self._rows)
        self._blob = bytearray(self._blob)

    def _add_rows(self, rows: pl.DataFrame, trusted: bool | pl.Series) -> None:
        """Fold in row records; ``trusted``: whether each one's fingerprint may be used."""
        n = rows.height
        meta, numbers = self._meta, self._rows
        assert isinstance(meta, array) and isinstance(numbers, array), "thawed: see _thaw"
        base = len(meta)
        if base + n > _POS_LIMIT:
            raise LedgerError("ledger holds more than 4 billion records: pass --ledger NEW")
        status = rows["status"].replace_strict(_STATUS_ID, return_dtype=pl.UInt32)
        ambiguous = rows["ambiguous"].fill_null(False).cast(pl.UInt32) * _AMBIGUOUS
        if "cells" in rows.columns and trusted is not False:
            cells = rows["cells"].str.to_integer(base=16, dtype=pl.UInt64, strict=False)
            if isinstance(trusted, pl.Series):
                cells = pl.select(pl.when(trusted).then(cells)).to_series()
            fingerprints = cells.fill_null(0).cast(pl.UInt64)  # 0: none to use
        else:
            fingerprints = pl.repeat(0, n, dtype=pl.UInt64, eager=True)
        fingerprinted = (fingerprints != 0).cast(pl.UInt32) * _FINGERPRINTED
        codes = self._code_ids_of(rows["code"]) * (1 << _CODE_SHIFT)
        meta.extend((status + ambiguous + fingerprinted + codes).to_list())
        numbers.extend(rows["row"].to_list())
        positions = pl.int_range(base, base + n, dtype=pl.UInt32, eager=True)
        self._add_digests(rows["digest"], positions, base)
        names = rows["name"]
        if names.dtype == pl.Binary:  # the line-by-line parser's: lone surrogates and all
            texts = [name.decode("utf-8", "surrogatepass") for name in names.to_list()]
        else:
            texts = names.to_list()
        lanes = rows["lane"]
        if lanes.n_unique() == 1:  # the usual chunk
            lane = lanes[0]
            keys = [hash((lane, name)) for name in texts]
        else:
            keys = [hash(pair) for pair in zip(lanes.to_list(), texts, strict=True)]
        records = pl.DataFrame(
            {"key": keys, "pos": positions, "status": status, "fingerprint": fingerprints},
            schema=PARTS_SCHEMA,
        )
        if self._keep_names:
            self._names.append(
                pl.DataFrame(
                    {
                        "pos": positions,
                        "lane": self._lane_ids_of(lanes),
                        "name": names.cast(pl.Binary),
                    },
                    schema=NAMES_SCHEMA,
                )
            )
        self._parts.append(records)
        invalid = status == INVALID
        if invalid.any():  # remembered row by row: see recorded_invalid
            flags = invalid.to_list()
            for lane, name, digest, number, bad in zip(
                lanes.to_list(),
                texts,
                rows["digest"].to_list(),
                rows["row"].to_list(),
                flags,
                strict=True,
            ):
                if bad:
                    self._invalid_rows.setdefault(lane, set()).add((name, digest, number))

    def _lane_ids_of(self, lanes: pl.Series) -> pl.Series:
        for lane in lanes.unique(maintain_order=True).to_list():
            if lane not in self._lane_ids:
                self._lane_ids[lane] = len(self._lanes)
                self._lanes.append(lane)
        return lanes.replace_strict(self._lane_ids, return_dtype=pl.UInt32)

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
        blob = self._blob
        assert isinstance(blob, bytearray), "thawed: see _thaw"
        if not self._width:
            first = digests.filter(digests.str.contains(_HEX)).head(1).to_list()
            if first and len(first[0]) <= 256:
                self._width = len(first[0]) // 2
                blob.extend(bytes(base * self._width))  # earlier slots: all in _odd
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
                        blob += raw
                        return
        fits = (lengths == 2 * width) & digests.str.contains("^[0-9a-f]*$")
        odd = ~fits
        self._odd.update(
            zip(positions.filter(odd).to_list(), digests.filter(odd).to_list(), strict=True)
        )
        filler = pl.repeat("00" * width, digests.len(), eager=True)
        blob += bytes.fromhex(digests.zip_with(fits, filler).str.join("").item())
