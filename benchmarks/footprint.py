"""Scenarios 4 and 5: peak memory as the input grows, and resuming a settled million-row ledger.

Both run ``bulk provision`` as a child process, the way users run it, and read the child's own
peak RSS from ``wait4``. The settled ledger is written through ``bulk.ledger.writer.Ledger`` with
digests from ``bulk.input.validate.Validator``, so it is the ledger the engine itself would have
left behind after creating every row: no format is guessed here. Closing it saves its resume
index beside it when it is big enough (``bulk.ledger.index_file``), as a real run's close does; each
scenario also runs on the ledger alone, as when it was copied without its index (a run killed
outright leaves the index of its last checkpoint, up to 30 s old).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks.contenders import engine_import_error
from benchmarks.context import Context
from benchmarks.harness import (
    REGION,
    SERVICE,
    ChildRun,
    EmulatorProcess,
    bulk_command,
    json_summary,
    last_record,
    pending_by_lane,
    run_child,
)
from benchmarks.report import Check, Section
from benchmarks.routing import (
    ORDERS,
    ROLE_REGIONS,
    SIX_REGIONS,
    lane_file,
    region_lanes,
    role_lanes,
)

MEMORY_LIMIT_MB = 250.0
MIN_INDEXED = 50_000  # bulk.ledger.index_file.MIN_RECORDS, checked in _settled_copy
GROWTH_LIMIT = 1.2
RESUME_LIMIT_S = 5.0


def _mb(run: ChildRun) -> str:
    return f"{run.max_rss_mb:.0f}"


def _failure(run: ChildRun) -> str:
    """The last line of a failed child's stderr, for the notes."""
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def memory(ctx: Context) -> Section:
    """Scenario 4: dry runs without and with a settled ledger, and real runs; small and big."""
    small, big = ctx.sizes.memory_rows
    live_small, live_big = ctx.sizes.live_rows
    section = Section(
        "memory",
        "4. Memory: peak RSS as the input grows",
        f"`bulk provision` as a child process, its own peak RSS (GNU time): dry runs of "
        f"{small:,} and {big:,} rows without a ledger (reader and validation) and with a "
        "ledger that settles every row (plus reading the ledger, or its saved index when there "
        f"is one: from {MIN_INDEXED:,} records), and with that ledger alone; real runs of "
        f"{live_small:,} and {live_big:,} rows against an unthrottled emulator in its own "
        "process (--rate 0 --concurrency 32).",
        ("run", "rows", "wall s", "peak RSS MB", "exit"),
    )
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("peak RSS growth", f"≤ {GROWTH_LIMIT}×", "n/a", None))
        return section
    ws = ctx.workspace
    pairs: dict[str, list[ChildRun]] = {}

    def record(what: str, rows: int, run: ChildRun, created: int | None = None) -> None:
        pairs.setdefault(what, []).append(run)
        section.rows.append([what, f"{rows:,}", f"{run.wall_s:.1f}", _mb(run), str(run.exit_code)])
        if run.exit_code != 0 or (created is not None and created != rows):
            got = "" if created is None else f" with {created:,} created"
            section.notes.append(
                f"{what}, {rows:,} rows: exit {run.exit_code}{got}: {_failure(run)}"
            )

    for rows in (small, big):
        argv = _provision(ws.tenants(rows), ws.fresh("memory-dry.ledger.jsonl"), "--dry-run")
        record("dry run, no ledger", rows, run_child(argv, ws.root))
    for alone in (False, True):
        for rows in (small, big):
            ledger = _settled_copy(ctx, rows, "memory", with_index=not alone)
            argv = _provision(ws.tenants(rows), ledger, "--dry-run", "--endpoint-url", ws.url)
            what = "dry run, settled ledger " + ("alone" if alone else "as a run leaves it")
            record(what, rows, run_child(argv, ws.root))
    with EmulatorProcess(ws.root, rate=0.0, latency_ms=0.0) as emulator:
        for rows in (live_small, live_big):
            emulator.reset()
            argv = _provision(
                ws.tenants(rows),
                ws.fresh("memory-live.ledger.jsonl"),
                "--endpoint-url",
                emulator.url,
                "--rate",
                "0",
                "--concurrency",
                "32",
            )
            record("real run", rows, run_child(argv, ws.root), emulator.counts().created)
    for what, (first, second) in pairs.items():
        growth = second.max_rss_mb / first.max_rss_mb
        peak = second.max_rss_mb
        section.checks += [
            Check(
                f"{what}: peak RSS growth",
                f"≤ {GROWTH_LIMIT}×",
                f"{growth:.2f}×",
                growth <= GROWTH_LIMIT,
            ),
            Check(
                f"{what}: peak RSS",
                f"< {MEMORY_LIMIT_MB:.0f} MB",
                f"{peak:.0f} MB",
                peak < MEMORY_LIMIT_MB,
            ),
        ]
    section.notes += [
        "peak RSS includes the interpreter and every import (botocore, aiobotocore, polars): "
        "what grows with the input is the difference between the two sizes.",
        *_ledger_notes(ctx),
    ]
    return section


