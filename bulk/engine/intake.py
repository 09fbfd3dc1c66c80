"""Deciding every input row against the ledger: skip it, record it invalid, or send it.

The resume rules are DESIGN.md's ("Ledger"); :class:`~bulk.ledger.index.ResumeIndex` holds what
earlier runs recorded. Deciding a row means validating it, for its request digest, at some
20 µs a row: a resume of a million settled rows would spend most of its time proving that
nothing changed. So each row also gets a *fingerprint*, a 64-bit hash of its row number and
raw cells (and of what else decides its request: the header, the default lane), computed in
Rust for a whole batch at once and kept in the row's ledger record. A row whose fingerprint
is the one on its name's latest ``created``/``exists`` record is skipped unread: the same
cells at the same place validate to the same request, so the slow path would skip it too.
Only its name is noted, so duplicate detection sees exactly what it would have seen.
Everything else (new, changed, failed, invalid rows) takes the full path.

The hash must give the same value in every run, whatever the versions installed: polars' own
``hash`` is documented as unstable across polars versions, so fingerprints are xxHash64
(polars-hash's, a fixed and published algorithm) of a text defined here, a scheme named
:data:`~bulk.ledger.records.FINGERPRINTS` in each run header. The ledger trusts only
fingerprints of that scheme (:class:`~bulk.ledger.index.ResumeIndex`); a settled row whose
record has none (another scheme, an older bulk) takes the full path, and when it is found
unchanged its record is restated with its fingerprint, so that the next resume skips it
unread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl
import polars_hash as plh

from bulk.engine.summary import RunStats
from bulk.input.columns import NAME_COLUMN, PROFILE_COLUMN, REGION_COLUMN, ROLE_COLUMN
from bulk.input.validate import Validator
from bulk.ledger.index import ResumeIndex
from bulk.ledger.records import Prior
from bulk.ledger.rules import Action, decide
from bulk.models import InputRow, Outcome, Row, Status

__all__ = ["Batch", "Intake", "Send", "row_fingerprints"]

# Part of the scheme (records.FINGERPRINTS): another seed, text or hash is another scheme.
_SEED = 0x6275_6C6B


@dataclass(frozen=True, slots=True)
class Send:
    """A row to send, with what an earlier run recorded for it (if anything)."""

    row: Row
    prior: Prior | None


@dataclass
class Batch:
    """One batch of rows decided: what to record or send, in file order, and what to skip."""

    items: list[Outcome | Send] = field(default_factory=list)
    skipped: Counter[Status] = field(default_factory=Counter)


def row_fingerprints(frame: pl.DataFrame, salt: str) -> pl.Series | None:
    """64-bit fingerprints of a :meth:`~bulk.input.source.Source.frames` batch, one per row.

    The scheme :data:`~bulk.ledger.records.FINGERPRINTS` ("xxhash64-v1"): xxHash64 with seed
    0x62756C6B of the UTF-8 text ``salt:row:len:cell:len:cell...``, with the row number in
    decimal and, per cell, its length in bytes and its text, so that no two different rows
    concatenate alike (a null cell is ``-:``, distinct from any length). A CSV cell's text is
    itself; a non-text Parquet cell's is polars' cast to text (were that to change, its rows
    would only take the full path). ``None`` if a column cannot be cast to text (such rows
    take the full path).
    """
    parts: list[pl.Expr] = [pl.lit(salt), pl.col(frame.columns[0]).cast(pl.String)]
    for name in frame.columns[1:]:
        cell = pl.col(name).cast(pl.String)
        parts += [cell.str.len_bytes().cast(pl.String).fill_null("-"), cell.fill_null("")]
    try:
        text = plh.concat_str(parts, separator=":")
        return frame.select(text.nchash.xxhash64(seed=_SEED)).to_series()
    except pl.exceptions.PolarsError:
        return None


class Intake:
    """Decides the rows of one input file, batch by batch, for the engine's reader.

    Not thread-safe; the reader calls it from one worker thread at a time. Drift (a created
    row whose request changed) is noted in ``stats`` as it is found.
    """

    def __init__(
        self, columns: Sequence[str], validator: Validator, index: ResumeIndex, stats: RunStats
    ) -> None:
        self._columns = tuple(columns)
        self._validator = validator
        self._index = index
        self._resuming = index.records > 0  # a run does not fold its own records in
        self._stats = stats
        self._salt = validator.fingerprint_salt(columns)
        unchanged = index.unchanged
        self._known = unchanged if unchanged.height else None
        self._name_at = 1 + self._columns.index(NAME_COLUMN)
        self._region_at = self._where(REGION_COLUMN)
        self._profile_at = self._where(PROFILE_COLUMN)
        self._role_at = self._where(ROLE_COLUMN)

    def take(self, frame: pl.DataFrame) -> Batch:
        """Decide every row of ``frame`` (a ``Source.frames`` batch), in file order."""
        plan = Batch()
        fingerprints = row_fingerprints(frame, self._salt)
        statuses = None if fingerprints is None else self._known_statuses(fingerprints)
        if fingerprints is None or statuses is None:  # nothing to skip unread: the full path
            prints = [None] * frame.height if fingerprints is None else fingerprints.to_list()
            for (number, *cells), fingerprint in zip(frame.iter_rows(), prints, strict=True):
                self._decide(self._record(number, cells, fingerprint), plan)
            return plan
        self._plan_resumed(frame, fingerprints, statuses, plan)
        return plan

    def _plan_resumed(
        self, frame: pl.DataFrame, fingerprints: pl.Series, statuses: pl.Series, plan: Batch
    ) -> None:
        """Rows with a known fingerprint are claimed and skipped; the rest are decided.

        In file order, as duplicate detection needs: each run of known rows is claimed at
        once, then the rows of it that could not be claimed are decided, then the unknown
        row that ends the run.
        """
        numbers = frame.to_series(0).to_list()
        names = frame.to_series(self._name_at).to_list()
        regions = self._cells(frame, self._region_at)
        profiles = self._cells(frame, self._profile_at)
        roles = self._cells(frame, self._role_at)
        status_of = statuses.to_list()
        prints = fingerprints.to_list()
        unknown = statuses.is_null()
        unknown_at = unknown.arg_true().to_list() if statuses.null_count() else []
        rest = frame.filter(unknown).iter_rows() if unknown_at else iter(())  # in order
        start = 0
        for stop in (*unknown_at, frame.height):
            if stop > start:
                lost = self._validator.claim_many(
                    names[start:stop],
                    numbers[start:stop],
                    None if regions is None else regions[start:stop],
                    None if profiles is None else profiles[start:stop],
                    None if roles is None else roles[start:stop],
                    unique=True,  # each matches the latest record of its name: see claim_many
                )
                tally = Counter(status_of[start:stop])
                for i in lost:  # now a duplicate, or in a lane not met yet
                    at = start + i
                    tally[status_of[at]] -= 1
                    self._decide(self._record(numbers[at], frame.row(at)[1:], prints[at]), plan)
                for status, count in tally.items():
                    if count:
                        plan.skipped[Status(status)] += count
            if stop < frame.height:
                _, *cells = next(rest)
                self._decide(self._record(numbers[stop], cells, prints[stop]), plan)
            start = stop + 1

    def _known_statuses(self, fingerprints: pl.Series) -> pl.Series | None:
        """Per row, the status recorded under its fingerprint, or null; None if none is known."""
        known = self._known
        if known is None:
            return None
        keys = known.to_series(0)
        at = keys.search_sorted(fingerprints).clip(0, keys.len() - 1)
        found = keys.gather(at) == fingerprints
        if not found.any():
            return None
        statuses = known.to_series(1).gather(at)
        return pl.select(pl.when(found).then(statuses)).to_series()

    def _decide(self, record: InputRow, plan: Batch) -> None:
        """The full path: validate the row, then apply the resume rules to what it became."""
        index = self._index
        item = self._validator.validate(record)
        if isinstance(item, Outcome):
            # An invalid row is settled once recorded with the same content and row number,
            # whatever was recorded since for other rows with its name.
            if index.recorded_invalid(item.lane, item.name, item.digest, item.row):
                plan.skipped[Status.INVALID] += 1
            else:
                plan.items.append(item)
            return
        prior = index.get(item.lane, item.name, item.digest) if self._resuming else None
        action = decide(prior, item.digest)
        if action is Action.SEND:
            plan.items.append(Send(item, prior))
            return
        assert prior is not None, "only a recorded row is skipped"
        if action is Action.DRIFT:
            self._stats.note_drift(item.name, item.number)
        elif not prior.fingerprinted and item.fingerprint and prior.status is not Status.INVALID:
            # Settled, and its record has no fingerprint to skip it by next time: say it again
            # with one (records.FINGERPRINTS; an older bulk's fingerprints are not trusted).
            plan.items.append(item.outcome(prior.status, restated=True))
        plan.skipped[prior.status] += 1

    def _record(self, number: int, cells: Sequence[object], fingerprint: int | None) -> InputRow:
        return InputRow(number, dict(zip(self._columns, cells, strict=True)), fingerprint)

    def _where(self, column: str) -> int | None:
        return 1 + self._columns.index(column) if column in self._columns else None

    @staticmethod
    def _cells(frame: pl.DataFrame, at: int | None) -> list[object] | None:
        return None if at is None else frame.to_series(at).to_list()
