"""``bulk plan``: what a provision of an input file would do, read from live state, changing
nothing.

Per lane: the live names (paged ``ListConfigurationSets``, one call per 1,000 sets, paced by
the lane's limiter like every call), then one streaming pass over the input, decided as
provision decides it (validation, the ledger's resume rules): rows that would be created,
names already live, rows the ledger settled, invalid rows. With ``diff``, each live set an
unsettled row names is read (``GetConfigurationSet``, paced) and compared with the row, field
by field. Live + to-create is checked against the account's quota of sets per lane.

Only reads are ever sent: a plan has no ledger writer and no intent line, and its calls go
through :class:`~bulk.engine.sender.LaneCalls`, which have none either.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import polars as pl

from bulk.commands.provision import emulated
from bulk.engine.http import LEAVING
from bulk.engine.intake import Intake, Send
from bulk.engine.live import list_names, read_set
from bulk.engine.pipeline import LaneCounter, ledger_target, open_input, open_targets
from bulk.engine.progress import table_lines
from bulk.engine.sender import LaneCalls, Sender
from bulk.engine.stopping import Halt, RunControl
from bulk.engine.summary import RunStats
from bulk.engine.target import Targets
from bulk.errors import TargetError, user_errors_unwrapped
from bulk.input.source import tally_rows
from bulk.ledger.rules import carries_ambiguity
from bulk.ledger.writer import Ledger
from bulk.live.drift import as_record, drift
from bulk.models import Lane, Outcome, Row, Status
from bulk.settings import Settings

__all__ = ["DEFAULT_QUOTA", "LanePlan", "Plan", "RowDrift", "plan"]

DEFAULT_QUOTA = 10_000  # configuration sets per account and Region (SES, not adjustable)
_SETTLED = (Status.CREATED.value, Status.EXISTS.value)
_INVALID_SHOWN = 10  # invalid rows a plan names (the ledger of a provision names them all)


@dataclass(frozen=True)
class RowDrift:
    """A row whose live set differs from it: column → ``{"live": cell, "input": cell}``."""

    row: int
    name: str
    lane: str
    differences: dict[str, dict[str, str | None]]


@dataclass(frozen=True)
class LanePlan:
    """One lane's part of a plan.

    ``live``: sets live in the lane (None: it could not list them, ``problem`` says why).
    ``create``: rows a provision would create; ``exists``: rows whose name is live (no
    create call; ``ours`` of them were made by an earlier attempt of this ledger, to be
    recorded ``created``); ``settled``: rows the ledger settled ``created`` or ``exists``;
    ``invalid``: invalid rows (when rows name several lanes, an invalid row the ledger
    recorded unchanged is counted in its lane's ``settled``: the ledger's fast path skips it
    without reading its lane); ``drift``: live sets that
    differ from their rows (with ``diff``). ``overflow``: rows that would fail for want of
    quota (live + create past ``quota``). ``rate``: the create rate a provision would start
    at, and ``eta_s`` how long the creates would take at it (None: unlimited or unknown).
    """

    lane: str
    live: int | None
    create: int = 0
    exists: int = 0
    ours: int = 0
    settled: int = 0
    invalid: int = 0
    drift: int = 0
    quota: int = DEFAULT_QUOTA
    overflow: int = 0
    rate: float | None = None
    eta_s: float | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Plan:
    """What a provision of the input would do: ``totals`` (``create``, ``exists``,
    ``settled``, ``invalid``, ``drift``), each lane's part, and the rows whose live set
    differs (``diffed``: whether live sets were read at all). ``invalid_examples``: the
    first few rows found invalid, each with why."""

    input: str
    ledger: str
    totals: dict[str, int]
    lanes: tuple[LanePlan, ...]
    drift: tuple[RowDrift, ...] = ()
    diffed: bool = False
    calls: int = 0
    notes: tuple[str, ...] = ()
    invalid_examples: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 · 1 rows invalid, or a lane would run out of quota · 3 a lane cannot be read."""
        if any(lane.problem and lane.live is None for lane in self.lanes):
            return 3
        if self.totals["invalid"] or any(lane.overflow for lane in self.lanes):
            return 1
        return 0

    def as_record(self) -> dict[str, Any]:
        """The plan as ``--json`` prints it (plain JSON types)."""
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


@dataclass
class _Lane:
    """A lane's counts as the pass goes."""

    lane: Lane
    live: frozenset[str] | None = None
    problem: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    to_read: list[Row] = field(default_factory=list)  # rows whose live set --diff reads
    drift: list[RowDrift] = field(default_factory=list)


async def plan(
    input_path: str | Path,
    settings: Settings | None = None,
    *,
    targets: Targets | None = None,
    diff: bool = False,
    quota: int = DEFAULT_QUOTA,
) -> Plan:
    """What ``bulk provision`` of ``input_path`` would do against live state; sends reads
    only. Raises :class:`~bulk.InputError`, :class:`~bulk.LedgerError` or
    :class:`~bulk.UsageError` as provision would, before any call."""
    settings = replace(settings or Settings(), dry_run=False)
    async with emulated(settings, needed=targets is None) as settings:
        with user_errors_unwrapped():
            return await _Planner(Path(input_path), settings, targets, diff, quota).run()