def _settled_copy(ctx: Context, rows: int, use: str, *, with_index: bool) -> Path:
    """A copy of the settled ledger a run may append to; with its saved index, if it has one."""
    from bulk.ledger.index_file import MIN_RECORDS, index_path

    assert MIN_RECORDS == MIN_INDEXED, "update MIN_INDEXED"
    ws = ctx.workspace
    source = settled_ledger(ctx, rows)
    ledger = ws.fresh(f"{use}-{rows}.ledger.jsonl")
    index_path(ledger).unlink(missing_ok=True)
    shutil.copyfile(source, ledger)
    if with_index and index_path(source).exists():
        shutil.copyfile(index_path(source), index_path(ledger))
    return ledger


def _provision(input_path: Path, ledger: Path, *options: str) -> list[str]:
    return bulk_command(
        "provision", str(input_path), "--ledger", str(ledger), "--region", REGION, *options
    )


def _ledger_notes(ctx: Context) -> list[str]:
    return [
        f"{rows:,}-row settled ledger written in {seconds:.1f} s (once per benchmark run, "
        "not timed)"
        for rows, seconds in ctx.workspace.ledger_seconds.items()
    ]


def settled_ledger(ctx: Context, rows: int) -> Path:
    """A ledger settling every row of the ``rows``-row input for the workspace's endpoint.

    Written once per benchmark run; callers that would append to it work on a copy.
    """
    ws = ctx.workspace
    path = ws.ledgers.get(rows)
    if path is None:
        path = ws.fresh(f"settled-{rows}.ledger.jsonl")
        started = time.perf_counter()
        write_settled_ledger(ws.tenants(rows), path, ws.url)
        ws.ledger_seconds[rows] = time.perf_counter() - started
        ws.ledgers[rows] = path
    return path


def write_settled_ledger(input_path: Path, ledger_path: Path, url: str) -> int:
    """The ledger of a run that created every row of ``input_path`` against ``url``.

    Opened with ``Ledger.open`` (which writes the run header), one ``append`` per row with the
    validator's digest, then the end record: what ``bulk provision`` leaves after a full run.
    Returns the number of row records written.
    """
    from bulk.engine.intake import Intake, Send
    from bulk.engine.summary import RunStats
    from bulk.input.source import open_source
    from bulk.input.validate import Validator
    from bulk.ledger.index import ResumeIndex
    from bulk.ledger.writer import Ledger
    from bulk.models import Destination, Outcome, Status
    from bulk.settings import Settings

    settings = Settings(
        service=SERVICE, region=REGION, endpoint_url=url, ledger=ledger_path, rate=100.0, burst=5
    )
    target = Destination(service=SERVICE, region=REGION, profile=None, endpoint=url)
    source = open_source(input_path, service=SERVICE)
    # The engine's own reader path on an empty ledger: every valid row comes out to be sent.
    stats = RunStats(total=0, ledger=ledger_path)
    intake = Intake(source.columns, Validator(SERVICE, region=REGION), ResumeIndex(), stats)
    written = 0
    with Ledger.open(
        ledger_path, input_name=input_path.name, target=target, settings=settings.header()
    ) as ledger:
        for frame in source.frames():
            for item in intake.take(frame).items:
                if not isinstance(item, Send):
                    raise RuntimeError(f"generated row {item.row} is invalid: {item.message}")
                row = item.row
                ledger.append(
                    Outcome(
                        row=row.number,
                        name=row.name,
                        status=Status.CREATED,
                        lane=row.lane,
                        digest=row.digest,
                        attempts=1,
                        latency_ms=20.0,
                        fingerprint=row.fingerprint,
                    )
                )
                written += 1
        ledger.append_end({"total": written, "counts": {"created": written}, "exit_code": 0})
    return written


