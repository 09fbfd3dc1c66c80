"""What a person reads: the live status line, the summary, and the exit code behind it."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from bulk.engine.answers import CallKind, CallResult
from bulk.engine.progress import (
    Display,
    _Speed,
    lane_lines,
    render_summary,
    safe,
    status_line,
    where_line,
)
from bulk.engine.summary import RunStats, Summary
from bulk.models import Lane, Outcome, Status

DENIED = "arn:aws:iam::333333333333:role/locked"


def stats(**counts: int) -> RunStats:
    run = RunStats(total=100, ledger=Path("t.csv.ledger.jsonl"))
    run.recorded = Counter(counts)
    run.current_rate = lambda: 9.5
    return run


def summary(**overrides: object) -> Summary:
    base = stats(created=97, invalid=2, failed=1).summary()
    return replace(base, **overrides)  # type: ignore[arg-type]


def region(name: str) -> Lane:
    return Lane("sesv2", name)


def lanes_run(
    rows: dict[Lane, int],
    recorded: dict[Lane, dict[Status, int]],
    rates: dict[Lane, float | None],
) -> RunStats:
    """A run over ``rows`` (rows per lane in the file) that recorded ``recorded`` so far,
    its lanes' limiters at ``rates`` (a lane not there has not started)."""
    run = RunStats(total=sum(rows.values()), ledger=Path("t.csv.ledger.jsonl"))
    run.lane_totals = {str(lane): n for lane, n in rows.items()}
    run.lanes = lambda: [str(lane) for lane in rates]
    run.lane_rates = lambda: {str(lane): rate for lane, rate in rates.items()}
    number = 0
    for lane, counts in recorded.items():
        for status, n in counts.items():
            for _ in range(n):
                number += 1
                run.note_outcome(Outcome(number, f"t-{number}", status, lane, "00"))
    return run


def stop(run: RunStats, lane: Lane) -> str:
    """Stop ``lane`` as the engine does when its role cannot be assumed; the reason."""
    reason = (
        f"{lane}: cannot assume role {DENIED} (AccessDenied: not authorized to perform "
        "sts:AssumeRole); check the role's trust policy and that the run's credentials may "
        "call sts:AssumeRole on it"
    )
    run.note_lane_stopped(str(lane), reason)
    return reason


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


