"""Scenarios 10 and 11: reading live state.

10. ``bulk export`` at a known read limit: every read operation of the server allows ``R``
    requests/s with a bucket of one, and the export is told ``--rate R --burst 1``. An export
    makes two reads per Pinpoint Email set (``GetConfigurationSet``,
    ``GetConfigurationSetEventDestinations``), each paced by its own limiter: both run at
    once, so sets are read at ``R`` a second. Beside it, the loop a user would write: one
    call after another, each followed by the sleep that keeps it at ``R``. Throughput is sets
    written ÷ the whole command's wall time (start-up, listing and the file included) ÷ ``R``.
11. ``bulk plan`` of 10,000 rows against an account holding those 10,000 sets, at AWS's
    1 request/s per operation: its calls and its time, beside what reading every set costs
    (``--diff``, measured at a faster limit, and what its calls would take at 1/s).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import (
    REGION,
    EmulatorProcess,
    bulk_command,
    json_summary,
    run_child,
)
from benchmarks.report import Check, Section

READS = ("ListConfigurationSets", "GetConfigurationSet", "GetConfigurationSetEventDestinations")
EXPORT_MIN_RATIO = 0.95
PLAN_RATE = 1.0  # AWS's documented rate, per operation
DIFF_RATE = 200.0  # where --diff is measured, to keep the run short


def _seed(emulator: EmulatorProcess, workdir: Path, sets: int) -> None:
    """``sets`` configuration sets made through the emulator (creates are unthrottled)."""
    path = workdir / f"live-{sets}.csv"
    path.write_text("ConfigurationSetName,TlsPolicy\n" + "".join(
        f"live-{i:05d},REQUIRE\n" for i in range(sets)
    ))  # fmt: skip
    ledger = workdir / f"live-{sets}-{time.monotonic_ns()}.ledger.jsonl"
    made = run_child(
        bulk_command(
            "provision", str(path), "--endpoint-url", emulator.url, "--region", REGION,
            "--rate", "0", "--concurrency", "32", "--ledger", str(ledger),
        ),
        workdir,
    )  # fmt: skip
    if made.exit_code != 0:
        raise RuntimeError(f"seeding {sets} sets failed: {made.stderr.strip()[-300:]}")


def _server_calls(emulator: EmulatorProcess) -> dict[str, int]:
    stats = emulator.stats()
    return {op: n for op, n in stats["calls"].items() if op in READS}


def _boto3_loop(url: str, rate: float) -> tuple[int, float]:
    """A user's script: list the names, then get each set and its destinations, one call
    after another, sleeping after each so that no operation passes ``rate``."""
    import boto3

    start = time.perf_counter()
    client = boto3.session.Session().client("pinpoint-email", region_name=REGION, endpoint_url=url)
    pause = 1.0 / rate
    names: list[str] = []
    token: dict[str, Any] = {}
    while True:
        page = client.list_configuration_sets(PageSize=1000, **token)
        names += page["ConfigurationSets"]
        if not page.get("NextToken"):
            break
        token = {"NextToken": page["NextToken"]}
    for name in names:
        for call in (client.get_configuration_set, client.get_configuration_set_event_destinations):
            sent = time.perf_counter()
            call(ConfigurationSetName=name)
            time.sleep(max(0.0, pause - (time.perf_counter() - sent)))
    client.close()
    return len(names), time.perf_counter() - start


def export_limit(ctx: Context) -> Section:
    """Scenario 10: export at a known read limit, beside a sequential boto3 loop."""
    points = ctx.sizes.export_points
    section = Section(
        "export",
        "10. Export at a known read limit",
        "Pinpoint Email sets in one account and Region; every read operation limited to R/s, "
        "bucket of one; bulk export --rate R --burst 1 (default concurrency) to CSV.",
        (
            "limit",
            "contender",
            "sets",
            "calls",
            "429s",
            "wall s",
            "window s",
            "sets/s ÷ limit",
        ),
    )
    for rate, sets in points:
        limits = {op: [rate, 1] for op in READS}
        with EmulatorProcess(ctx.workspace.root, rate=0.0, operation_limits=limits) as emulator:
            _seed(emulator, ctx.workspace.root, sets)
            emulator_calls = _server_calls(emulator)
            out = ctx.workspace.fresh(f"export-{rate:g}.csv")
            run = run_child(
                bulk_command(
                    "export", str(out), "--endpoint-url", emulator.url, "--region", REGION,
                    "--rate", f"{rate:g}", "--burst", "1", "--json",
                ),
                ctx.workspace.root,
            )  # fmt: skip
            summary = json_summary(run)
            calls = {op: n - emulator_calls.get(op, 0) for op, n in _server_calls(emulator).items()}
            written = summary.get("rows") or 0
            window = float(summary.get("elapsed_s") or 0.0)
            ratio = written / window / rate if window > 0 else 0.0
            section.rows.append(
                [
                    f"{rate:g}/s",
                    "bulk export",
                    str(written),
                    str(sum(calls.values())),
                    str(summary.get("throttled", "?")),
                    f"{run.wall_s:.1f}",
                    f"{window:.1f}",
                    f"{ratio:.3f}",
                ]
            )
            section.checks.append(
                Check(
                    f"export at {rate:g}/s: sets/s ÷ limit",
                    f"≥ {EXPORT_MIN_RATIO}",
                    f"{ratio:.3f}",
                    run.exit_code == 0 and written == sets and ratio >= EXPORT_MIN_RATIO,
                )
            )
            emulator_calls = _server_calls(emulator)
            read, wall = _boto3_loop(emulator.url, rate)
            loop_calls = sum(_server_calls(emulator).values()) - sum(emulator_calls.values())
            section.rows.append(
                [
                    f"{rate:g}/s",
                    "boto3 loop, sleep to the limit after each call",
                    str(read),
                    str(loop_calls),
                    "-",
                    f"{wall:.1f}",
                    f"{wall:.1f}",
                    f"{read / wall / rate:.3f}",
                ]
            )
    section.notes.append(
        "Wall time is the whole command, interpreter start-up and imports included; the "
        "window (which the ratio divides by) is the export's own run: the pre-flight, the "
        "listing, the reads and writing the file. The boto3 loop runs in the harness's "
        "process: its wall time is its window. The two reads of a set go through their "
        "operations' own limiters at once; a loop that makes them one after another reads "
        "half as fast."
    )
    return section


def plan_scale(ctx: Context) -> Section:
    """Scenario 11: plan N rows against N live sets at 1/s, beside reading every set."""
    sets = ctx.sizes.plan_sets
    section = Section(
        "plan",
        f"11. Plan of {sets:,} rows against {sets:,} live sets",
        f"{sets:,} Pinpoint Email sets live; the input names each of them. "
        f"bulk plan --rate R --burst 1 with every read limited to R/s (bucket of one).",
        ("limit", "command", "calls", "wall s", "at AWS's 1/s"),
    )
    path = ctx.workspace.root / f"plan-{sets}.csv"
    with EmulatorProcess(
        ctx.workspace.root,
        rate=0.0,
        operation_limits={
            "ListConfigurationSets": [PLAN_RATE, 1],
            "GetConfigurationSet": [DIFF_RATE, 1],
        },
    ) as emulator:
        _seed(emulator, ctx.workspace.root, sets)
        path.write_text(
            "ConfigurationSetName,TlsPolicy\n"
            + "".join(f"live-{i:05d},{'OPTIONAL' if i % 100 == 0 else 'REQUIRE'}\n"
                      for i in range(sets))
        )  # fmt: skip
        measured: dict[str, tuple[int, float, dict[str, Any]]] = {}
        for label, rate, extra in (
            ("bulk plan", PLAN_RATE, ()),
            ("bulk plan --diff", DIFF_RATE, ("--diff",)),
        ):
            before = _server_calls(emulator)
            run = run_child(
                bulk_command(
                    "plan", str(path), "--endpoint-url", emulator.url, "--region", REGION,
                    "--rate", f"{rate:g}", "--burst", "1", "--json",
                    "--ledger", str(ctx.workspace.fresh(f"plan-{len(extra)}.ledger.jsonl")),
                    *extra,
                ),
                ctx.workspace.root,
            )  # fmt: skip
            calls = sum(_server_calls(emulator).values()) - sum(before.values())
            measured[label] = (calls, run.wall_s, json_summary(run))
    plan_calls, plan_wall, plan = measured["bulk plan"]
    diff_calls, diff_wall, diff = measured["bulk plan --diff"]
    section.rows.append(
        [f"{PLAN_RATE:g}/s", "bulk plan", str(plan_calls), f"{plan_wall:.1f}", f"{plan_wall:.0f}s"]
    )
    at_aws = diff_calls / PLAN_RATE
    section.rows.append(
        [
            f"{DIFF_RATE:g}/s (reads)",
            "bulk plan --diff (reads every set)",
            str(diff_calls),
            f"{diff_wall:.1f}",
            f"≥ {at_aws / 3600:.1f} h ({diff_calls:,} calls)",
        ]
    )
    pages = math.ceil(sets / 1000) + 1  # and the pre-flight
    exists = (plan.get("totals") or {}).get("exists")
    drift = (diff.get("totals") or {}).get("drift")
    section.checks += [
        Check(
            "plan: calls, at most one per 1,000 live sets plus the pre-flight",
            f"≤ {pages}",
            str(plan_calls),
            plan_calls <= pages and exists == sets,
        ),
        Check(
            "plan --diff finds the rows whose options differ",
            f"{sets // 100}",
            str(drift),
            drift == sets // 100,
        ),
    ]
    section.notes.append(
        f"The plan names {exists} live sets with {plan_calls} calls in {plan_wall:.0f} s at "
        f"1/s; reading every set instead ({diff_calls:,} calls) would take at least "
        f"{at_aws / 3600:.1f} h at the same rate: --diff is measured at {DIFF_RATE:g}/s."
    )
    return section
