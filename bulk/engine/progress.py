"""What a person watching a run sees: a live display while it runs, a summary at the end."""

from __future__ import annotations

import heapq
import math
import re
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import IO

import anyio
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from bulk.engine.summary import LaneProgress, LaneSummary, RunStats, Summary

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Up to this many lanes the live display has a line for each; past it, the slowest few.
FEW_LANES = 8
SLOWEST_LANES = 5
_REASON_CHARS = 80  # of a stop reason in the live display (the summary says it whole)
# Without a terminal the lanes' lines go out with every this many status lines (a minute at
# the default 5 s), and at once when a lane stops: hours of a run stay readable in a log.
_PLAIN_LANES_EVERY = 12
# The end summary's per-lane table: the most troubled lanes, then how many more.
SUMMARY_LANES = 10


def safe(text: str) -> str:
    """Escape control characters so input values cannot drive the terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class _Speed:
    """Rows per second for the ETA: the mean over the last ``window`` seconds, smoothed.

    At AWS's 1 request/s a 10-second count flips between 9 and 10 rows, and an ETA of hours
    would jump by minutes with it: the slope over a long window, then an exponential average
    with time constant ``smoothing`` seconds, keeps it still while following real changes.
    """

    def __init__(self, window: float = 60.0, smoothing: float = 10.0) -> None:
        self._window = window
        self._smoothing = smoothing
        self._samples: deque[tuple[float, int]] = deque()
        self._smoothed: float | None = None
        self._last: float | None = None

    def update(self, count: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        t0, c0 = self._samples[0]
        if now <= t0:
            return self._smoothed or 0.0
        raw = (count - c0) / (now - t0)
        if self._smoothed is None or self._last is None:
            self._smoothed = raw
        else:
            weight = 1.0 - math.exp(-(now - self._last) / self._smoothing)
            self._smoothed += weight * (raw - self._smoothed)
        self._last = now
        return self._smoothed


def _eta(remaining: int, speed: float) -> str:
    if remaining <= 0:
        return "0s"
    if speed <= 0:
        return "?"
    return _duration(remaining / speed)


def _duration(seconds: float) -> str:
    """``seconds`` as 1h05m, 4m09s or 12s; "?" when never (inf)."""
    if math.isinf(seconds):
        return "?"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


def _rate(value: float) -> str:
    """A rate with the precision it needs: two decimals below 10/s (1.00, 0.85), else one."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def counts_line(stats: RunStats) -> str:
    """Counts by status, current rate and 429s seen (a dry run sends nothing: no rate)."""
    counts = " · ".join(f"{k} {v}" for k, v in sorted(stats.recorded.items())) or "nothing yet"
    skipped = f" · {stats.skipped} settled earlier" if stats.skipped else ""
    if stats.dry_run:
        return f"{counts}{skipped} · would send {stats.would_send}"
    rate = stats.current_rate()
    rate_text = "unlimited" if rate is None else f"{_rate(rate)}/s"
    return f"{counts}{skipped} · rate {rate_text} · 429s {stats.throttled}"


def speed_line(stats: RunStats, speed: float) -> str:
    """Done/total, rows/s and ETA; once stopping, the calls still in flight instead."""
    done = f"{stats.done}/{stats.total} rows"
    if stats.stopping:
        calls = "call" if stats.in_flight == 1 else "calls"
        return f"{done} · stopping: {stats.in_flight} {calls} in flight"
    eta = _eta(stats.total - stats.done, speed)
    return f"{done} · {_rate(speed)} rows/s · ETA {eta}"


def status_line(stats: RunStats, speed: float) -> str:
    """One line: done/total, rows/s, ETA, counts by status, current rate, 429s."""
    return f"{speed_line(stats, speed)} · {counts_line(stats)}"


def where_line(stats: RunStats, *, origin: bool = True) -> str:
    """Where the run sends: its lanes (service/profile/Region) and, with ``origin``, the
    run's Region and where it came from."""
    lanes = stats.lanes()
    shown = ", ".join(lanes[:3]) + (f" and {len(lanes) - 3} more" if len(lanes) > 3 else "")
    where = f"lanes: {shown}" if lanes else "lanes: none yet"
    return f"{where} · {stats.where}" if origin and stats.where else where


def lane_lines(stats: RunStats) -> list[str]:
    """A line per lane when there are few, else the slowest few and how many more.

    None for a dry run (it sends nothing) or a run with one lane still going (the overall
    line says it all). Stopped lanes come first, then those furthest from done at their
    rate. O(lanes) per call.
    """
    if stats.dry_run:
        return []
    lanes = stats.lane_progress()
    if len(lanes) < 2 and not stats.stopped_lanes:
        return []
    shown = lanes if len(lanes) <= FEW_LANES else heapq.nlargest(SLOWEST_LANES, lanes, key=_lag)
    width = max(len(lane.lane) for lane in shown)
    lines = [_lane_line(lane, width, stopping=stats.stopping) for lane in shown]
    if hidden := len(lanes) - len(shown):
        stopped = len(stats.stopped_lanes) - sum(lane.stopped is not None for lane in shown)
        lines.append(
            f"… {hidden} more lanes" + (f" ({stopped} of them stopped)" if stopped else "")
        )
    return lines


