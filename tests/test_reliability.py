"""The fault matrix: the engine against an emulator that throttles, fails, stalls and restarts.

Each test runs the real engine in this process against the emulator on loopback, lets a fault
hit part of the run, then resumes (the same command again) until every row is settled, and
checks the invariants of ``tests/torture.py``: the service holds exactly the valid names, the
ledger settles every row (``created``, not ``exists``: each set was made by these runs), no
invalid row reached the service, and no settled name was sent again by a resume.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest

from bulk.emulator import Emulator, EmulatorConfig, EmulatorState, running_emulator
from bulk.engine.summary import Summary

from .torture import (
    ACCOUNT,
    NoResend,
    Tenants,
    check_invariants,
    emulator_settings,
    latest_by_row,
    row_records,
    run_engine,
    tenants_file,
    write_csv,
)

EmulatorFactory = Any


async def resume_until_settled(
    tenants: Tenants, emulator: Emulator, *, runs: int = 4, **overrides: Any
) -> list[Summary]:
    """Resume (faults still on, or not) until no row is pending or failed; bounded."""
    summaries = []
    for _ in range(runs):
        guard = NoResend(tenants.ledger, emulator.stats)
        summary = await run_engine(
            tenants.path, emulator_settings(emulator, **overrides), retry_scale=0.1
        )
        guard.check()
        summaries.append(summary)
        if not summary.pending and not summary.counts["failed"]:
            return summaries
    pytest.fail(f"rows still unsettled after {runs} resumes: {summaries[-1]}")


async def settle_emulator(emulator: Emulator, limit: float = 5.0) -> None:
    """Wait until the emulator's counters stop moving: handlers a timed-out client left behind
    (latency sleeps) still store their sets after the client gave up."""
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        now = (emulator.stats()["created"], len(emulator.state.all_names()))
        if now == last:
            return
        last = now
        await anyio.sleep(0.6)


class TestThrottling:
    async def test_a_429_storm_fails_rows_that_a_resume_creates(
        self, tmp_path: Path, emulator_factory: EmulatorFactory
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        # The client's own limit is off and the server allows 5/s: nearly every call is a 429.
        async with emulator_factory(EmulatorConfig(rate=5, burst=1)) as emu:
            storm = await run_engine(
                tenants.path, emulator_settings(emu, max_attempts=2), retry_scale=0.05
            )
            stats = emu.stats()
            assert stats["throttled"] > 100
            assert storm.exit_code == 1
            failed = [r for r in row_records(tenants.ledger) if r["status"] == "failed"]
            assert len(failed) > 100
            # A 429 stores nothing: such a failure is not ambiguous, and says why.
            assert {r["code"] for r in failed} == {"TooManyRequestsException"}
            assert not any(r.get("ambiguous") for r in failed)
            assert all(r["message"].startswith("gave up after 2 attempts") for r in failed)

            emu.configure(rate=0)
            summaries = await resume_until_settled(tenants, emu)
            check_invariants(tenants, set(emu.state.names(ACCOUNT)), emu.stats())
        assert summaries[-1].exit_code == 1  # the invalid rows still need fixing

    async def test_the_adaptive_limiter_rides_out_a_storm_without_failing_a_row(
        self, tmp_path: Path, emulator_factory: EmulatorFactory
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 100)
        async with emulator_factory(EmulatorConfig(rate=100, burst=5)) as emu:
            run = anyio.Event()

            async def storm() -> None:
                # A third of the way in, the service drops to 10/s for a while.
                while emu.stats()["created"] < 30 and not run.is_set():
                    await anyio.sleep(0.02)
                emu.configure(rate=10, burst=1)
                await anyio.sleep(1.0)
                emu.configure(rate=100, burst=5)

            async with anyio.create_task_group() as tg:
                tg.start_soon(storm)
                summary = await run_engine(
                    tenants.path, emulator_settings(emu, rate=100, burst=5), retry_scale=1.0
                )
                run.set()
            stats = emu.stats()
            check_invariants(tenants, set(emu.state.names(ACCOUNT)), stats)
        assert stats["throttled"] > 0
        assert summary.counts["failed"] == 0
        assert summary.pending == 0


class TestServerFaults:
    async def test_a_5xx_burst_leaves_rows_failed_and_a_resume_creates_them(
        self, tmp_path: Path, emulator_factory: EmulatorFactory
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        config = EmulatorConfig(rate=0, fault_rate=0.6, seed=11)
        async with emulator_factory(config) as emu:
            burst = await run_engine(
                tenants.path, emulator_settings(emu, max_attempts=2), retry_scale=0.05
            )
            failed = [r for r in row_records(tenants.ledger) if r["status"] == "failed"]
            assert burst.counts["failed"] == len(failed) > 20
            assert {r["code"] for r in failed} <= {
                "InternalFailure",
                "ConcurrentModificationException",
            }
            # A 5xx may or may not have stored the set: the ledger says so for the next run.
            assert all(r["ambiguous"] is True for r in failed)

            emu.configure(fault_rate=0)
            await resume_until_settled(tenants, emu)
            latest = check_invariants(tenants, set(emu.state.names(ACCOUNT)), emu.stats())
        for record in failed:
            assert latest[record["row"]]["status"] == "created"

    @pytest.mark.parametrize("drop_share", [0.0, 1.0], ids=["500-after-commit", "dropped"])
    async def test_ambiguous_commits_are_created_never_exists(
        self, tmp_path: Path, emulator_factory: EmulatorFactory, drop_share: float
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        config = EmulatorConfig(
            rate=0, ambiguous_rate=0.35, ambiguous_drop_share=drop_share, seed=5
        )
        async with emulator_factory(config) as emu:
            # One attempt each: a row whose only answer was lost is left failed (ambiguous),
            # although the service stored it; the next run must call it created.
            first = await run_engine(tenants.path, emulator_settings(emu, max_attempts=1))
            stats = emu.stats()
            assert stats["ambiguous"] > 30
            assert stats["dropped"] == (stats["ambiguous"] if drop_share else 0)
            lost = [r for r in row_records(tenants.ledger) if r["status"] == "failed"]
            assert first.counts["failed"] == len(lost) == stats["ambiguous"]
            assert all(r["ambiguous"] is True for r in lost)
            assert {r["name"] for r in lost} <= set(emu.state.names(ACCOUNT))

            await resume_until_settled(tenants, emu)  # faults still on
            latest = check_invariants(tenants, set(emu.state.names(ACCOUNT)), emu.stats())
        for record in lost:
            again = latest[record["row"]]
            assert again["status"] == "created"
            assert again["message"] == "created by an earlier attempt whose answer was lost"

    async def test_faults_on_every_run_still_end_with_each_name_created_once(
        self, tmp_path: Path, emulator_factory: EmulatorFactory
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 300)
        config = EmulatorConfig(
            rate=150, burst=5, fault_rate=0.15, ambiguous_rate=0.15, latency_ms=5, seed=3
        )
        async with emulator_factory(config) as emu:
            await resume_until_settled(tenants, emu, runs=6, rate=300, burst=5, max_attempts=3)
            stats = emu.stats()
            check_invariants(tenants, set(emu.state.names(ACCOUNT)), stats)
        assert stats["faults"] > 0 and stats["ambiguous"] > 0 and stats["throttled"] > 0


class TestTimeouts:
    async def test_read_timeouts_during_a_latency_spike(
        self, tmp_path: Path, emulator_factory: EmulatorFactory
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 120)
        # Calls take 30-570 ms and the client waits 250 ms: about half time out, and the
        # server still stores those sets after the client gave up on them.
        config = EmulatorConfig(rate=0, latency_ms=300, latency_jitter=0.9, seed=2)
        async with emulator_factory(config) as emu:
            first = await run_engine(
                tenants.path,
                emulator_settings(emu, timeout=0.25, max_attempts=2, concurrency=16),
                retry_scale=0.2,
            )
            await settle_emulator(emu)
            timeouts = [r for r in row_records(tenants.ledger) if r["code"] == "ReadTimeout"]
            assert timeouts, "the latency spike caused no read timeout"
            assert all(r["ambiguous"] is True for r in timeouts)
            assert first.counts["failed"] == len(timeouts)

            emu.configure(latency_ms=0)
            await resume_until_settled(tenants, emu)
            latest = check_invariants(tenants, set(emu.state.names(ACCOUNT)), emu.stats())
        for record in timeouts:
            assert latest[record["row"]]["status"] == "created"


class TestRestart:
    async def test_the_emulator_restarted_mid_run_with_its_state_kept(self, tmp_path: Path) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 300)
        state = EmulatorState()
        config = EmulatorConfig(rate=100, burst=5)
        stack = AsyncExitStack()
        first = await stack.enter_async_context(running_emulator(config, state=state))
        port, url = first.port, first.url
        restarted: list[Emulator] = []
        summary: list[Summary] = []

        async def run() -> None:
            settings = emulator_settings(url, rate=100, burst=5, max_attempts=10)
            summary.append(await run_engine(tenants.path, settings))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                with anyio.fail_after(60):
                    while state.stats()["created"] < 80:
                        await anyio.sleep(0.02)
                await stack.aclose()  # the server goes away mid-run, connections and all
                await anyio.sleep(0.5)  # calls meanwhile are refused
                stack = AsyncExitStack()
                restarted.append(
                    await stack.enter_async_context(
                        running_emulator(config, port=port, state=state)
                    )
                )
            emu = restarted[0]
            assert emu.url == url
            stats = emu.stats()
            check_invariants(tenants, set(state.names(ACCOUNT)), stats)
        finally:
            await stack.aclose()
        assert summary[0].pending == 0
        assert summary[0].counts["failed"] == 0
        assert summary[0].retries > 0  # the run noticed the outage and rode it out


class TestQuota:
    async def test_limit_exceeded_partway_stops_the_lane_and_a_resume_finishes(
        self, tmp_path: Path, emulator_factory: EmulatorFactory
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 200)
        async with emulator_factory(EmulatorConfig(rate=0, max_sets=60)) as emu:
            stopped = await run_engine(tenants.path, emulator_settings(emu))
            assert stopped.quota_stops == ("pinpoint-email/default/us-east-1",)
            assert stopped.exit_code == 1
            assert len(emu.state.names(ACCOUNT)) == 60
            records = row_records(tenants.ledger)
            quota = [r for r in records if r["status"] == "failed"]
            assert quota and {r["code"] for r in quota} == {"LimitExceededException"}
            # Creating stopped at once: at most the calls in flight met the limit.
            limit_errors = emu.stats()["errors"]["LimitExceededException"]
            assert limit_errors == len(quota) <= 8
            assert stopped.pending > 0
            created_before = emu.stats()["calls"]["CreateConfigurationSet"]

            # The same quota: the resume meets it at once and stops again, sending little.
            again = await run_engine(tenants.path, emulator_settings(emu))
            assert again.quota_stops and again.exit_code == 1
            assert emu.stats()["calls"]["CreateConfigurationSet"] - created_before <= 8

            emu.configure(max_sets=None)  # the quota is raised
            summaries = await resume_until_settled(tenants, emu)
            latest = check_invariants(tenants, set(emu.state.names(ACCOUNT)), emu.stats())
        assert not summaries[-1].quota_stops
        for record in quota:
            assert latest[record["row"]]["status"] == "created"

    async def test_a_quota_stop_cancels_the_calls_waiting_on_the_lanes_limit(
        self, tmp_path: Path, emulator_factory: EmulatorFactory
    ) -> None:
        """16 workers wait on a 20/s limiter when the quota runs out: none of them sends."""
        tenants = tenants_file(tmp_path / "t.csv", 40, bad_every=1000)
        async with emulator_factory(EmulatorConfig(rate=0, max_sets=5)) as emu:
            settings = emulator_settings(emu, rate=20.0, burst=1, concurrency=16)
            stopped = await run_engine(tenants.path, settings)
            limit_errors = emu.stats()["errors"]["LimitExceededException"]
        assert stopped.quota_stops == ("pinpoint-email/default/us-east-1",)
        # One call at a time is in flight at 20/s: the one that met the limit, maybe one more.
        assert 1 <= limit_errors <= 2, f"{limit_errors} creates met the limit"
        assert stopped.pending == 40 - 5 - limit_errors


class TestResumeWork:
    """A resume redoes nothing that is settled: no call, and no record written again."""

    async def test_invalid_rows_sharing_a_name_are_recorded_once(
        self, tmp_path: Path, emulator: Emulator
    ) -> None:
        rows: list[dict[str, Any]] = [
            {"ConfigurationSetName": f"tenant-{i}", "tag:team": f"team-{i}"} for i in range(6)
        ]
        # Three later copies of one name, each with other options: all duplicates of row 1.
        rows += [{"ConfigurationSetName": "tenant-0", "tag:team": f"copy-{i}"} for i in range(3)]
        # Two rows without a name: both invalid under the same (empty) name.
        rows += [{"ConfigurationSetName": "", "tag:team": f"nameless-{i}"} for i in range(2)]
        path = write_csv(tmp_path / "t.csv", rows)
        first = await run_engine(path, emulator_settings(emulator))
        assert first.this_run == {"created": 6, "invalid": 5}
        for _ in range(2):
            again = await run_engine(path, emulator_settings(emulator))
            assert again.this_run == {}
            assert again.skipped == len(rows)
        assert len(row_records(tmp_path / "t.csv.ledger.jsonl")) == len(rows)

    async def test_a_new_row_identical_to_an_invalid_one_gets_its_own_record(
        self, tmp_path: Path, emulator: Emulator
    ) -> None:
        # The situation a run killed between two identical duplicates leaves behind: the
        # first is recorded, the second not yet. The resume must record the second, or the
        # ledger never lists it among the rows to fix.
        rows: list[dict[str, Any]] = [
            {"ConfigurationSetName": "acme", "tag:team": "blue"},
            {"ConfigurationSetName": "acme", "tag:team": "red"},
        ]
        path = write_csv(tmp_path / "t.csv", rows)
        first = await run_engine(path, emulator_settings(emulator))
        assert first.this_run == {"created": 1, "invalid": 1}

        write_csv(path, [*rows, dict(rows[1])])
        again = await run_engine(path, emulator_settings(emulator))

        assert again.this_run == {"invalid": 1}
        assert again.skipped == 2
        latest = latest_by_row(tmp_path / "t.csv.ledger.jsonl")
        assert latest[3]["status"] == "invalid" and latest[3]["code"] == "DuplicateName"
        third = await run_engine(path, emulator_settings(emulator))
        assert third.this_run == {} and third.skipped == 3
