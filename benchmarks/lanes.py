"""Scenarios 7 and 8: many lanes at once, each at its own limit.

A lane (service, credentials, Region) has its own limit at the service, so ``L`` lanes at
``R`` creates a second each have a joint limit of ``L × R``: what a run over them should
reach, whatever the order of its rows. Both scenarios read what reached the server from a
timed emulator (:mod:`benchmarks.timed_emulator`): creates answered with a new set, and the
window from the first create that reached the server to the last one it answered, by the
server's clock. So the figure is the server's view, not the client's wall time: start-up
(imports, reading the file, pre-flights, assuming roles) counts only where it delays creates.

A server with a bucket of one lets a lane's ``N`` creates through in ``(N - 1) / R`` seconds
(plus one answer's latency), so a perfect client scores slightly above 1.00: ``N / (N - 1)``
when every lane starts at once.

7. ``lanes``: 6 Regions of one account, 10/s burst 1 per lane on both sides, 60 rows per
   lane, the same rows sorted by lane and interleaved; the engine in this process.
8. ``many-lanes``: 250 roles (accounts) × 2 Regions = 500 lanes at 1/s burst 1, 20 rows per
   lane, ``bulk provision`` as a child process (its peak RSS and CPU), roles assumed
   through the emulator's STS.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.contenders import engine_import_error, run_engine
from benchmarks.context import Context
from benchmarks.harness import (
    REGION,
    ChildRun,
    EmulatorProcess,
    bulk_command,
    json_summary,
    lane_times,
    median,
    run_child,
)
from benchmarks.report import Check, Section
from benchmarks.routing import (
    ORDERS,
    ROLE_REGIONS,
    SIX_REGIONS,
    LaneSpec,
    Order,
    lane_file,
    region_lanes,
    role_lanes,
)

LATENCY_MS = 20.0  # the emulator's mean added latency (±50%), as in scenarios 1, 2 and 6
MIN_RATIO = 0.95
CREATE = "CreateConfigurationSet"
ASSUME_ROLE = "AssumeRole"

# Scenario 7.
LANE_RATE = 10.0

# Scenario 8. Concurrency from Little's law: calls in flight = throughput × time each call
# holds a slot. The emulator adds 20 ms; on two cores shared by the engine and the server at
# hundreds of calls a second, a call also waits for a busy event loop at both ends, a few
# times that again: budget 100 ms a call, and twice the result as headroom (a slot is taken
# only after the lane's token, so slots beyond need cost nothing while idle).
MANY_RATE = 1.0
MANY_RSS_LIMIT_MB = 400.0
SLOT_BUDGET_S = 0.1
HEADROOM = 2.0


def concurrency_for(lanes: int, rate: float) -> int:
    """Call slots for ``lanes`` lanes at ``rate`` each: Little's law with headroom."""
    return max(16, math.ceil(lanes * rate * SLOT_BUDGET_S * HEADROOM))


