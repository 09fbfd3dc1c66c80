"""What a person reads: the live status line, the summary, and the exit code behind it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from bulk.progress import _Speed, render_summary, safe, status_line
from bulk.summary import RunStats, Summary


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
        assert "rate 9.5/s" in line
        assert "429s 3" in line

    def test_speed_is_measured_over_a_window(self) -> None:
        speed = _Speed(window=10.0)
        speed.update(0, now=0.0)
        assert speed.update(50, now=5.0) == 10.0
        assert speed.update(150, now=10.0) == 15.0


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
