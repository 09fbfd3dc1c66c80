"""A wake-up call for whoever waits, at the cost of an Event only while someone does."""

from __future__ import annotations

import anyio

__all__ = ["Wakeup"]


class Wakeup:
    """Wakes every task waiting on :meth:`event` when :meth:`fire` is called.

    Fired far more often than waited on (once per row or per answer), so the ``anyio.Event``
    is made by the first waiter and dropped by the next fire: a fire nobody waits for costs
    an attribute read.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def event(self) -> anyio.Event:
        """The event the next :meth:`fire` sets (wait on it; ``is_set()`` says if it came)."""
        if self._event is None:
            self._event = anyio.Event()
        return self._event

    def fire(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()
