"""Scenario 3: what the engine costs over a bare aiobotocore loop making the same calls.

The server is unthrottled with no added latency, so the client's own CPU time is what limits
every contender. Three run in each round, each against a freshly reset server, at the same
concurrency, in an order that rotates from round to round so that a slow patch of a noisy
machine is shared:

- the bare loop as a script would write it: a default client, retries off (the issue's
  baseline);
- the same loop with the client configured as the engine configures its own
  (:func:`~bulk.engine.target.client_config`): what the engine's own work costs, apart from how
  cheaply
  its client makes each call;
- the engine.

The figures are the medians of the per-round ratios.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.contenders import ClientRun, engine_import_error, run_aiobotocore, run_engine
from benchmarks.context import Context
from benchmarks.harness import EmulatorProcess, ServerCounts, median, requests
from benchmarks.report import Check, Section

CONCURRENCY = 32
TARGET = 1.1
BARE, SAME_CLIENT, ENGINE = "bare loop", "bare loop, engine's client", "engine"


def overhead(ctx: Context) -> Section:
    rows = ctx.sizes.overhead_rows
    section = Section(
        "overhead",
        "3. Overhead: engine ÷ bare aiobotocore loop",
        f"Emulator in its own process, unthrottled (rate 0), no added latency; {rows:,} rows; "
        f"three contenders at concurrency {CONCURRENCY}, run {ctx.sizes.overhead_rounds} times "
        "in an order that rotates each round, the server reset before each run.",
        (
            "round",
            "bare wall s",
            "same-client wall s",
            "engine wall s",
            "engine ÷ bare",
            "engine ÷ same-client",
            "bare CPU s",
            "same-client CPU s",
            "engine CPU s",
            "CPU engine ÷ bare",
            "CPU engine ÷ same-client",
        ),
    )
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("engine wall ÷ bare loop wall", f"≤ {TARGET}", "n/a", None))
        return section
    work = requests(rows)
    path = ctx.workspace.tenants(rows)
    ratios: dict[str, list[float]] = {"wall": [], "wall same": [], "cpu": [], "cpu same": []}
    problems: list[str] = []
    with EmulatorProcess(ctx.workspace.root, rate=0.0, latency_ms=0.0) as emulator:

        def loop(label: str, engine_client: bool) -> Callable[[], ClientRun]:
            def run() -> ClientRun:
                emulator.reset()
                result = run_aiobotocore(
                    label, work, emulator.url, tasks=CONCURRENCY, engine_client=engine_client
                )
                _check_complete(label, result, emulator.counts(), rows, problems)
                return result

            return run

        def engine() -> ClientRun:
            emulator.reset()
            ledger = ctx.workspace.fresh("overhead.ledger.jsonl")
            run, _ = run_engine(
                ENGINE, path, emulator.url, ledger, rate=0.0, concurrency=CONCURRENCY
            )
            _check_complete(ENGINE, run, emulator.counts(), rows, problems)
            return run

        contenders = [
            (BARE, loop(BARE, False)),
            (SAME_CLIENT, loop(SAME_CLIENT, True)),
            (ENGINE, engine),
        ]
        for index in range(ctx.sizes.overhead_rounds):
            shift = index % len(contenders)
            runs = {label: run() for label, run in contenders[shift:] + contenders[:shift]}
            base, same, ours = runs[BARE], runs[SAME_CLIENT], runs[ENGINE]
            ratios["wall"].append(ours.wall_s / base.wall_s)
            ratios["wall same"].append(ours.wall_s / same.wall_s)
            ratios["cpu"].append(ours.cpu_s / base.cpu_s)
            ratios["cpu same"].append(ours.cpu_s / same.cpu_s)
            section.rows.append(
                [
                    str(index + 1),
                    f"{base.wall_s:.2f}",
                    f"{same.wall_s:.2f}",
                    f"{ours.wall_s:.2f}",
                    f"{ratios['wall'][-1]:.3f}",
                    f"{ratios['wall same'][-1]:.3f}",
                    f"{base.cpu_s:.2f}",
                    f"{same.cpu_s:.2f}",
                    f"{ours.cpu_s:.2f}",
                    f"{ratios['cpu'][-1]:.3f}",
                    f"{ratios['cpu same'][-1]:.3f}",
                ]
            )
    medians = {key: median(values) for key, values in ratios.items()}
    section.rows.append(
        [
            "median",
            "",
            "",
            "",
            f"{medians['wall']:.3f}",
            f"{medians['wall same']:.3f}",
            "",
            "",
            "",
            f"{medians['cpu']:.3f}",
            f"{medians['cpu same']:.3f}",
        ]
    )
    section.checks += [
        Check(
            "engine wall ÷ bare loop wall (median)",
            f"≤ {TARGET}",
            f"{medians['wall']:.3f}",
            medians["wall"] <= TARGET,
        ),
        Check(
            "engine wall ÷ bare loop with the engine's client (median): the engine's own work",
            f"≤ {TARGET}",
            f"{medians['wall same']:.3f}",
            medians["wall same"] <= TARGET,
        ),
    ]
    section.notes += [
        "engine: provision() in this process (no interpreter start-up or imports counted), "
        "--rate 0, its ledger on the same disk; wall = the whole call, reading and validating "
        "the CSV, the pre-flight call and closing the ledger included.",
        "bare loop: one aiobotocore client, retries off, tasks pulling prepared request dicts "
        "from one shared iterator; wall includes creating and closing the client.",
        "same-client: that loop with the engine's client configuration (bulk.engine.target."
        "client_config): a fixed User-Agent, so botocore does not rebuild it for each request, "
        "and no parameter validation, which the engine's validator has already done for each "
        "row. The engine ÷ same-client ratio is what the engine's own work costs.",
        "CPU: this process's CPU time (all threads); less sensitive to a busy machine than wall "
        "time, it shows what the engine adds per call. The emulator's CPU is not in it.",
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
