"""Scheduling by lane: each lane's rows wait in their own queue, so that a lane waiting on its
limit never holds up another.

The reader reads the file once, in file order (the validator must see every row in order),
and puts each row to send into its lane's :class:`LaneQueue`; each lane has its own task
taking rows from its queue (see the pipeline). Whatever the order of the file, every lane
that has rows to send has them in its queue, so every lane sends at its limit at once.

Memory stays flat whatever the row order. A queue holds at most ``capacity`` rows in
memory; past that the reader either waits for room or, when another lane *starves* (its
queue is empty while rows of it are still unread, further on in the file), writes the row to
the lane's spill file and reads on. A file sorted by lane is thus partitioned on disk in one
streaming pass, and a file in any other order spills little or nothing. Which lanes have
rows further on comes from the count of every lane's rows the run makes before it starts
(:meth:`Scheduler.expect`); without it (one lane, or no routing columns) nothing starves and
nothing spills.

Invariants:
- a lane's rows leave its queue in file order: memory first, then its spill file's
  chunks, then the chunk being written, and a row goes to memory only while nothing of its
  lane is spilled;
- a spill file is written (by the reader) and read (by its lane) at the same time, each in a
  worker thread: both use positional I/O at offsets kept in the event loop, never the file's
  shared position, and a chunk counts as written only once its bytes are all there;
- a lane is in ``starving`` exactly when its queue is empty and rows of it are still unread.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO

import anyio

from bulk.engine.intake import Send
from bulk.engine.wakeup import Wakeup
from bulk.models import Lane

__all__ = ["LaneQueue", "Scheduler"]

_CAPACITY = 16  # rows a lane keeps in memory (its calls in flight come from these)
_CHUNK = 64  # rows a spill file is written and read in at a time


class LaneQueue:
    """One lane's rows to send, in file order: a few in memory, the rest in a spill file."""

    def __init__(self, lane: Lane, scheduler: Scheduler) -> None:
        self.lane = lane
        self.unread = 0  # rows of this lane further on in the file (see Scheduler.expect)
        self._scheduler = scheduler
        self._memory: deque[Send] = deque()
        self._writing: list[Send] = []  # spilled rows not yet written (after the file's)
        self._file: IO[bytes] | None = None
        self._written = 0  # bytes of whole chunks in the file
        self._read = 0  # bytes of them read back
        self._changed = Wakeup()  # fired when rows arrive or the reader ends

    @property
    def spilled(self) -> bool:
        """Whether rows of this lane wait outside memory (later rows must follow them)."""
        return bool(self._writing) or self._read < self._written

    @property
    def empty(self) -> bool:
        return not self._memory and not self.spilled

    @property
    def has_room(self) -> bool:
        return not self.spilled and len(self._memory) < _CAPACITY

    def put(self, item: Send) -> None:
        """Keep ``item`` in memory; the caller checked :attr:`has_room`."""
        self._memory.append(item)
        self._wake()

    async def spill(self, item: Send) -> None:
        """Put ``item`` after every row of the lane already queued, on disk."""
        self._writing.append(item)
        if len(self._writing) >= _CHUNK:
            await self._flush()
        self._wake()

    async def get(self) -> Send | None:
        """The lane's next row in file order; ``None`` once the reader is done and none is left."""
        while True:
            if not self._memory:
                await self._refill()
            if self._memory:
                item = self._memory.popleft()
                self._scheduler.taken(self)
                return item
            if self._scheduler.closed:
                return None
            await self._changed.event().wait()

    def close(self) -> None:
        """Remove the spill file (the queue is not used again)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _wake(self) -> None:
        self._changed.fire()

    async def _refill(self) -> None:
        """Move the next spilled rows into memory: a chunk of the file, else the unwritten."""
        if self._read < self._written:
            rows, self._read = await anyio.to_thread.run_sync(self._read_chunk, self._read)
            self._memory.extend(rows)
        elif self._writing:
            self._memory.extend(self._writing)
            self._writing = []

    async def _flush(self) -> None:
        """Write the rows waiting to be spilled as the file's next chunk.

        Only the reader flushes, and it waits here, so one flush at a time: the chunk goes at
        ``_written``, which moves past it once it is whole (the lane may read meanwhile).
        """
        rows, self._writing = self._writing, []
        if self._file is None:
            # Closed by close(), when the run ends (the file has no name to leave behind).
            self._file = tempfile.TemporaryFile(dir=self._scheduler.spill_dir)  # noqa: SIM115
        self._written = await anyio.to_thread.run_sync(self._write_chunk, rows, self._written)

    def _write_chunk(self, rows: list[Send], at: int) -> int:
        """Write ``rows`` at offset ``at``; the offset after them."""
        assert self._file is not None
        data = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        chunk = len(data).to_bytes(8, "little") + data
        fd, done = self._file.fileno(), 0
        while done < len(chunk):
            done += os.pwrite(fd, chunk[done:], at + done)
        return at + len(chunk)

    def _read_chunk(self, at: int) -> tuple[list[Send], int]:
        """The chunk at offset ``at``, and the offset after it."""
        assert self._file is not None
        fd = self._file.fileno()
        size = int.from_bytes(_pread(fd, 8, at), "little")
        rows: list[Send] = pickle.loads(_pread(fd, size, at + 8))
        return rows, at + 8 + size


def _pread(fd: int, size: int, at: int) -> bytes:
    """Exactly ``size`` bytes at offset ``at`` (a written chunk is always whole)."""
    parts = []
    while size > 0:
        part = os.pread(fd, size, at)
        if not part:
            raise EOFError(f"spill file ends {size} bytes short at offset {at}")
        parts.append(part)
        size -= len(part)
        at += len(part)
    return b"".join(parts)


class Scheduler:
    """The lanes' queues, and the reader's side of them: route, spill, or wait for room.

    ``start_lane`` is called once per lane, as its first row arrives, to start the task that
    sends its rows (it takes them with :meth:`LaneQueue.get`).
    """

    def __init__(
        self, start_lane: Callable[[LaneQueue], None], spill_dir: Path | None = None
    ) -> None:
        self.spill_dir = spill_dir
        self.closed = False
        self._start_lane = start_lane
        self._queues: dict[Lane, LaneQueue] = {}
        self._started: set[Lane] = set()
        self._starving: set[LaneQueue] = set()
        self._room = Wakeup()  # fired when a lane takes a row, or one starts to starve

    @property
    def spilling(self) -> bool:
        """Whether any lane has rows waiting on disk."""
        return any(queue.spilled for queue in self._queues.values())

    def expect(self, counts: Mapping[Lane, int]) -> None:
        """Rows of each lane still unread (the whole file's, before the reader starts)."""
        for lane, count in counts.items():
            queue = self._queue(lane)
            queue.unread += count
            self._update(queue)

    def read(self, counts: Mapping[Lane, int]) -> None:
        """The reader has read these rows of each lane (sent, skipped or invalid alike)."""
        for lane, count in counts.items():
            queue = self._queues.get(lane)
            if queue is not None:
                queue.unread = max(0, queue.unread - count)
                self._update(queue)

    async def put(self, item: Send, wait: Callable[[anyio.Event], Awaitable[None]]) -> None:
        """Queue ``item`` on its lane: in memory if there is room; on disk while another lane
        starves; else once there is room. ``wait(event)`` waits for an event (a stop cuts it
        short: the caller checks for one after this returns)."""
        queue = self._queue(item.row.lane)
        if queue.lane not in self._started:
            self._started.add(queue.lane)
            self._start_lane(queue)
        while True:
            if queue.has_room:
                queue.put(item)
                break
            if self._starving - {queue}:
                await queue.spill(item)
                break
            room = self._room.event()
            await wait(room)
            if not room.is_set():  # cut short (a stop): leave the row unqueued
                return
        self._update(queue)

    def taken(self, queue: LaneQueue) -> None:
        """A lane took a row: room for the reader, and maybe a lane that starves now."""
        self._update(queue)
        self._room.fire()

    def close(self) -> None:
        """No more rows: every lane sends what it has, then ends."""
        self.closed = True
        self._starving.clear()
        for queue in self._queues.values():
            queue._wake()
        self._room.fire()

    def remove_files(self) -> None:
        for queue in self._queues.values():
            queue.close()

    def _queue(self, lane: Lane) -> LaneQueue:
        queue = self._queues.get(lane)
        if queue is None:
            queue = self._queues[lane] = LaneQueue(lane, self)
        return queue

    def _update(self, queue: LaneQueue) -> None:
        if queue.unread > 0 and queue.empty and not self.closed:
            if queue not in self._starving:
                self._starving.add(queue)
                self._room.fire()  # a reader waiting for room may spill now
        else:
            self._starving.discard(queue)
