"""The emulator, serving as ``bulk.emulator.serve_forever`` does, that also times creates by lane.

``/_emulator/stats`` counts what reached the server, but not when. The lane scenarios need the
window from the server's side too: from the first ``CreateConfigurationSet`` that reached it to
the last one it answered with a new set, per account and Region (a lane), by the server's own
clock. The emulator takes its state as a parameter (``running_emulator(state=...)``), so this
module passes one that notes those moments and adds them to its stats, under
``create_times``; the server is otherwise the same code, with the same throttle and latency.

Run as a child process by :class:`benchmarks.harness.EmulatorProcess` (``timed=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from bulk.emulator import EmulatorConfig
from bulk.emulator.config import CREATE
from bulk.emulator.server import running_emulator
from bulk.emulator.state import CreateResult, EmulatorState, Scope

# The first line the harness waits for, as serve_forever prints it.
LISTENING = "bulk emulator listening on {url} (timed creates)"


class TimedState(EmulatorState):
    """An :class:`EmulatorState` that also notes, per lane, when creates arrived and succeeded.

    Times are ``time.monotonic()`` of the server process: only their differences mean
    anything. ``first_call`` is the arrival of the lane's first create (throttled or not);
    ``first_created``/``last_created`` the moments its first and last new set were stored,
    just before the 200 answer goes out (the emulator's latency is already spent by then).
    ``created_by_second`` counts new sets in each whole second since the first create of all
    arrived: the busiest of them is the most the server answered in one second.
    """

    def __init__(self) -> None:
        super().__init__()
        # Separate from the base class's lock, which its own methods hold while calling none
        # of these: never nested, so no order to keep.
        self._times_lock = threading.Lock()
        self._first_call: dict[Scope, float] = {}
        self._first_created: dict[Scope, float] = {}
        self._last_created: dict[Scope, float] = {}
        self._start: float | None = None
        self._by_second: Counter[int] = Counter()

    def count_scoped(self, scope: Scope, operation: str, *, admitted: bool) -> None:
        super().count_scoped(scope, operation, admitted=admitted)
        if operation == CREATE:
            now = time.monotonic()
            with self._times_lock:
                self._first_call.setdefault(scope, now)
                if self._start is None:
                    self._start = now

    def create(
        self, scope: Scope, name: str, fields: Mapping[str, Any], *, max_sets: int | None
    ) -> CreateResult:
        result = super().create(scope, name, fields, max_sets=max_sets)
        if result is CreateResult.CREATED:
            now = time.monotonic()
            scope = self.resolve(scope)
            with self._times_lock:
                self._first_created.setdefault(scope, now)
                self._last_created[scope] = now
                if self._start is not None:
                    self._by_second[int(now - self._start)] += 1
        return result

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        with self._times_lock:
            stats["create_times"] = {
                f"{account}/{region}": {
                    "first_call": first,
                    "first_created": self._first_created.get((account, region)),
                    "last_created": self._last_created.get((account, region)),
                }
                for (account, region), first in sorted(self._first_call.items())
            }
            last = max(self._by_second, default=-1)
            stats["created_by_second"] = [self._by_second[second] for second in range(last + 1)]
        return stats

    def reset(self) -> None:
        super().reset()
        with self._times_lock:
            self._first_call.clear()
            self._first_created.clear()
            self._last_created.clear()
            self._start = None
            self._by_second.clear()


async def _serve(config: EmulatorConfig, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_emulator(config, host="127.0.0.1", port=port, state=TimedState()) as emu:
        print(LISTENING.format(url=emu.url), flush=True)
        await stop.wait()


def main(argv: list[str]) -> None:
    """``CONFIG_JSON PORT``: serve on 127.0.0.1 until SIGTERM or Ctrl-C."""
    config = EmulatorConfig(**json.loads(argv[0]))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, int(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
