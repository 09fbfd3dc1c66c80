"""Scheduling by lane: every lane sends at once whatever the row order, in bounded memory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import anyio
import pytest

from bulk.emulator import EmulatorConfig
from bulk.engine.intake import Send
from bulk.engine.lanes import LaneQueue, Scheduler
from bulk.engine.pipeline import Engine
from bulk.models import Lane, Row

from .torture import emulator_settings, fast_retries, write_csv

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "sa-east-1")
EmulatorFactory = Any


def send(lane: Lane, number: int) -> Send:
    row = Row(number, f"t-{number}", lane, {"ConfigurationSetName": f"t-{number}"}, "00")
    return Send(row, None)


async def no_wait(event: anyio.Event) -> None:
    await event.wait()


class TestScheduler:
    async def test_rows_of_a_lane_whose_queue_is_full_spill_while_another_lane_starves(
        self, tmp_path: Path
    ) -> None:
        """A file sorted by lane: the reader spills the first lane's rows and reads on to
        the next lane's, instead of waiting for the first lane to send."""
        a, b = Lane("sesv2", "us-east-1"), Lane("sesv2", "eu-west-1")
        started: list[LaneQueue] = []
        scheduler = Scheduler(started.append, tmp_path)
        scheduler.expect({a: 200, b: 10})
        with anyio.fail_after(5):  # the reader never waits: no lane sends in this test
            for n in range(1, 201):
                await scheduler.put(send(a, n), no_wait)
            scheduler.read({a: 200})
            assert scheduler.spilling
            for n in range(201, 211):
                await scheduler.put(send(b, n), no_wait)
            scheduler.read({b: 10})
        scheduler.close()
        queues = {queue.lane: queue for queue in started}
        assert set(queues) == {a, b}
        for lane, numbers in ((a, range(1, 201)), (b, range(201, 211))):
            got = []
            while (item := await queues[lane].get()) is not None:
                got.append(item.row.number)
            assert got == list(numbers), "a lane's rows in file order"
        scheduler.remove_files()

    async def test_a_lane_reads_its_spill_file_while_the_reader_writes_it(
        self, tmp_path: Path
    ) -> None:
        """A file sorted by lane, its first lane sending as the reader spills its rows: the
        lane reads chunks back (a worker thread) while the reader writes later ones (another).
        Each row comes out once, in file order (with one shared file position, whole chunks
        were lost or read as garbage)."""
        a, b = Lane("sesv2", "us-east-1"), Lane("sesv2", "eu-west-1")
        started: list[LaneQueue] = []
        scheduler = Scheduler(started.append, tmp_path)
        total = 20_000
        scheduler.expect({a: total, b: 1})
        got: list[int] = []

        async def drain(queue: LaneQueue) -> None:
            while (item := await queue.get()) is not None:
                got.append(item.row.number)
                if len(got) % 50 == 0:
                    await anyio.sleep(0)  # let the reader spill between reads

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(1, total + 1):
                    await scheduler.put(send(a, n), no_wait)
                    if n == 1:
                        tg.start_soon(drain, started[0])
                scheduler.read({a: total})
                await scheduler.put(send(b, total + 1), no_wait)
                scheduler.read({b: 1})
                scheduler.close()
        assert got == list(range(1, total + 1))
        scheduler.remove_files()

    async def test_one_lane_waits_for_room_and_never_spills(self, tmp_path: Path) -> None:
        lane = Lane("sesv2", "us-east-1")
        started: list[LaneQueue] = []
        scheduler = Scheduler(started.append, tmp_path)
        scheduler.expect({lane: 100})
        taken: list[int] = []

        async def consume() -> None:
            queue = started[0]
            while (item := await queue.get()) is not None:
                taken.append(item.row.number)
                assert not scheduler.spilling
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            for n in range(1, 101):
                await scheduler.put(send(lane, n), no_wait)
                if n == 1:
                    tg.start_soon(consume)
            scheduler.close()
        assert taken == list(range(1, 101))
        assert not list(tmp_path.iterdir())

    async def test_random_order_keeps_each_lanes_file_order(self, tmp_path: Path) -> None:
        lanes = [Lane("sesv2", region) for region in REGIONS]
        rng = random.Random(3)
        rows = [(rng.choice(lanes), n) for n in range(1, 2001)]
        expected = {lane: sum(1 for owner, _ in rows if owner == lane) for lane in lanes}
        started: list[LaneQueue] = []
        scheduler = Scheduler(started.append, tmp_path)
        scheduler.expect(expected)
        got: dict[Lane, list[int]] = {lane: [] for lane in lanes}

        async def consume(queue: LaneQueue) -> None:
            while (item := await queue.get()) is not None:
                got[queue.lane].append(item.row.number)
                if rng.random() < 0.1:
                    await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            seen: set[Lane] = set()
            for lane, n in rows:
                await scheduler.put(send(lane, n), no_wait)
                scheduler.read({lane: 1})
                for queue in started:
                    if queue.lane not in seen:
                        seen.add(queue.lane)
                        tg.start_soon(consume, queue)
            scheduler.close()
        for lane in lanes:
            assert got[lane] == [n for owner, n in rows if owner == lane]
        scheduler.remove_files()


class TestEveryLaneAtOnce:
    @pytest.mark.parametrize("order", ["sorted", "interleaved"])
    async def test_every_region_sends_from_the_start(
        self, tmp_path: Path, emulator_factory: EmulatorFactory, order: str
    ) -> None:
        """Six Regions at 5 creates/s each; the run is stopped once 30 sets exist. Whatever
        the order of the file, by then each Region's lane has sent (rows sorted by Region used
        to reach the later Regions only once the earlier ones were done: the first 30 sets
        were all in the first Region). Stopped by count, not by time, so a slow machine
        changes nothing."""
        rows = [
            {"ConfigurationSetName": f"t-{region}-{i:03d}", "Region": region}
            for region in REGIONS
            for i in range(40)
        ]
        if order == "interleaved":
            rows.sort(key=lambda row: row["ConfigurationSetName"][-3:])
        path = write_csv(tmp_path / "t.csv", rows)
        async with emulator_factory(EmulatorConfig(rate=5, burst=1)) as emu:
            settings = emulator_settings(emu, rate=5.0, burst=1, concurrency=16)
            engine = Engine(path, settings, retry_sleep=fast_retries(0.01))
            async with anyio.create_task_group() as tg:

                async def stop_at_30() -> None:
                    with anyio.fail_after(60):
                        while len(emu.state.all_names()) < 30:
                            await anyio.sleep(0.02)
                    engine.control.stop(interrupted=True)

                tg.start_soon(stop_at_30)
                summary = await engine.run()
            per_region = {
                region: len([n for n in emu.state.all_names() if f"-{region}-" in n])
                for region in REGIONS
            }
        assert summary.interrupted
        assert all(count >= 2 for count in per_region.values()), per_region