class TestLaneLines:
    def test_few_lanes_get_a_line_each_with_rows_rate_and_eta(self) -> None:
        east, west, south = region("us-east-1"), region("eu-west-1"), region("ap-south-1")
        run = lanes_run(
            {east: 100, west: 100, south: 100},
            {east: {Status.CREATED: 40}, west: {Status.CREATED: 9, Status.INVALID: 1}},
            {east: 1.0, west: 0.5},
        )
        east_line, west_line, south_line = lane_lines(run)
        assert str(east) in east_line and "40/100 rows · 1.00 req/s · ETA 1m00s" in east_line
        assert str(west) in west_line and "10/100 rows · 0.50 req/s · ETA 3m00s" in west_line
        assert str(south) in south_line and "0/100 rows · waiting" in south_line

    def test_a_finished_lane_says_done(self) -> None:
        east, west = region("us-east-1"), region("eu-west-1")
        run = lanes_run({east: 5, west: 5}, {east: {Status.CREATED: 5}}, {east: 1.0, west: 1.0})
        assert "5/5 rows · done" in lane_lines(run)[0]

    def test_many_lanes_show_the_slowest_and_count_the_rest(self) -> None:
        lanes = [region(f"xx-test-{i}") for i in range(40)]
        recorded = {lane: {Status.CREATED: 90} for lane in lanes}
        rates: dict[Lane, float | None] = dict.fromkeys(lanes, 1.0)
        recorded[lanes[7]] = {Status.CREATED: 50}  # 50 left at 0.5/s: 100 s
        rates[lanes[7]] = 0.5
        recorded[lanes[30]] = {Status.CREATED: 70}  # 30 left at 1/s: 30 s, the others 10 s
        run = lanes_run(dict.fromkeys(lanes, 100), recorded, rates)

        lines = lane_lines(run)

        assert len(lines) == 6
        assert str(lanes[7]) in lines[0] and "ETA 1m40s" in lines[0]
        assert str(lanes[30]) in lines[1] and "ETA 30s" in lines[1]
        assert lines[-1] == "… 35 more lanes"

    def test_a_stopped_lane_shows_its_reason_first_among_many(self) -> None:
        lanes = [region(f"xx-test-{i}") for i in range(20)]
        run = lanes_run(dict.fromkeys(lanes, 10), {}, dict.fromkeys(lanes, 1.0))
        stop(run, lanes[12])

        first = lane_lines(run)[0]

        assert str(lanes[12]) in first
        # Shortened for one line: the lane is said once, the advice is left to the summary.
        assert f"0/10 rows · stopped: cannot assume role {DENIED}" in first
        assert first.count(str(lanes[12])) == 1 and "trust policy" not in first
        assert "ETA" not in first

    def test_more_stopped_lanes_than_shown_are_counted(self) -> None:
        lanes = [region(f"xx-test-{i}") for i in range(20)]
        run = lanes_run(dict.fromkeys(lanes, 10), {}, dict.fromkeys(lanes, 1.0))
        for lane in lanes[:7]:
            stop(run, lane)
        assert lane_lines(run)[-1] == "… 15 more lanes (2 of them stopped)"

    def test_once_stopping_no_lane_shows_an_eta(self) -> None:
        east, west = region("us-east-1"), region("eu-west-1")
        run = lanes_run({east: 10, west: 10}, {east: {Status.CREATED: 2}}, {east: 1, west: 1})
        run.stopping = True
        lines = lane_lines(run)
        assert all("ETA" not in line for line in lines)
        assert "2/10 rows · 1.00 req/s" in lines[0]

    def test_one_running_lane_or_a_dry_run_has_no_lane_lines(self) -> None:
        east, west = region("us-east-1"), region("eu-west-1")
        assert lane_lines(lanes_run({east: 10}, {}, {east: 1.0})) == []
        dry = lanes_run({east: 10, west: 10}, {}, {})
        dry.dry_run = True
        assert lane_lines(dry) == []

    def test_one_stopped_lane_still_says_why(self) -> None:
        east = region("us-east-1")
        run = lanes_run({east: 10}, {}, {east: None})
        stop(run, east)
        assert "stopped: cannot assume role" in lane_lines(run)[0]

    def test_rows_settled_earlier_in_unknown_lanes_make_left_and_eta_bounds(self) -> None:
        east, west = region("us-east-1"), region("eu-west-1")
        run = lanes_run({east: 100, west: 100}, {east: {Status.CREATED: 10}}, {east: 1, west: 1})
        run.note_skip(Status.CREATED, 150)  # the engine did not say which lanes they were in
        east_line, west_line = lane_lines(run)
        assert "≥10/100 rows" in east_line and "ETA ≤40s" in east_line  # 40 left in the run

        run.note_lane_skipped(str(east), 90)
        run.note_lane_skipped(str(west), 60)
        east_line, west_line = lane_lines(run)
        assert "100/100 rows · done" in east_line
        assert "60/100 rows · 1.00 req/s · ETA 40s" in west_line

    async def test_on_a_terminal_the_lanes_show_under_the_bar(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws its live display into the buffer
        east, west = region("us-east-1"), region("eu-west-1")
        run = lanes_run({east: 10, west: 10}, {east: {Status.CREATED: 4}}, {east: 1, west: 1})
        stop(run, west)
        out = io.StringIO()
        with anyio.move_on_after(0.3):
            await Display(out).run(run)
        screen = out.getvalue()
        assert "4/20 rows" in screen  # the overall bar's line is still there
        assert f"{east}  4/10 rows · 1.00 req/s · ETA 6s" in screen
        assert f"{west}  0/10 rows · stopped: cannot assume role" in screen

    async def test_without_a_terminal_lane_lines_follow_the_status_line(self) -> None:
        east, west = region("us-east-1"), region("eu-west-1")
        run = lanes_run({east: 10, west: 10}, {east: {Status.CREATED: 4}}, {east: 1, west: 1})
        out = io.StringIO()
        with anyio.move_on_after(0.3):
            await Display(out, plain_interval=0.01).run(run)
        printed = out.getvalue().splitlines()
        status = next(i for i, line in enumerate(printed) if "4/20 rows" in line)
        assert str(east) in printed[status + 1] and "4/10 rows" in printed[status + 1]
        assert str(west) in printed[status + 2] and "0/10 rows" in printed[status + 2]
        # In a log, the lanes come with every 12th status line (a minute), not each one.
        statuses = sum("4/20 rows" in line for line in printed)
        lanes = sum("4/10 rows" in line for line in printed)
        assert lanes == 1 + (statuses - 1) // 12, printed


class TestLaneSummary:
    def two_regions(self) -> tuple[Lane, Lane, RunStats]:
        east, west = region("us-east-1"), region("eu-west-1")
        run = lanes_run(
            {east: 10, west: 6},
            {
                east: {Status.CREATED: 8, Status.INVALID: 1, Status.FAILED: 1},
                west: {Status.EXISTS: 2},
            },
            {east: 1.0, west: None},
        )
        run.rates = {str(east): 0.8, str(west): 0.9}  # the limiters' rates as the run ended
        run.started -= 10  # ten seconds ago
        return east, west, run

    def test_each_lane_has_its_counts_pending_speed_rate_and_stop(self) -> None:
        east, west, run = self.two_regions()
        reason = stop(run, west)

        lanes = {lane.lane: lane for lane in run.summary().lanes}

        e, w = lanes[str(east)], lanes[str(west)]
        assert (e.rows, e.created, e.exists, e.invalid, e.failed, e.pending) == (10, 8, 0, 1, 1, 0)
        assert (w.rows, w.created, w.exists, w.invalid, w.failed, w.pending) == (6, 0, 2, 0, 0, 4)
        assert 0.85 <= e.throughput <= 0.9  # 9 rows sent (not the invalid one) in ~10 s
        assert (e.rate, w.rate) == (0.8, 0.9)
        assert (e.stopped, w.stopped) == (None, reason)

    def test_the_ledgers_end_record_holds_every_lane_as_json(self) -> None:
        east, west, run = self.two_regions()
        stop(run, west)
        record = json.loads(json.dumps(run.summary().as_record()))
        assert record["exit_code"] == 3
        assert [lane["lane"] for lane in record["lanes"]] == sorted([str(east), str(west)])
        west_record = next(lane for lane in record["lanes"] if lane["lane"] == str(west))
        assert west_record["pending"] == 4 and "cannot assume role" in west_record["stopped"]
        assert record["stopped_lanes"] == {str(west): west_record["stopped"]}

    def test_the_text_summary_has_a_line_per_lane_and_the_stop_reasons(self) -> None:
        east, west, run = self.two_regions()
        reason = stop(run, west)

        text = render_summary(run.summary(), command="bulk provision t.csv").splitlines()

        assert "lanes: 2" in text
        header = next(line for line in text if line.split()[:2] == ["lane", "rows"])
        assert header.split()[2:] == [
            "created", "exists", "invalid", "failed", "pending", "rows/s", "rate", "429s"
        ]  # fmt: skip
        east_row = next(line.split() for line in text if line.startswith(f"  {east} "))
        assert east_row[:7] == [str(east), "10", "8", "0", "1", "1", "0"]
        assert east_row[-2:] == ["0.80/s", "0"]
        west_row = next(line.split() for line in text if line.startswith(f"  {west} "))
        assert west_row[:7] == [str(west), "6", "0", "2", "0", "0", "4"]
        assert west_row[-2] == "stopped"
        stopped = text.index("stopped: 1 lane; their rows stay pending:")
        assert text[stopped + 1] == f"  {reason}"  # whole, with its advice
        assert not any(line.startswith("rate: ") for line in text), "the table says each rate"

    def test_many_lanes_show_the_most_troubled_and_count_the_rest(self) -> None:
        lanes = [region(f"xx-test-{i:02d}") for i in range(30)]
        recorded = {lane: {Status.CREATED: 10} for lane in lanes}
        recorded[lanes[4]] = {Status.CREATED: 9, Status.FAILED: 1}
        recorded[lanes[21]] = {Status.CREATED: 5}  # 5 rows pending
        del recorded[lanes[17]]  # it stopped before sending: 10 rows pending
        run = lanes_run(dict.fromkeys(lanes, 10), recorded, dict.fromkeys(lanes, 1.0))
        stop(run, lanes[17])

        text = render_summary(run.summary(), command="bulk").splitlines()

        assert "lanes: 30, the 10 most troubled first:" in text
        table = text[text.index("lanes: 30, the 10 most troubled first:") + 2 :]
        assert [row.split()[0] for row in table[:3]] == [str(lanes[i]) for i in (17, 21, 4)]
        assert "  … 20 more lanes" in text

    def test_one_lane_has_no_table_but_its_rate(self) -> None:
        east = region("us-east-1")
        run = lanes_run({east: 10}, {east: {Status.CREATED: 10}}, {east: 1.0})
        run.rates = {str(east): 1.0}
        summary = run.summary()
        assert [lane.created for lane in summary.lanes] == [10]
        text = render_summary(summary, command="bulk")
        assert "lanes:" not in text
        assert f"rate: {east} 1.0/s" in text

    def test_429s_are_counted_per_lane_when_the_engine_names_the_lane(self) -> None:
        east, west = region("us-east-1"), region("eu-west-1")
        run = lanes_run({east: 1, west: 1}, {east: {Status.CREATED: 1}}, {east: 1.0, west: 1.0})
        throttled, ok = CallResult(CallKind.THROTTLED), CallResult(CallKind.OK, latency_ms=5)
        for result in (throttled, throttled, ok):
            run.note_attempt(result, retry=False, lane=str(east))
        lanes = {lane.lane: lane.throttled for lane in run.summary().lanes}
        assert lanes == {str(east): 2, str(west): 0}
        text = render_summary(run.summary(), command="bulk").splitlines()
        east_row = next(line.split() for line in text if line.startswith(f"  {east} "))
        assert east_row[-1] == "2"

        run.note_attempt(throttled, retry=True)  # a call whose lane was not said
        assert {lane.throttled for lane in run.summary().lanes} == {None}
