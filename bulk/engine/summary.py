"""Counting a run as it goes (:class:`RunStats`) and what it did (:class:`Summary`)."""

from __future__ import annotations

import array
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bulk.engine.target import CallKind, CallResult
from bulk.models import Lane, Outcome, Row, Status

_DRIFT_EXAMPLES = 5
_INVALID = Status.INVALID.value  # read per lane a few times a second: not through the enum


@dataclass
class RunStats:
    """Live counters of one run; the engine writes them, progress displays read them.

    Invariant: ``skipped + recorded + would_send + pending == total`` once the run ends,
    where ``pending`` is derived (rows neither settled earlier nor recorded by this run).
    A dry run counts the rows it would send by what the ledger holds for them
    (``would_send_by_prior``: ``failed``, ``invalid`` for a row fixed since, or ``None``
    for a row never recorded), so that its summary shows the ledger's truth, and the steps
    beyond the set those rows would make (``would_steps``: tenants, each once per lane,
    event destinations and tenant associations; see :meth:`note_would_chain`).
    ``in_flight`` counts the calls sent and not yet answered. ``notes`` are one line each:
    what the ledger found odd and worked around (a damaged saved index, fingerprints of
    another scheme), for the user to read once. ``stopped_lanes``: the lanes that stopped
    because their calls cannot succeed, each with the one line saying why.
    """

    total: int
    ledger: Path
    dry_run: bool = False
    skipped: int = 0
    skipped_by_status: Counter[str] = field(default_factory=Counter)
    would_send: int = 0
    would_send_by_prior: Counter[str | None] = field(default_factory=Counter)
    would_steps: Counter[str] = field(default_factory=Counter)
    would_tenants: set[tuple[Lane, str]] = field(default_factory=set)
    # The steps beyond the sets that this run's records say were done (see note_steps).
    steps: Counter[str] = field(default_factory=Counter)
    step_tenants: set[tuple[str, str]] = field(default_factory=set)
    in_flight: int = 0
    stopping: bool = False
    # Where the run sends: the lanes seen so far, and how the run's Region was chosen.
    lanes: Callable[[], list[str]] = list
    where: str = ""
    recorded: Counter[str] = field(default_factory=Counter)
    drift: int = 0
    drift_examples: list[str] = field(default_factory=list)
    # Live state (see note_listed): sets live per lane at its start, rows answered from that
    # listing without a create call, existing sets whose options differ from their rows.
    live_sets: dict[str, int] = field(default_factory=dict)
    unlisted: dict[str, str] = field(default_factory=dict)  # lane -> why it could not list
    listed: int = 0
    live_drift: int = 0
    live_drift_examples: list[str] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    throttled: int = 0
    latencies: array.array[float] = field(default_factory=lambda: array.array("d"))
    rates: dict[str, float | None] = field(default_factory=dict)
    current_rate: Callable[[], float | None] = lambda: None
    # Each lane's current rate (None: unlimited, or stopped), as the engine reads it.
    lane_rates: Callable[[], dict[str, float | None]] = dict
    stopped_lanes: dict[str, str] = field(default_factory=dict)
    # Rows of each lane in the file, when rows name their lanes (Region, Profile, RoleArn
    # columns); empty when every row is in the run's lane (then it is ``total``).
    lane_totals: dict[str, int] = field(default_factory=dict)
    # Per lane (its string): this run's records by status, rows settled by earlier runs (when
    # the engine says which lane), calls and 429s (when the engine names the lane).
    lane_recorded: dict[str, Counter[str]] = field(default_factory=dict)
    lane_skipped: Counter[str] = field(default_factory=Counter)
    lane_attempts: Counter[str] = field(default_factory=Counter)
    lane_throttled: Counter[str] = field(default_factory=Counter)
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

    def note_lane_skipped(self, lane: str, count: int) -> None:
        """``count`` of the rows :meth:`note_skip` counted belong to ``lane``.

        Optional: without it, a resumed run over several lanes knows each lane's rows left
        only as an upper bound (see :meth:`lane_progress`).
        """
        self.lane_skipped[lane] += count

    def note_would_send(self, prior: Status | None) -> None:
        """A dry run would send this row; ``prior`` is the ledger's latest status for it."""
        self.would_send += 1
        self.would_send_by_prior[None if prior is None else prior.value] += 1

    def note_would_chain(self, row: Row) -> None:
        """The steps beyond its set a dry run would make for ``row`` (one with tenants or
        event destinations): each tenant once per lane, each destination, each association."""
        steps = self.would_steps
        for tenant in row.tenants:
            key = (row.lane, tenant)
            if key not in self.would_tenants:
                self.would_tenants.add(key)
                steps["tenants"] += 1
        steps["destinations"] += len(row.destinations)
        steps["associations"] += len(row.tenants)

    def note_drift(self, name: str, number: int) -> None:
        self.drift += 1
        if len(self.drift_examples) < _DRIFT_EXAMPLES:
            self.drift_examples.append(f"{name} (row {number})")

    def note_listed(self, lane: str, sets: int) -> None:
        """``lane`` listed its live names before its first row: ``sets`` of them."""
        self.live_sets[lane] = sets

    def note_unlisted(self, lane: str, why: str) -> None:
        """``lane`` could not list its live names: ``why`` (it sends as it did before)."""
        self.unlisted[lane] = why

    def note_attempt(self, result: CallResult, *, retry: bool, lane: str | None = None) -> None:
        """One call attempt; ``lane`` (optional) lets the summary count 429s per lane."""
        self.attempts += 1
        self.retries += retry
        throttled = result.kind is CallKind.THROTTLED
        if throttled:
            self.throttled += 1
        else:
            self.latencies.append(result.latency_ms)
        if lane is not None:
            self.lane_attempts[lane] += 1
            self.lane_throttled[lane] += throttled

    def note_lane_stopped(self, lane: str, reason: str) -> None:
        """``lane`` stopped for good (credentials, permissions, endpoint): ``reason`` says why."""
        self.stopped_lanes.setdefault(lane, reason)

    def note_outcome(self, outcome: Outcome) -> None:
        if outcome.restated:  # a skipped row's record said again: counted as skipped
            return
        status = outcome.status.value
        self.recorded[status] += 1
        lane = str(outcome.lane)
        counts = self.lane_recorded.get(lane)
        if counts is None:
            counts = self.lane_recorded[lane] = Counter()
        counts[status] += 1
        extra = outcome.extra
        if extra:
            steps = extra.get("steps")
            if steps:
                self.note_steps(lane, steps)
            self.listed += bool(extra.get("listed"))
            drift = extra.get("drift")
            if drift:
                self.live_drift += 1
                if len(self.live_drift_examples) < _DRIFT_EXAMPLES:
                    fields = ", ".join(
                        f"{column} {_cell(said['live'])} → {_cell(said['input'])}"
                        for column, said in drift.items()
                    )
                    self.live_drift_examples.append(f"{outcome.name} ({fields})")

    def note_steps(self, lane: str, steps: Mapping[str, Any]) -> None:
        """A record's steps beyond its set (see :mod:`bulk.engine.chain`): each tenant once
        per lane (``tenants`` made or found, ``tenants_existing`` found there before), each
        event destination and tenant association, and ``untouched``: a set that existed
        before the run, its chain stopped there."""
        counted = self.steps
        for tenant, label in steps.get("tenants", {}).items():
            if (lane, tenant) not in self.step_tenants:
                self.step_tenants.add((lane, tenant))
                counted["tenants"] += 1
                counted["tenants_existing"] += label == "exists"
        counted["destinations"] += len(steps.get("destinations", ()))
        counted["associations"] += len(steps.get("associations", ()))
        counted["untouched"] += steps.get("set") == "exists"

    def lane_progress(self) -> list[LaneProgress]:
        """Every lane met so far or named by the file, as the live display shows it.

        O(lanes), never O(rows): the display calls it a few times a second.
        """
        rates = self.lane_rates()
        names = self._lane_names(rates)
        unknown = self._unattributed_skips(names)
        if self.dry_run:
            unknown += self.would_send
        elapsed = self.elapsed
        stopped = self.stopped_lanes
        return [
            LaneProgress(
                lane=name,
                done=done,
                total=rows,
                left=left,
                left_is_bound=bound,
                started=name in rates,
                rate=rates.get(name),
                speed=sent / elapsed if elapsed > 0 else 0.0,
                stopped=stopped.get(name),
            )
            for name, (done, sent, rows, left, bound) in self._lanes_left(
                names, left=self.total - self.done, unknown=unknown
            ).items()
        ]

    def _lane_names(self, rates: dict[str, float | None]) -> list[str]:
        """Lanes in the file (when rows name them), then those the engine met (``rates``
        names each lane of :attr:`lanes`), first seen first."""
        names = dict.fromkeys(self.lane_totals)
        names.update(dict.fromkeys(rates))
        names.update(dict.fromkeys(self.lane_recorded))
        names.update(dict.fromkeys(self.stopped_lanes))
        return list(names)

    def _lane_rows(self, names: list[str]) -> dict[str, int]:
        """Each lane's rows in the file; a run whose rows name no lane has one, of ``total``."""
        if self.lane_totals:
            return self.lane_totals
        return {names[0]: self.total} if len(names) == 1 else {}

    def _unattributed_skips(self, names: list[str]) -> int:
        """Rows settled earlier whose lane the engine did not say (one lane: all its own)."""
        unknown = self.skipped - sum(self.lane_skipped.values())
        return 0 if len(self._lane_rows(names)) == 1 else unknown

    def _lanes_left(
        self, names: list[str], *, left: int, unknown: int
    ) -> dict[str, tuple[int, int, int | None, int | None, bool]]:
        """Per lane: rows done, rows sent (recorded, not invalid), rows in the file, rows
        left, and whether that is only a bound.

        ``left``: the run's rows left; ``unknown``: rows counted done whose lane is not known.
        While ``unknown`` is not 0 a lane's rows minus its known done rows only bounds what it
        has left, as does the run's ``left``: a bound of 0 is exact again.
        """
        rows = self._lane_rows(names)
        single = len(rows) == 1
        lanes: dict[str, tuple[int, int, int | None, int | None, bool]] = {}
        for name in names:
            recorded = self.lane_recorded.get(name)
            this_run = sum(recorded.values()) if recorded else 0
            sent = this_run - recorded.get(_INVALID, 0) if recorded else 0
            earlier = self.skipped if single and name in rows else self.lane_skipped.get(name, 0)
            done = earlier + this_run
            total = rows.get(name)
            if total is None:
                lanes[name] = (done, sent, None, None, False)
                continue
            rest = max(0, min(total - done, left) if unknown else total - done)
            lanes[name] = (done, sent, total, rest, bool(unknown) and rest > 0)
        return lanes

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
            live_sets=dict(self.live_sets),
            unlisted=dict(self.unlisted),
            listed=self.listed,
            live_drift=self.live_drift,
            live_drift_examples=tuple(self.live_drift_examples),
            elapsed_s=round(elapsed, 3),
            throughput=round(sent / elapsed, 2) if elapsed > 0 else 0.0,
            attempts=self.attempts,
            retries=self.retries,
            throttled=self.throttled,
            p50_ms=_percentile(self.latencies, 0.50),
            p95_ms=_percentile(self.latencies, 0.95),
            rates=dict(self.rates),
            quota_stops=quota_stops,
            stopped_lanes=dict(self.stopped_lanes),
            lanes=self._lane_summaries(pending, elapsed),
            interrupted=interrupted,
            aborted=aborted,
            dry_run=self.dry_run,
            would_send=self.would_send,
            would_steps={k: v for k, v in self.would_steps.items() if v},
            steps={k: v for k, v in self.steps.items() if v},
            notes=tuple(self.notes),
        )

    def _lane_summaries(self, pending: int, elapsed: float) -> tuple[LaneSummary, ...]:
        """Each lane's part of the run, sorted by lane; ``pending`` is the run's."""
        rates = self.lane_rates()
        names = self._lane_names(rates)
        # A dry run's rows with an earlier record are counted by that record, not as pending,
        # and which lane each is in is not known.
        unknown = self._unattributed_skips(names)
        if self.dry_run:
            unknown += self.would_send - self.would_send_by_prior.get(None, 0)
        # 429s per lane only when the engine named the lane of every call.
        throttles_known = sum(self.lane_attempts.values()) == self.attempts
        lanes: list[LaneSummary] = []
        for name, (_, sent, rows, left, bound) in sorted(
            self._lanes_left(names, left=pending, unknown=unknown).items()
        ):
            counts = self.lane_recorded.get(name, Counter())
            lanes.append(
                LaneSummary(
                    lane=name,
                    rows=rows,
                    created=counts.get(Status.CREATED.value, 0),
                    exists=counts.get(Status.EXISTS.value, 0),
                    invalid=counts.get(Status.INVALID.value, 0),
                    failed=counts.get(Status.FAILED.value, 0),
                    pending=None if bound else left,
                    throughput=round(sent / elapsed, 2) if elapsed > 0 else 0.0,
                    rate=self.rates[name] if name in self.rates else rates.get(name),
                    throttled=self.lane_throttled[name] if throttles_known else None,
                    stopped=self.stopped_lanes.get(name),
                )
            )
        return tuple(lanes)


