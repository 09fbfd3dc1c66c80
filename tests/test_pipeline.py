"""The engine with a scripted target instead of the service: no HTTP, retry waits recorded.

Each test hands :class:`~bulk.engine.pipeline.Engine` a fake :class:`~bulk.engine.target.Targets`
(as an httpx client is handed a ``MockTransport``) whose answers are scripted per name and
attempt, and checks what a user sees: the ledger's records, the summary and its exit code, and
which calls went out. The same engine against the emulator, over HTTP: ``test_engine.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from bulk import Settings, Summary, TargetError, provision
from bulk.engine.pipeline import Engine
from bulk.engine.rate_control import MARGIN
from bulk.engine.target import CallKind, CallResult
from bulk.ledger.index import ResumeIndex
from bulk.ledger.reader import read_records
from bulk.models import Lane

from .test_engine import write_csv

REGION = "us-east-1"
LANE = Lane("pinpoint-email", REGION)

# The error code each kind of answer carries, as the service (or the transport) says it.
CODES = {
    CallKind.OK: None,
    CallKind.EXISTS: "AlreadyExistsException",
    CallKind.BAD_REQUEST: "BadRequestException",
    CallKind.NOT_FOUND: "NotFoundException",
    CallKind.QUOTA: "LimitExceededException",
    CallKind.THROTTLED: "TooManyRequestsException",
    CallKind.UNSENT: "ConnectTimeout",
    CallKind.AMBIGUOUS: "InternalFailure",
    CallKind.AUTH: "AccessDeniedException",
    CallKind.FOREIGN: "HTTP200",
}

Script = Mapping[str, Sequence[CallKind]]

# The account every scripted lane's credentials act in, unless a test says otherwise.
ACCOUNT = "111122223333"


def step_key(operation: str, request: Mapping[str, Any]) -> str:
    """How a script names a call: the set's name for ``CreateConfigurationSet`` (as every
    test of a lone set does), else ``tenant:NAME``, ``destination:SET/NAME`` or
    ``association:SET/TENANT``."""
    if operation == "CreateConfigurationSet":
        return str(request["ConfigurationSetName"])
    if operation == "CreateTenant":
        return f"tenant:{request['TenantName']}"
    if operation == "CreateConfigurationSetEventDestination":
        return f"destination:{request['ConfigurationSetName']}/{request['EventDestinationName']}"
    if operation == "CreateTenantResourceAssociation":
        set_name = str(request["ResourceArn"]).rpartition("/")[2]
        return f"association:{set_name}/{request['TenantName']}"
    raise AssertionError(f"the engine called {operation}")


class ScriptedTarget:
    """One lane's target answering each call as ``script`` says, attempt by attempt.

    Calls are named by :func:`step_key`. A name's last scripted answer repeats; a name not
    in the script is created (``OK``), unless it is in ``existing`` (a set of names shared
    by a test's runs, like the service's state): then it answers ``EXISTS``, and every
    ``OK`` adds its name there. ``on_call(name)`` runs as each call goes out (a test stops
    the run from there); a call named in ``slow`` lets the event loop run that many times
    before it answers, so that other rows move meanwhile. Reads (:meth:`_read`) answer
    from ``existing`` and ``options`` (a set's live options, by name).
    """

    def __init__(
        self,
        lane: Lane,
        script: Script,
        *,
        refuse: bool = False,
        on_call: Callable[[str], None] | None = None,
        existing: set[str] | None = None,
        slow: Mapping[str, int] | None = None,
        account: str = ACCOUNT,
        options: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.lane = lane
        self._script = script
        self._refuse = refuse
        self._on_call = on_call
        self._existing = existing
        self._slow = slow or {}
        self._account = account
        self.calls: list[str] = []  # the name of every create of a set, in the order they went out
        self.log: list[tuple[str, dict[str, Any]]] = []  # every call: (operation, request)
        self.keys: list[str] = []  # every call, by its step_key
        self.answered: list[str] = []  # every call answered, by its step_key
        self._tried: Counter[str] = Counter()
        self.preflights = 0
        self.account_asked = 0
        self.reads: list[str] = []  # every read (list, get:NAME), in order
        self._options: dict[str, dict[str, Any]] = dict(options or {})

    async def call(self, operation: str, request: Mapping[str, Any]) -> CallResult:
        if operation in ("ListConfigurationSets", "GetConfigurationSet"):
            return await self._read(operation, request)
        name = step_key(operation, request)
        if name in self._script:
            answers = self._script[name]
            kind = answers[min(self._tried[name], len(answers) - 1)]
        elif self._existing is not None and name in self._existing:
            kind = CallKind.EXISTS
        else:
            kind = CallKind.OK
        self._tried[name] += 1
        if kind is CallKind.OK and self._existing is not None:
            self._existing.add(name)
            if operation == "CreateConfigurationSet":
                self._options[name] = dict(request)
        if operation == "CreateConfigurationSet":
            self.calls.append(name)
        self.log.append((operation, dict(request)))
        self.keys.append(name)
        if self._on_call is not None:
            self._on_call(name)
        for _ in range(self._slow.get(name, 0)):
            await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()  # a call yields to the loop, as a real one does
        request_id = f"req-{len(self.log)}" if kind is not CallKind.UNSENT else None
        self.answered.append(name)
        return CallResult(kind, CODES[kind], f"scripted {kind.value}", request_id=request_id)

    async def _read(self, operation: str, request: Mapping[str, Any]) -> CallResult:
        """A read: ``list`` (every set of ``existing``, one page) or ``get:NAME`` (the set
        as its create asked, or as ``options`` holds it); scripted by those names too."""
        if operation == "ListConfigurationSets":
            name = "list"
            sets = sorted(n for n in self._existing or () if ":" not in n)
            data: dict[str, Any] = {"ConfigurationSets": sets}
        else:
            name = f"get:{request['ConfigurationSetName']}"
            data = self._options.get(request["ConfigurationSetName"], {})
        answers = self._script.get(name, (CallKind.OK,))
        kind = answers[min(self._tried[name], len(answers) - 1)]
        self._tried[name] += 1
        self.reads.append(name)
        await anyio.lowlevel.checkpoint()
        if kind is not CallKind.OK:
            return CallResult(kind, CODES[kind], f"scripted {kind.value}")
        return CallResult(kind, request_id=f"req-{name}", data=data)

    async def preflight(self) -> None:
        self.preflights += 1
        if self._refuse:
            raise TargetError(f"{self.lane}: the service refused the credentials (scripted)")

    async def account(self) -> str:
        """The lane's account, as STS would say it (the real target asks once and keeps it:
        ``test_target.py``)."""
        self.account_asked += 1
        return self._account


class ScriptedTargets:
    """The fake :class:`~bulk.engine.target.Targets`: one :class:`ScriptedTarget` per lane,
    proven by its pre-flight on first use, as :class:`~bulk.engine.target.TargetPool` does."""

    def __init__(
        self, script: Script | None = None, *, refused: Sequence[Lane] = (), **target: Any
    ) -> None:
        self._script = script or {}
        self._target = target
        self._refused = set(refused)  # lanes whose pre-flight fails, as bad credentials do
        self.lanes: dict[Lane, ScriptedTarget] = {}
        self.closed = False

    async def get(self, lane: Lane) -> ScriptedTarget:
        target = self.lanes.get(lane)
        if target is None:
            options = {**self._target, "refuse": lane in self._refused} if self._refused else {}
            target = ScriptedTarget(lane, self._script, **(options or self._target))
            await target.preflight()
            self.lanes[lane] = target
        return target

    async def aclose(self) -> None:
        self.closed = True

    @property
    def calls(self) -> list[str]:
        """Every create of a set, of every lane."""
        return [name for target in self.lanes.values() for name in target.calls]

    @property
    def keys(self) -> list[str]:
        """Every call of every lane, by its :func:`step_key`."""
        return [key for target in self.lanes.values() for key in target.keys]


class RecordedSleep:
    """The retry waits, recorded instead of slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def names_file(tmp_path: Path, count: int, **columns: str) -> Path:
    """``t-0`` .. ``t-{count-1}``, one per row, plus ``columns`` on every row."""
    rows = [{"ConfigurationSetName": f"t-{i}", **columns} for i in range(count)]
    return write_csv(tmp_path / "t.csv", rows)


