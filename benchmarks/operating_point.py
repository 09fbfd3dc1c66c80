"""Scenario 6: the operating point, ``--rate`` equal to the service's own limit.

SES allows about one ``CreateConfigurationSet`` a second per account and Region, with a bucket
of one. Told exactly that (the engine's defaults, ``--rate 1 --burst 1``), the engine should
use the whole limit: its calls leave ``1 / R`` apart, so the one that reaches the server a few
milliseconds early meets an empty bucket, and the engine must take such a 429 for jitter, not
for a lower limit, and must not save a lower rate for the next run. Beside it, what a user
would otherwise write: a boto3 loop with ``time.sleep(1)`` after each call, and a boto3 loop
in botocore's ``adaptive`` retry mode. Then the engine once more at 10/s, burst 1 on both sides,
where the same milliseconds are ten times as large a share of the interval.

Throughput is created ÷ (first call to last answer) ÷ the server's rate: the server's bucket
starts full, so a perfect client scores slightly above 1.00 (120 ÷ 119 for 120 rows at 1/s).
The learned rate is the one the engine records in its ledger at the end of the run, where the
next run over the same ledger starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.contenders import ClientRun, engine_import_error, run_boto3_loop, run_engine
from benchmarks.context import Context
from benchmarks.harness import EmulatorProcess, ServerCounts, requests
from benchmarks.report import Check, Section

SERVER_BURST = 1
LATENCY_MS = 20.0
# The targets at the operating point.
MIN_RATIO = 0.99
MAX_THROTTLED = 0.01
LEARNED_WITHIN = 0.02

_COLUMNS = (
    "server",
    "contender",
    "created",
    "create calls",
    "429s",
    "window s",
    "throughput ÷ limit",
    "throttled share",
    "learned rate",
    "how",
)


@dataclass(frozen=True)
class _Measured:
    """One contender's client view and server counts, against a server of ``limit`` per second."""

    run: ClientRun
    counts: ServerCounts
    limit: float
    learned: float | None = None  # the engine's rate recorded in its ledger

    @property
    def ratio(self) -> float:
        window = self.run.window_s
        return self.counts.created / window / self.limit if window > 0 else 0.0

    def row(self) -> list[str]:
        detail = self.run.detail
        if self.run.unfinished:
            detail += f"; {self.run.unfinished} rows unfinished"
        return [
            f"{self.limit:g}/s, burst {SERVER_BURST}",
            self.run.label,
            str(self.counts.created),
            str(self.counts.create_calls),
            str(self.counts.throttled),
            f"{self.run.window_s:.2f}",
            f"{self.ratio:.3f}",
            f"{self.counts.throttled_share:.2%}",
            "n/a" if self.learned is None else f"{self.learned:.3f}/s",
            detail,
        ]

    def checks(self) -> list[Check]:
        label, ratio, throttled = self.run.label, self.ratio, self.counts.throttled_share
        checks = [
            Check(
                f"{label}: throughput ÷ limit",
                f"≥ {MIN_RATIO}",
                f"{ratio:.3f}",
                ratio >= MIN_RATIO,
            ),
            Check(
                f"{label}: throttled share",
                f"≤ {MAX_THROTTLED:.0%}",
                f"{throttled:.2%}",
                throttled <= MAX_THROTTLED,
            ),
        ]
        learned = self.learned
        off = None if learned is None else abs(learned - self.limit) / self.limit
        checks.append(
            Check(
                f"{label}: learned rate within {LEARNED_WITHIN:.0%} of the limit",
                f"{self.limit * (1 - LEARNED_WITHIN):g}-{self.limit:g}/s",
                "n/a" if learned is None or off is None else f"{learned:.3f}/s ({off:.1%} off)",
                None if off is None else off <= LEARNED_WITHIN,
            )
        )
        return checks


def _server(ctx: Context, rate: float) -> EmulatorProcess:
    return EmulatorProcess(ctx.workspace.root, rate=rate, burst=SERVER_BURST, latency_ms=LATENCY_MS)