@dataclass(frozen=True)
class LaneProgress:
    """One lane as the live display shows it (see :meth:`RunStats.lane_progress`).

    ``done``: its rows finished with (recorded by this run, plus those settled earlier when
    known); ``total``: its rows in the file and ``left``: those still to do (None: not
    known yet); ``left_is_bound``: ``left`` is at most that, as earlier runs settled rows
    whose lane is not known. ``rate``: the limiter's current rate, requests/s (None:
    unlimited, stopped, or not ``started``: the engine has not met the lane yet);
    ``speed``: rows it sent per second of the run; ``stopped``: why it stopped, if it did.
    """

    lane: str
    done: int
    total: int | None
    left: int | None
    left_is_bound: bool
    started: bool
    rate: float | None
    speed: float
    stopped: str | None = None

    @property
    def time_left(self) -> float:
        """Seconds until it is done at its rate (its speed when unlimited); inf: not known."""
        if self.left == 0:
            return 0.0
        pace = self.speed if self.rate is None else self.rate
        if self.left is None or self.stopped is not None or pace <= 0:
            return math.inf
        return self.left / pace


@dataclass(frozen=True)
class LaneSummary:
    """One lane's part of a run: what it did, what is left, how fast it went, why it stopped.

    ``created`` .. ``failed`` count this run's records. ``rows``: the lane's rows in the file
    and ``pending``: those neither settled earlier nor recorded now (None: not known, as
    earlier runs settled rows whose lane was not recorded). ``throughput``: rows it sent
    (created, exists, failed) per second of the run; ``rate``: its limiter's last create
    rate, requests/s (None: unlimited). ``throttled``: its 429s (None: not counted per lane).
    ``stopped``: why it stopped (its rows stay pending; the exit code is 3).
    """

    lane: str
    rows: int | None
    created: int
    exists: int
    invalid: int
    failed: int
    pending: int | None
    throughput: float
    rate: float | None
    throttled: int | None = None
    stopped: str | None = None


