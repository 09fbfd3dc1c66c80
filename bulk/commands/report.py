"""``bulk report``: what a ledger says happened, what needs attention, and a file of those rows
to fix and provision.

The counts come from each row's latest record (:mod:`bulk.ledger.history`), per lane, status
and error code, and the runs from their headers and end records. With ``output``, the input
rows whose latest status is in ``statuses`` are written out with their original cells (read
from INPUT) plus ``bulk_status``, ``bulk_code`` and ``bulk_message``; ``bulk provision``
ignores ``bulk_`` columns, so the file, fixed, is provisioned as it is. Rows are matched to the
input by row number and name; a row whose name is not at its recorded number (the input was
edited since) is matched by name, and the report says so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from bulk.engine.progress import table_lines
from bulk.errors import UsageError
from bulk.input.columns import IGNORED_PREFIX, NAME_COLUMN, show
from bulk.input.source import open_source
from bulk.ledger.history import History, RowState, find_ledger, read_history
from bulk.live.output import write_atomically
from bulk.models import SERVICES, Status

__all__ = ["DEFAULT_STATUSES", "STATUSES", "Report", "report", "report_lines"]

STATUSES = tuple(status.value for status in Status)
DEFAULT_STATUSES = ("failed", "invalid")
_ATTENTION = ("failed", "invalid", "in flight")
_OUTPUT_SUFFIXES = (".csv", ".parquet")
_ADDED = ("bulk_status", "bulk_code", "bulk_message")


@dataclass(frozen=True)
class Report:
    """A ledger's report (see the module's doc). ``rows``: rows the ledger holds; ``counts``
    by latest status (``in flight``: an intent with no record after it); ``lanes``: per lane,
    the same; ``codes``: error codes of the rows needing attention; ``runs``: each run;
    ``written``: the output file and its rows, ``unmatched``: rows of the ledger with a
    wanted status that the input no longer holds; ``by_name``: rows matched by name only."""

    ledger: str
    input: str | None
    target: dict[str, Any]
    rows: int
    counts: dict[str, int]
    lanes: dict[str, dict[str, int]]
    codes: dict[str, int]
    runs: list[dict[str, Any]]
    drift: int
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    written: str | None = None
    written_rows: int = 0
    unmatched: int = 0
    by_name: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def report(
    input_path: Path | None,
    *,
    ledger: Path | None = None,
    statuses: Sequence[str] = DEFAULT_STATUSES,
    output: Path | None = None,
) -> Report:
    """The report of ``ledger`` (default: ``INPUT.ledger.jsonl``), writing ``output`` when
    given. Raises :class:`~bulk.UsageError` or :class:`~bulk.LedgerError` (exit 2) for a
    missing ledger, an unknown status, or an output path that cannot be written."""
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise UsageError(f"--status: unknown {show(unknown[0])}; use some of {', '.join(STATUSES)}")
    path = find_ledger(input_path, ledger)
    if output is not None:
        _check_output(output, input_path, path)
    history = read_history(path)
    last = history.runs[-1] if history.runs else None
    target = dict(last.target) if last is not None else {}
    written, unmatched, by_name, notes = None, 0, 0, []
    rows_written = 0
    if output is not None:
        assert input_path is not None  # _check_output
        service = str(target.get("service") or "")
        rows_written, unmatched, by_name = _write(
            output, input_path, history, tuple(statuses), service if service in SERVICES else None
        )
        written = str(output)
        if by_name:
            notes.append(
                f"the input changed since the run: {by_name} rows were matched by name, "
                "not by row number"
            )
        if unmatched:
            notes.append(f"{unmatched} rows of the ledger are no longer in the input")
    return Report(
        ledger=str(path),
        input=None if input_path is None else str(input_path),
        target=target,
        rows=len(history.rows()),
        counts=dict(history.counts()),
        lanes={lane: dict(counts) for lane, counts in history.lanes().items()},
        codes=dict(history.codes(("failed", "invalid")).most_common()),
        runs=[asdict(run) for run in history.runs],
        drift=sum(1 for state in history.rows() if state.drift),
        statuses=tuple(statuses),
        written=written,
        written_rows=rows_written,
        unmatched=unmatched,
        by_name=by_name,
        notes=tuple(notes),
    )


def _check_output(output: Path, input_path: Path | None, ledger: Path) -> None:
    if input_path is None:
        raise UsageError("-o needs INPUT: the rows are written with their cells as INPUT has them")
    if output.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise UsageError(f"-o {output}: write a .csv or .parquet file")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: no directory {output.parent}; create it or choose another")
    for other in (input_path, ledger):
        if output.exists() and other.exists() and os.path.samefile(output, other):
            raise UsageError(f"-o {output} is {other}; write the report to a file of its own")


def _write(
    output: Path, input_path: Path, history: History, statuses: tuple[str, ...], service: str | None
) -> tuple[int, int, int]:
    """Write the wanted rows with their cells; (rows written, unmatched, matched by name)."""
    wanted = history.with_status(statuses)
    by_number = {state.row: state for state in wanted}
    by_name: dict[str, list[RowState]] = {}
    for state in wanted:
        by_name.setdefault(state.name, []).append(state)
    source = open_source(input_path, service=service)
    kept = [c for c in source.columns if not c.startswith(IGNORED_PREFIX)]
    name_at = source.columns.index(NAME_COLUMN) if NAME_COLUMN in source.columns else None
    frames: list[pl.DataFrame] = []
    matched: set[tuple[str, str, int]] = set()
    named_only = 0
    for frame in source.frames():
        numbers = frame.to_series(0).to_list()
        names = frame.to_series(1 + name_at).to_list() if name_at is not None else []
        take: list[int] = []
        said: list[RowState] = []
        for at, number in enumerate(numbers):
            name = names[at] if names else None
            found = by_number.get(number)
            if found is None or found.name != name:
                # Not at its recorded row: the input changed since; the same name will do.
                candidates = [s for s in by_name.get(str(name), ()) if _key(s) not in matched]
                if not candidates:
                    continue
                found = candidates[0]
                named_only += 1
            if _key(found) in matched:
                continue
            matched.add(_key(found))
            take.append(at)
            said.append(found)
        if take:
            picked = (
                frame[take]
                .select(pl.nth(range(1, frame.width)))
                .rename(dict(zip(frame.columns[1:], source.columns, strict=True)))
            )
            frames.append(
                picked.select(kept).with_columns(
                    pl.Series("bulk_status", [s.status.value for s in said], pl.String),
                    pl.Series("bulk_code", [s.code for s in said], pl.String),
                    pl.Series("bulk_message", [s.message for s in said], pl.String),
                )
            )
    table = (
        pl.concat(frames, how="vertical_relaxed")
        if frames
        else pl.DataFrame(schema={c: pl.String for c in (*kept, *_ADDED)})
    )
    _write_aside(table, output)
    return table.height, len(wanted) - len(matched), named_only


def _key(state: RowState) -> tuple[str, str, int]:
    return (state.lane, state.name, state.row)


def _write_aside(table: pl.DataFrame, output: Path) -> None:
    """``table`` to ``output``, whole or not at all (written beside it, then renamed)."""
    parquet = output.suffix.lower() == ".parquet"
    write_atomically(output, table.write_parquet if parquet else table.write_csv)


def report_lines(found: Report) -> list[str]:
    """The report as the terminal shows it."""
    target = found.target
    where = " ".join(str(target[k]) for k in ("service", "region") if target.get(k))
    lines = [
        f"report: {found.ledger}"
        + (f" · {where}" if where else "")
        + f" · {len(found.runs)} run{'s' if len(found.runs) != 1 else ''}"
    ]
    counts = found.counts
    order = [*STATUSES, "in flight"]
    lines.append(
        f"rows: {found.rows} · "
        + " · ".join(f"{status} {counts.get(status, 0)}" for status in order if status != "deleted")
        + (f" · deleted {counts['deleted']}" if counts.get("deleted") else "")
    )
    if len(found.lanes) > 1:
        header = ["lane", *order]
        table = [header] + [
            [lane, *(str(c.get(status, 0)) for status in order)] for lane, c in found.lanes.items()
        ]
        lines.extend(table_lines(table))
    attention = sum(counts.get(status, 0) for status in _ATTENTION)
    if found.codes:
        codes = ", ".join(f"{code} {n}" for code, n in found.codes.items())
        lines.append(f"needs attention: {attention} rows ({codes})")
    if found.drift:
        lines.append(
            f"drift: {found.drift} existing sets differ from their rows (the ledger's drift field)"
        )
    for run in found.runs[-5:]:
        lines.append("run " + _run_line(run))
    if len(found.runs) > 5:
        lines.append(f"… {len(found.runs) - 5} earlier runs (--json lists them all)")
    lines.extend(f"note: {note}" for note in found.notes)
    if found.written is not None:
        lines.append(
            f"wrote {found.written}: {found.written_rows} rows ({', '.join(found.statuses)}) "
            "with their cells and bulk_status, bulk_code, bulk_message"
        )
    lines.append("next: " + _next(found, attention))
    return lines


def _run_line(run: dict[str, Any]) -> str:
    started = str(run.get("started", ""))[:19].replace("T", " ")
    kind = " (dry run)" if run.get("dry_run") else ""
    if run.get("command") == "rollback":
        kind += " rollback"
    if run.get("ended") is None:
        return f"{started}{kind}: no end record (killed, or still running)"
    done = ", ".join(f"{k} {v}" for k, v in (run.get("this_run") or {}).items()) or "nothing"
    rates = ", ".join(
        f"{lane} {rate:g}/s" for lane, rate in (run.get("rates") or {}).items() if "#" not in lane
    )
    elapsed = run.get("elapsed_s")
    took = f"{elapsed:.1f}s" if isinstance(elapsed, int | float) else "?"
    interrupted = ", interrupted" if run.get("interrupted") else ""
    return f"{started}{kind}: {took}, {done}, exit {run.get('exit_code')}{interrupted}" + (
        f" · learned {rates}" if rates else ""
    )


def _next(found: Report, attention: int) -> str:
    if not attention:
        return "nothing needs attention"
    if found.written is not None:
        return (
            f"fix the rows in {found.written} (the bulk_ columns say why), then "
            f"bulk provision {found.written} with the run's options"
        )
    source = found.input or "INPUT"
    return f"bulk report {source} -o FIX.csv writes those rows with their cells, to fix"
