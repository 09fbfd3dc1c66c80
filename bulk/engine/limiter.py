"""Adaptive rate limit of one lane: a token bucket whose rate follows the service's 429s.

Each lane has

- a token bucket, aiolimiter's ``AsyncLimiter``, holding at most ``burst`` tokens and refilled
  at the current rate (rate ``R`` with burst ``B`` is ``AsyncLimiter(B, B / R)``: aiolimiter's
  bucket holds ``max_rate`` tokens);
- a :class:`~bulk.engine.rate_control.RateController`, pure logic with time passed in, that
  decides the rate from the answers (the control law is described there).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from aiolimiter import AsyncLimiter

from bulk.engine.rate_control import RateController
from bulk.engine.wakeup import Wakeup

Clock = Callable[[], float]

#: Seconds a call waits for a call that holds a token to leave (see AdaptiveLimiter.acquire)
#: before taking it as gone.
DEPARTURE_LIMIT = 10.0
#: How fast the usual lead (token to departure) follows longer leads: it starts at 0, drops to
#: any shorter one at once, and rises by this share of the difference per call.
LEAD_RISE = 0.01


@dataclass(frozen=True)
class LimiterStats:
    """A snapshot of one lane's limiter, as anyio's ``statistics()`` records are."""

    rate: float | None  # current allowed rate (None = unlimited)
    max_rate: float | None
    burst: int
    acquired: int  # tokens handed out
    throttled: int  # 429s reported
    decreases: int  # congestion events acted on


@dataclass
class WireWatch:
    """Whether a run's lanes space their calls by when they leave (see
    :meth:`AdaptiveLimiter.on_wire`), shared by the run's limiters.

    Off at first: a service whose bucket allows a burst takes calls a little closer together
    in its stride, and spacing by departures would only cost throughput (a call's time from
    token to network varies by a millisecond or two, a tenth of the interval at 100/s). On
    once any lane meets a 429 its controller takes for jitter (a margin at its cap): the
    jitter is the client's own (its event loop, its calls held up for a slot), so every lane
    of the run has it.
    """

    active: bool = False


class AdaptiveLimiter:
    """The rate limit of one lane: an aiolimiter token bucket whose rate adapts to 429s.

    ``max_rate`` (requests/s) is the most the lane ever sends; ``None`` or ``0`` turns the
    client-side limit off (:meth:`acquire` returns at once; statistics still count). ``burst`` is
    the bucket's size. ``initial_rate`` (a rate learned by an earlier run) skips the startup
    search; ``adaptive=False`` keeps the rate fixed at ``max_rate``. With ``wire`` the caller
    reports, for every token, that its call left (:meth:`on_wire`) or never will
    (:meth:`not_sent`), and once the watch is active at most ``burst`` calls hold a token
    without having left: a call held up on its way (no free call slot, a busy event loop) is
    not followed by the next one at once. ``clock`` must tick like the
    event loop's clock (``time.monotonic``): the bucket itself runs on the loop's time.

    Every attempt, first or retry, calls :meth:`acquire` once, :meth:`on_wire` as it leaves
    (when the client can say), then reports its answer with :meth:`on_success` or
    :meth:`on_throttle`.
    """

    def __init__(
        self,
        max_rate: float | None,
        burst: int = 1,
        *,
        initial_rate: float | None = None,
        adaptive: bool = True,
        wire: WireWatch | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_rate is not None and max_rate <= 0:
            if max_rate < 0:
                raise ValueError(f"max_rate must not be negative, got {max_rate!r}")
            max_rate = None
        self._controller = RateController(
            max_rate, burst, initial_rate=initial_rate, adaptive=adaptive
        )
        self._clock = clock
        self._wire = wire
        # With a wire watch: when each call given a token and not yet left took it, oldest
        # first; and the lane's usual time from token to departure (see on_wire).
        self._unsent: deque[float] = deque()
        self._lead = 0.0
        self._departed = Wakeup()  # fired as each call with a token leaves, or never will
        self._acquired = 0
        self._queued = 0  # let through the window, waiting for a token
        self._answered = Wakeup()  # fired at each answer
        self._bucket: AsyncLimiter | None = None
        self._bucket_rate: float | None = None
        rate = self._controller.rate
        if rate is not None:
            self._bucket = AsyncLimiter(burst, burst / rate)
            self._bucket_rate = rate

    @property
    def rate(self) -> float | None:
        """The current allowed rate (requests/s); ``None`` when the limit is off."""
        return self._controller.rate

    @property
    def controller(self) -> RateController:
        """The controller deciding the rate (read it, do not feed it)."""
        return self._controller

    def statistics(self) -> LimiterStats:
        """A frozen snapshot of the lane's rate and counters."""
        controller = self._controller
        return LimiterStats(
            rate=controller.rate,
            max_rate=controller.max_rate,
            burst=controller.burst,
            acquired=self._acquired,
            throttled=controller.throttled,
            decreases=controller.decreases,
        )

    def try_acquire(self) -> bool:
        """Take a token if that needs no wait (no limit); False: call :meth:`acquire`."""
        if self._bucket is not None:
            return False
        self._acquired += 1
        self._controller.on_send(self._clock())
        return True

    async def acquire(self) -> None:
        """Wait until a call may go out at the current rate, and take its token."""
        controller = self._controller
        bucket = self._bucket
        if bucket is None:
            self.try_acquire()
            return
        await self._wait_for_window()
        self._queued += 1
        try:
            while True:
                if self._spaced_on_wire() and len(self._unsent) >= controller.burst:
                    # ``burst`` calls hold tokens and have not left: a token now would send
                    # a call right behind them. Once one leaves, its token counts from then
                    # (on_wire), and this call takes one after it.
                    await self._wait_for_departure()
                    continue
                controller.update(self._clock())
                self._sync_bucket()
                await bucket.acquire()
                if not self._spaced_on_wire() or len(self._unsent) < controller.burst:
                    break
                # Another call took the place while this one waited for the bucket: the
                # token goes back, and this call waits its turn as above.
                bucket._level = max(0.0, bucket._level - 1.0)
        finally:
            self._queued -= 1
        self._acquired += 1
        now = self._clock()
        if self._wire is not None:
            self._unsent.append(now)
        controller.on_send(now)

    def on_wire(self) -> None:
        """The call that took the last token is leaving now: its token counts from now.

        The bucket charges a token when it hands it out, but the call reaches the service
        later, by however long the event loop and the client took to send it, which varies
        from call to call (most under load: hundreds of lanes, their calls bunched behind one
        another). The service's bucket charges at arrival, so two calls handed out exactly
        ``1 / R`` apart can arrive closer together and meet an empty bucket: a 429 that says
        nothing about the limit. So the bucket holds at least the token of the call leaving
        now: the next call leaves ``1 / R`` after this one *left*, whatever delayed it. With a
        burst above one, a bucket in use holds more than that, and nothing changes.

        Every call takes some time from its token to the network (the client building and
        signing it: a millisecond or two, a tenth of the interval at 100/s), and the next
        call will take about as long: so the token counts from its departure less the
        lane's usual lead (see LEAD_RISE), and only a call held up beyond that
        pushes the next one back.
        """
        granted = self._depart()
        bucket = self._bucket
        if bucket is None or (self._wire is not None and not self._wire.active):
            return
        if granted is not None:
            lead, usual = self._clock() - granted, self._lead
            self._lead = lead if lead < usual else usual + (lead - usual) * LEAD_RISE
        bucket.has_capacity(0)  # drain the level up to now
        held = 1.0 - bucket._rate_per_sec * self._lead
        if bucket._level < held:
            bucket._level = held
            bucket._wake_next()  # a waiter asleep until the old level drained sleeps longer

    def not_sent(self) -> None:
        """The call that took the last token will not leave (stopped, failed before sending,
        or sent by a client that does not say when it leaves)."""
        self._depart()

    def _depart(self) -> float | None:
        """One call holding a token is gone: the time its token was taken (None: not known)."""
        granted = self._unsent.popleft() if self._unsent else None
        self._departed.fire()
        return granted

    async def _wait_for_departure(self) -> None:
        """Wait until a call that holds a token leaves; after DEPARTURE_LIMIT seconds, take
        the calls under way as gone (a call whose departure is never reported must not stall
        the lane)."""
        with anyio.move_on_after(DEPARTURE_LIMIT) as waited:
            await self._departed.event().wait()
        if waited.cancelled_caught:
            self._unsent.clear()

    def on_success(self) -> None:
        """The call that took the last token got an answer other than a 429."""
        self._controller.on_success(self._clock())
        self._answer()

    def on_throttle(self) -> None:
        """The call got a 429 ``TooManyRequestsException``.

        A 429 the controller takes for jitter (a call at the lane's steady rate that reached
        the service a few milliseconds before its bucket refilled) did not use the service's
        token, and the service's bucket is nearly full: the lane's next token comes
        :attr:`~bulk.engine.rate_control.RateController.retry_share` of an interval from now
        (and :attr:`quick_retry` tells the caller to skip its backoff). Waiting a
        whole interval instead would cost the lane a call's worth of time for every such 429:
        with hundreds of lanes on one event loop, a tenth of their calls.
        """
        controller = self._controller
        controller.on_throttle(self._clock())
        self._answer()
        share, bucket = controller.retry_share, self._bucket
        if share is not None and bucket is not None:
            bucket.has_capacity(0)  # drain the level up to now
            bucket._level = min(bucket._level, bucket.max_rate - 1.0 + share)
            bucket._wake_next()

    @property
    def quick_retry(self) -> bool:
        """Whether the last answer was a 429 whose retry the limiter paces alone (no backoff)."""
        return self._controller.retry_share is not None

    def _spaced_on_wire(self) -> bool:
        return self._wire is not None and self._wire.active

    async def _wait_for_window(self) -> None:
        """Wait while the startup window or a drain holds calls back."""
        while True:
            wait = self._controller.window_wait(self._clock(), self._queued)
            if wait <= 0:
                return
            with anyio.move_on_after(wait):
                await self._answered.event().wait()

    def _answer(self) -> None:
        wire = self._wire
        if wire is not None and not wire.active and self._controller.margin:
            wire.active = True  # jitter: from now on, every lane spaces on the wire
        self._sync_bucket()
        self._answered.fire()

    def _sync_bucket(self) -> None:
        """Make the bucket leak at the controller's rate from now on.

        Invariant: between two syncs the bucket leaks at ``_bucket_rate``, so over any stretch
        of time it hands out at most ``burst`` plus the integral of the rates it had. aiolimiter
        has no public way to change the rate of a live bucket: ``has_capacity()`` first drains
        the level at the old rate up to now, then ``_rate_per_sec`` (what ``_leak`` uses) and
        ``time_period`` take the new rate, and ``_wake_next`` re-times the sleeping waiter,
        which would otherwise wake at the old rate's time. The same instance stays in place, so
        calls already waiting keep their place in line. Both private names are those of
        aiolimiter 1.2 and 1.3, the versions pyproject allows; tests/test_dependencies.py fails
        loudly if a release changes them.
        """
        bucket, rate = self._bucket, self._controller.rate
        if bucket is None or rate is None or rate == self._bucket_rate:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # outside the loop (a plain-function test): the next acquire() syncs
        bucket.has_capacity(0)
        bucket.time_period = bucket.max_rate / rate
        bucket._rate_per_sec = rate
        self._bucket_rate = rate
        bucket._wake_next()
