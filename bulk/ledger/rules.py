"""The resume rules: what a resumed run does with a row, given what the ledger holds for it.

DESIGN.md ("Ledger"): settled rows (``created``, ``exists``, ``invalid``) are skipped; a row
settled ``invalid`` only while its content (the digest of its request) is unchanged, so that a
row the user fixed is sent again; a ``created``/``exists`` row whose content changed is drift,
reported and never re-sent; ``failed`` and ``deleted`` rows are sent again. :func:`decide`
applies them, once per row that validates (:meth:`bulk.engine.intake.Intake.take`), to the
:class:`~bulk.ledger.records.Prior` the resume index answers for the row's lane, name and
digest. A row that does not validate now is settled by an ``invalid`` record of that very row
and content (:meth:`~bulk.ledger.index.ResumeIndex.recorded_invalid`), which needs no rule of
its own. The ``ambiguous`` mark of a failed record is owned here too: :func:`carries_ambiguity`
tells the engine that an attempt at the row starts out ambiguous; the ledger only stores the
mark the engine writes.
"""

from __future__ import annotations

import enum

from bulk.ledger.records import Prior
from bulk.models import Status

__all__ = ["Action", "carries_ambiguity", "decide"]


class Action(enum.StrEnum):
    """What a resumed run does with an input row, given what the ledger holds for it."""

    SEND = "send"  # never recorded, failed or deleted, or invalid and changed since
    SKIP = "skip"  # settled and unchanged
    DRIFT = "drift"  # created/exists, but the row's request changed since: report, never re-send


def decide(prior: Prior | None, digest: str) -> Action:
    """What to do with a row whose request now hashes to ``digest``, ``prior`` being what
    earlier runs recorded for it (``None``: nothing)."""
    if prior is None:
        return Action.SEND
    if prior.status is Status.CREATED or prior.status is Status.EXISTS:
        return Action.SKIP if digest == prior.digest else Action.DRIFT
    if prior.status is Status.INVALID and digest == prior.digest:
        return Action.SKIP
    return Action.SEND  # failed, deleted, or invalid and changed since


def carries_ambiguity(prior: Prior | None) -> bool:
    """Whether an attempt at a row starts ambiguous: an earlier attempt may have created it.

    True when the row's prior record is marked ``ambiguous``; the engine then keeps the mark on
    the row's next ``failed`` record, and reads ``AlreadyExists`` as ``created``. The mark is
    written on ``failed`` records, and on the ``failed`` or ``invalid`` record of a row whose
    later step (an event destination, a tenant association) ended it after its set was made
    or may have been (:mod:`bulk.engine.chain`): so a resume, or the re-run of a row the user
    fixed, reads that set as its own and carries on with the steps after it. It lasts until a
    record settles the configuration set (or a rollback deletes it).
    """
    return prior is not None and prior.ambiguous