@dataclass(frozen=True)
class ServerView:
    """What a timed emulator saw of one run: creates by lane, and when they happened."""

    lanes: int  # lanes that sent at least one create
    created: int
    create_calls: int
    throttled: int  # creates answered 429
    window_s: float  # first create to reach the server → last create answered with a new set
    start_spread_s: float  # the last lane's first create after the first lane's
    lane_pace: float  # median over lanes of created ÷ (first create → last new set) ÷ rate
    slowest_pace: float  # the same, of the slowest lane: the one that sets the window's end
    assume_role: int  # AssumeRole calls that reached the server (throttled ones too)
    roles: int  # distinct role ARNs in them
    assume_throttled: int
    errors: Mapping[str, int]  # error replies by code (429s included)
    busiest_second: int  # the most new sets the server stored in one whole second

    @classmethod
    def of(cls, stats: Mapping[str, Any], rate: float) -> ServerView:
        times = lane_times(stats)
        by_scope: Mapping[str, Any] = stats.get("by_scope", {})
        paces = []
        for lane in times:
            if lane.last_created is None:
                continue
            created = int(by_scope.get(lane.lane, {}).get("created", 0))
            span = lane.last_created - lane.first_call
            if span > 0:
                paces.append(created / span / rate)
        starts = [lane.first_call for lane in times]
        ends = [lane.last_created for lane in times if lane.last_created is not None]
        window = max(ends) - min(starts) if starts and ends else 0.0
        assumed: Mapping[str, int] = stats.get("assume_role", {})
        assume_throttled = sum(
            int(scope.get("throttled", {}).get(ASSUME_ROLE, 0)) for scope in by_scope.values()
        )
        return cls(
            lanes=len(times),
            created=int(stats["created"]),
            create_calls=int(stats["calls"].get(CREATE, 0)),
            throttled=sum(
                int(scope.get("creates", {}).get("throttled", 0)) for scope in by_scope.values()
            ),
            window_s=window,
            start_spread_s=max(starts) - min(starts) if starts else 0.0,
            lane_pace=median(paces) if paces else 0.0,
            slowest_pace=min(paces) if paces else 0.0,
            assume_role=sum(assumed.values()),
            roles=len(assumed),
            assume_throttled=assume_throttled,
            errors=dict(stats.get("errors", {})),
            busiest_second=max(stats.get("created_by_second") or [0]),
        )

    def throughput(self) -> float:
        return self.created / self.window_s if self.window_s > 0 else 0.0

    def ratio(self, joint_limit: float) -> float:
        return self.throughput() / joint_limit


def _failure(run: ChildRun) -> str:
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _stopped(run: ChildRun) -> list[str]:
    """The one-line errors ``bulk`` printed at the end (one per stopped lane), in order."""
    return [line for line in run.stderr.splitlines() if line.startswith("bulk: error: ")]


# -- 7. lanes: the order of the rows ------------------------------------------------------------


