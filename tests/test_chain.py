"""A row as a chain of steps (tenants → set → event destinations → associations), through the
whole engine on scripted targets: the calls made and their order, the ledger's records and
their ``steps``, the summary.

The validator does not fill ``Row.tenants`` and ``Row.destinations`` from the input yet:
:func:`chains` wraps it in each test to add them to the rows it names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bulk.engine.pipeline import Engine
from bulk.engine.progress import render_summary
from bulk.engine.target import CallKind
from bulk.input.validate import Validator
from bulk.ledger.reader import read_records
from bulk.models import InputRow, Lane, Outcome, Row

from .test_engine import write_csv
from .test_pipeline import (
    ACCOUNT,
    CODES,
    REGION,
    RecordedSleep,
    ScriptedTargets,
    latest,
    names_file,
    run,
)

LANE = Lane("sesv2", REGION)
SET = "CreateConfigurationSet"
TENANT = "CreateTenant"
DESTINATION = "CreateConfigurationSetEventDestination"
ASSOCIATION = "CreateTenantResourceAssociation"

Chains = dict[str, dict[str, Any]]


def destination(name: str, *events: str) -> dict[str, Any]:
    """An event destination as the validator gives it: the API's keyword arguments but the
    set's name."""
    return {
        "EventDestinationName": name,
        "EventDestination": {
            "Enabled": True,
            "MatchingEventTypes": list(events or ("BOUNCE",)),
            "SnsDestination": {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"},
        },
    }


@pytest.fixture
def chains(monkeypatch: pytest.MonkeyPatch) -> Chains:
    """Set name → ``{"tenants": (...), "destinations": (...)}`` for the rows a test names."""
    plan: Chains = {}
    validate = Validator.validate

    def with_chains(self: Validator, record: InputRow) -> Row | Outcome:
        item = validate(self, record)
        if isinstance(item, Row) and item.name in plan:
            steps = plan[item.name]
            item = replace(
                item,
                tenants=tuple(steps.get("tenants", ())),
                destinations=tuple(steps.get("destinations", ())),
            )
        return item

    monkeypatch.setattr(Validator, "validate", with_chains)
    return plan


def plan_rows(
    chains: Chains,
    names: Sequence[str],
    tenants: Sequence[str] = (),
    destinations: Sequence[Mapping[str, Any]] = (),
) -> None:
    for name in names:
        chains[name] = {"tenants": tuple(tenants), "destinations": tuple(destinations)}


async def run_v2(path: Path, targets: ScriptedTargets, **settings: Any) -> Any:
    """A run of the engine against SES v2 (tenants are SES v2's)."""
    return await run(path, targets, RecordedSleep(), service="sesv2", **settings)


def arn(name: str, account: str = ACCOUNT, region: str = REGION, partition: str = "aws") -> str:
    return f"arn:{partition}:ses:{region}:{account}:configuration-set/{name}"


class TestOrder:
    async def test_tenant_set_destinations_associations_in_order_with_their_requests(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 1)
        bounces, complaints = destination("bounces"), destination("complaints", "COMPLAINT")
        plan_rows(chains, ["t-0"], ["acme", "beta"], [bounces, complaints])
        targets = ScriptedTargets()

        summary = await run_v2(path, targets)

        log = targets.lanes[LANE].log
        assert log == [
            (TENANT, {"TenantName": "acme"}),
            (TENANT, {"TenantName": "beta"}),
            (SET, {"ConfigurationSetName": "t-0"}),
            (DESTINATION, {"ConfigurationSetName": "t-0", **bounces}),
            (DESTINATION, {"ConfigurationSetName": "t-0", **complaints}),
            (ASSOCIATION, {"TenantName": "acme", "ResourceArn": arn("t-0")}),
            (ASSOCIATION, {"TenantName": "beta", "ResourceArn": arn("t-0")}),
        ]
        record = latest(path)["t-0"]
        assert (record["status"], record["attempts"]) == ("created", 7)
        assert record["steps"] == {
            "tenants": {"acme": "created", "beta": "created"},
            "set": "created",
            "destinations": ["bounces", "complaints"],
            "associations": ["acme", "beta"],
        }
        assert "ambiguous" not in record
        assert summary.counts["created"] == 1 and summary.exit_code == 0
        assert summary.attempts == 8  # and the lane's listing of its live names

    @pytest.mark.parametrize(
        ("region", "partition"),
        [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
    )
    async def test_the_association_names_the_sets_arn_in_the_regions_partition(
        self, tmp_path: Path, chains: Chains, region: str, partition: str
    ) -> None:
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-0", "t-1"], ["acme"])
        targets = ScriptedTargets(account="444455556666")

        await run_v2(path, targets, region=region)

        target = targets.lanes[Lane("sesv2", region)]
        associations = [request for op, request in target.log if op == ASSOCIATION]
        assert [a["ResourceArn"] for a in associations] == [
            arn(name, "444455556666", region, partition) for name in ("t-0", "t-1")
        ]

    async def test_a_row_with_destinations_only_makes_no_tenant_call(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-1"], destinations=[destination("bounces")])
        targets = ScriptedTargets()

        await run_v2(path, targets)

        assert targets.keys == ["t-0", "t-1", "destination:t-1/bounces"]
        assert "steps" not in latest(path)["t-0"], "a lone set's record is as it was"
        assert latest(path)["t-1"]["steps"] == {"set": "created", "destinations": ["bounces"]}
        assert targets.lanes[LANE].account_asked == 0, "no tenant: no ARN to make"


class TestTenants:
    async def test_a_tenant_many_rows_share_is_created_once(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 5)
        plan_rows(chains, [f"t-{i}" for i in range(5)], ["acme"])
        targets = ScriptedTargets()

        summary = await run_v2(path, targets)

        keys = targets.keys
        assert keys.count("tenant:acme") == 1 and keys[0] == "tenant:acme"
        assert sorted(k for k in keys if k.startswith("association:")) == [
            f"association:t-{i}/acme" for i in range(5)
        ]
        records = latest(path)
        assert records["t-0"]["steps"]["tenants"] == {"acme": "created"}
        for i in range(1, 5):
            # Made by this run (by row t-0's call): every record says so.
            assert records[f"t-{i}"]["steps"]["tenants"] == {"acme": "created"}
        assert summary.counts["created"] == 5

    async def test_rows_that_need_a_tenant_being_created_wait_for_that_one_call(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 8)
        plan_rows(chains, [f"t-{i}" for i in range(8)], ["acme"])
        early: list[str] = []  # calls that went out while the tenant's was unanswered

        def note(name: str) -> None:
            if "tenant:acme" not in targets.lanes[LANE].answered and name != "tenant:acme":
                early.append(name)

        # The tenant's call is slow: the other rows start meanwhile, and must wait for it.
        targets = ScriptedTargets(slow={"tenant:acme": 50}, on_call=note)

        summary = await run_v2(path, targets, concurrency=8)

        keys = targets.keys
        assert keys.count("tenant:acme") == 1 and keys[0] == "tenant:acme"
        assert early == [], "no set before its tenant exists"
        assert Counter(k.partition(":")[0] for k in keys[1:]) == {f"t-{i}": 1 for i in range(8)} | {
            "association": 8
        }
        assert summary.counts["created"] == 8 and summary.exit_code == 0

    async def test_a_tenant_that_exists_is_fine_and_recorded_as_found(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-0", "t-1"], ["acme"])
        targets = ScriptedTargets({"tenant:acme": [CallKind.EXISTS]})

        summary = await run_v2(path, targets)

        records = latest(path)
        for name in ("t-0", "t-1"):
            assert records[name]["status"] == "created"
            assert records[name]["steps"]["tenants"] == {"acme": "exists"}
            assert records[name]["steps"]["associations"] == ["acme"]
        assert targets.keys.count("tenant:acme") == 1
        assert summary.counts["created"] == 2

    async def test_a_tenant_that_exists_after_a_lost_answer_is_ours(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 1)
        plan_rows(chains, ["t-0"], ["acme"])
        targets = ScriptedTargets({"tenant:acme": [CallKind.AMBIGUOUS, CallKind.EXISTS]})

        await run_v2(path, targets)

        record = latest(path)["t-0"]
        assert record["status"] == "created"
        assert record["steps"]["tenants"] == {"acme": "created"}

    async def test_a_tenant_refused_as_bad_is_asked_once_and_every_row_of_it_is_invalid(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 4)
        plan_rows(chains, ["t-0", "t-1", "t-2"], ["bad"])
        targets = ScriptedTargets({"tenant:bad": [CallKind.BAD_REQUEST]})

        summary = await run_v2(path, targets)

        assert targets.keys == ["tenant:bad", "t-3"], "no set for a row whose tenant failed"
        records = latest(path)
        for name in ("t-0", "t-1", "t-2"):
            record = records[name]
            assert (record["status"], record["code"]) == ("invalid", "BadRequestException")
            assert record["message"].startswith("tenant 'bad': BadRequestException: ")
            assert record["steps"] == {"tenants": {}, "failed_step": "tenant bad"}
            assert "ambiguous" not in record, "no set was made"
        assert (summary.counts["invalid"], summary.counts["created"]) == (3, 1)


class TestSetExists:
    async def test_a_set_that_existed_makes_the_row_exists_and_stops_its_chain(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-0", "t-1"], ["acme"], [destination("bounces")])
        targets = ScriptedTargets(existing={"t-0"})

        summary = await run_v2(path, targets)

        # Listed live before the lane's first row: no call at all for its row.
        assert targets.keys == [
            "tenant:acme",
            "t-1",
            "destination:t-1/bounces",
            "association:t-1/acme",
        ]
        assert targets.lanes[LANE].reads == ["list", "get:t-0"]  # the names, then its options
        record = latest(path)["t-0"]
        assert record["status"] == "exists" and record["listed"] is True
        assert record["steps"] == {"set": "exists"}
        assert (summary.counts["exists"], summary.counts["created"]) == (1, 1)
        assert summary.exit_code == 0

    async def test_a_set_made_after_the_listing_stops_its_chain_at_the_set(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        """A lane that could not list (or a set made by someone else since): the set's
        AlreadyExists makes the row exists, and its chain stops there."""
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-0", "t-1"], ["acme"], [destination("bounces")])
        targets = ScriptedTargets({"list": [CallKind.AUTH]}, existing={"t-0"})

        summary = await run_v2(path, targets)

        assert targets.keys == [
            "tenant:acme",
            "t-0",  # exists: nothing more for it, the set is not ours to change
            "t-1",
            "destination:t-1/bounces",
            "association:t-1/acme",
        ]
        record = latest(path)["t-0"]
        assert record["status"] == "exists" and "listed" not in record
        assert record["steps"] == {"tenants": {"acme": "created"}, "set": "exists"}
        assert summary.unlisted == {str(LANE): "AccessDeniedException: scripted auth"}
        assert summary.exit_code == 0


class TestStepFailures:
    @pytest.mark.parametrize(
        ("kind", "status"), [(CallKind.NOT_FOUND, "failed"), (CallKind.BAD_REQUEST, "invalid")]
    )
    @pytest.mark.parametrize(
        ("key", "step", "said"),
        [
            ("tenant:acme", "tenant acme", "tenant 'acme'"),
            ("t-0", "set", "configuration set 't-0'"),
            ("destination:t-0/bounces", "destination bounces", "event destination 'bounces'"),
            ("association:t-0/acme", "association acme", "association with tenant 'acme'"),
        ],
    )
    async def test_a_definite_error_at_a_step_ends_the_row_naming_the_step(
        self,
        tmp_path: Path,
        chains: Chains,
        kind: CallKind,
        status: str,
        key: str,
        step: str,
        said: str,
    ) -> None:
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-0"], ["acme"], [destination("bounces")])
        targets = ScriptedTargets({key: [kind]})

        summary = await run_v2(path, targets)

        keys = targets.keys
        assert keys.count(key) == 1, "a definite answer is not retried"
        chain = ["tenant:acme", "t-0", "destination:t-0/bounces", "association:t-0/acme"]
        assert keys == [*chain[: chain.index(key) + 1], "t-1"], "nothing after the failed step"
        record = latest(path)["t-0"]
        assert (record["status"], record["code"]) == (status, CODES[kind])
        assert record["message"] == f"{said}: {CODES[kind]}: scripted {kind.value}"
        assert record["steps"]["failed_step"] == step
        set_ours = step.startswith(("destination", "association"))
        assert record.get("ambiguous", False) is set_ours, "a resume must read the set as ours"
        assert ("set" in record["steps"]) is set_ours
        assert summary.counts[status] == 1 and summary.counts["created"] == 1
        assert summary.exit_code == 1

    async def test_retries_running_out_at_a_destination_fail_the_row_and_the_lane_goes_on(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-0"], destinations=[destination("bounces")])
        targets = ScriptedTargets({"destination:t-0/bounces": [CallKind.AMBIGUOUS]})

        summary = await run_v2(path, targets, max_attempts=3)

        record = latest(path)["t-0"]
        assert record["status"] == "failed" and record["ambiguous"] is True
        assert record["message"].startswith(
            "event destination 'bounces': InternalFailure: gave up after 3 attempts"
        )
        assert record["attempts"] == 4  # the set's one, the destination's three
        assert targets.keys.count("destination:t-0/bounces") == 3
        assert summary.counts["created"] == 1 and summary.pending == 0

    async def test_a_limit_at_a_destination_fails_the_row_without_stopping_the_lane(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        # LimitExceeded there is the set's own limit of destinations, not the lane's quota.
        path = names_file(tmp_path, 3)
        plan_rows(chains, ["t-0"], destinations=[destination("bounces")])
        targets = ScriptedTargets({"destination:t-0/bounces": [CallKind.QUOTA]})

        summary = await run_v2(path, targets)

        assert latest(path)["t-0"]["status"] == "failed"
        assert summary.quota_stops == ()
        assert targets.calls == ["t-0", "t-1", "t-2"]
        assert summary.counts["created"] == 2

    async def test_quota_at_the_set_stops_the_lane_as_for_a_lone_set(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 4)
        plan_rows(chains, ["t-1"], ["acme"])
        targets = ScriptedTargets({"t-1": [CallKind.QUOTA]})

        summary = await run_v2(path, targets)

        assert targets.keys == ["t-0", "tenant:acme", "t-1"]
        assert summary.quota_stops == (str(LANE),)
        assert (summary.counts["created"], summary.counts["failed"], summary.pending) == (1, 1, 2)


class TestThrottling:
    async def test_a_throttled_later_step_is_retried_through_its_own_limiter(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 3)
        plan_rows(chains, ["t-0", "t-1", "t-2"], destinations=[destination("bounces")])
        throttled = [CallKind.THROTTLED, CallKind.OK]
        targets = ScriptedTargets({"destination:t-1/bounces": throttled})

        summary = await run_v2(path, targets, rate=200, burst=1)

        assert targets.keys.count("destination:t-1/bounces") == 2
        assert latest(path)["t-1"]["status"] == "created"
        assert (summary.throttled, summary.retries) == (1, 1)
        # The 429 slowed the destinations' limiter only: the sets' kept their rate.
        ledger = Path(f"{path}.ledger.jsonl")
        rates = {
            r.get("operation", SET): r["rate"]
            for r in read_records(ledger)
            if r.get("kind") == "rate"
        }
        assert rates[SET] == 200
        assert rates[DESTINATION] < 200


class TestResume:
    async def test_a_row_failed_at_a_destination_resumes_there_without_a_second_set(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 2)
        plan_rows(chains, ["t-0"], ["acme"], [destination("bounces"), destination("opens")])
        service: set[str] = set()  # what the service holds, across both runs
        first = ScriptedTargets({"destination:t-0/opens": [CallKind.NOT_FOUND]}, existing=service)

        before = await run_v2(path, first)
        fixed = ScriptedTargets(existing=service)
        after = await run_v2(path, fixed)

        assert before.counts["failed"] == 1
        assert fixed.keys == [
            "tenant:acme",
            # no create of t-0: listed live, and this ledger's own set (failed, ambiguous)
            "destination:t-0/bounces",  # AlreadyExists: done already
            "destination:t-0/opens",
            "association:t-0/acme",
        ]
        assert first.calls.count("t-0") == 1 and "t-0" in service
        record = latest(path)["t-0"]
        assert record["status"] == "created"
        assert record["steps"]["set"] == "created"
        assert record["steps"]["destinations"] == ["bounces", "opens"]
        assert "earlier attempt" in record["message"] and record["listed"] is True
        assert after.counts == {"created": 2, "exists": 0, "invalid": 0, "failed": 0}
        assert after.exit_code == 0

    async def test_a_row_stopped_mid_chain_resumes_as_its_own(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 3)
        plan_rows(chains, ["t-0", "t-1", "t-2"], ["acme"], [destination("bounces")])
        service: set[str] = set()
        engine: list[Engine] = []

        def stop_at_t1_destination(name: str) -> None:
            if name == "destination:t-1/bounces":
                engine[0].control.stop(interrupted=True)  # the first Ctrl-C

        first = ScriptedTargets(existing=service, on_call=stop_at_t1_destination)
        stopped = await run(path, first, RecordedSleep(), engine=engine, service="sesv2")
        resumed = ScriptedTargets(existing=service)
        after = await run_v2(path, resumed)

        assert stopped.interrupted and stopped.pending == 1
        assert "association:t-1/acme" not in first.keys, "no call after the stop"
        assert resumed.keys == [
            "tenant:acme",
            # no create of t-1: listed live, and ours (its record is failed, ambiguous)
            "destination:t-1/bounces",
            "association:t-1/acme",
            "t-2",
            "destination:t-2/bounces",
            "association:t-2/acme",
        ]
        assert latest(path)["t-1"]["status"] == "created"
        assert after.counts["created"] == 3 and after.exit_code == 0

    async def test_a_row_killed_mid_chain_resumes_from_its_intent_as_its_own(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        """The process dies with a destination's call in flight: only the row's intent line
        is in the ledger, and the resume reads the row's set as made by it."""
        path = names_file(tmp_path, 1)
        plan_rows(chains, ["t-0"], ["acme"], [destination("bounces")])
        service: set[str] = set()

        def die_at_the_destination(name: str) -> None:
            if name == "destination:t-0/bounces":
                raise _Killed  # the call reached the service; its answer never came back

        with pytest.raises(BaseExceptionGroup):
            await run_v2(path, ScriptedTargets(existing=service, on_call=die_at_the_destination))
        ledger = Path(f"{path}.ledger.jsonl")
        assert [r.get("kind") for r in read_records(ledger) if r.get("name") == "t-0"] == ["intent"]
        resumed = ScriptedTargets(existing=service)
        summary = await run_v2(path, resumed)

        assert resumed.calls == [] and "t-0" in service  # listed live: no second create
        record = latest(path)["t-0"]
        assert record["status"] == "created", "its own set, not one that existed"
        # The tenant: made by the killed run, which recorded nothing of it; found by this
        # one. Rollback keeps a tenant it cannot prove is bulk's.
        assert record["steps"] == {
            "tenants": {"acme": "exists"},
            "set": "created",
            "destinations": ["bounces"],
            "associations": ["acme"],
        }
        assert summary.counts["created"] == 1 and summary.exit_code == 0


class _Killed(Exception):
    """The process dying, as far as the run can tell."""


class TestLaneStops:
    async def test_refused_at_an_association_stops_the_lane_and_records_the_row(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 4)
        plan_rows(chains, [f"t-{i}" for i in range(4)], ["acme"])
        targets = ScriptedTargets({"association:t-1/acme": [CallKind.AUTH]})

        summary = await run_v2(path, targets)

        assert summary.exit_code == 3
        assert "AccessDeniedException" in summary.stopped_lanes[str(LANE)]
        assert "t-2" not in targets.keys, "no call leaves the lane after it stopped"
        record = latest(path)["t-1"]
        assert (record["status"], record["code"]) == ("failed", "AccessDeniedException")
        assert record["ambiguous"] is True, "its set is ours: a resume carries on"
        assert record["steps"]["failed_step"] == "association acme"
        assert set(latest(path)) == {"t-0", "t-1"}
        assert summary.pending == 2

    async def test_refused_at_a_tenant_stops_the_lane_and_leaves_the_row_unsent(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        path = names_file(tmp_path, 3)
        plan_rows(chains, ["t-1"], ["acme"])
        targets = ScriptedTargets({"tenant:acme": [CallKind.AUTH]})

        summary = await run_v2(path, targets)

        assert summary.exit_code == 3
        assert targets.keys == ["t-0", "tenant:acme"]
        record = latest(path)["t-1"]
        assert (record["status"], record.get("ambiguous", False)) == ("failed", False)
        assert record["steps"] == {"tenants": {}, "failed_step": "tenant acme"}


class TestDryRun:
    async def test_a_dry_run_counts_the_steps_it_would_make(
        self, tmp_path: Path, chains: Chains
    ) -> None:
        rows = [{"ConfigurationSetName": f"t-{i}"} for i in range(5)]
        rows.append({"ConfigurationSetName": "t-5", "Region": "eu-west-1"})
        path = write_csv(tmp_path / "t.csv", rows)
        plan_rows(chains, ["t-0", "t-1"], ["acme"], [destination("bounces")])
        plan_rows(chains, ["t-2"], ["acme", "beta"], [destination("a"), destination("b")])
        plan_rows(chains, ["t-5"], ["acme"])  # another lane: its own tenant
        targets = ScriptedTargets()

        summary = await run_v2(path, targets, dry_run=True)

        assert targets.lanes == {}
        assert summary.would_send == 6
        assert summary.would_steps == {"tenants": 3, "destinations": 4, "associations": 5}
        text = render_summary(summary, command="bulk provision t.csv")
        assert (
            "beyond the sets: 3 tenants (each created if missing), 4 event destinations, "
            "5 tenant associations"
        ) in text

    async def test_a_dry_run_of_lone_sets_says_nothing_of_steps(self, tmp_path: Path) -> None:
        path = names_file(tmp_path, 3)
        summary = await run_v2(path, ScriptedTargets(), dry_run=True)
        assert summary.would_steps == {}
        assert "beyond the sets" not in render_summary(summary, command="bulk provision t.csv")
