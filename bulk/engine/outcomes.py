"""What a row's last answer makes of it: its ledger record, and what it means beyond the row.

The rules (DESIGN.md, "Ledger" and "Exit codes"), by the :class:`~bulk.engine.target.CallKind`
of the last attempt:

- ``OK`` is ``created``; ``EXISTS`` is ``exists``, or ``created`` after an ambiguous attempt
  (there is no idempotency token: that attempt created it);
- ``BAD_REQUEST`` is ``invalid``; ``NOT_FOUND`` is ``failed``;
- ``QUOTA`` is ``failed`` and stops the lane: its quota of sets is used up;
- ``AUTH`` aborts the run (exit 3); the row stays pending, unless an earlier attempt may have
  created it;
- a retryable kind whose attempts ran out is ``failed`` ("gave up after N attempts"), except
  that a row nothing may have created stays pending when the run is stopping, and an endpoint
  that never took a request (``UNSENT``) aborts the run.

Every ``failed`` record of a row that may have been created says ``ambiguous``, so that a
resume knows an ``AlreadyExists`` answer is its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from bulk.engine.target import CallKind, CallResult
from bulk.errors import TargetError
from bulk.models import Outcome, Row, Status

__all__ = ["Verdict", "judge", "unsettled"]


@dataclass(frozen=True)
class Verdict:
    """What the engine does with a row's last answer."""

    outcome: Outcome | None  # the row's ledger record; None: it stays pending for the next run
    quota: bool = False  # the lane's quota of sets is used up: stop sending in it
    abort: TargetError | None = None  # no row can succeed: stop the run (exit 3)


def judge(
    row: Row, result: CallResult, *, attempts: int, ambiguous: bool, stopping: bool
) -> Verdict:
    """The verdict on ``row`` after its last answer ``result``.

    ``ambiguous``: some attempt may have created the set (a 5xx, a timeout, a foreign answer);
    ``stopping``: the run is stopping (a signal, an abort).
    """
    kind = result.kind
    message = result.message
    quota = False
    abort: TargetError | None = None
    if kind is CallKind.OK:
        status = Status.CREATED
    elif kind is CallKind.EXISTS:
        # No idempotency token: after an ambiguous attempt, "already exists" means that
        # attempt created it.
        status = Status.CREATED if ambiguous else Status.EXISTS
        message = "created by an earlier attempt whose answer was lost" if ambiguous else ""
    elif kind is CallKind.BAD_REQUEST:
        status = Status.INVALID
    elif kind is CallKind.NOT_FOUND:
        status = Status.FAILED
    elif kind is CallKind.QUOTA:
        status = Status.FAILED
        quota = True
    elif kind is CallKind.AUTH:
        abort = TargetError(
            f"{row.lane}: the service refused the call ({result.code}: {message}); "
            "fix the credentials or permissions and run the same command to resume"
        )
        if not ambiguous:
            return Verdict(None, abort=abort)
        status = Status.FAILED
    else:
        if kind is CallKind.UNSENT and not ambiguous:
            return Verdict(
                None,
                abort=TargetError(
                    f"{row.lane}: endpoint unreachable after {attempts} attempts "
                    f"({result.code}); check the network and run the same command to resume"
                ),
            )
        if stopping and not ambiguous:
            return Verdict(None)
        status = Status.FAILED
        message = f"gave up after {attempts} attempts: {message}".rstrip(": ")
    outcome = row.outcome(
        status,
        code=result.code,
        message=message,
        attempts=attempts,
        latency_ms=round(result.latency_ms, 2),
        request_id=result.request_id,
        extra={"ambiguous": True} if status is Status.FAILED and ambiguous else {},
    )
    return Verdict(outcome, quota=quota, abort=abort)


def unsettled(
    row: Row, last: CallResult | None, attempts: int, error: TargetError | None = None
) -> Outcome:
    """The record of a row whose calls all got answers that leave it unsent (a 429, a
    refused connection, refused credentials) when the run stopped sending it: ``failed``, so
    that its intent line is not read as a call in flight (the next run sends it again)."""
    code = last.code if last is not None else "LaneStopped"
    said = str(error) if error is not None else (last.message if last is not None else "")
    return row.outcome(
        Status.FAILED,
        code=code,
        message=f"stopped before an answer settled it: {said}".rstrip(": "),
        attempts=attempts,
    )
