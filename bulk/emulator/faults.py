"""Seeded fault injection: latency, plain 5xx faults and ambiguous replies."""

from __future__ import annotations

import enum
import random
import threading

from bulk.emulator.config import EmulatorConfig


class Fault(enum.Enum):
    """What goes wrong with one call that got past the throttle."""

    NONE = "none"
    INTERNAL_FAILURE = "InternalFailure"  # 500, nothing done
    CONCURRENT_MODIFICATION = "ConcurrentModificationException"  # 500, nothing done
    AMBIGUOUS_500 = "ambiguous-500"  # done, then a 500 InternalFailure reply
    AMBIGUOUS_DROP = "ambiguous-drop"  # done, then the connection closes without a reply

    @property
    def plain(self) -> bool:
        """A fault that happens before the operation: nothing is stored."""
        return self in (Fault.INTERNAL_FAILURE, Fault.CONCURRENT_MODIFICATION)

    @property
    def ambiguous(self) -> bool:
        """A fault that happens after the operation: the client cannot know it succeeded."""
        return self in (Fault.AMBIGUOUS_500, Fault.AMBIGUOUS_DROP)


class FaultInjector:
    """Draws latency and faults from random generators seeded by ``EmulatorConfig.seed``.

    Latency and faults have separate generators, and every roll draws the same number of values
    whatever the rates, so with one client sending in order a seed gives the same faults on the
    same calls from run to run, with or without latency.
    """

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._latency = random.Random()
        self._faults = random.Random()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart both generators from ``seed`` (``None``: unpredictable)."""
        with self._lock:
            self._latency.seed(None if seed is None else f"{seed}/latency")
            self._faults.seed(None if seed is None else f"{seed}/faults")

    def latency(self, config: EmulatorConfig) -> float:
        """Seconds to wait before answering: ``latency_ms`` with uniform ``±latency_jitter``."""
        if config.latency_ms <= 0:
            return 0.0
        with self._lock:
            spread = (2.0 * self._latency.random() - 1.0) * config.latency_jitter
        return config.latency_ms * (1.0 + spread) / 1000.0

    def roll(self, config: EmulatorConfig) -> Fault:
        """The fault of one call: plain with ``fault_rate``, ambiguous with ``ambiguous_rate``."""
        with self._lock:
            draw, variant = self._faults.random(), self._faults.random()
        if draw < config.fault_rate:
            return Fault.INTERNAL_FAILURE if variant < 0.5 else Fault.CONCURRENT_MODIFICATION
        if draw < config.fault_rate + config.ambiguous_rate:
            return (
                Fault.AMBIGUOUS_DROP
                if variant < config.ambiguous_drop_share
                else Fault.AMBIGUOUS_500
            )
        return Fault.NONE