@dataclass(frozen=True)
class Summary:
    """What a run did: counts for the whole file, this run's work, and how it went.

    ``counts`` is the state of every row of the file after this run (settled earlier or
    recorded now); ``this_run`` counts only the records this run wrote. ``notes``: what the
    ledger found odd and worked around, one line each (see :attr:`RunStats.notes`).
    ``stopped_lanes``: lane → why it stopped (its rows stay pending; the exit code is 3).
    ``lanes``: each lane's part (:class:`LaneSummary`), sorted by lane. ``would_steps``: in a
    dry run, the calls beyond the sets the rows it would send would make (``tenants``,
    ``destinations``, ``associations``; empty when none has tenants or destinations).
    ``steps``: in a run, what its records say was done beyond the sets (see
    :meth:`RunStats.note_steps`; empty when no row has tenants or destinations).
    ``live_sets``: per lane, the sets live when it started (lanes that listed them), and
    ``unlisted``: lanes that could not list them, and why; ``listed``: rows answered from
    that listing, without a create call; ``live_drift``: rows whose set existed before the
    run with options other than the row's (a few ``live_drift_examples``, each naming the
    set and the columns that differ).
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
    stopped_lanes: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    aborted: str | None = None
    dry_run: bool = False
    would_send: int = 0
    would_steps: dict[str, int] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    lanes: tuple[LaneSummary, ...] = ()
    live_sets: dict[str, int] = field(default_factory=dict)
    unlisted: dict[str, str] = field(default_factory=dict)
    listed: int = 0
    live_drift: int = 0
    live_drift_examples: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 all created or existing · 1 some invalid/failed/pending or a quota stop ·
        3 aborted on a systemic error, or a lane stopped on one · 130 interrupted."""
        if self.aborted or self.stopped_lanes:
            return 3
        if self.interrupted:
            return 130
        if self.dry_run:
            return 1 if self.counts.get("invalid", 0) else 0
        bad = self.counts.get("invalid", 0) + self.counts.get("failed", 0)
        return 1 if bad or self.pending or self.quota_stops else 0

    def as_record(self) -> dict[str, Any]:
        """The summary as written into the ledger's end record and printed by ``--json``:
        plain JSON types only (``lanes`` a list of objects)."""
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


def _cell(value: str | None) -> str:
    """A drift's cell as a line shows it (``not set`` for none)."""
    return "not set" if value is None else repr(value)


def _percentile(values: array.array[float], q: float) -> float | None:
    """Nearest-rank ``q`` quantile (0..1) of ``values``, rounded to 0.1 ms; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[rank], 1)