def _lag(lane: LaneProgress) -> tuple[bool, float, int]:
    """How far behind a lane is: stopped first, then time left, then rows left."""
    return (lane.stopped is not None, lane.time_left, lane.left or 0)


def _lane_line(lane: LaneProgress, width: int, *, stopping: bool) -> str:
    """``lane``: rows done/total, its rate and ETA, or why it stopped."""
    name = lane.lane.ljust(width)
    if lane.total is None:
        rows = f"{lane.done} rows"
    else:
        # Earlier runs settled rows whose lane is unknown: at least this many are done.
        rows = f"{'≥' if lane.left_is_bound else ''}{lane.done}/{lane.total} rows"
    if lane.stopped is not None:
        return f"  {name}  {rows} · stopped: {_short_reason(lane.stopped, lane.lane)}"
    if lane.left == 0:
        return f"  {name}  {rows} · done"
    if not lane.started:
        return f"  {name}  {rows} · waiting"
    rate = "unlimited" if lane.rate is None else f"{lane.rate:.2f} req/s"
    if stopping:  # no new call starts: an ETA would only freeze
        return f"  {name}  {rows} · {rate}"
    eta = _duration(lane.time_left)
    return f"  {name}  {rows} · {rate} · ETA {'≤' if lane.left_is_bound else ''}{eta}"


def _short_reason(reason: str, lane: str) -> str:
    """A stop reason for one line: without the lane it names nor the advice after "; "."""
    text = reason.removeprefix(f"{lane}: ").split("; ")[0]
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


class _Lines:
    """Lines whose number changes between refreshes (an empty Text would show a blank line).

    The refresh loop replaces ``lines`` whole; rich's refresh thread only reads it.
    """

    def __init__(self) -> None:
        self.lines: tuple[Text, ...] = ()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines


class Display:
    """Live progress: a rich bar on a terminal, a plain line every few seconds otherwise.

    A *lane* is one service, AWS account (profile) and Region: each has its own limit, and
    the display names the lanes the run sends to, with a line for each when there are few
    (see :func:`lane_lines`).
    """

    def __init__(self, stream: IO[str] | None = None, *, plain_interval: float = 5.0) -> None:
        self._stream = stream or sys.stderr
        self._console = Console(file=self._stream, highlight=False)
        self._plain_interval = plain_interval
        self._speed = _Speed()
        self._stats: RunStats | None = None
        self._signals = 0

    @property
    def console(self) -> Console:
        return self._console

    async def run(self, stats: RunStats) -> None:
        """Refresh until cancelled."""
        self._stats = stats
        self._speed.update(0, stats.started)
        if self._console.is_terminal:
            await self._run_rich(stats)
        else:
            await self._run_plain(stats)

    async def _run_plain(self, stats: RunStats) -> None:
        shown = 0  # lanes named so far: the where line is printed again when one is added
        stopped = 0  # lanes stopped so far: the lanes' lines are printed at once on a stop
        since_lanes = _PLAIN_LANES_EVERY  # status lines since the lanes' lines were printed
        while True:
            await anyio.sleep(self._plain_interval)
            lanes = len(stats.lanes())
            if lanes > shown:
                shown = lanes
                # The run's Region and endpoint were said as it started.
                line = where_line(stats, origin=False)
                print(f"bulk: {safe(line)}", file=self._stream, flush=True)
            speed = self._speed.update(stats.done - stats.skipped)
            print(f"bulk: {safe(status_line(stats, speed))}", file=self._stream, flush=True)
            since_lanes += 1
            if since_lanes < _PLAIN_LANES_EVERY and len(stats.stopped_lanes) == stopped:
                continue
            if lines := lane_lines(stats):
                since_lanes, stopped = 0, len(stats.stopped_lanes)
                text = "\n".join(f"bulk: {safe(line)}" for line in lines)
                print(text, file=self._stream, flush=True)

    async def _run_rich(self, stats: RunStats) -> None:
        bar = Progress(
            TextColumn("planning" if stats.dry_run else "provisioning"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[line]}", markup=False),
            console=self._console,
        )
        task = bar.add_task("rows", total=stats.total, line="")
        counts = Text()
        where = Text()
        lanes = _Lines()
        speed = 0.0

        def refresh() -> None:
            bar.update(task, completed=stats.done, line=speed_line(stats, speed))
            counts.plain = safe(counts_line(stats))
            where.plain = safe(where_line(stats))
            # A line that does not fit is cut, not wrapped: the display keeps its height.
            lanes.lines = tuple(
                Text(safe(line), no_wrap=True, overflow="ellipsis") for line in lane_lines(stats)
            )

        view = Group(bar, counts, where, lanes)
        with Live(view, console=self._console, refresh_per_second=4):
            try:
                while True:
                    speed = self._speed.update(stats.done - stats.skipped)
                    refresh()
                    await anyio.sleep(0.25)
            finally:
                refresh()

    def interrupted(self) -> None:
        """Called at each SIGINT/SIGTERM: the first stops the run, the second exits now."""
        self._signals += 1
        if self._stats is not None:
            self._stats.stopping = True
        if self._signals == 1:
            message = (
                "bulk: stopping: no new call starts; waiting for the calls in flight "
                "(Ctrl-C again to quit now)"
            )
        else:
            message = (
                "bulk: interrupted again: exiting now; every ledger line written is whole, "
                "run the same command to resume"
            )
        self._console.print(message, markup=False, soft_wrap=True)
        self._stream.flush()