def resume(ctx: Context) -> Section:
    """Scenario 5: from start to "nothing to do" on a ledger where every row is settled."""
    small, big = ctx.sizes.resume_rows
    section = Section(
        "resume",
        "5. Resume: every row already settled",
        f"Inputs of {small:,} and {big:,} rows with ledgers that record every row created (same "
        "target, digests from the validator); `bulk provision` as a child process against an "
        "emulator in its own process; wall time from exec to exit. Each ledger as a run leaves "
        f"it (with its saved resume index from {MIN_INDEXED:,} records), and the big one "
        "alone too (as when copied without its index: this run reads it all, and saves "
        "the index as it opens).",
        (
            "rows",
            "ledger",
            "ledger MB",
            "wall s",
            "µs per row",
            "skipped",
            "creates sent",
            "exit",
            "peak RSS MB",
        ),
    )
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("resume wall time", f"≤ {RESUME_LIMIT_S:g} s", "n/a", None))
        return section
    from bulk.ledger.index_file import index_path

    ws = ctx.workspace
    with EmulatorProcess(ws.root, port=ws.port, rate=100.0, burst=5) as emulator:
        for rows, alone in ((small, False), (big, False), (big, True)):
            ledger = _settled_copy(ctx, rows, "resume", with_index=not alone)
            indexed = index_path(ledger).exists()
            emulator.reset()
            argv = _provision(
                ws.tenants(rows), ledger, "--endpoint-url", emulator.url, "--rate", "100"
            )
            run = run_child(argv, ws.root)
            sent = emulator.counts().create_calls
            skipped = last_record(ledger).get("skipped")
            section.rows.append(
                [
                    f"{rows:,}",
                    "with its saved index" if indexed else "alone",
                    f"{ledger.stat().st_size / 1e6:.0f}",
                    f"{run.wall_s:.2f}",
                    f"{run.wall_s / rows * 1e6:.1f}",
                    f"{skipped:,}" if isinstance(skipped, int) else str(skipped),
                    str(sent),
                    str(run.exit_code),
                    _mb(run),
                ]
            )
            if run.exit_code != 0:
                section.notes.append(f"{rows:,} rows: exit {run.exit_code}: {_failure(run)}")
            if rows == big:
                done = run.exit_code == 0 and skipped == rows and sent == 0
                what = f"{rows:,} settled rows, " + ("ledger alone" if alone else "saved index")
                section.checks += [
                    Check(
                        f"{what}: wall time",
                        f"≤ {RESUME_LIMIT_S:g} s",
                        f"{run.wall_s:.2f} s",
                        run.wall_s <= RESUME_LIMIT_S,
                    ),
                    Check(
                        f"{what}: nothing sent, all skipped, exit 0",
                        "yes",
                        f"exit {run.exit_code}, skipped {skipped}, sent {sent}",
                        done,
                    ),
                ]
    section.notes += _ledger_notes(ctx)
    return section


# -- 9. sorted-memory: a file sorted by lane -----------------------------------------------------

SORTED_ROLES = 50  # × ROLE_REGIONS: 100 lanes, with no AWS config file needed