def lane_order(ctx: Context) -> Section:
    """Scenario 7: six Regions at 10/s each, the same rows sorted by lane and interleaved."""
    per_lane = ctx.sizes.lane_rows
    lanes = region_lanes(SIX_REGIONS)
    joint = len(lanes) * LANE_RATE
    section = Section(
        "lanes",
        "7. Lanes: a file sorted by lane beside the same rows interleaved",
        f"Timed emulator in its own process: CreateConfigurationSet {LANE_RATE:g}/s, burst 1 "
        f"per account and Region, {LATENCY_MS:g} ms mean latency (±50%); {len(lanes)} lanes "
        f"(Regions {', '.join(SIX_REGIONS)}, one account), {per_lane} rows each "
        f"({len(lanes) * per_lane:,} rows), joint limit {joint:g}/s; engine `--rate "
        f"{LANE_RATE:g} --burst 1` in this process (concurrency 16), once on the file sorted "
        "by Region and once on the same rows interleaved, the server reset before each.",
        (
            "file",
            "lanes",
            "created",
            "create calls",
            "429s",
            "server window s",
            "engine window s",
            "creates/s",
            "÷ joint limit",
            "first-create spread s",
            "median lane pace",
            "slowest lane pace",
            "lowest learned rate",
            "engine CPU s",
            "emulator CPU s",
        ),
    )
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("throughput ÷ joint limit", f"≥ {MIN_RATIO}", "n/a", None))
        return section
    ws = ctx.workspace
    # The six lanes in each order; then the first lane's rows alone, for reference: what one
    # lane reaches at the same rate and burst with no other lane beside it.
    runs: list[tuple[str, list[LaneSpec], Order]] = [(order, lanes, order) for order in ORDERS]
    runs.append(("one lane alone (reference)", lanes[:1], "sorted"))
    with EmulatorProcess(
        ws.root, timed=True, rate=LANE_RATE, burst=1, latency_ms=LATENCY_MS
    ) as emulator:
        for label, subset, order in runs:
            path = lane_file(ws.root, subset, per_lane, order)
            ledger = ws.fresh(f"lanes-{len(subset)}-{order}.ledger.jsonl")
            emulator.reset()
            cpu = emulator.cpu_seconds()
            run, summary = run_engine(
                f"engine, {label}", path, emulator.url, ledger, rate=LANE_RATE, burst=1
            )
            served = emulator.cpu_seconds() - cpu
            stats = emulator.stats()
            view = ServerView.of(stats, LANE_RATE)
            missing = _missing_lanes(stats, subset)
            ratio = view.ratio(len(subset) * LANE_RATE)
            section.rows.append(
                [
                    label,
                    str(len(subset)),
                    str(view.created),
                    str(view.create_calls),
                    str(view.throttled),
                    f"{view.window_s:.2f}",
                    f"{run.window_s:.2f}",
                    f"{view.throughput():.1f}",
                    f"{ratio:.3f}",
                    f"{view.start_spread_s:.2f}",
                    f"{view.lane_pace:.3f}",
                    f"{view.slowest_pace:.3f}",
                    _lowest_rate(summary),
                    f"{run.cpu_s:.1f}",
                    f"{served:.1f}",
                ]
            )
            expected = len(subset) * per_lane
            complete = view.created == expected and run.unfinished == 0
            if subset is lanes:
                section.checks.append(
                    Check(
                        f"{order}: throughput ÷ joint limit",
                        f"≥ {MIN_RATIO}",
                        f"{ratio:.3f}"
                        + ("" if complete else f" ({view.created:,} of {expected:,})"),
                        ratio >= MIN_RATIO and complete,
                    )
                )
            if missing:
                section.notes.append(f"{label}: no create reached the server from {missing}")
            if not complete:
                section.notes.append(
                    f"{label}: {run.unfinished} rows unfinished; counts {dict(summary.counts)}"
                )
    section.notes += [
        "server window: from the first create to reach the server to the last one it "
        f"answered with a new set, by the server's clock; a perfect client scores "
        f"{per_lane}/{per_lane - 1} = {per_lane / (per_lane - 1):.3f} (a bucket of one lets "
        f"{per_lane} creates through in {per_lane - 1} intervals). Engine window: from "
        "on_start to provision() returning, for comparison.",
        "first-create spread: the last lane's first create after the first lane's (a file "
        "sorted by lane that held up the lanes further on would show it here); lane pace: "
        "a lane's created ÷ its own window (its first create to its last new set) ÷ its "
        "rate; the slowest lane ends the run. Lowest learned rate: the lowest of the lanes' "
        "create rates at the end of the run (the engine lowers a lane's rate on each 429).",
        "the reference row is the first lane's rows alone: ÷ joint limit there is ÷ one "
        f"lane's {LANE_RATE:g}/s.",
    ]
    return section


# -- 8. many lanes: 250 roles × 2 Regions --------------------------------------------------------


