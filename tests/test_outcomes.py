"""What a row's last answer makes of it: the ledger status, and a stop of its lane or the run."""

from __future__ import annotations

import pytest

from bulk.engine.outcomes import Verdict, judge
from bulk.engine.target import CallKind, CallResult
from bulk.models import Lane, Outcome, Row, Status

ROW = Row(
    number=7,
    name="acme",
    lane=Lane("sesv2", "eu-west-1", "prod"),
    request={"ConfigurationSetName": "acme"},
    digest="d1",
    fingerprint=42,
)


def judged(
    kind: CallKind,
    code: str | None = "Code",
    message: str = "why",
    *,
    attempts: int = 1,
    ambiguous: bool = False,
    stopping: bool = False,
) -> Verdict:
    """The verdict on ``ROW`` after an answer of ``kind``."""
    result = CallResult(kind, code, message, request_id="req-1", latency_ms=12.345)
    return judge(ROW, result, attempts=attempts, ambiguous=ambiguous, stopping=stopping)


class TestJudge:
    @pytest.mark.parametrize(
        ("kind", "ambiguous", "status"),
        [
            (CallKind.OK, False, Status.CREATED),
            (CallKind.EXISTS, False, Status.EXISTS),
            # No idempotency token: after an ambiguous attempt, the name is ours.
            (CallKind.EXISTS, True, Status.CREATED),
            (CallKind.BAD_REQUEST, False, Status.INVALID),
            (CallKind.NOT_FOUND, False, Status.FAILED),
            (CallKind.QUOTA, False, Status.FAILED),
            (CallKind.THROTTLED, False, Status.FAILED),
            (CallKind.AMBIGUOUS, True, Status.FAILED),
            (CallKind.FOREIGN, True, Status.FAILED),
        ],
    )
    def test_status_of_each_answer(self, kind: CallKind, ambiguous: bool, status: Status) -> None:
        verdict = judged(kind, attempts=2, ambiguous=ambiguous)
        assert verdict.outcome is not None
        assert verdict.outcome.status is status
        assert verdict.quota is (kind is CallKind.QUOTA)
        assert verdict.abort is None

    def test_the_record_carries_the_row_and_the_answer(self) -> None:
        assert judged(CallKind.OK, None, "").outcome == Outcome(
            row=7,
            name="acme",
            status=Status.CREATED,
            lane=ROW.lane,
            digest="d1",
            code=None,
            message="",
            attempts=1,
            latency_ms=12.35,
            request_id="req-1",
            extra={},
            fingerprint=42,
        )

    def test_exists_after_an_ambiguous_attempt_says_so(self) -> None:
        ours = judged(CallKind.EXISTS, attempts=2, ambiguous=True).outcome
        assert ours is not None
        assert ours.message == "created by an earlier attempt whose answer was lost"
        theirs = judged(CallKind.EXISTS).outcome
        assert theirs is not None and theirs.message == ""

    def test_retries_run_out_failed_and_ambiguous_when_it_may_exist(self) -> None:
        maybe = judged(CallKind.AMBIGUOUS, "InternalFailure", "oops", attempts=8, ambiguous=True)
        assert maybe.outcome is not None
        assert maybe.outcome.message == "gave up after 8 attempts: oops"
        assert maybe.outcome.extra == {"ambiguous": True}
        throttled = judged(CallKind.THROTTLED, message="", attempts=8)
        assert throttled.outcome is not None
        assert throttled.outcome.message == "gave up after 8 attempts"
        assert throttled.outcome.extra == {}

    def test_a_stopping_run_leaves_a_row_nothing_created_pending(self) -> None:
        pending = judged(CallKind.THROTTLED, stopping=True)
        assert pending.outcome is None and pending.abort is None
        recorded = judged(CallKind.AMBIGUOUS, ambiguous=True, stopping=True)
        assert recorded.outcome is not None and recorded.outcome.status is Status.FAILED

    def test_refused_call_aborts_and_the_row_stays_pending(self) -> None:
        verdict = judged(CallKind.AUTH, "AccessDeniedException", "no")
        assert verdict.outcome is None
        assert verdict.abort is not None and verdict.abort.exit_code == 3
        assert str(verdict.abort).startswith("sesv2/prod/eu-west-1: the service refused the call")
        assert "AccessDeniedException: no" in str(verdict.abort)

    def test_refused_call_after_an_ambiguous_attempt_is_recorded_too(self) -> None:
        verdict = judged(CallKind.AUTH, attempts=2, ambiguous=True)
        assert verdict.abort is not None
        assert verdict.outcome is not None and verdict.outcome.status is Status.FAILED
        assert verdict.outcome.extra == {"ambiguous": True}

    def test_an_endpoint_that_never_took_a_request_aborts(self) -> None:
        verdict = judged(CallKind.UNSENT, "ConnectTimeout", attempts=8)
        assert verdict.outcome is None
        assert verdict.abort is not None
        assert "endpoint unreachable after 8 attempts (ConnectTimeout)" in str(verdict.abort)
        # Once an attempt may have gone through, the row is recorded instead.
        maybe = judged(CallKind.UNSENT, attempts=8, ambiguous=True)
        assert maybe.abort is None and maybe.outcome is not None