def sorted_memory(ctx: Context) -> Section:
    """Scenario 9: peak RSS of a file sorted by lane beside the same rows interleaved."""
    small, big = ctx.sizes.sorted_rows
    live = ctx.sizes.sorted_live_rows
    lanes = role_lanes(SORTED_ROLES, ROLE_REGIONS)
    section = Section(
        "sorted-memory",
        "9. Memory of a file sorted by lane",
        f"`bulk provision` as a child process, its own peak RSS (GNU time): dry runs of "
        f"{small:,} and {big:,} rows over {len(lanes)} lanes ({SORTED_ROLES} roles in "
        f"RoleArn × Regions {', '.join(ROLE_REGIONS)}), the file sorted by lane and the same "
        "rows interleaved, beside the one-lane tenants file of scenario 4 (no routing "
        f"columns); then real runs of about {live:,} rows over 6 lanes (Regions "
        f"{', '.join(SIX_REGIONS)}, the run's own credentials) in each order, and of the "
        "one-lane file, against an unthrottled emulator in its own process (--rate 0 "
        "--concurrency 32).",
        ("file", "run", "rows", "lanes", "wall s", "peak RSS MB", "÷ interleaved", "exit"),
    )
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("peak RSS", f"< {MEMORY_LIMIT_MB:.0f} MB", "n/a", None))
        return section
    ws = ctx.workspace
    dry: dict[tuple[str, int], ChildRun] = {}
    real: dict[str, ChildRun] = {}
    table: list[tuple[str, str, int, int, ChildRun]] = []

    def files(rows: int) -> list[tuple[str, Path, int]]:
        per_lane = rows // len(lanes)
        routed = [
            (order, lane_file(ws.root, lanes, per_lane, order), len(lanes)) for order in ORDERS
        ]
        return [*routed, ("one lane", ws.tenants(rows), 1)]

    for rows in (small, big):
        for kind, path, count in files(rows):
            run = run_child(_dry_run(path, ws.fresh("sorted-dry.ledger.jsonl")), ws.root)
            dry[kind, rows] = run
            table.append((kind, "dry run", rows, count, run))
    # Real runs over lanes of the run's own credentials: a role's lanes carry a botocore
    # session each (scenario 8 measures those), which would bury what the order costs.
    live_lanes = region_lanes(SIX_REGIONS)
    per_lane = live // len(live_lanes)
    live_files = [
        (order, lane_file(ws.root, live_lanes, per_lane, order), len(live_lanes))
        for order in ORDERS
    ]
    live_rows = per_lane * len(live_lanes)
    with EmulatorProcess(ws.root, rate=0.0, latency_ms=0.0) as emulator:
        for kind, path, count in [*live_files, ("one lane", ws.tenants(live_rows), 1)]:
            emulator.reset()
            argv = _provision(
                path,
                ws.fresh("sorted-live.ledger.jsonl"),
                "--endpoint-url",
                emulator.url,
                "--rate",
                "0",
                "--concurrency",
                "32",
                "--json",
            )
            run = run_child(argv, ws.root)
            real[kind] = run
            table.append((kind, "real run", live_rows, count, run))
            created = emulator.counts().created
            if run.exit_code != 0 or created != live_rows:
                summary = json_summary(run)
                said = _failure(run) if not summary else pending_by_lane(summary)
                section.notes.append(
                    f"real run, {kind}: exit {run.exit_code}, {created:,} of {live_rows:,} "
                    f"created; {said}; failed {summary.get('counts', {}).get('failed', '?')}, "
                    f"stopped lanes {len(summary.get('stopped_lanes', {}))}"
                )
    for kind, what, rows, count, run in table:
        base = dry.get(("interleaved", rows)) if what == "dry run" else real.get("interleaved")
        versus = "" if base is None or kind == "interleaved" else _times(run, base)
        cells = [kind, what, f"{rows:,}", str(count), f"{run.wall_s:.1f}", _mb(run), versus]
        section.rows.append([*cells, str(run.exit_code)])
        if run.exit_code != 0 and what == "dry run":
            section.notes.append(
                f"{what}, {kind}, {rows:,} rows: exit {run.exit_code}: {_failure(run)}"
            )
    for order in ORDERS:
        first, second = dry[order, small], dry[order, big]
        growth = second.max_rss_mb / first.max_rss_mb
        section.checks += [
            Check(
                f"dry run, {order}, {big:,} rows: peak RSS",
                f"< {MEMORY_LIMIT_MB:.0f} MB",
                f"{second.max_rss_mb:.0f} MB" + _exits(second),
                second.max_rss_mb < MEMORY_LIMIT_MB and second.exit_code == 0,
            ),
            Check(
                f"dry run, {order}: peak RSS growth {small:,} → {big:,} rows",
                f"≤ {GROWTH_LIMIT}×",
                f"{growth:.2f}×" + _exits(first, second),
                growth <= GROWTH_LIMIT and first.exit_code == 0 and second.exit_code == 0,
            ),
        ]
    for what, sorted_run, interleaved in (
        (f"dry run, {big:,} rows", dry["sorted", big], dry["interleaved", big]),
        (f"real run, {live_rows:,} rows", real["sorted"], real["interleaved"]),
    ):
        share = sorted_run.max_rss_mb / interleaved.max_rss_mb
        both = sorted_run.exit_code == 0 and interleaved.exit_code == 0
        section.checks.append(
            Check(
                f"{what}: sorted ÷ interleaved peak RSS",
                f"≤ {GROWTH_LIMIT}×",
                _times(sorted_run, interleaved) + _exits(sorted_run, interleaved),
                share <= GROWTH_LIMIT and both,
            )
        )
    section.checks.append(
        Check(
            f"real run, sorted, {live_rows:,} rows: peak RSS",
            f"< {MEMORY_LIMIT_MB:.0f} MB",
            f"{real['sorted'].max_rss_mb:.0f} MB" + _exits(real["sorted"]),
            real["sorted"].max_rss_mb < MEMORY_LIMIT_MB and real["sorted"].exit_code == 0,
        )
    )
    section.notes += [
        "a dry run reads, validates and counts rows by lane, but queues nothing: the lane "
        "queues and their spill files, where the order of the rows matters, work only in a "
        "real run, hence the real runs. They use six Regions of the run's own account, not "
        "roles: each role's lanes carry a botocore session of their own, which would bury "
        "what the order costs (scenario 8 measures that).",
        "targets: scenario 4's (< 250 MB, ≤ 1.2× from the small input to the big one); the "
        "same 1.2× bounds the sorted file against the same rows interleaved.",
    ]
    return section


def _exits(*runs: ChildRun) -> str:
    """`` (exit N)`` for the first run that did not exit 0: a figure it measured is not a
    pass, whatever its size."""
    codes = [run.exit_code for run in runs if run.exit_code != 0]
    return f" (exit {codes[0]})" if codes else ""


def _times(run: ChildRun, base: ChildRun) -> str:
    """``run``'s peak RSS as a multiple of ``base``'s."""
    return f"{run.max_rss_mb / base.max_rss_mb:.2f}×" if base.max_rss_mb else "n/a"


def _dry_run(input_path: Path, ledger: Path) -> list[str]:
    return _provision(input_path, ledger, "--dry-run")