def many_lanes(ctx: Context) -> Section:
    """Scenario 8: 500 lanes (250 assumed roles × 2 Regions) at 1/s each, as a child process."""
    roles, per_lane = ctx.sizes.many_roles, ctx.sizes.many_rows
    lanes = role_lanes(roles, ROLE_REGIONS)
    joint = len(lanes) * MANY_RATE
    rows = len(lanes) * per_lane
    concurrency = concurrency_for(len(lanes), MANY_RATE)
    section = Section(
        "many-lanes",
        f"8. Many lanes: {roles} roles × {len(ROLE_REGIONS)} Regions",
        f"Timed emulator in its own process: CreateConfigurationSet {MANY_RATE:g}/s, burst 1 per "
        f"account and Region, {LATENCY_MS:g} ms mean latency (±50%), STS on the same port; "
        f"{len(lanes)} lanes ({roles} roles, each in its own account, × Regions "
        f"{', '.join(ROLE_REGIONS)}), {per_lane} rows each ({rows:,} rows, interleaved), joint "
        f"limit {joint:g}/s; `bulk provision` as a child process, `--rate {MANY_RATE:g} "
        f"--burst 1 --concurrency {concurrency}`, roles assumed from the run's dummy "
        "credentials through `AWS_ENDPOINT_URL_STS`.",
        (
            "exit",
            "created",
            "create calls",
            "429s",
            "server window s",
            "creates/s",
            "÷ joint limit",
            "busiest second",
            "first-create spread s",
            "median lane pace",
            "AssumeRole calls",
            "roles",
            "peak RSS MB",
            "wall s",
            "bulk CPU s (% of wall)",
            "emulator CPU s (% of wall)",
            "mean call latency ms",
        ),
    )
    problem = engine_import_error()
    if problem is not None:
        section.notes.append(f"engine not measured: {problem}")
        section.checks.append(Check("throughput ÷ joint limit", f"≥ {MIN_RATIO}", "n/a", None))
        return section
    ws = ctx.workspace
    path = lane_file(ws.root, lanes, per_lane, "interleaved")
    ledger = ws.fresh("many-lanes.ledger.jsonl")
    # A run that cannot keep up still ends: 15 times the ideal, at least five minutes.
    timeout = min(600.0, max(300.0, 15.0 * per_lane / MANY_RATE))
    with EmulatorProcess(
        ws.root, timed=True, rate=MANY_RATE, burst=1, latency_ms=LATENCY_MS
    ) as emulator:
        emulator.reset()
        served = emulator.cpu_seconds()
        argv = bulk_command(
            "provision",
            str(path),
            "--ledger",
            str(ledger),
            "--region",
            REGION,
            "--endpoint-url",
            emulator.url,
            "--rate",
            f"{MANY_RATE:g}",
            "--burst",
            "1",
            "--concurrency",
            str(concurrency),
            "--json",
        )
        # botocore's convention for STS's endpoint: the roles are assumed at the emulator.
        run = run_child(argv, ws.root, timeout=timeout, env={"AWS_ENDPOINT_URL_STS": emulator.url})
        served = emulator.cpu_seconds() - served
        stats = emulator.stats()
        view = ServerView.of(stats, MANY_RATE)
        missing = _missing_lanes(stats, lanes)
    latency = _mean_latency(ledger)
    ratio = view.ratio(joint)
    section.rows.append(
        [
            str(run.exit_code),
            f"{view.created:,}",
            f"{view.create_calls:,}",
            str(view.throttled),
            f"{view.window_s:.2f}",
            f"{view.throughput():.1f}",
            f"{ratio:.3f}",
            str(view.busiest_second),
            f"{view.start_spread_s:.2f}",
            f"{view.lane_pace:.3f}",
            f"{view.assume_role}"
            + (f" ({view.assume_throttled} 429)" if view.assume_throttled else ""),
            str(view.roles),
            f"{run.max_rss_mb:.0f}",
            f"{run.wall_s:.1f}",
            f"{run.cpu_s:.1f} ({run.cpu_s / run.wall_s:.0%})" if run.wall_s else "n/a",
            f"{served:.1f} ({served / run.wall_s:.0%})" if run.wall_s else "n/a",
            "n/a" if latency is None else f"{latency:.1f}",
        ]
    )
    complete = run.exit_code == 0 and view.created == rows
    section.checks += [
        Check(
            "throughput ÷ joint limit",
            f"≥ {MIN_RATIO}",
            f"{ratio:.3f}" + ("" if complete else f" ({view.created:,} of {rows:,} created)"),
            ratio >= MIN_RATIO and complete,
        ),
        Check(
            "peak RSS of bulk",
            f"< {MANY_RSS_LIMIT_MB:.0f} MB",
            f"{run.max_rss_mb:.0f} MB",
            run.max_rss_mb < MANY_RSS_LIMIT_MB,
        ),
        Check(
            "AssumeRole calls (one per role)",
            f"= {roles}",
            f"{view.assume_role} ({view.roles} roles)",
            view.assume_role == roles and view.roles == roles,
        ),
    ]
    if not complete:
        summary = json_summary(run)
        stopped = _stopped(run)
        said = f"{len(stopped)} lanes stopped, first: {stopped[0]}" if stopped else _failure(run)
        section.notes.append(
            f"exit {run.exit_code}, {view.created:,} of {rows:,} created, "
            f"{summary.get('pending', '?')} pending, "
            f"{summary.get('counts', {}).get('failed', '?')} failed; {said}"
        )
    if missing:
        section.notes.append(
            f"no create reached the server from {len(missing)} lanes, e.g. {missing[0]}"
        )
    if view.errors:
        section.notes.append(f"the server's error replies by code: {dict(view.errors)}")
    section.notes += _many_notes(per_lane, len(lanes), concurrency, latency, view, run, served)
    return section