def _steps_line(steps: dict[str, int]) -> str:
    """What a run's records say it did beyond the sets (:attr:`Summary.steps`)."""
    existing = steps.get("tenants_existing", 0)
    line = (
        f"beyond the sets: {steps.get('tenants', 0)} tenants"
        f"{f' ({existing} existed already)' if existing else ''}, "
        f"{steps.get('destinations', 0)} event destinations, "
        f"{steps.get('associations', 0)} tenant associations"
    )
    untouched = steps.get("untouched", 0)
    if untouched:
        line += f"; {untouched} sets existed before the run and were left untouched"
    return line


def render_summary(summary: Summary, *, command: str) -> str:
    """The end-of-run report: counts, timing, limits met, the ledger, and what to do next."""
    c = summary.counts
    lines = [
        f"{'dry run' if summary.dry_run else 'done'}: {summary.total} rows · "
        f"created {c.get('created', 0)} · exists {c.get('exists', 0)} · "
        f"invalid {c.get('invalid', 0)} · failed {c.get('failed', 0)} · "
        f"pending {summary.pending}",
    ]
    if summary.dry_run:
        lines.append(
            f"would send {summary.would_send} rows: "
            f"{max(0, summary.would_send - summary.pending)} recorded earlier but not settled, "
            f"{min(summary.pending, summary.would_send)} never sent; "
            f"{summary.skipped} settled by earlier runs"
        )
        steps = summary.would_steps
        if steps:
            lines.append(
                f"beyond the sets: {steps.get('tenants', 0)} tenants (each created if missing), "
                f"{steps.get('destinations', 0)} event destinations, "
                f"{steps.get('associations', 0)} tenant associations"
            )
    else:
        this_run = ", ".join(f"{k} {v}" for k, v in summary.this_run.items()) or "nothing"
        lines.append(
            f"this run: {this_run}; {summary.skipped} rows settled by earlier runs skipped"
        )
        p50 = "-" if summary.p50_ms is None else f"{summary.p50_ms:.0f} ms"
        p95 = "-" if summary.p95_ms is None else f"{summary.p95_ms:.0f} ms"
        rates = ", ".join(
            f"{lane} {'unlimited' if r is None else f'{r:.1f}/s'}"
            for lane, r in summary.rates.items()
        )
        lines.append(
            f"time {summary.elapsed_s:.1f}s · {summary.throughput:.1f} rows/s · "
            f"{summary.attempts} calls · {summary.retries} retries · {summary.throttled} 429s · "
            f"latency p50 {p50} p95 {p95}"
        )
        if rates and len(summary.lanes) < 2:  # with more, the lanes' table says each
            lines.append(f"rate: {rates}")
        live = sum(summary.live_sets.values())
        if live:  # a lane with nothing live has nothing to say
            lines.append(
                f"live before the run: {live} sets in {len(summary.live_sets)} "
                f"lane{'s' if len(summary.live_sets) != 1 else ''}; {summary.listed} rows "
                "found among them without a create call"
            )
        for lane, why in summary.unlisted.items():
            lines.append(
                f"note: {lane} could not list its live sets ({why}); each live name cost a "
                "create call, and is counted exists on the service's AlreadyExists"
            )
        if summary.steps:
            lines.append(_steps_line(summary.steps))
    if len(summary.lanes) > 1:
        lines.extend(lane_table(summary.lanes, dry_run=summary.dry_run))
    if summary.drift:
        examples = ", ".join(safe(e) for e in summary.drift_examples)
        lines.append(
            f"drift: {summary.drift} rows already created differ from the input "
            f"(e.g. {examples}); they were not re-sent"
        )
    if summary.live_drift:
        examples = "; ".join(safe(e) for e in summary.live_drift_examples)
        more = " …" if summary.live_drift > len(summary.live_drift_examples) else ""
        lines.append(
            f"drift: {summary.live_drift} existing sets differ from the input "
            f"({examples}{more}); left as they are, see the ledger's drift field"
        )
    for lane in summary.quota_stops:
        lines.append(
            f"quota: {lane} has no room for more configuration sets (LimitExceeded); "
            "raise the quota, then run the same command to resume"
        )
    lines.extend(_stopped_lines(summary.stopped_lanes))
    lines.append(f"ledger: {summary.ledger}")
    lines.append(_next_step(summary, command))
    # The ledger's path and the command hold the input's file name, which may hold anything.
    return "\n".join(safe(line) for line in lines)


