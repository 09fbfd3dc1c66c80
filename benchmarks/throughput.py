"""Scenarios 1 and 2: how close to a 100/s server's limit, and at what cost in 429s.

Throughput is created ÷ (first call to last answer) ÷ the server's rate; the throttled share
is 429s ÷ every create that reached the server. Both come from the emulator's counters, so
botocore's hidden retries are counted like the engine's. A server with burst B lets
``B + R·T`` calls through in ``T`` seconds, so a perfect client scores slightly above 1.00
(1.0025 for 2,000 rows, burst 5).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from benchmarks.contenders import (
    ClientRun,
    engine_import_error,
    run_aiobotocore,
    run_boto3_threads,
    run_engine,
)
from benchmarks.context import Context
from benchmarks.harness import EmulatorProcess, ServerCounts, requests
from benchmarks.report import Check, Section

SERVER_RATE = 100.0
SERVER_BURST = 5
LATENCY_MS = 20.0

_COLUMNS = (
    "contender",
    "created",
    "create calls",
    "429s",
    "window s",
    "throughput ÷ limit",
    "throttled share",
    "how",
)


class _Measured:
    """One contender's client view and server counts, and the two figures made from them."""

    def __init__(self, run: ClientRun, counts: ServerCounts) -> None:
        self.run = run
        self.counts = counts
        self.ratio = counts.created / run.window_s / SERVER_RATE if run.window_s > 0 else 0.0
        self.throttled = counts.throttled_share

    def row(self) -> list[str]:
        detail = self.run.detail
        if self.run.unfinished:
            detail += f"; {self.run.unfinished} rows unfinished"
        return [
            self.run.label,
            str(self.counts.created),
            str(self.counts.create_calls),
            str(self.counts.throttled),
            f"{self.run.window_s:.2f}",
            f"{self.ratio:.3f}",
            f"{self.throttled:.2%}",
            detail,
        ]


def _measure(emulator: EmulatorProcess, contender: Callable[[], ClientRun]) -> _Measured:
    emulator.reset()
    run = contender()
    return _Measured(run, emulator.counts())


def _server(ctx: Context) -> EmulatorProcess:
    return EmulatorProcess(
        ctx.workspace.root, rate=SERVER_RATE, burst=SERVER_BURST, latency_ms=LATENCY_MS
    )


def _setup(rows: int) -> str:
    return (
        f"Emulator in its own process: CreateConfigurationSet {SERVER_RATE:g}/s, burst "
        f"{SERVER_BURST}, {LATENCY_MS:g} ms mean latency (±50%); {rows:,} rows, a fresh "
        "server state (reset) for each contender."
    )


def _engine(
    ctx: Context, emulator: EmulatorProcess, label: str, *, rate: float, burst: int
) -> _Measured:
    rows = ctx.sizes.limited_rows
    path = ctx.workspace.tenants(rows)
    ledger = ctx.workspace.fresh(f"throughput-{label.replace(' ', '_')}.ledger.jsonl")

    def contender() -> ClientRun:
        run, _ = run_engine(label, path, emulator.url, ledger, rate=rate, burst=burst)
        return run

    return _measure(emulator, contender)


def limit_known(ctx: Context) -> Section:
    """Scenario 1: the engine told the server's rate (``--rate 100``), burst 1 and 5."""
    rows = ctx.sizes.limited_rows
    section = Section("known", "1. Limit known: engine --rate 100", _setup(rows), _COLUMNS)
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("engine throughput ÷ limit", "≥ 0.99", "n/a", None))
        return section
    with _server(ctx) as emulator:
        for burst in (1, 5):
            label = f"engine --rate 100 --burst {burst}"
            measured = _engine(ctx, emulator, label, rate=SERVER_RATE, burst=burst)
            section.rows.append(measured.row())
            section.checks += [
                Check(
                    f"{label}: throughput ÷ limit",
                    "≥ 0.99",
                    f"{measured.ratio:.3f}",
                    measured.ratio >= 0.99,
                ),
                Check(
                    f"{label}: throttled share",
                    "≤ 0.5%",
                    f"{measured.throttled:.2%}",
                    measured.throttled <= 0.005,
                ),
            ]
    section.notes.append(
        "engine window: from on_start (credentials proven, first batch about to be read) to "
        "provision() returning (ledger closed); concurrency 16."
    )
    return section


def limit_unknown(ctx: Context) -> Section:
    """Scenario 2: the engine told 10x the server's rate, beside botocore's retry modes."""
    rows = ctx.sizes.limited_rows
    section = Section(
        "unknown",
        "2. Limit unknown: engine --rate 1000 beside boto3 retry modes",
        _setup(rows),
        _COLUMNS,
    )
    work = requests(rows)
    problem = engine_import_error()
    with _server(ctx) as emulator:
        engine = None
        if problem is None:
            engine = _engine(ctx, emulator, "engine --rate 1000", rate=1000.0, burst=1)
            section.rows.append(engine.row())
        else:
            section.notes.append(f"engine not measured: {problem}")
        modes: dict[str, _Measured] = {}
        for mode in ("adaptive", "standard"):
            label = f"boto3 {mode}, 32 threads"
            contender = partial(run_boto3_threads, label, work, emulator.url, mode=mode, threads=32)
            modes[mode] = _measure(emulator, contender)
            section.rows.append(modes[mode].row())
        for burst in (1, SERVER_BURST):
            paced = partial(
                run_aiobotocore,
                f"aiobotocore paced at the limit, burst {burst}",
                work,
                emulator.url,
                tasks=16,
                rate=SERVER_RATE,
                burst=burst,
            )
            section.rows.append(_measure(emulator, paced).row())
    if engine is None:
        section.checks.append(Check("engine throughput ÷ limit", "≥ 0.95", "n/a", None))
    else:
        best_ratio = max(m.ratio for m in modes.values())
        best_throttled = min(m.throttled for m in modes.values())
        ratio, throttled = f"{engine.ratio:.3f}", f"{engine.throttled:.2%}"
        section.checks += [
            Check("engine throughput ÷ limit", "≥ 0.95", ratio, engine.ratio >= 0.95),
            Check("engine throttled share", "≤ 2%", throttled, engine.throttled <= 0.02),
            Check(
                "engine throughput ahead of both botocore modes",
                f"> {best_ratio:.3f}",
                ratio,
                engine.ratio > best_ratio,
            ),
            Check(
                "engine throttled share below both botocore modes",
                f"< {best_throttled:.2%}",
                throttled,
                engine.throttled < best_throttled,
            ),
        ]
    section.notes += [
        "boto3: one client shared by 32 threads (adaptive mode's limiter is per client), each "
        "thread creating its share of the names; botocore max_attempts 10, and a row still "
        "throttled after that is sent again by the thread (counted at the server).",
        "aiobotocore paced: 16 tasks, an aiolimiter bucket at the server's own rate (burst 1, "
        "and the server's burst), botocore retries off, a 429 re-sent through the bucket: "
        "what a client that is told the limit reaches, the engine's adaptive limiter aside.",
        "window: first call to last answer; for the engine from on_start (credentials "
        "proven, first batch about to be read) to provision() returning.",
    ]
    return section