def run_settings(**overrides: Any) -> Settings:
    """No client-side limit, one call at a time (answers in file order), a few attempts."""
    base: dict[str, Any] = {"region": REGION, "rate": 0, "concurrency": 1, "max_attempts": 4}
    return Settings(**{**base, **overrides})


async def run(
    path: Path,
    targets: ScriptedTargets,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    *,
    engine: list[Engine] | None = None,
    **settings: Any,
) -> Summary:
    """One run of the engine on ``targets``; ``engine`` receives it before it starts."""
    made = Engine(path, run_settings(**settings), targets=targets, retry_sleep=sleep)
    if engine is not None:
        engine.append(made)
    return await made.run()


def latest(path: Path) -> dict[str, dict[str, Any]]:
    """The latest ledger record of each name."""
    ledger = Path(f"{path}.ledger.jsonl")
    return {r["name"]: r for r in read_records(ledger) if "status" in r}


class TestAnswers:
    async def test_every_row_answered_ok_is_created_once(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 5)
        targets = ScriptedTargets()

        summary = await run(path, targets)

        assert summary.counts["created"] == 5 and summary.exit_code == 0
        assert sorted(targets.calls) == [f"t-{i}" for i in range(5)]
        records = latest(path)
        assert {r["status"] for r in records.values()} == {"created"}
        assert all(r["attempts"] == 1 and r["request_id"] for r in records.values())
        assert targets.lanes[LANE].preflights == 1
        assert targets.closed, "the engine closes its targets when the run ends"

    async def test_a_throttled_row_waits_and_is_created_by_its_retry(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 3)
        targets = ScriptedTargets({"t-1": [CallKind.THROTTLED, CallKind.OK]})
        sleep = RecordedSleep()

        summary = await run(path, targets, sleep)

        assert summary.counts["created"] == 3 and summary.exit_code == 0
        assert (summary.retries, summary.throttled) == (1, 1)
        assert latest(path)["t-1"]["attempts"] == 2
        assert len(sleep.waits) == 1 and 0 <= sleep.waits[0] <= 0.25

    async def test_a_429_at_the_lanes_cap_is_retried_without_a_backoff(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A lane held at its cap (the rate an earlier run learned, at --rate less a margin):
        # a 429 there is jitter, and its retry is paced by the limiter alone.
        monkeypatch.setattr(ResumeIndex, "learned_rate", lambda *_: 10.0 * (1 - MARGIN))
        path = names_file(tmp_path, 3)
        targets = ScriptedTargets({"t-1": [CallKind.THROTTLED, CallKind.OK]})
        sleep = RecordedSleep()

        summary = await run(path, targets, sleep, rate=10, burst=1)

        assert summary.counts["created"] == 3 and (summary.retries, summary.throttled) == (1, 1)
        assert sleep.waits == []

    async def test_exists_after_an_ambiguous_attempt_is_created(self, tmp_path: Path) -> None:
        # No idempotency token: the attempt whose answer was lost created it.
        path = names_file(tmp_path, 2)
        targets = ScriptedTargets({"t-0": [CallKind.AMBIGUOUS, CallKind.EXISTS]})

        summary = await run(path, targets, RecordedSleep())

        record = latest(path)["t-0"]
        assert record["status"] == "created"
        assert record["attempts"] == 2
        assert "earlier attempt" in record["message"]
        assert summary.counts == {"created": 2, "exists": 0, "invalid": 0, "failed": 0}

    async def test_exists_at_the_first_attempt_is_exists(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 2)
        summary = await run(path, ScriptedTargets({"t-1": [CallKind.EXISTS]}))
        assert latest(path)["t-1"]["status"] == "exists"
        assert summary.counts["exists"] == 1 and summary.exit_code == 0

    @pytest.mark.parametrize(
        ("kind", "status"),
        [(CallKind.BAD_REQUEST, "invalid"), (CallKind.NOT_FOUND, "failed")],
    )
    async def test_a_definite_error_is_recorded_without_a_retry(
        self, tmp_path: Path, kind: CallKind, status: str
    ) -> None:
        path = names_file(tmp_path, 3)
        targets = ScriptedTargets({"t-1": [kind]})
        sleep = RecordedSleep()

        summary = await run(path, targets, sleep)

        record = latest(path)["t-1"]
        assert (record["status"], record["code"], record["attempts"]) == (status, CODES[kind], 1)
        assert targets.calls.count("t-1") == 1 and sleep.waits == []
        assert summary.counts["created"] == 2 and summary.exit_code == 1

    async def test_retries_run_out_on_a_row_that_may_exist(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 2)
        targets = ScriptedTargets({"t-0": [CallKind.AMBIGUOUS]})
        sleep = RecordedSleep()

        summary = await run(path, targets, sleep, max_attempts=3)

        record = latest(path)["t-0"]
        assert record["status"] == "failed" and record["ambiguous"] is True
        assert record["message"].startswith("gave up after 3 attempts: ")
        assert targets.calls.count("t-0") == 3
        # Full jitter under an exponential cap: 0.25 s, then 0.5 s.
        assert len(sleep.waits) == 2
        assert 0 <= sleep.waits[0] <= 0.25 and 0 <= sleep.waits[1] <= 0.5
        assert summary.counts["failed"] == 1 and summary.exit_code == 1


class TestStops:
    async def test_quota_stops_the_lane_and_leaves_the_rest_pending(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 10)
        targets = ScriptedTargets({"t-3": [CallKind.QUOTA]})

        summary = await run(path, targets)

        assert targets.calls == ["t-0", "t-1", "t-2", "t-3"], "a create after the quota stop"
        assert (summary.counts["created"], summary.counts["failed"], summary.pending) == (3, 1, 6)
        assert summary.quota_stops == (str(LANE),)
        assert summary.exit_code == 1
        assert latest(path)["t-3"]["code"] == "LimitExceededException"

    async def test_a_quota_stop_in_one_lane_leaves_the_others_sending(self, tmp_path: Path) -> None:
        other = Lane("pinpoint-email", "eu-west-1")
        rows = [
            {"ConfigurationSetName": f"t-{i}", "Region": other.region if i % 2 else REGION}
            for i in range(10)
        ]
        path = write_csv(tmp_path / "t.csv", rows)
        targets = ScriptedTargets({"t-2": [CallKind.QUOTA]})

        summary = await run(path, targets)

        assert targets.lanes[LANE].calls == ["t-0", "t-2"]
        assert targets.lanes[other].calls == ["t-1", "t-3", "t-5", "t-7", "t-9"]
        assert {lane: t.preflights for lane, t in targets.lanes.items()} == {LANE: 1, other: 1}
        assert (summary.counts["created"], summary.counts["failed"], summary.pending) == (6, 1, 3)
        assert summary.quota_stops == (str(LANE),)

    async def test_refused_calls_stop_the_lane_with_exit_3_and_the_row_pending(
        self, tmp_path: Path
    ) -> None:
        path = names_file(tmp_path, 10)
        targets = ScriptedTargets({"t-2": [CallKind.AUTH]})

        summary = await run(path, targets)

        assert summary.exit_code == 3
        reason = summary.stopped_lanes[str(LANE)]
        assert "AccessDeniedException" in reason and "run the same command to resume" in reason
        assert targets.calls == ["t-0", "t-1", "t-2"]
        refused = latest(path)["t-2"]
        assert (refused["status"], refused["code"]) == ("failed", "AccessDeniedException")
        assert "ambiguous" not in refused, "refused: nothing was created"
        assert set(latest(path)) == {"t-0", "t-1", "t-2"}, "the rows after it left unrecorded"
        assert summary.pending == 7

    async def test_an_endpoint_that_never_answers_stops_its_lane_with_exit_3(
        self, tmp_path: Path
    ) -> None:
        path = names_file(tmp_path, 4)
        targets = ScriptedTargets({"t-0": [CallKind.UNSENT]})

        summary = await run(path, targets, RecordedSleep(), max_attempts=2)

        assert summary.exit_code == 3
        assert "endpoint unreachable after 2 attempts" in summary.stopped_lanes[str(LANE)]
        assert targets.calls == ["t-0", "t-0"]
        assert summary.pending == 3
        assert latest(path)["t-0"]["status"] == "failed", "its intent line is answered"

    async def test_a_refused_preflight_aborts_before_the_ledger_exists(
        self, tmp_path: Path
    ) -> None:
        path = names_file(tmp_path, 3)
        targets = ScriptedTargets(refuse=True)

        with pytest.raises(TargetError, match="refused the credentials"):
            await run(path, targets)

        assert targets.calls == []
        assert not Path(f"{path}.ledger.jsonl").exists()
        assert targets.closed

    async def test_a_lane_whose_credentials_fail_stops_alone(self, tmp_path: Path) -> None:
        bad, good = Lane("pinpoint-email", "eu-west-1"), Lane("pinpoint-email", "eu-central-1")
        rows = [
            {"ConfigurationSetName": f"t-{i}", "Region": [REGION, bad.region, good.region][i % 3]}
            for i in range(30)
        ]
        path = write_csv(tmp_path / "t.csv", rows)
        targets = ScriptedTargets(refused=[bad])

        summary = await run(path, targets, concurrency=4)

        assert summary.exit_code == 3
        assert list(summary.stopped_lanes) == [str(bad)]
        assert "refused the credentials" in summary.stopped_lanes[str(bad)]
        assert bad not in targets.lanes, "the lane was never opened: no call left it"
        assert sorted(targets.lanes[LANE].calls + targets.lanes[good].calls) == sorted(
            f"t-{i}" for i in range(30) if i % 3 != 1
        ), "every row of the other lanes was sent"
        assert {r["status"] for r in latest(path).values()} == {"created"}
        assert set(latest(path)) == {f"t-{i}" for i in range(30) if i % 3 != 1}
        assert (summary.counts["created"], summary.pending) == (20, 10)

    async def test_a_stopped_lane_is_sent_again_by_the_next_run(self, tmp_path: Path) -> None:
        bad = Lane("pinpoint-email", "eu-west-1")
        rows = [
            {"ConfigurationSetName": f"t-{i}", "Region": [REGION, bad.region][i % 2]}
            for i in range(10)
        ]
        path = write_csv(tmp_path / "t.csv", rows)

        first = await run(path, ScriptedTargets(refused=[bad]))
        fixed = ScriptedTargets()
        second = await run(path, fixed)

        assert (first.exit_code, first.pending) == (3, 5)
        assert sorted(fixed.calls) == sorted(f"t-{i}" for i in range(1, 10, 2))
        assert (second.exit_code, second.counts["created"], second.pending) == (0, 10, 0)

    async def test_a_stop_mid_run_finishes_the_call_sent_and_leaves_the_rest_pending(
        self, tmp_path: Path
    ) -> None:
        path = names_file(tmp_path, 10)
        engine: list[Engine] = []

        def interrupt_at_t3(name: str) -> None:
            if name == "t-3":
                engine[0].control.stop(interrupted=True)  # what the first Ctrl-C does

        targets = ScriptedTargets(on_call=interrupt_at_t3)

        summary = await run(path, targets, engine=engine)

        assert targets.calls == ["t-0", "t-1", "t-2", "t-3"]
        assert latest(path)["t-3"]["status"] == "created", "the call in flight was recorded"
        assert summary.interrupted and summary.exit_code == 130
        assert (summary.counts["created"], summary.pending) == (4, 6)

    @pytest.mark.parametrize(
        ("first", "ambiguous"), [(CallKind.THROTTLED, False), (CallKind.AMBIGUOUS, True)]
    )
    async def test_a_stop_during_a_retry_wait_sends_no_retry(
        self, tmp_path: Path, first: CallKind, ambiguous: bool
    ) -> None:
        """The wait is cut short, and the row is recorded ``failed``: ambiguous when its
        attempt may have created it, so the resume knows; else plainly, so that its intent
        line is not read as a call in flight."""
        path = names_file(tmp_path, 3)
        engine: list[Engine] = []
        targets = ScriptedTargets({"t-1": [first, CallKind.OK]})

        async def stop_then_wait(seconds: float) -> None:
            engine[0].control.stop(interrupted=True)
            await anyio.sleep_forever()  # cancelled by the stop

        with anyio.fail_after(5):
            summary = await run(path, targets, stop_then_wait, engine=engine)

        assert targets.calls == ["t-0", "t-1"]
        record = latest(path)["t-1"]
        assert record["status"] == "failed"
        assert record.get("ambiguous", False) is ambiguous
        assert summary.interrupted and summary.exit_code == 130


class TestTargetsParameter:
    async def test_a_dry_run_sends_nothing_through_the_targets(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 4)
        targets = ScriptedTargets()
        summary = await run(path, targets, dry_run=True)
        assert targets.lanes == {} and summary.would_send == 4
        assert targets.closed

    async def test_provision_hands_the_targets_to_the_engine(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 3)
        targets = ScriptedTargets({"t-2": [CallKind.EXISTS]})
        summary = await provision(path, run_settings(), targets=targets)
        assert Counter(targets.calls) == {"t-0": 1, "t-1": 1, "t-2": 1}
        assert (summary.counts["created"], summary.counts["exists"]) == (2, 1)
