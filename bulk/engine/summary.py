"""Counting a run as it goes (:class:`RunStats`) and what it did (:class:`Summary`)."""

from __future__ import annotations

import array
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bulk.engine.target import CallKind, CallResult
from bulk.models import Outcome, Status

_DRIFT_EXAMPLES = 5


@dataclass
class RunStats:
    """Live counters of one run; the engine writes them, progress displays read them.

    Invariant: ``skipped + recorded + would_send + pending == total`` once the run ends,
    where ``pending`` is derived (rows neither settled earlier nor recorded by this run).
    A dry run counts the rows it would send by what the ledger holds for them
    (``would_send_by_prior``: ``failed``, ``invalid`` for a row fixed since, or ``None``
    for a row never recorded), so that its summary shows the ledger's truth.
    ``in_flight`` counts the calls sent and not yet answered. ``notes`` are one line each:
    what the ledger found odd and worked around (a damaged saved index, fingerprints of
    another scheme), for the user to read once.
    """

    total: int
    ledger: Path
    dry_run: bool = False
    skipped: int = 0
    skipped_by_status: Counter[str] = field(default_factory=Counter)
    would_send: int = 0
    would_send_by_prior: Counter[str | None] = field(default_factory=Counter)
    in_flight: int = 0
    stopping: bool = False
    # Where the run sends: the lanes seen so far, and how the run's Region was chosen.
    lanes: Callable[[], list[str]] = list
    where: str = ""
    recorded: Counter[str] = field(default_factory=Counter)
    drift: int = 0
    drift_examples: list[str] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    throttled: int = 0
    latencies: array.array[float] = field(default_factory=lambda: array.array("d"))
    rates: dict[str, float | None] = field(default_factory=dict)
    current_rate: Callable[[], float | None] = lambda: None
    started: float = field(default_factory=time.monotonic)
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        """Rows this run has finished with, counting rows settled by earlier runs."""
        return self.skipped + sum(self.recorded.values()) + self.would_send

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note_skip(self, status: Status, count: int = 1) -> None:
        self.skipped += count
        self.skipped_by_status[status.value] += count

    def note_would_send(self, prior: Status | None) -> None:
        """A dry run would send this row; ``prior`` is the ledger's latest status for it."""
        self.would_send += 1
        self.would_send_by_prior[None if prior is None else prior.value] += 1

    def note_drift(self, name: str, number: int) -> None:
        self.drift += 1
        if len(self.drift_examples) < _DRIFT_EXAMPLES:
            self.drift_examples.append(f"{name} (row {number})")

    def note_attempt(self, result: CallResult, *, retry: bool) -> None:
        self.attempts += 1
        self.retries += retry
        if result.kind is CallKind.THROTTLED:
            self.throttled += 1
        else:
            self.latencies.append(result.latency_ms)

    def note_outcome(self, outcome: Outcome) -> None:
        if not outcome.restated:  # a skipped row's record said again: counted as skipped
            self.recorded[outcome.status.value] += 1

    def summary(
        self,
        *,
        interrupted: bool = False,
        aborted: str | None = None,
        quota_stops: tuple[str, ...] = (),
    ) -> Summary:
        elapsed = self.elapsed
        final = Counter(self.skipped_by_status)
        final.update(self.recorded)
        pending = self.total - self.done
        if self.dry_run:
            # What the ledger says of the rows a real run would send: failed earlier, or
            # never recorded (pending).
            unsent = Counter(self.would_send_by_prior)
            pending += unsent.pop(None, 0)
            final.update({status: n for status, n in unsent.items() if status is not None})
        recorded = sum(self.recorded.values())
        sent = recorded - self.recorded.get(Status.INVALID.value, 0)
        return Summary(
            ledger=str(self.ledger),
            total=self.total,
            counts={s.value: final.get(s.value, 0) for s in Status if s is not Status.DELETED},
            this_run={k: v for k, v in sorted(self.recorded.items())},
            skipped=self.skipped,
            pending=pending,
            drift=self.drift,
            drift_examples=tuple(self.drift_examples),
            elapsed_s=round(elapsed, 3),
            throughput=round(sent / elapsed, 2) if elapsed > 0 else 0.0,
            attempts=self.attempts,
            retries=self.retries,
            throttled=self.throttled,
            p50_ms=_percentile(self.latencies, 0.50),
            p95_ms=_percentile(self.latencies, 0.95),
            rates=dict(self.rates),
            quota_stops=quota_stops,
            interrupted=interrupted,
            aborted=aborted,
            dry_run=self.dry_run,
            would_send=self.would_send,
            notes=tuple(self.notes),
        )


@dataclass(frozen=True)
class Summary:
    """What a run did: counts for the whole file, this run's work, and how it went.

    ``counts`` is the state of every row of the file after this run (settled earlier or
    recorded now); ``this_run`` counts only the records this run wrote. ``notes``: what the
    ledger found odd and worked around, one line each (see :attr:`RunStats.notes`).
    """

    ledger: str
    total: int
    counts: dict[str, int]
    this_run: dict[str, int]
    skipped: int
    pending: int
    drift: int
    drift_examples: tuple[str, ...]
    elapsed_s: float
    throughput: float
    attempts: int
    retries: int
    throttled: int
    p50_ms: float | None
    p95_ms: float | None
    rates: dict[str, float | None]
    quota_stops: tuple[str, ...] = ()
    interrupted: bool = False
    aborted: str | None = None
    dry_run: bool = False
    would_send: int = 0
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 all created or existing · 1 some invalid/failed/pending or a quota stop ·
        3 aborted on a systemic error · 130 interrupted."""
        if self.aborted:
            return 3
        if self.interrupted:
            return 130
        if self.dry_run:
            return 1 if self.counts.get("invalid", 0) else 0
        bad = self.counts.get("invalid", 0) + self.counts.get("failed", 0)
        return 1 if bad or self.pending or self.quota_stops else 0

    def as_record(self) -> dict[str, Any]:
        """The summary as written into the ledger's end record."""
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


def _percentile(values: array.array[float], q: float) -> float | None:
    """Nearest-rank ``q`` quantile (0..1) of ``values``, rounded to 0.1 ms; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[rank], 1)
