"""The retry policy: which answers are retried, how often, and how long it waits."""

from __future__ import annotations

from bulk.engine.retry import RetryPolicy
from bulk.engine.target import CallKind, CallResult


class FakeSleep:
    """Records the waits instead of sleeping: tests control time."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def answers(*kinds: CallKind) -> tuple[list[CallKind], object]:
    sent: list[CallKind] = []
    queue = list(kinds)

    async def attempt() -> CallResult:
        kind = queue.pop(0)
        sent.append(kind)
        return CallResult(kind, code=kind.value)

    return sent, attempt


class TestRetryPolicy:
    async def test_retries_transient_answers_until_success(self) -> None:
        sleep = FakeSleep()
        sent, attempt = answers(CallKind.THROTTLED, CallKind.AMBIGUOUS, CallKind.OK)
        result = await RetryPolicy(max_attempts=5).run(attempt, sleep=sleep)
        assert result.kind is CallKind.OK
        assert len(sent) == 3
        assert len(sleep.waits) == 2

    async def test_definite_answers_are_not_retried(self) -> None:
        for kind in (CallKind.EXISTS, CallKind.BAD_REQUEST, CallKind.QUOTA, CallKind.AUTH):
            sleep = FakeSleep()
            sent, attempt = answers(kind, CallKind.OK)
            result = await RetryPolicy().run(attempt, sleep=sleep)
            assert result.kind is kind
            assert sent == [kind]
            assert sleep.waits == []

    async def test_gives_back_the_last_answer_when_attempts_run_out(self) -> None:
        sleep = FakeSleep()
        sent, attempt = answers(*[CallKind.THROTTLED] * 3, CallKind.OK)
        result = await RetryPolicy(max_attempts=3).run(attempt, sleep=sleep)
        assert result.kind is CallKind.THROTTLED
        assert len(sent) == 3

    async def test_full_jitter_waits_stay_under_the_exponential_cap(self) -> None:
        sleep = FakeSleep()
        policy = RetryPolicy(max_attempts=7, base=0.5, cap=4.0)
        _, attempt = answers(*[CallKind.AMBIGUOUS] * 7)
        await policy.run(attempt, sleep=sleep)
        assert len(sleep.waits) == 6
        for n, wait in enumerate(sleep.waits):
            assert 0 <= wait <= min(4.0, 0.5 * 2**n)

    async def test_a_stop_ends_retries_early(self) -> None:
        sleep = FakeSleep()
        sent, attempt = answers(*[CallKind.THROTTLED] * 5)
        result = await RetryPolicy(max_attempts=5).run(
            attempt, should_stop=lambda: True, sleep=sleep
        )
        assert result.kind is CallKind.THROTTLED
        assert len(sent) == 1

    async def test_a_single_attempt_policy_never_retries(self) -> None:
        sleep = FakeSleep()
        sent, attempt = answers(CallKind.THROTTLED, CallKind.OK)
        result = await RetryPolicy(max_attempts=1).run(attempt, sleep=sleep)
        assert result.kind is CallKind.THROTTLED
        assert len(sent) == 1
        assert sleep.waits == []