def _many_notes(
    per_lane: int,
    lanes: int,
    concurrency: int,
    latency: float | None,
    view: ServerView,
    run: ChildRun,
    served: float,
) -> list[str]:
    notes = [
        f"concurrency {concurrency} from Little's law: {lanes} lanes × {MANY_RATE:g}/s × "
        f"{SLOT_BUDGET_S * 1000:.0f} ms a call (the emulator's {LATENCY_MS:g} ms, and waits "
        f"for busy event loops at both ends) × {HEADROOM:g} headroom; the engine's default "
        "of 16 would allow at most 16 ÷ latency calls a second (160/s at 100 ms).",
        "busiest second: the most creates the server answered in one whole second of the "
        "window, what the two processes managed at their best; AssumeRole calls: every one "
        "that reached the server, throttled ones (429) included.",
        f"server window as in scenario 7; a perfect client scores {per_lane}/{per_lane - 1} = "
        f"{per_lane / (per_lane - 1):.3f} if every lane starts at once, so with {per_lane} rows "
        "a lane, the time lanes take to start (assume role, pre-flight, list) weighs heavily.",
    ]
    if latency is not None:
        in_flight = view.throughput() * latency / 1000.0
        notes.append(
            f"mean call latency the engine recorded {latency:.1f} ms: at {view.throughput():.0f} "
            f"creates/s that is {in_flight:.1f} calls in flight on average (Little's law), "
            f"against {concurrency} slots."
        )
    if run.wall_s > 0:
        notes.append(
            f"CPU over the run's {run.wall_s:.1f} s wall: bulk {run.cpu_s:.1f} s "
            f"({run.cpu_s / run.wall_s:.0%} of one core; one event loop, plus the reader "
            f"thread), emulator {served:.1f} s ({served / run.wall_s:.0%}; one event loop); "
            f"the machine has {_cores()} cores for both."
        )
    return notes


def _lowest_rate(summary: Any) -> str:
    """The lowest create rate a lane of the run had learned by its end (``Summary.rates``)."""
    rates = [rate for rate in getattr(summary, "rates", {}).values() if rate is not None]
    return f"{min(rates):.2f}/s" if rates else "n/a"


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _mean_latency(ledger: Path) -> float | None:
    """The mean ``latency_ms`` of the ledger's row records (each row's last attempt)."""
    values: list[float] = []
    try:
        with ledger.open(encoding="utf-8") as stream:
            for line in stream:
                if '"latency_ms"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                latency = record.get("latency_ms")
                if isinstance(latency, int | float):
                    values.append(float(latency))
    except OSError:
        return None
    return sum(values) / len(values) if values else None


def _missing_lanes(stats: Mapping[str, Any], lanes: Sequence[LaneSpec]) -> list[str]:
    """The lanes (``ACCOUNT/REGION``) no create of which reached the server."""
    seen = {times.lane for times in lane_times(stats)}
    return [lane.scope for lane in lanes if lane.scope not in seen]
