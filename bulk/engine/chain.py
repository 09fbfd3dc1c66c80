"""A row as a chain of steps: its tenants, its configuration set, its event destinations, and
the set's association with each tenant (DESIGN.md, "Input columns").

::

    CreateTenant (each tenant; once per lane and tenant for the whole run)
      → CreateConfigurationSet
      → CreateConfigurationSetEventDestination (each destination)
      → CreateTenantResourceAssociation (each tenant, the set's ARN)

Every step is a call like the set's (:class:`~bulk.engine.sender.RowCalls`): its lane's
limiter for its own operation, one of the run's call slots, the run's retry policy, answers
classified by :mod:`bulk.engine.answers`. A row whose set existed before the run is
``exists`` and its chain stops there: a set that is not ours is never changed.

The rules, by step:

- a tenant is made once per lane and name: the first row that needs it calls, rows that
  need it meanwhile wait for that call, later rows read what it gave (created, found, or a
  failure that any other attempt would meet again); ``AlreadyExists`` is fine, and is
  ``created`` only when this run's own attempt at it may have gone through (a tenant may
  have been made before the run, for other resources: rollback must not take it);
- before the set is created, a stop or a lane failure leaves the row as the set's own step
  does (pending, or ``failed`` once its intent line is written);
- the set is judged as a lone set is (:func:`~bulk.engine.outcomes.judge`), with
  ``AlreadyExists`` after an ambiguous attempt (this run's, or an earlier run's ``ambiguous``
  record) counted as ours, and ``LimitExceeded`` stopping the lane;
- once the set is ours, every later step's ``AlreadyExists`` is ours too (nobody else makes
  destinations or associations of a set this run made), and whatever ends the row there
  records it, marked ``ambiguous`` (see below); ``LimitExceeded`` there is the set's or the
  tenant's own limit, not the lane's quota of sets.

Resume: a ``failed`` or ``invalid`` record of a row whose set was done, or may have been, says
``"ambiguous": true`` (:func:`~bulk.ledger.rules.carries_ambiguity`), so a resumed run reads
its set's ``AlreadyExists`` as its own and carries on with the steps after it, which are
idempotent by name. The intent line, written before the row's first call, covers the whole
chain: a row killed mid-chain resumes as ambiguous.

Each record carries the steps done in ``steps`` (a small JSON object)::

    {"tenants": {"acme": "created"}, "set": "created",
     "destinations": ["bounces"], "associations": ["acme"]}

``tenants`` (when the row has some): each tenant done, ``created`` or ``exists``; ``set``:
``created`` or ``exists`` once done; ``destinations`` and ``associations`` (once the set is
ours, when the row has any): the names done, in order; ``failed_step`` when a step ended the
row (``tenant acme``, ``set``, ``destination bounces``, ``association acme``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio

from bulk.engine.live import LISTED, configuration_set_arn
from bulk.engine.outcomes import judge, unsettled
from bulk.engine.stopping import Halt
from bulk.engine.target import CREATE, CallKind, CallResult
from bulk.errors import TargetError
from bulk.models import Lane, Outcome, Status

if TYPE_CHECKING:
    from bulk.engine.sender import RowCalls, Sender

__all__ = [
    "ASSOCIATE",
    "CREATE_DESTINATION",
    "CREATE_TENANT",
    "Chain",
]

CREATE_TENANT = "CreateTenant"
CREATE_DESTINATION = "CreateConfigurationSetEventDestination"
ASSOCIATE = "CreateTenantResourceAssociation"

# Answers after which a tenant's creation would fail again for any row: kept for the run.
_DEFINITE = frozenset({CallKind.BAD_REQUEST, CallKind.NOT_FOUND, CallKind.QUOTA})


@dataclass(frozen=True, slots=True)
class _TenantFailure:
    """How a tenant's creation failed, for every row of the tenant: its last answer, and the
    attempts it took."""

    result: CallResult
    attempts: int


class _Tenant:
    """A tenant of a lane, as the run knows it: ``done`` is set once the one call for it
    ended; ``label`` (``created``/``exists``) or ``failure`` then says how, or neither when
    the call ended without an answer that holds for other rows (the entry is then dropped,
    and the next row that needs the tenant calls again)."""

    __slots__ = ("done", "failure", "label")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.label: str | None = None
        self.failure: _TenantFailure | None = None


class _RowEnded(Exception):
    """A step before the set ended the row: ``outcome`` is its record (None: pending)."""

    def __init__(self, outcome: Outcome | None) -> None:
        self.outcome = outcome


class Chain:
    """The steps of rows that have tenants or event destinations, for one run's
    :class:`~bulk.engine.sender.Sender`.

    Holds, per lane, the run's tenants (:class:`_Tenant`: created once, shared by every row
    of the lane that names them).
    """

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._tenants: dict[tuple[Lane, str], _Tenant] = {}

    async def send(self, calls: RowCalls) -> Outcome | None:
        """Make ``calls.row``'s steps in order; its record, or ``None`` (pending).

        Raises :class:`TargetError` when the lane cannot be used before any step went out.
        """
        row = calls.row
        steps: dict[str, Any] = {}
        arn = ""
        if row.tenants:
            # The account, before any call: a lane whose account cannot be learned stops
            # before it made anything it could not associate.
            account = await calls.target.account()
            arn = configuration_set_arn(row.lane.region, account, row.name)
            done: dict[str, str] = {}
            steps["tenants"] = done
            for tenant in row.tenants:
                try:
                    done[tenant] = await self._tenant(calls, tenant)
                except _RowEnded as ended:
                    return self._ended(ended.outcome, calls, steps, f"tenant {tenant}")
        created = await self._set(calls, steps)
        if created is None or created.status is not Status.CREATED:
            return created
        if row.destinations:
            made: list[str] = []
            steps["destinations"] = made
            for destination in row.destinations:
                name = str(destination.get("EventDestinationName", ""))
                request = {"ConfigurationSetName": row.name, **destination}
                failed = await self._after_set(calls, CREATE_DESTINATION, request)
                if failed is not None:
                    return self._ended(failed, calls, steps, f"destination {name}")
                made.append(name)
        if row.tenants:
            associated: list[str] = []
            steps["associations"] = associated
            for tenant in row.tenants:
                request = {"TenantName": tenant, "ResourceArn": arn}
                failed = await self._after_set(calls, ASSOCIATE, request)
                if failed is not None:
                    return self._ended(failed, calls, steps, f"association {tenant}")
                associated.append(tenant)
        return replace(created, attempts=calls.attempts, extra={"steps": steps})

    async def _set(self, calls: RowCalls, steps: dict[str, Any]) -> Outcome | None:
        """The set's step, judged as a lone set's; a record that is not ``created`` is the
        row's (annotated here)."""
        sender = self._sender
        try:
            if calls.listed:  # live, and made by an earlier attempt of ours: no call
                calls.ambiguous = calls.prior_ambiguous
                calls.step_attempts = 0
                result = LISTED
            else:
                result = await calls.step(
                    CREATE, calls.row.request, ambiguous=calls.prior_ambiguous
                )
        except (Halt, TargetError) as exc:
            ended = sender.unanswered(calls, exc)
            if not isinstance(ended, CallResult):
                return self._ended(ended, calls, steps, "set")
            result = ended
        outcome = sender.verdict(calls, result, quota=True)
        if outcome is None or outcome.status is Status.CREATED:
            if outcome is not None:
                steps["set"] = "created"
            return outcome
        if outcome.status is Status.EXISTS:
            # Not ours: the chain stops, and the set is left as it is.
            steps["set"] = "exists"
            return replace(outcome, attempts=calls.attempts, extra={"steps": steps})
        return self._ended(outcome, calls, steps, "set")

    async def _tenant(self, calls: RowCalls, tenant: str) -> str:
        """``created`` or ``exists`` once the lane has ``tenant``, asking for it only if no
        row of the run did; raises :class:`_RowEnded` when the row cannot go on."""
        key = (calls.row.lane, tenant)
        control = self._sender.control
        while True:
            entry = self._tenants.get(key)
            if entry is None:
                break
            if not entry.done.is_set():
                await control.wait(entry.done)  # cut short by a stop
                if control.stopping.is_set() or calls.lane.stopped:
                    raise _RowEnded(self._unsent(calls))
                continue  # its call ended: read what it left, or make it
            if entry.label is not None:
                return entry.label
            assert entry.failure is not None
            raise _RowEnded(self._tenant_failed(calls, entry.failure))
        entry = self._tenants[key] = _Tenant()
        try:
            return await self._create_tenant(calls, tenant, entry)
        finally:
            if entry.label is None and entry.failure is None:
                del self._tenants[key]  # nothing learned: the next row asks again
            entry.done.set()

    async def _create_tenant(self, calls: RowCalls, tenant: str, entry: _Tenant) -> str:
        """The one ``CreateTenant`` call of the run for ``tenant`` in the row's lane."""
        try:
            result = await calls.step(CREATE_TENANT, {"TenantName": tenant}, ambiguous=False)
        except Halt:
            raise _RowEnded(self._unsent(calls)) from None
        except TargetError as exc:
            self._sender.fail_lane(calls.lane, exc)
            raise _RowEnded(self._unsent(calls, exc)) from None
        kind = result.kind
        if kind is CallKind.OK or kind is CallKind.EXISTS:
            # AlreadyExists is ours only after our own attempt may have gone through.
            mine = kind is CallKind.OK or calls.ambiguous
            entry.label = "created" if mine else "exists"
            return entry.label
        failure = _TenantFailure(result, calls.step_attempts)
        stopping = self._sender.control.stopping.is_set()
        if kind in _DEFINITE or (kind.retryable and kind is not CallKind.UNSENT and not stopping):
            entry.failure = failure
        raise _RowEnded(self._tenant_failed(calls, failure))

    def _tenant_failed(self, calls: RowCalls, failure: _TenantFailure) -> Outcome | None:
        """The record of a row whose tenant could not be made (``None``: pending)."""
        result = failure.result
        verdict = judge(
            calls.row,
            result,
            attempts=failure.attempts,
            ambiguous=calls.prior_ambiguous,  # the set's, not the tenant's
            stopping=self._sender.control.stopping.is_set(),
        )
        if verdict.abort is not None:
            self._sender.fail_lane(calls.lane, verdict.abort)
        if verdict.outcome is None:
            return self._unsent(calls)
        return verdict.outcome

    def _unsent(self, calls: RowCalls, error: TargetError | None = None) -> Outcome | None:
        """A row stopped before its set's step: as if it were unsent (``failed`` once its
        intent line is written, else pending; an earlier run's record then stays)."""
        if not calls.intended:
            return None
        return unsettled(calls.row, calls.last, calls.attempts, error)

    async def _after_set(
        self, calls: RowCalls, operation: str, request: dict[str, Any]
    ) -> Outcome | None:
        """One step after the set (ours): ``None`` when done, else the row's record."""
        sender = self._sender
        try:
            result = await calls.step(operation, request, ambiguous=True)
        except Halt:
            return unsettled(calls.row, calls.last, calls.attempts)
        except TargetError as exc:
            sender.fail_lane(calls.lane, exc)
            return unsettled(calls.row, calls.last, calls.attempts, exc)
        if result.kind is CallKind.OK or result.kind is CallKind.EXISTS:
            return None
        # ambiguous: the set is ours, so every ending is recorded (never pending).
        outcome = sender.verdict(calls, result, quota=False, ambiguous=True)
        assert outcome is not None
        return outcome

    def _ended(
        self, outcome: Outcome | None, calls: RowCalls, steps: dict[str, Any], step: str
    ) -> Outcome | None:
        """``outcome`` as the chain's record: its step named in the message, the steps done,
        the ``ambiguous`` mark when the set is, or may be, ours (see the module's doc)."""
        if outcome is None:
            return None
        steps["failed_step"] = step
        extra: dict[str, Any] = {"steps": steps}
        if "set" in steps or calls.prior_ambiguous or (step == "set" and calls.ambiguous):
            extra["ambiguous"] = True
        said = f"{outcome.code}: {outcome.message}" if outcome.code else outcome.message
        return replace(
            outcome,
            message=f"{_describe(step, calls)}: {said}".rstrip(": "),
            attempts=calls.attempts,
            extra=extra,
        )


def _describe(step: str, calls: RowCalls) -> str:
    """A step as a message names it: ``event destination 'bounces'``."""
    what, _, name = step.partition(" ")
    if what == "set":
        return f"configuration set {calls.row.name!r}"
    if what == "destination":
        return f"event destination {name!r}"
    if what == "association":
        return f"association with tenant {name!r}"
    return f"tenant {name!r}"