def lane_table(lanes: Sequence[LaneSummary], *, dry_run: bool = False) -> list[str]:
    """Each lane's counts, pending rows, rows/s, last rate and 429s, a line each; past
    :data:`SUMMARY_LANES` lanes, the most troubled ones and how many more."""
    shown = list(lanes)
    if len(lanes) > SUMMARY_LANES:
        shown = heapq.nlargest(SUMMARY_LANES, lanes, key=_trouble)
    header = ["lane", "rows", "created", "exists", "invalid", "failed", "pending"]
    if not dry_run:  # a dry run sends nothing: no speed, no rate
        header += ["rows/s", "rate"]
        if any(lane.throttled is not None for lane in lanes):
            header.append("429s")
    lines = table_lines([header, *(_lane_cells(lane)[: len(header)] for lane in shown)])
    if len(shown) == len(lanes):
        return [f"lanes: {len(lanes)}", *lines]
    more = f"  … {len(lanes) - len(shown)} more lanes"
    return [f"lanes: {len(lanes)}, the {len(shown)} most troubled first:", *lines, more]


def table_lines(table: Sequence[Sequence[str]]) -> list[str]:
    """A table (its header first) a line per row, indented: the first column (a lane's
    name) to the left, the others (numbers) to the right, so that digits line up."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for name, *numbers in table:
        padded = [c.rjust(w) for c, w in zip(numbers, widths[1:], strict=True)]
        lines.append("  ".join(["", name.ljust(widths[0]), *padded]).rstrip())
    return lines


def _trouble(lane: LaneSummary) -> tuple[bool, int, int, int, int, int]:
    """What makes a lane worth a look: stopped, rows pending, failed, invalid, 429s, then
    rows sent (the busiest lanes set the run's length)."""
    sent = lane.created + lane.exists + lane.failed
    return (
        lane.stopped is not None,
        lane.pending or 0,
        lane.failed,
        lane.invalid,
        lane.throttled or 0,
        sent,
    )


def _lane_cells(lane: LaneSummary) -> list[str]:
    sent = lane.created + lane.exists + lane.failed
    if lane.stopped is not None:
        rate = "stopped"
    elif lane.rate is not None:
        rate = f"{lane.rate:.2f}/s"
    else:
        rate = "unlimited" if sent else "-"
    counts = (lane.rows, lane.created, lane.exists, lane.invalid, lane.failed, lane.pending)
    return [
        lane.lane,
        *("?" if n is None else str(n) for n in counts),
        f"{lane.throughput:.2f}",
        rate,
        "?" if lane.throttled is None else str(lane.throttled),
    ]


def _stopped_lines(stopped: dict[str, str]) -> list[str]:
    """The stopped lanes, each with its reason, whole (up to :data:`SUMMARY_LANES` of them)."""
    if not stopped:
        return []
    lines = [
        f"stopped: {len(stopped)} {'lane' if len(stopped) == 1 else 'lanes'}; "
        "their rows stay pending:"
    ]
    for lane, reason in list(stopped.items())[:SUMMARY_LANES]:
        # Reasons usually begin with the lane they are about.
        lines.append(f"  {reason if reason.startswith(lane) else f'{lane}: {reason}'}")
    if len(stopped) > SUMMARY_LANES:
        lines.append(
            f"  … {len(stopped) - SUMMARY_LANES} more stopped lanes "
            "(every one in --json and in the ledger's end record)"
        )
    return lines


def _next_step(summary: Summary, command: str) -> str:
    if summary.interrupted:
        return (
            f"interrupted: {summary.pending} rows left; run the same command to resume: {command}"
        )
    if summary.aborted:
        return f"aborted: {summary.pending} rows left; fix the cause, then run: {command}"
    c = summary.counts
    if summary.dry_run:
        return "next: run without --dry-run to send"
    if c.get("failed", 0) or summary.pending:
        return f"next: run the same command to retry failed and pending rows: {command}"
    if c.get("invalid", 0):
        return "next: fix the invalid rows (see the ledger), then run the same command"
    return "next: nothing left to do"