class _Planner:
    def __init__(
        self, path: Path, settings: Settings, targets: Targets | None, diff: bool, quota: int
    ) -> None:
        region = settings.run_region()
        self.path = path
        self.settings = replace(settings, region=region.region)
        self.targets = targets
        self.diff = diff
        self.quota = quota
        self.lanes: dict[Lane, _Lane] = {}
        self.totals: Counter[str] = Counter()
        self.invalid: list[str] = []

    async def run(self) -> Plan:
        s = self.settings
        ledger_path = s.ledger_path(self.path)
        source, routing, total, validator = await open_input(self.path, s)
        counter = LaneCounter(validator, routing)
        named = counter.count(source.tallied) if routing else {}
        if not routing and validator.default_lane is not None:
            named = {validator.default_lane: total}
        stats = RunStats(total=total, ledger=ledger_path)
        with Ledger.open(
            ledger_path,
            input_name=self.path.name,
            target=ledger_target(s),
            settings=s.header(),
            dry_run=True,  # read only: a plan writes nothing
        ) as ledger:
            sender = Sender(s, RunControl(), stats, ledger.index)
            async with open_targets(s, self.targets) as pool:
                async with anyio.create_task_group() as tg:
                    for lane in named:
                        tg.start_soon(self._list, sender, pool, lane)
                intake = Intake(source.columns, validator, ledger.index, stats)
                await anyio.to_thread.run_sync(self._pass, source.frames(), intake, counter)
                if self.diff:
                    async with anyio.create_task_group() as tg:
                        for state in self.lanes.values():
                            if state.to_read:
                                tg.start_soon(self._read, sender, pool, state)
        return self._plan(sender, stats, ledger.notes)

    async def _list(self, sender: Sender, pool: Targets, lane: Lane) -> None:
        state = self.lanes.setdefault(lane, _Lane(lane))
        try:
            target = await pool.get(lane)
            calls = LaneCalls(sender, sender.lane(lane), target)
            LEAVING.set(calls.on_wire)
            state.live, why = await list_names(calls)
        except TargetError as exc:
            state.problem = str(exc)
            return
        except Halt:
            return
        if state.live is None:
            state.problem = f"cannot list its live sets ({why})"

    def _pass(self, frames: Iterator[pl.DataFrame], intake: Intake, counter: LaneCounter) -> None:
        """Decide every row (in a worker thread): counted per lane and in the totals."""
        for frame in frames:
            batch = intake.take(frame)
            read = counter.count(tally_rows(frame, counter.routing)) if counter.routing else {}
            decided: Counter[Lane] = Counter()
            for item in batch.items:
                if isinstance(item, Outcome):
                    if item.restated:  # a settled row said again: counted below
                        continue
                    decided[item.lane] += 1
                    self._state(item.lane).counts["invalid"] += 1
                    self.totals["invalid"] += 1
                    if len(self.invalid) < _INVALID_SHOWN:
                        said = f"{item.code}: {item.message}" if item.code else item.message
                        self.invalid.append(f"row {item.row} {item.name!r}: {said}")
                    continue
                decided[item.row.lane] += 1
                self._decide(item)
            for status, count in batch.skipped.items():
                self.totals["settled" if status.value in _SETTLED else "invalid"] += count
            if counter.routing:
                for lane, count in read.items():
                    skipped = count - decided[lane]
                    if skipped > 0:
                        self._state(lane).counts["settled"] += skipped
            elif self.lanes:  # one lane: each skipped row's status is its own
                only = next(iter(self.lanes.values()))
                for status, count in batch.skipped.items():
                    only.counts["settled" if status.value in _SETTLED else "invalid"] += count

    def _decide(self, item: Send) -> None:
        row = item.row
        state = self._state(row.lane)
        if state.live is not None and row.name in state.live:
            state.counts["exists"] += 1
            self.totals["exists"] += 1
            if carries_ambiguity(item.prior):
                state.counts["ours"] += 1
            elif self.diff:
                state.to_read.append(row)
            return
        state.counts["create"] += 1
        self.totals["create"] += 1

    def _state(self, lane: Lane) -> _Lane:
        state = self.lanes.get(lane)
        if state is None:  # a lane met only among invalid rows
            state = self.lanes[lane] = _Lane(lane, problem="not listed")
        return state

    async def _read(self, sender: Sender, pool: Targets, state: _Lane) -> None:
        """Read each live set ``state``'s rows name, one after another at the lane's pace
        (concurrently across lanes), and compare."""
        try:
            target = await pool.get(state.lane)
            calls = LaneCalls(sender, sender.lane(state.lane), target)
            LEAVING.set(calls.on_wire)
            for row in state.to_read:
                live = await read_set(calls, row.name, tags="Tags" in row.request)
                if live.options is None:
                    state.problem = f"cannot read set {row.name!r} ({live.problem})"
                    return
                found = drift(row.lane.service, row.request, live.options, live.tags)
                if found:
                    state.drift.append(
                        RowDrift(row.number, row.name, str(row.lane), as_record(found))
                    )
        except (TargetError, Halt) as exc:
            state.problem = str(exc) or "stopped"

    def _plan(self, sender: Sender, stats: RunStats, notes: list[str]) -> Plan:
        lanes = []
        drifted: list[RowDrift] = []
        for lane, state in sorted(self.lanes.items(), key=lambda item: str(item[0])):
            counts = state.counts
            live = None if state.live is None else len(state.live)
            create = counts["create"]
            overflow = max(0, (live or 0) + create - self.quota) if live is not None else 0
            rate = self._rate(sender, lane)
            eta = None if rate is None or rate <= 0 else create / rate
            drifted.extend(state.drift)
            lanes.append(
                LanePlan(
                    lane=str(lane),
                    live=live,
                    create=create,
                    exists=counts["exists"],
                    ours=counts["ours"],
                    settled=counts["settled"],
                    invalid=counts["invalid"],
                    drift=len(state.drift),
                    quota=self.quota,
                    overflow=min(overflow, create),
                    rate=rate,
                    eta_s=None if eta is None else round(eta, 1),
                    problem=state.problem,
                )
            )
        totals = {key: self.totals[key] for key in ("create", "exists", "settled", "invalid")} | {
            "drift": len(drifted)
        }
        return Plan(
            input=str(self.path),
            ledger=str(stats.ledger),
            totals=totals,
            lanes=tuple(lanes),
            drift=tuple(sorted(drifted, key=lambda d: d.row)),
            diffed=self.diff,
            calls=stats.attempts,
            notes=tuple(notes),
            invalid_examples=tuple(self.invalid),
        )

    def _rate(self, sender: Sender, lane: Lane) -> float | None:
        """The create rate a provision would start the lane at: what the ledger learned,
        within ``--rate`` (None: unlimited)."""
        limiter = sender.lane(lane).limiter("CreateConfigurationSet")
        rate = limiter.rate
        return None if rate is None or math.isinf(rate) else rate


