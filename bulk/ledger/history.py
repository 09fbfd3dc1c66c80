"""What a ledger says happened: each row's latest record, and the runs that wrote them.

For ``bulk report`` and ``bulk rollback``. A ledger is read as :func:`~bulk.ledger.reader.
read_records` reads it: without taking its lock (a running provision goes on writing), and
without its torn tail.

A name's set is keyed as a resume keys it, by lane and name: ``sets`` holds each name's latest
record that is not ``invalid`` (what happened to its set: rollback reads this). An ``invalid``
record is a row's, not a set's (a duplicate of a created name is invalid while the name's set
exists), so ``invalid`` keys them by lane, name and row; a later record of another status at
the same row (the row fixed) replaces it. The report's rows are both, an invalid row shadowing
its name's set record at the same row. An intent line with no record of its row after it is a
call that was in flight when its process died: the row is reported as such (``in_flight``),
as a resume would read it (an ambiguous ``failed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bulk.errors import LedgerError, UsageError
from bulk.ledger.reader import read_records
from bulk.ledger.records import INTENT_CODE
from bulk.models import Status
from bulk.settings import ledger_path

__all__ = ["History", "RowState", "RunRecord", "find_ledger", "read_history"]

_MESSAGE_LIMIT = 500  # characters of a record's message kept (a report shows less)


@dataclass(frozen=True, slots=True)
class RowState:
    """A row's latest record: ``row`` (its data row number when recorded), ``status``,
    ``code``, ``message``, ``digest``; ``in_flight``: an intent line with no record after it
    (``deleting``: a rollback's, over a ``created`` set: the delete may have gone through);
    ``steps``, ``drift`` and ``ambiguous`` (the set may have been made) as the record has
    them."""

    lane: str
    name: str
    row: int
    status: Status
    code: str | None = None
    message: str = ""
    in_flight: bool = False
    steps: Mapping[str, Any] | None = None
    drift: Mapping[str, Any] | None = None
    digest: str = ""
    deleting: bool = False
    ambiguous: bool = False


@dataclass
class RunRecord:
    """One run as its header and end record say it: ``ended`` is None for a run that never
    wrote its end (killed, or still running); ``rates``: the last learned rate of each lane
    (and ``lane#Operation``) it recorded; ``command``: ``provision`` or ``rollback``."""

    run_id: str
    started: str
    input: str
    target: Mapping[str, Any]
    dry_run: bool = False
    ended: str | None = None
    elapsed_s: float | None = None
    this_run: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    interrupted: bool = False
    rates: dict[str, float] = field(default_factory=dict)
    command: str = "provision"


@dataclass
class History:
    """A ledger's sets and invalid rows (see the module's doc) and its runs, in file order."""

    path: Path
    sets: dict[tuple[str, str], RowState] = field(default_factory=dict)
    invalid: dict[tuple[str, str, int], RowState] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    # (lane, tenant) of the tenants a rollback deleted (its end records say which).
    tenants_deleted: set[tuple[str, str]] = field(default_factory=set)

    def rows(self) -> list[RowState]:
        """Each row's latest state: the invalid rows, and the sets no invalid row shadows."""
        invalid = self.invalid
        found = [s for s in self.sets.values() if (s.lane, s.name, s.row) not in invalid]
        found.extend(invalid.values())
        return found

    def counts(self) -> Counter[str]:
        """Rows by latest status (an in-flight row as ``in flight``)."""
        return Counter(_label(state) for state in self.rows())

    def lanes(self) -> dict[str, Counter[str]]:
        """Per lane, rows by latest status, lanes sorted."""
        found: dict[str, Counter[str]] = {}
        for state in self.rows():
            found.setdefault(state.lane, Counter())[_label(state)] += 1
        return dict(sorted(found.items()))

    def codes(self, statuses: Iterable[str]) -> Counter[str]:
        """Error codes of the rows whose latest status is in ``statuses`` (an in-flight row
        is ``failed``, code ``Interrupted``)."""
        wanted = set(statuses)
        return Counter(state.code or "-" for state in self.rows() if state.status.value in wanted)

    def with_status(self, statuses: Iterable[str]) -> list[RowState]:
        """The rows whose latest status is in ``statuses`` (an in-flight row is ``failed``),
        by row number."""
        wanted = set(statuses)
        found = [state for state in self.rows() if state.status.value in wanted]
        return sorted(found, key=lambda state: (state.row, state.lane, state.name))


def find_ledger(input_path: Path | None, ledger: Path | None) -> Path:
    """The ledger of a command that reads one (``--ledger``, else ``INPUT.ledger.jsonl``).

    Raises :class:`~bulk.errors.UsageError` when neither is given and
    :class:`~bulk.errors.LedgerError` when there is no ledger there (exit 2 both).
    """
    if input_path is None and ledger is None:
        raise UsageError("give INPUT (its ledger is INPUT.ledger.jsonl) or --ledger PATH")
    path = ledger_path(input_path, ledger)
    if not path.is_file():
        raise LedgerError(
            f"no ledger at {path}: bulk provision writes INPUT.ledger.jsonl beside its input; "
            "pass --ledger PATH for one elsewhere"
        )
    return path


def read_history(path: Path) -> History:
    """The :class:`History` of the ledger at ``path``.

    Raises :class:`~bulk.errors.LedgerError` for a ledger that cannot be read or holds a line
    that is not a record (other than a torn last one).
    """
    history = History(path)
    runs: dict[str, RunRecord] = {}
    current: RunRecord | None = None
    for record in read_records(path):
        kind = record.get("kind")
        if kind is None and "status" in record:
            _note(history, _row_state(record))
        elif kind == "intent":
            key = (str(record.get("lane")), str(record.get("name")))
            before = history.sets.get(key)
            if record.get("op") == "delete" and before is not None:
                # A rollback's delete in flight: the set is still the ledger's own.
                _note(history, replace(before, in_flight=True, deleting=True))
                continue
            _note(
                history,
                RowState(
                    key[0],
                    key[1],
                    int(record.get("row") or 0),
                    Status.FAILED,
                    INTENT_CODE,
                    "a call was in flight when its run's process died",
                    in_flight=True,
                    steps=None if before is None else before.steps,
                    digest=str(record.get("digest") or ""),
                ),
            )
        elif kind == "run":
            settings = record.get("settings") or {}
            current = RunRecord(
                run_id=str(record.get("run_id")),
                started=str(record.get("time")),
                input=str(record.get("input")),
                target=record.get("target") or {},
                dry_run=bool(settings.get("dry_run")),
            )
            runs[current.run_id] = current
            history.runs.append(current)
        elif kind == "rate" and current is not None:
            operation = record.get("operation")
            lane = str(record.get("lane"))
            key_name = lane if operation is None else f"{lane}#{operation}"
            current.rates[key_name] = float(record.get("rate") or 0.0)
        elif kind == "end":
            run = runs.get(str(record.get("run_id")))
            if run is not None:
                run.ended = str(record.get("time"))
                run.elapsed_s = record.get("elapsed_s")
                run.this_run = dict(record.get("this_run") or {})
                run.exit_code = record.get("exit_code")
                run.interrupted = bool(record.get("interrupted"))
                run.command = str(record.get("command") or "provision")
                for lane, tenants in (record.get("tenants_deleted") or {}).items():
                    history.tenants_deleted.update((str(lane), str(t)) for t in tenants)
    return history


def _note(history: History, state: RowState) -> None:
    """``state`` as the latest of its set, or of its row when it is invalid."""
    if state.status is Status.INVALID:
        history.invalid[(state.lane, state.name, state.row)] = state
        return
    history.invalid.pop((state.lane, state.name, state.row), None)  # the row, fixed
    history.sets[(state.lane, state.name)] = state


def _row_state(record: Mapping[str, Any]) -> RowState:
    message = str(record.get("message") or "")
    return RowState(
        lane=str(record.get("lane")),
        name=str(record.get("name")),
        row=int(record.get("row") or 0),
        status=Status(record["status"]),
        code=record.get("code"),
        message=message[:_MESSAGE_LIMIT],
        steps=record.get("steps"),
        drift=record.get("drift"),
        digest=str(record.get("digest") or ""),
        ambiguous=bool(record.get("ambiguous")),
    )


def _label(state: RowState) -> str:
    if state.deleting:
        return "deleting"
    return "in flight" if state.in_flight else state.status.value
