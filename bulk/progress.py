"""What a person watching a run sees: a live display while it runs, a summary at the end."""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from typing import IO

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from bulk.summary import RunStats, Summary

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """Escape control characters so input values cannot drive the terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class _Speed:
    """Rows per second over the last ~10 s, from periodic samples of a counter."""

    def __init__(self, window: float = 10.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, count: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        t0, c0 = self._samples[0]
        return (count - c0) / (now - t0) if now > t0 else 0.0


def _eta(remaining: int, speed: float) -> str:
    if remaining <= 0:
        return "0s"
    if speed <= 0:
        return "?"
    seconds = int(remaining / speed)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


def counts_line(stats: RunStats) -> str:
    """Counts by status, current rate and 429s seen."""
    counts = " · ".join(f"{k} {v}" for k, v in sorted(stats.recorded.items())) or "nothing yet"
    rate = stats.current_rate()
    rate_text = "unlimited" if rate is None else f"{rate:.1f}/s"
    skipped = f" · {stats.skipped} settled earlier" if stats.skipped else ""
    return f"{counts}{skipped} · rate {rate_text} · 429s {stats.throttled}"


def speed_line(stats: RunStats, speed: float) -> str:
    """Done/total, rows/s and ETA."""
    eta = _eta(stats.total - stats.done, speed)
    return f"{stats.done}/{stats.total} rows · {speed:.1f} rows/s · ETA {eta}"


def status_line(stats: RunStats, speed: float) -> str:
    """One line: done/total, rows/s, ETA, counts by status, current rate, 429s."""
    return f"{speed_line(stats, speed)} · {counts_line(stats)}"


class Display:
    """Live progress: a rich bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, stream: IO[str] | None = None, *, plain_interval: float = 5.0) -> None:
        self._stream = stream or sys.stderr
        self._console = Console(file=self._stream, highlight=False)
        self._plain_interval = plain_interval
        self._speed = _Speed()

    @property
    def console(self) -> Console:
        return self._console

    async def run(self, stats: RunStats) -> None:
        """Refresh until cancelled."""
        self._speed.update(0, stats.started)
        if self._console.is_terminal:
            await self._run_rich(stats)
        else:
            await self._run_plain(stats)

    async def _run_plain(self, stats: RunStats) -> None:
        while True:
            await anyio.sleep(self._plain_interval)
            speed = self._speed.update(stats.done - stats.skipped)
            print(f"bulk: {status_line(stats, speed)}", file=self._stream, flush=True)

    async def _run_rich(self, stats: RunStats) -> None:
        bar = Progress(
            TextColumn("provisioning"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[line]}", markup=False),
            console=self._console,
        )
        task = bar.add_task("rows", total=stats.total, line="")
        counts = Text()
        speed = 0.0

        def refresh() -> None:
            bar.update(task, completed=stats.done, line=speed_line(stats, speed))
            counts.plain = counts_line(stats)

        with Live(Group(bar, counts), console=self._console, refresh_per_second=4):
            try:
                while True:
                    speed = self._speed.update(stats.done - stats.skipped)
                    refresh()
                    await anyio.sleep(0.25)
            finally:
                refresh()

    def interrupted(self) -> None:
        self._console.print(
            "bulk: stopping: finishing calls in flight (Ctrl-C again to quit now)", markup=False
        )


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
            f"would send {summary.would_send} rows; {summary.skipped} settled by earlier runs"
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
        if rates:
            lines.append(f"rate: {rates}")
    if summary.drift:
        examples = ", ".join(safe(e) for e in summary.drift_examples)
        lines.append(
            f"drift: {summary.drift} rows already created differ from the input "
            f"(e.g. {examples}); they were not re-sent"
        )
    for lane in summary.quota_stops:
        lines.append(
            f"quota: {lane} has no room for more configuration sets (LimitExceeded); "
            "raise the quota, then run the same command to resume"
        )
    lines.append(f"ledger: {summary.ledger}")
    lines.append(_next_step(summary, command))
    # The ledger's path and the command hold the input's file name, which may hold anything.
    return "\n".join(safe(line) for line in lines)


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
