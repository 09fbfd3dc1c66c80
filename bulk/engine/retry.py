"""When to try a row again: tenacity with full-jitter exponential backoff.

Only retryable outcomes (429, 5xx, timeouts, dropped or refused connections) are retried; a
definite answer (created, exists, bad request, quota) ends the row at once. Every attempt,
first or retry, passes the lane's rate limiter: that is the engine's job, not this module's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from bulk.engine.target import CallResult


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a row gets and how long to wait between them.

    Waits are drawn uniformly from ``[0, min(cap, base * 2**n)]`` ("full jitter"), which
    spreads retries of rows that failed together instead of sending them back in a wave.
    """

    max_attempts: int = 8
    base: float = 0.25
    cap: float = 20.0

    def retrying(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> AsyncRetrying:
        """A tenacity controller that retries retryable results and returns the last one.

        ``should_stop`` ends the retries early (an interrupted run stops retrying and leaves
        the row for the next run); ``sleep`` is injectable so tests control time.
        """

        def stop(state: RetryCallState) -> bool:
            return should_stop() or stop_after_attempt(self.max_attempts)(state)

        return AsyncRetrying(
            stop=stop,
            wait=wait_random_exponential(multiplier=self.base, max=self.cap),
            retry=retry_if_result(_is_retryable),
            retry_error_callback=_last_result,
            sleep=sleep,
            reraise=True,
        )

    async def run(
        self,
        attempt: Callable[[], Awaitable[CallResult]],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> CallResult:
        """Make ``attempt`` until a definite answer, the attempts run out, or a stop.

        Most rows are answered by their first attempt, so that one is made directly and
        tenacity steps in only after a retryable answer, replaying it as its own first
        attempt: the waits and the count of attempts are the same as if it had made it.
        """
        first = await attempt()
        if not first.kind.retryable:
            return first
        replay = [first]

        async def replay_then_attempt() -> CallResult:
            return replay.pop() if replay else await attempt()

        result: CallResult = await self.retrying(should_stop=should_stop, sleep=sleep)(
            replay_then_attempt
        )
        return result


def _is_retryable(result: CallResult) -> bool:
    return result.kind.retryable


def _last_result(state: RetryCallState) -> CallResult:
    """When attempts run out, hand back the last answer instead of raising RetryError."""
    assert state.outcome is not None
    result: CallResult = state.outcome.result()
    return result
