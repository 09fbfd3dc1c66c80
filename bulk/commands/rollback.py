"""``bulk rollback``: delete exactly what a ledger records as created by bulk.

What is deleted, per row whose set's latest record is ``created`` (never ``exists``, never a
name the ledger does not hold): the set's associations with the tenants this ledger associated
it with (``DeleteTenantResourceAssociation``), then the set (``DeleteConfigurationSet``; its
event destinations go with it). Then each tenant this ledger created, once no resource is
associated with it any more (``ListTenantResources``, then ``DeleteTenant``). A row whose
latest record says its set may have been created (an ambiguous ``failed``, a create in flight
when a process died) is not deleted: the plan counts it, and a provision run settles it first.

The calls go as provision's do: the lanes, their limiters per operation, the retry policy. A
delete answered ``NotFoundException`` is done. Before a row's first delete an intent line
(``"op": "delete"``) goes to the ledger; when the row's set is deleted, a ``deleted`` record
follows. A killed rollback thus resumes: a row whose delete was in flight is deleted again
(``NotFound`` then). A delete that cannot be made (a permission, retries run out) writes no
record: the row stays ``created`` (with its intent), for the next rollback.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from bulk.commands.provision import emulated
from bulk.engine.http import LEAVING
from bulk.engine.live import configuration_set_arn
from bulk.engine.pipeline import ledger_target, open_targets
from bulk.engine.sender import LaneCalls, Sender
from bulk.engine.stopping import Halt, RunControl, each_at_once
from bulk.engine.summary import RunStats
from bulk.engine.target import CallKind, CallResult, Target, Targets
from bulk.errors import LedgerError, TargetError, UsageError, user_errors_unwrapped
from bulk.ledger.history import History, RowState, find_ledger, read_history
from bulk.ledger.writer import Ledger
from bulk.models import Lane, Row, Status
from bulk.settings import Settings

__all__ = [
    "LaneUndo",
    "RollbackPlan",
    "RollbackSummary",
    "ledger_settings",
    "plan_rollback",
    "rollback",
]

DELETE_SET = "DeleteConfigurationSet"
DISSOCIATE = "DeleteTenantResourceAssociation"
DELETE_TENANT = "DeleteTenant"
LIST_TENANT_RESOURCES = "ListTenantResources"
_DONE = (CallKind.OK, CallKind.NOT_FOUND)


@dataclass
class LaneUndo:
    """What a rollback deletes in one lane: ``sets`` (rows, each with its associations in
    its ``steps``), ``associations`` (count), ``tenants`` this ledger created (deleted once
    nothing is associated with them)."""

    lane: str
    sets: list[RowState] = field(default_factory=list)
    associations: int = 0
    tenants: list[str] = field(default_factory=list)


@dataclass
class RollbackPlan:
    """What a rollback of a ledger would delete, per lane, and what it leaves: ``kept``
    counts rows by why they are not deleted (``exists``: not bulk's; ``uncertain``: the
    set may have been created; ``deleted``: already; ``not created``: failed or invalid)."""

    ledger: Path
    input: str
    lanes: dict[str, LaneUndo] = field(default_factory=dict)
    kept: Counter[str] = field(default_factory=Counter)

    @property
    def sets(self) -> int:
        return sum(len(lane.sets) for lane in self.lanes.values())

    @property
    def empty(self) -> bool:
        """Nothing to delete: no set, and no tenant this ledger made that is still there."""
        return not any(lane.sets or lane.tenants for lane in self.lanes.values())

    def lines(self) -> list[str]:
        """The plan as a terminal shows it before asking."""
        lines = [
            f"{lane}: {len(undo.sets)} sets, {undo.associations} tenant associations, "
            f"{len(undo.tenants)} tenants (each once nothing is associated with it)"
            for lane, undo in sorted(self.lanes.items())
        ]
        kept = ", ".join(f"{n} {why}" for why, n in sorted(self.kept.items()))
        lines.append(f"left as they are: {kept or 'nothing'}")
        return lines


@dataclass(frozen=True)
class RollbackSummary:
    """What a rollback did: sets ``deleted`` (``gone``: of them, already gone), associations
    removed, tenants deleted, rows ``left`` (their delete could not be made: run again),
    ``stopped_lanes`` and why."""

    ledger: str
    deleted: int
    gone: int
    associations: int
    tenants: int
    left: int
    calls: int
    elapsed_s: float
    kept: dict[str, int]
    dry_run: bool = False
    interrupted: bool = False
    stopped_lanes: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.stopped_lanes:
            return 3
        if self.interrupted:
            return 130
        return 1 if self.left else 0

    def as_record(self) -> dict[str, Any]:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


def plan_rollback(input_path: Path | None, ledger: Path | None) -> tuple[RollbackPlan, History]:
    """What a rollback of the ledger (``--ledger``, else ``INPUT.ledger.jsonl``) would do.

    Raises :class:`~bulk.LedgerError` (exit 2) when there is no ledger, or it holds no run.
    """
    path = find_ledger(input_path, ledger)
    history = read_history(path)
    if not history.runs:
        raise LedgerError(f"ledger {path} holds no run: nothing to roll back")
    plan = RollbackPlan(path, history.runs[-1].input)
    for state in history.sets.values():
        created = state.status is Status.CREATED and (not state.in_flight or state.deleting)
        steps = state.steps or {}
        if created or state.status is Status.DELETED:
            # Its tenants: made by this ledger, and not yet deleted by a rollback (one
            # killed between its sets and its tenants left them).
            for tenant, label in (steps.get("tenants") or {}).items():
                if label == "created" and (state.lane, tenant) not in history.tenants_deleted:
                    undo = plan.lanes.setdefault(state.lane, LaneUndo(state.lane))
                    if tenant not in undo.tenants:
                        undo.tenants.append(tenant)
        if not created:
            plan.kept[_kept(state)] += 1
            continue
        undo = plan.lanes.setdefault(state.lane, LaneUndo(state.lane))
        undo.sets.append(state)
        undo.associations += len(steps.get("associations") or ())
    for undo in plan.lanes.values():
        undo.sets.sort(key=lambda state: state.row)
    return plan, history


def ledger_settings(history: History, **options: Any) -> Settings:
    """The settings of a rollback: the target the ledger's last run named (service, Region,
    profile, role, endpoint), each replaced by an option given (not None), and the rest of
    ``options`` (rate, burst, ...). An option naming another target than the ledger's is
    refused when the ledger is opened (exit 2)."""
    target = history.runs[-1].target
    endpoint = target.get("endpoint")
    if endpoint == "emulator":
        # Its sets lived in an emulator that ended with the run: nothing live is the
        # ledger's, and AWS's sets of the same names are not.
        raise UsageError(
            f"ledger {history.path} is of runs against the embedded emulator (--emulator), "
            "which ended with them: there is nothing to roll back"
        )
    found = {
        "service": target.get("service"),
        "region": target.get("region") or None,
        "profile": target.get("profile"),
        "role_arn": target.get("role_arn"),
        "endpoint_url": None if endpoint == "emulator" else endpoint,
    }
    given = {key: value for key, value in options.items() if value is not None}
    return Settings(**{**{k: v for k, v in found.items() if v is not None}, **given})


def _kept(state: RowState) -> str:
    if state.in_flight or state.ambiguous:
        return "uncertain"
    if state.status is Status.FAILED:
        return "not created"
    return state.status.value


async def rollback(
    plan: RollbackPlan,
    settings: Settings,
    *,
    targets: Targets | None = None,
    control: RunControl | None = None,
) -> RollbackSummary:
    """Delete what ``plan`` says (see the module's doc), recording each delete in its ledger.

    ``settings`` must name the ledger's target (service, Region, profile, endpoint, role):
    another is refused (:class:`~bulk.LedgerError`, exit 2) before anything is sent.
    """
    control = control or RunControl()
    async with emulated(settings, needed=targets is None) as settings:
        with user_errors_unwrapped():
            return await _Rollback(plan, settings, control).run(targets)


class _Rollback:
    def __init__(self, plan: RollbackPlan, settings: Settings, control: RunControl) -> None:
        self.plan = plan
        region = settings.run_region()
        self.settings = replace(settings, region=region.region)
        self.control = control
        self.counts: Counter[str] = Counter()
        self.tenants_deleted: dict[str, list[str]] = {}

    async def run(self, targets: Targets | None) -> RollbackSummary:
        s = self.settings
        stats = RunStats(total=self.plan.sets, ledger=self.plan.ledger)
        with Ledger.open(
            self.plan.ledger,
            input_name=self.plan.input,
            target=ledger_target(s),
            settings=s.header(),
        ) as ledger:
            self.ledger = ledger
            self.sender = Sender(s, self.control, stats, ledger.index)
            async with open_targets(s, targets) as pool, anyio.create_task_group() as tg:
                for undo in self.plan.lanes.values():
                    tg.start_soon(self._lane, pool, undo)
            summary = RollbackSummary(
                ledger=str(self.plan.ledger),
                deleted=self.counts["deleted"],
                gone=self.counts["gone"],
                associations=self.counts["associations"],
                tenants=self.counts["tenants"],
                left=self.plan.sets - self.counts["deleted"],
                calls=stats.attempts,
                elapsed_s=round(stats.elapsed, 3),
                kept=dict(self.plan.kept),
                interrupted=self.control.interrupted,
                stopped_lanes=dict(stats.stopped_lanes),
            )
            ledger.append_end(
                {
                    "command": "rollback",
                    "this_run": {"deleted": summary.deleted} if summary.deleted else {},
                    "tenants_deleted": self.tenants_deleted,
                    **summary.as_record(),
                }
            )
        return summary

    async def _lane(self, pool: Targets, undo: LaneUndo) -> None:
        sets = undo.sets
        lane = _lane_of(undo.lane)
        state = self.sender.lane(lane)
        try:
            target = await pool.get(lane)
            await each_at_once(
                sets,
                self.settings.concurrency,
                functools.partial(self._set, target, lane),
                lambda: self.control.stopping.is_set() or state.stopped,
            )
            if undo.tenants and not (self.control.stopping.is_set() or state.stopped):
                calls = LaneCalls(self.sender, state, target)
                LEAVING.set(calls.on_wire)
                for tenant in undo.tenants:
                    if await self._tenant(calls, tenant):
                        self.tenants_deleted.setdefault(undo.lane, []).append(tenant)
        except TargetError as exc:
            self.sender.fail_lane(state, exc)
        except Halt:
            return

    async def _set(self, target: Target, lane: Lane, row: RowState) -> None:
        try:
            state = self.sender.lane(lane)
            calls = LaneCalls(self.sender, state, target)
            LEAVING.set(calls.on_wire)
            self.ledger.append_intents([_row(row, lane)], op="delete")
            steps = row.steps or {}
            arn = ""
            removed: list[str] = []
            for tenant in steps.get("associations") or ():
                if not arn:
                    arn = configuration_set_arn(lane.region, await target.account(), row.name)
                result = await calls.step(
                    DISSOCIATE, {"TenantName": tenant, "ResourceArn": arn}, ambiguous=False
                )
                if not self._done(calls, result):
                    return
                removed.append(tenant)
            result = await calls.step(
                DELETE_SET, {"ConfigurationSetName": row.name}, ambiguous=False
            )
            if not self._done(calls, result):
                return
            gone = result.kind is CallKind.NOT_FOUND
            self.counts["deleted"] += 1
            self.counts["gone"] += gone
            self.counts["associations"] += len(removed)
            self.ledger.append(
                _row(row, lane).outcome(
                    Status.DELETED,
                    code=result.code if gone else None,
                    message="already gone" if gone else "",
                    attempts=calls.attempts,
                    request_id=result.request_id,
                    extra={
                        "steps": {
                            "tenants": dict(steps.get("tenants") or {}),
                            "associations": removed,
                            "set": "deleted",
                        }
                    },
                )
            )
        except TargetError as exc:
            self.sender.fail_lane(self.sender.lane(lane), exc)
        except Halt:
            return

    async def _tenant(self, calls: LaneCalls, tenant: str) -> bool:
        """Delete ``tenant`` (this ledger created it) once nothing is associated with it;
        whether it is gone now."""
        result = await calls.step(LIST_TENANT_RESOURCES, {"TenantName": tenant}, ambiguous=False)
        if result.kind is CallKind.NOT_FOUND:
            return True  # deleted already
        if result.kind is not CallKind.OK or result.data.get("TenantResources"):
            return False  # something else uses it, or it cannot be told: it stays
        result = await calls.step(DELETE_TENANT, {"TenantName": tenant}, ambiguous=False)
        if result.kind is CallKind.OK:
            self.counts["tenants"] += 1
        return result.kind in _DONE

    def _done(self, calls: LaneCalls, result: CallResult) -> bool:
        """Whether a delete is done (``NotFound``: done before); a lane whose credentials
        are refused stops."""
        if result.kind in _DONE:
            return True
        if result.kind is CallKind.AUTH:
            self.sender.fail_lane(
                calls.lane,
                TargetError(
                    f"{calls.lane.name}: the service refused {calls.operation} "
                    f"({result.code}: {result.message})"
                ),
            )
        return False


def _row(state: RowState, lane: Lane) -> Row:
    """The ledger's row for ``state`` (its records need no request)."""
    return Row(state.row, state.name, lane, {}, state.digest)


def _lane_of(name: str) -> Lane:
    """The :class:`Lane` a ledger names as ``service/credentials/region`` (see
    :attr:`Lane.credentials`)."""
    service, _, rest = name.partition("/")
    credentials, _, region = rest.rpartition("/")  # a role's ARN holds slashes
    profile: str | None = None
    role: str | None = None
    if ">" in credentials:
        profile, role = credentials.split(">", 1)
    elif credentials.startswith("arn:"):
        role = credentials
    elif credentials != "default":
        profile = credentials
    return Lane(service, region, profile, role)