def eta_text(seconds: float | None) -> str:
    """A duration as the plan's table shows it: ``-``, ``42s``, ``12m``, ``3h05m``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def _lane_problem_lines(plan: Plan) -> Iterator[str]:
    for lane in plan.lanes:
        if lane.problem:
            said = lane.problem
            yield said if said.startswith(lane.lane) else f"{lane.lane}: {said}"


def plan_lines(plan: Plan) -> list[str]:
    """The plan as the terminal shows it: totals, a line per lane, quota, drift, next."""
    t = plan.totals
    lines = [
        f"plan: create {t['create']} · exists {t['exists']} (live, no create call) · "
        f"settled {t['settled']} (ledger) · invalid {t['invalid']}"
        + (f" · drift {t['drift']}" if plan.diffed else "")
    ]
    header = ["lane", "live", "create", "exists", "settled", "invalid"]
    if plan.diffed:
        header.append("drift")
    header += ["rate", "eta"]
    table = [header]
    for lane in plan.lanes:
        cells = [
            lane.lane,
            "?" if lane.live is None else str(lane.live),
            str(lane.create),
            str(lane.exists),
            str(lane.settled),
            str(lane.invalid),
        ]
        if plan.diffed:
            cells.append(str(lane.drift))
        cells += ["-" if lane.rate is None else f"{lane.rate:g}/s", eta_text(lane.eta_s)]
        table.append(cells)
    lines.extend(table_lines(table))
    for lane in plan.lanes:
        if lane.overflow:
            lines.append(
                f"quota: {lane.lane} holds {lane.live} sets; {lane.create} more would pass its "
                f"quota of {lane.quota}: the last {lane.overflow} rows would fail "
                "(LimitExceeded)"
            )
    lines.extend(f"problem: {line}" for line in _lane_problem_lines(plan))
    lines.extend(f"invalid: {line}" for line in plan.invalid_examples)
    if plan.totals["invalid"] > len(plan.invalid_examples):
        more = plan.totals["invalid"] - len(plan.invalid_examples)
        lines.append(
            f"invalid: … {more} more (earlier runs' ledger, or bulk provision, names each)"
        )
    for drifted in plan.drift[:20]:
        fields = ", ".join(
            f"{column} {_shown(said['live'])} → {_shown(said['input'])}"
            for column, said in drifted.differences.items()
        )
        lines.append(f"drift: row {drifted.row} {drifted.name} ({drifted.lane}): {fields}")
    if len(plan.drift) > 20:
        lines.append(f"drift: … {len(plan.drift) - 20} more (--json lists them all)")
    lines.append(f"read-only: {plan.calls} calls, none of them a change")
    return lines


def _shown(value: str | None) -> str:
    return "not set" if value is None else repr(value)
