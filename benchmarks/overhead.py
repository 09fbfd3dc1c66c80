"""Scenario 3: what the engine costs over a bare aiobotocore loop making the same calls.

The server is unthrottled with no added latency, so the client's own CPU time is what limits
both contenders. They run alternately (bare first in odd rounds, engine first in even ones, so
a slow patch of a noisy machine is shared), each against a freshly reset server, at the same
concurrency; the figure is the median of the per-round ratios.
"""

from __future__ import annotations

from benchmarks.contenders import ClientRun, engine_import_error, run_aiobotocore, run_engine
from benchmarks.context import Context
from benchmarks.harness import EmulatorProcess, ServerCounts, median, requests
from benchmarks.report import Check, Section

CONCURRENCY = 32
TARGET = 1.1


def overhead(ctx: Context) -> Section:
    rows = ctx.sizes.overhead_rows
    section = Section(
        "overhead",
        "3. Overhead: engine ÷ bare aiobotocore loop",
        f"Emulator in its own process, unthrottled (rate 0), no added latency; {rows:,} rows; "
        f"both contenders at concurrency {CONCURRENCY}, run alternately "
        f"{ctx.sizes.overhead_rounds} times, the server reset before each run.",
        (
            "round",
            "bare wall s",
            "engine wall s",
            "wall ratio",
            "bare window s",
            "engine window s",
            "window ratio",
            "bare CPU s",
            "engine CPU s",
            "CPU ratio",
        ),
    )
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("engine wall ÷ bare loop wall", f"≤ {TARGET}", "n/a", None))
        return section
    work = requests(rows)
    path = ctx.workspace.tenants(rows)
    ratios: list[float] = []
    window_ratios: list[float] = []
    cpu_ratios: list[float] = []
    problems: list[str] = []
    with EmulatorProcess(ctx.workspace.root, rate=0.0, latency_ms=0.0) as emulator:

        def bare() -> ClientRun:
            emulator.reset()
            run = run_aiobotocore("bare aiobotocore", work, emulator.url, tasks=CONCURRENCY)
            _check_complete("bare loop", run, emulator.counts(), rows, problems)
            return run

        def engine() -> ClientRun:
            emulator.reset()
            ledger = ctx.workspace.fresh("overhead.ledger.jsonl")
            run, _ = run_engine(
                "engine", path, emulator.url, ledger, rate=0.0, concurrency=CONCURRENCY
            )
            _check_complete("engine", run, emulator.counts(), rows, problems)
            return run

        for index in range(ctx.sizes.overhead_rounds):
            if index % 2 == 0:
                base, ours = bare(), engine()
            else:
                ours, base = engine(), bare()
            ratio = ours.wall_s / base.wall_s
            window_ratio = ours.window_s / base.window_s
            cpu_ratio = ours.cpu_s / base.cpu_s
            ratios.append(ratio)
            window_ratios.append(window_ratio)
            cpu_ratios.append(cpu_ratio)
            section.rows.append(
                [
                    str(index + 1),
                    f"{base.wall_s:.2f}",
                    f"{ours.wall_s:.2f}",
                    f"{ratio:.3f}",
                    f"{base.window_s:.2f}",
                    f"{ours.window_s:.2f}",
                    f"{window_ratio:.3f}",
                    f"{base.cpu_s:.2f}",
                    f"{ours.cpu_s:.2f}",
                    f"{cpu_ratio:.3f}",
                ]
            )
    result = median(ratios)
    section.rows.append(
        [
            "median",
            "",
            "",
            f"{result:.3f}",
            "",
            "",
            f"{median(window_ratios):.3f}",
            "",
            "",
            f"{median(cpu_ratios):.3f}",
        ]
    )
    section.checks.append(
        Check(
            "engine wall ÷ bare loop wall (median)",
            f"≤ {TARGET}",
            f"{result:.3f}",
            result <= TARGET,
        )
    )
    section.notes += [
        "engine: provision() in this process (no interpreter start-up or imports counted), "
        "--rate 0, its ledger on the same disk; wall = the whole call, reading and validating "
        "the CSV, the pre-flight call and closing the ledger included.",
        "bare loop: one aiobotocore client, retries off, tasks pulling prepared request dicts "
        "from one shared iterator; wall includes creating and closing the client.",
        "window: engine from on_start to return, bare loop from the first call to the last "
        "answer: the part of the run where calls are made.",
        "CPU: this process's CPU time (all threads) over the wall time; less sensitive to a "
        "busy machine than wall time, it shows what the engine adds per call. The emulator's "
        "CPU is not in it.",
        *problems,
    ]
    return section


def _check_complete(
    who: str, run: ClientRun, counts: ServerCounts, rows: int, problems: list[str]
) -> None:
    """A contender that did not create every row would make the ratio meaningless: say so."""
    if counts.created != rows or run.unfinished:
        problems.append(
            f"{who} created {counts.created} of {rows} rows ({run.unfinished} unfinished, "
            f"server errors {counts.errors})"
        )
