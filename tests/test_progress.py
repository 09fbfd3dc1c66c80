"""What a person reads: the live status line, the summary, and the exit code behind it."""

from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

from bulk.engine.progress import Display, _Speed, render_summary, safe, status_line, where_line
from bulk.engine.summary import RunStats, Summary


def stats(**counts: int) -> RunStats:
    run = RunStats(total=100, ledger=Path("t.csv.ledger.jsonl"))
    run.recorded = Counter(counts)
    run.current_rate = lambda: 9.5
    return run


def summary(**overrides: object) -> Summary:
    base = stats(created=97, invalid=2, failed=1).summary()
    return replace(base, **overrides)  # type: ignore[arg-type]


class TestStatusLine:
    def test_shows_done_speed_eta_counts_rate_and_429s(self) -> None:
        run = stats(created=40, invalid=2)
        run.throttled = 3
        line = status_line(run, speed=10.0)
        assert line.startswith("42/100 rows · 10.0 rows/s · ETA 5s")
        assert "created 40 · invalid 2" in line
        assert "rate 9.50/s" in line
        assert "429s 3" in line

    def test_speed_is_measured_over_a_window(self) -> None:
        speed = _Speed(window=10.0)
        speed.update(0, now=0.0)
        assert speed.update(50, now=5.0) == 10.0
        later = speed.update(150, now=10.0)
        assert 10.0 < later < 15.0, "the smoothed speed follows the window's slope"

    def test_the_eta_at_one_row_a_second_holds_still(self) -> None:
        # At AWS's 1/s, rows land a little early or late: the count seen at a 0.25 s tick
        # flips between n and n-1. Once warmed up, the ETA for 10,000 rows moves < 1%.
        speed = _Speed()
        rng = random.Random(7)
        etas = []
        for tick in range(4 * 600):
            now = tick * 0.25
            done = max(0, int(now + rng.uniform(-0.6, 0.6)))
            value = speed.update(done, now=now)
            if now >= 120:
                etas.append(10_000 / value)
        assert max(etas) / min(etas) < 1.01, (min(etas), max(etas))

    def test_rates_below_ten_show_two_decimals(self) -> None:
        run = stats(created=1)
        run.current_rate = lambda: 0.85
        assert "rate 0.85/s" in status_line(run, speed=0.97)
        assert "0.97 rows/s" in status_line(run, speed=0.97)

    def test_a_dry_run_shows_no_rate(self) -> None:
        run = stats()
        run.dry_run = True
        run.would_send = 12
        line = status_line(run, speed=100.0)
        assert "rate" not in line and "429s" not in line
        assert "would send 12" in line

    def test_once_stopping_the_line_counts_calls_in_flight_instead_of_an_eta(self) -> None:
        run = stats(created=40)
        run.stopping = True
        run.in_flight = 3
        line = status_line(run, speed=1.0)
        assert "stopping: 3 calls in flight" in line
        assert "ETA" not in line

    def test_the_lanes_are_named(self) -> None:
        run = stats()
        run.lanes = lambda: ["sesv2/default/eu-west-1", "sesv2/prod/us-east-1"]
        run.where = "Region eu-west-1 from AWS_REGION"
        line = where_line(run)
        assert "sesv2/default/eu-west-1, sesv2/prod/us-east-1" in line
        assert "Region eu-west-1 from AWS_REGION" in line


class TestInterrupts:
    def test_first_signal_says_stopping_and_the_second_says_exiting(self) -> None:
        out = io.StringIO()
        display = Display(out)
        run = stats()
        display._stats = run
        display.interrupted()
        assert run.stopping
        assert "stopping: no new call starts" in out.getvalue()
        display.interrupted()
        assert "exiting now" in out.getvalue()


class TestSummary:
    def test_counts_ledger_and_next_step(self) -> None:
        text = render_summary(summary(), command="bulk provision t.csv")
        assert "created 97 · exists 0 · invalid 2 · failed 1 · pending 0" in text
        assert "ledger: t.csv.ledger.jsonl" in text
        assert "run the same command to retry" in text

    def test_interrupted_run_says_how_to_resume(self) -> None:
        text = render_summary(summary(interrupted=True, pending=40), command="bulk provision t.csv")
        assert "interrupted: 40 rows left; run the same command to resume" in text

    def test_control_characters_from_input_are_escaped(self) -> None:
        hostile = "evil\x1b[31m\x07name"
        assert "\x1b" not in safe(hostile)
        assert "\\x1b" in safe(hostile)
        text = render_summary(
            summary(drift=1, drift_examples=(f"{hostile} (row 3)",)), command="bulk"
        )
        assert "\x1b" not in text and "\x07" not in text


class TestExitCodes:
    def test_all_created_or_existing_is_zero(self) -> None:
        clean = stats(created=60, exists=40).summary()
        assert clean.exit_code == 0

    def test_invalid_failed_pending_or_quota_is_one(self) -> None:
        assert summary().exit_code == 1
        partial = stats(created=50).summary()
        assert partial.pending == 50
        assert partial.exit_code == 1
        quota = replace(stats(created=100).summary(), quota_stops=("lane",))
        assert quota.exit_code == 1

    def test_abort_is_three_and_interrupt_is_130(self) -> None:
        assert summary(aborted="credentials expired").exit_code == 3
        assert summary(interrupted=True).exit_code == 130
