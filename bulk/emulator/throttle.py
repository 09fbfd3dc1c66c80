"""Token buckets: the emulator's per-operation, per-account, per-Region request rate limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """A bucket of at most ``burst`` tokens, refilled continuously at ``rate`` tokens per second.

    Invariant: ``0 <= tokens <= burst``. A full bucket admits ``burst`` requests at once; after
    that it admits one request every ``1 / rate`` seconds, so over a run of ``T`` seconds it
    admits at most ``burst + rate * T``. ``rate == 0`` admits everything.
    """

    __slots__ = ("_burst", "_clock", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)  # a new bucket starts full, as a quiet account's does
        self._updated = clock()

    @property
    def tokens(self) -> float:
        """Tokens available now (refilled up to this instant)."""
        self._refill()
        return self._tokens

    def try_acquire(self) -> bool:
        """Take one token if there is one; ``False`` means the request is throttled."""
        if self._rate <= 0:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def reconfigure(self, rate: float, burst: int) -> None:
        """Change the rate and size, keeping the tokens already earned (capped at the new size)."""
        self._refill()
        self._rate = rate
        self._burst = burst
        self._tokens = min(self._tokens, float(burst))

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)  # a clock never runs backwards here
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
        self._updated = now


class Throttle:
    """One ``TokenBucket`` per (operation, account, Region), created full on first use.

    ``limits`` maps an operation to its ``(rate, burst)``; operations not in it use ``default``.
    Thread-safe, so a test thread may reconfigure an emulator serving from another thread.
    """

    def __init__(
        self,
        limits: dict[str, tuple[float, int]],
        default: tuple[float, int],
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._limits = dict(limits)
        self._default = default
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, operation: str, account: str, region: str) -> bool:
        """Whether this call gets through (and spends a token), or is throttled."""
        with self._lock:
            key = (operation, account, region)
            bucket = self._buckets.get(key)
            if bucket is None:
                rate, burst = self._limit(operation)
                bucket = self._buckets[key] = TokenBucket(rate, burst, clock=self._clock)
            return bucket.try_acquire()

    def reconfigure(self, limits: dict[str, tuple[float, int]], default: tuple[float, int]) -> None:
        """Apply new limits to every bucket, keeping each bucket's earned tokens."""
        with self._lock:
            self._limits = dict(limits)
            self._default = default
            for (operation, _, _), bucket in self._buckets.items():
                bucket.reconfigure(*self._limit(operation))

    def reset(self) -> None:
        """Forget every bucket: the next call of each key finds a full one."""
        with self._lock:
            self._buckets.clear()

    def _limit(self, operation: str) -> tuple[float, int]:
        return self._limits.get(operation, self._default)