def _measure(
    emulator: EmulatorProcess, limit: float, contender: Callable[[], ClientRun]
) -> _Measured:
    emulator.reset()
    run = contender()
    return _Measured(run, emulator.counts(), limit)


def _engine(ctx: Context, emulator: EmulatorProcess, rate: float, rows: int) -> _Measured:
    """The engine told the server's rate and burst, everything else at its defaults."""
    label = f"engine --rate {rate:g} --burst 1"
    path = ctx.workspace.tenants(rows)
    ledger = ctx.workspace.fresh(f"operating-{rate:g}.ledger.jsonl")
    summaries: list[Any] = []

    def contender() -> ClientRun:
        run, summary = run_engine(label, path, emulator.url, ledger, rate=rate, burst=1)
        summaries.append(summary)
        return run

    measured = _measure(emulator, rate, contender)
    learned = _saved_rate(ledger)
    if learned is None and summaries:
        rates = [r for r in getattr(summaries[0], "rates", {}).values() if r is not None]
        learned = rates[0] if len(rates) == 1 else None
    return _Measured(measured.run, measured.counts, rate, learned)


def _saved_rate(ledger: Path) -> float | None:
    """The last learned rate the ledger records (``{"kind": "rate", ...}``): the next run's."""
    rate = None
    try:
        with ledger.open(encoding="utf-8") as stream:
            for line in stream:
                if '"rate"' not in line:
                    continue
                try:
                    record: Mapping[str, Any] = json.loads(line)
                except ValueError:
                    continue
                if record.get("kind") == "rate" and isinstance(record.get("rate"), int | float):
                    rate = float(record["rate"])
    except OSError:
        return None
    return rate


def operating_point(ctx: Context) -> Section:
    """Scenario 6: 1/s burst 1 (engine, sleep(1) loop, adaptive loop), then 10/s burst 1."""
    rows, fast_rows = ctx.sizes.operating_rows, ctx.sizes.operating_fast_rows
    section = Section(
        "operating",
        "6. Operating point: --rate equal to the limit, burst 1 on both sides",
        f"Emulator in its own process: CreateConfigurationSet 1/s, burst {SERVER_BURST}, "
        f"{LATENCY_MS:g} ms mean latency (±50%); {rows:,} rows for each contender; then a "
        f"server at 10/s, burst {SERVER_BURST}, same latency, {fast_rows:,} rows for the engine. "
        "A fresh server state (reset) for each contender.",
        _COLUMNS,
    )
    problem = engine_import_error()
    work = requests(rows)
    engines: list[_Measured] = []
    with _server(ctx, 1.0) as emulator:
        if problem is None:
            engines.append(_engine(ctx, emulator, 1.0, rows))
            section.rows.append(engines[-1].row())
        else:
            section.notes.append(f"engine not measured: {problem}")
        for label, contender in (
            ("boto3 loop, sleep(1) after each call", partial(run_boto3_loop, pause=1.0)),
            ("boto3 loop, adaptive retry mode", partial(run_boto3_loop, mode="adaptive")),
        ):
            measured = _measure(emulator, 1.0, partial(contender, label, work, emulator.url))
            section.rows.append(measured.row())
    if problem is None:
        with _server(ctx, 10.0) as emulator:
            engines.append(_engine(ctx, emulator, 10.0, fast_rows))
            section.rows.append(engines[-1].row())
    if not engines:
        section.checks.append(Check("engine throughput ÷ limit", f"≥ {MIN_RATIO}", "n/a", None))
    for engine in engines:
        section.checks += engine.checks()
    section.notes += [
        "engine: provision() in this process with its defaults (concurrency 16), told the "
        "server's rate and burst; window from on_start (credentials proven, first batch about "
        "to be read) to provision() returning (ledger closed). Learned rate: the last rate "
        "record of its ledger, where a resumed run starts.",
        "boto3 loops: one client, one call after another; a row still throttled after "
        "botocore's retries is sent again (counted at the server). The sleep(1) loop keeps "
        "botocore's default retry configuration; the adaptive loop sets mode adaptive, "
        "max_attempts 10, and no sleep. Window: first call to last answer.",
    ]
    return section
