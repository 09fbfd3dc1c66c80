"""What the ledger's tests share: outcomes to record, a ledger to open, and a model to replay.

The model (:func:`model_prior`, :func:`model_action`) says from the records a file kept what
the resume index must answer and what a resumed run must do, without the index's machinery;
``tests/test_ledger_reader.py`` and ``tests/test_crash_resume.py`` replay arbitrary records
(:data:`outcomes_strategy`) against it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from bulk.ledger.index import ResumeIndex
from bulk.ledger.records import Prior
from bulk.ledger.rules import Action, decide
from bulk.ledger.writer import Ledger
from bulk.models import Destination, Lane, Outcome, Status

LANE = Lane("sesv2", "eu-west-1")
OTHER_LANE = Lane("sesv2", "eu-west-1", "staging")
TARGET = Destination("sesv2", "eu-west-1")
INPUT = "tenants.csv"

Record = dict[str, Any]  # a ledger line, parsed


def outcome(
    name: str,
    status: Status = Status.CREATED,
    digest: str = "00112233aabbccdd",
    *,
    row: int = 1,
    lane: Lane = LANE,
    code: str | None = None,
    message: str = "",
    **extra: Any,
) -> Outcome:
    return Outcome(
        row=row,
        name=name,
        status=status,
        lane=lane,
        digest=digest,
        code=code,
        message=message,
        extra=extra,
    )


def open_ledger(path: Path, **kwargs: Any) -> Ledger:
    options: dict[str, Any] = {"input_name": INPUT, "target": TARGET, "settings": {}}
    options.update(kwargs)
    return Ledger.open(path, **options)


def write(path: Path, outcomes: Sequence[Outcome], **kwargs: Any) -> None:
    with open_ledger(path, **kwargs) as ledger:
        for item in outcomes:
            ledger.append(item)


def lines(path: Path) -> list[Record]:
    """Every line of the file parsed strictly: proves no record was glued or torn."""
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def action(index: ResumeIndex, lane: Lane | str, name: str, digest: str) -> Action:
    """What a resumed run does with a valid row, as the engine decides it
    (:meth:`bulk.engine.intake.Intake.take`): the rules applied to the index's answer."""
    return decide(index.get(lane, name, digest), digest)


# -- the model replayed by the property tests ---------------------------------------------------

NAMES = ("a", "b", "c")
DIGESTS = ("00000000000000aa", "00000000000000bb", "odd digest", "")
outcomes_strategy = st.lists(
    st.builds(
        outcome,
        st.sampled_from(NAMES),
        st.sampled_from(list(Status)),
        st.sampled_from(DIGESTS),
        row=st.integers(1, 9),
        lane=st.sampled_from([LANE, OTHER_LANE]),
        code=st.sampled_from([None, "TooManyRequestsException", "BadRequestException"]),
        ambiguous=st.booleans(),
    ),
    max_size=25,
)


def model_prior(records: list[Record], lane: Lane, name: str, digest: str | None) -> Record | None:
    """The record a lookup should answer, replayed from the records the file kept.

    The latest record about the configuration set and the latest ``invalid`` one are kept
    apart; without a digest the later one answers; with one, the invalid record answers only
    for its own content, and the set's record otherwise.
    """
    state: tuple[int, Record] | None = None
    invalid: tuple[int, Record] | None = None
    for position, record in enumerate(records):
        if "status" in record and (record["lane"], record["name"]) == (str(lane), name):
            if record["status"] == "invalid":
                invalid = (position, record)
            else:
                state = (position, record)
    if state is None or invalid is None:
        found = state or invalid
        return None if found is None else found[1]
    newer = max(state, invalid, key=lambda pair: pair[0])[1]
    if digest is None:
        return newer
    if invalid[1]["digest"] != digest:
        return state[1]
    if state[1]["digest"] != digest:
        return invalid[1]
    return newer


def model_action(record: Record | None, digest: str) -> Action:
    """DESIGN.md's resume rules, written again from the table, for the replay to check."""
    if record is None or record["status"] in ("failed", "deleted"):
        return Action.SEND
    if record["digest"] == digest:
        return Action.SKIP
    return Action.SEND if record["status"] == "invalid" else Action.DRIFT


def as_prior(record: Record | None) -> Prior | None:
    if record is None:
        return None
    return Prior(
        row=record["row"],
        status=Status(record["status"]),
        digest=record["digest"],
        code=record["code"],
        ambiguous=record.get("ambiguous") is True,
    )


#: The resume rules of DESIGN.md as a table: a row's latest status, and what a resume does
#: with it when its request is the same, and when it changed.
RULES = [
    (Status.CREATED, Action.SKIP, Action.DRIFT),
    (Status.EXISTS, Action.SKIP, Action.DRIFT),
    (Status.INVALID, Action.SKIP, Action.SEND),
    (Status.FAILED, Action.SEND, Action.SEND),
    (Status.DELETED, Action.SEND, Action.SEND),
]
