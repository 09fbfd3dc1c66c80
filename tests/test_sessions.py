"""Lanes by role: each role assumed once, its lanes sharing it, refreshed before expiry.

The lanes' targets come from :class:`~bulk.engine.target.TargetPool`, whose sessions
(:mod:`bulk.engine.sessions`) assume roles through the emulator's STS; the emulator counts
every ``AssumeRole`` and keeps each account's sets apart, so the tests read both there.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiobotocore.endpoint import AioEndpoint

from bulk.emulator import Emulator
from bulk.engine.pipeline import EMULATOR_CREDENTIALS
from bulk.engine.sessions import STS_CONNECT_ATTEMPTS
from bulk.engine.target import CREATE, CallKind, ClientSettings, TargetPool
from bulk.errors import TargetError
from bulk.models import Lane

from .conftest import EmulatorFactory, unthrottled
from .torture import run_bulk

REGIONS = ("us-east-1", "eu-west-1")
LANE = Lane("sesv2", "us-east-1")


def role(account: int, name: str = "Deploy") -> str:
    return f"arn:aws:iam::{account:012d}:role/{name}"


def pool(emulator: Emulator, **options: Any) -> TargetPool:
    """Targets as ``--emulator`` makes them: dummy keys, roles assumed at the emulator."""
    settings = ClientSettings(
        endpoint_url=emulator.url,
        static_credentials=EMULATOR_CREDENTIALS,
        sts_endpoint_url=emulator.url,
    )
    return TargetPool(settings, **options)


class Clock:
    """The time of both ends, which a test moves: role credentials are judged by it (called),
    and the emulator issues and checks them by it (``epoch``)."""

    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()


class TestRoles:
    async def test_each_role_is_assumed_once_for_all_its_lanes(self, emulator: Emulator) -> None:
        roles = [role(100000000000 + i) for i in range(6)]
        lanes = [Lane("sesv2", region, None, arn) for arn in roles for region in REGIONS]

        async with pool(emulator) as targets:
            async with anyio.create_task_group() as tg:
                for lane in lanes * 3:  # every lane asked for three times, all at once
                    tg.start_soon(targets.get, lane)
            sts_clients = {
                where: len(clients._clients)
                for where, clients in targets._sessions._sts_clients.items()
            }

        assert emulator.state.stats()["assume_role"] == {arn: 1 for arn in roles}
        # Every role assumed with one STS client (its first lane's Region), not one per role.
        assert sts_clients == {(None, "us-east-1"): 1}

    async def test_each_lanes_sets_land_in_its_roles_account(self, emulator: Emulator) -> None:
        lanes = [Lane("sesv2", "us-east-1", None, role(222233334444 + i)) for i in range(2)]
        lanes += [Lane("sesv2", "eu-west-1", None, role(222233334444))]

        async with pool(emulator) as targets:
            for n, lane in enumerate(lanes):
                target = await targets.get(lane)
                result = await target.call(CREATE, {"ConfigurationSetName": f"set-{n}"})
                assert result.kind is CallKind.OK

        assert emulator.state.names(("222233334444", "us-east-1")) == ["set-0"]
        assert emulator.state.names(("222233334445", "us-east-1")) == ["set-1"]
        assert emulator.state.names(("222233334444", "eu-west-1")) == ["set-2"]

    async def test_lanes_of_many_roles_share_one_client_per_region(
        self, emulator: Emulator
    ) -> None:
        """Calls of six roles' lanes, all at once through the two Regions' clients: each set
        lands in its own role's account, never in another's."""
        roles = [role(300000000000 + i) for i in range(6)]
        lanes = [Lane("sesv2", region, None, arn) for arn in roles for region in REGIONS]

        async with pool(emulator) as targets:
            made = {lane: await targets.get(lane) for lane in lanes}
            clients = {id(target._client) for target in made.values()}

            async def create(lane: Lane, n: int) -> None:
                result = await made[lane].call(CREATE, {"ConfigurationSetName": f"set-{n}"})
                assert result.kind is CallKind.OK, result

            async with anyio.create_task_group() as tg:
                for n in range(4):
                    for lane in lanes:
                        tg.start_soon(create, lane, n)

        assert len(clients) == len(REGIONS)
        for arn in roles:
            account = arn.split(":")[4]
            for region in REGIONS:
                assert emulator.state.names((account, region)) == [f"set-{n}" for n in range(4)]

    async def test_a_shared_clients_call_outside_any_lane_is_not_signed(
        self, emulator: Emulator
    ) -> None:
        async with pool(emulator) as targets:
            target = await targets.get(Lane("sesv2", "us-east-1", None, role(400000000000)))
            with pytest.raises(RuntimeError, match="outside any lane"):
                await target._client.list_configuration_sets()

    async def test_a_role_that_cannot_be_assumed_names_lane_role_and_what_to_check(
        self, emulator_factory: EmulatorFactory
    ) -> None:
        denied = role(999988887777, "Locked")
        config = unthrottled(denied_roles=frozenset({denied}))
        async with emulator_factory(config) as emulator, pool(emulator) as targets:
            messages = []
            for region in REGIONS:
                with pytest.raises(TargetError) as raised:
                    await targets.get(Lane("sesv2", region, None, denied))
                messages.append(str(raised.value))
            good = await targets.get(Lane("sesv2", "us-east-1", None, role(111122223333)))

            assert good.lane.role_arn == role(111122223333)
            for region, message in zip(REGIONS, messages, strict=True):
                assert message.startswith(f"sesv2/{denied}/{region}: cannot assume role {denied}")
                assert "AccessDenied" in message and "trust policy" in message
            assert emulator.state.stats()["assume_role"][denied] == 1, "asked again"

    async def test_roles_assumed_at_once_are_paced_to_what_sts_takes(
        self, emulator_factory: EmulatorFactory
    ) -> None:
        """40 lanes' roles at once, against an STS that takes 20 a second with a burst of 5:
        paced run-wide, rather than each throttled role waiting out botocore's backoff."""
        config = unthrottled(operation_limits={"AssumeRole": (20.0, 5)})
        roles = [role(500000000000 + i) for i in range(40)]
        async with emulator_factory(config) as emulator:
            async with pool(emulator) as targets, anyio.create_task_group() as tg:
                for arn in roles:
                    tg.start_soon(targets.get, Lane("sesv2", "us-east-1", None, arn))
            stats = emulator.state.stats()

        assert set(stats["assume_role"]) == set(roles)
        throttled = sum(
            scope.get("throttled", {}).get("AssumeRole", 0) for scope in stats["by_scope"].values()
        )
        # Paced: 7-15 of them met STS's limit while the limiter found it; unpaced, about 50.
        assert throttled <= 25, f"{throttled} AssumeRole calls throttled"

    async def test_role_credentials_are_refreshed_before_they_expire(
        self, emulator: Emulator
    ) -> None:
        arn = role(333344445555)
        clock = Clock()
        emulator.runtime.wall_clock = clock.epoch
        async with pool(emulator, clock=clock) as targets:
            target = await targets.get(Lane("sesv2", "us-east-1", None, arn))
            first = await target.call(CREATE, {"ConfigurationSetName": "before"})
            # 50 minutes on: the hour's credentials are inside botocore's refresh window (15
            # minutes ahead), and the next call signs with new ones.
            clock.now += datetime.timedelta(minutes=50)
            second = await target.call(CREATE, {"ConfigurationSetName": "after"})
            # 40 more: past the first credentials' hour (the emulator would refuse them).
            clock.now += datetime.timedelta(minutes=40)
            third = await target.call(CREATE, {"ConfigurationSetName": "later"})

        assert (first.kind, second.kind, third.kind) == (CallKind.OK,) * 3
        assert emulator.state.stats()["assume_role"] == {arn: 2}, "refreshed once, not per call"
        assert emulator.state.names(("333344445555", "us-east-1")) == ["after", "before", "later"]

    @pytest.mark.parametrize("lane", [Lane("sesv2", "us-east-1", None, role(123)), LANE])
    async def test_an_unreachable_sts_is_tried_twice_not_waited_out(
        self, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, lane: Lane
    ) -> None:
        """Assuming a role, or learning a lane's account: botocore's standard retries would
        back off through ten attempts (about a minute) before the lane could stop."""
        backoffs: list[float] = []

        async def no_wait(self: Any, seconds: float) -> None:
            backoffs.append(seconds)

        monkeypatch.setattr(AioEndpoint, "_sleep", no_wait)
        settings = ClientSettings(
            endpoint_url=emulator.url,
            static_credentials=EMULATOR_CREDENTIALS,
            sts_endpoint_url="http://127.0.0.1:9",  # nothing listens there
        )
        async with TargetPool(settings) as targets:
            with pytest.raises(TargetError) as raised:
                target = await targets.get(lane)
                await target.account()

        assert "STS" in str(raised.value) and str(raised.value).startswith(f"{lane}: ")
        assert len(backoffs) == STS_CONNECT_ATTEMPTS - 1

    async def test_lanes_without_a_role_assume_nothing(self, emulator: Emulator) -> None:
        async with pool(emulator) as targets:
            for region in REGIONS:
                await targets.get(Lane("sesv2", region))

        assert emulator.state.stats()["assume_role"] == {}


class TestAsAUserSeesIt:
    def test_a_denied_role_is_one_line_per_lane_and_no_traceback(
        self,
        tmp_path: Path,
        threaded_emulator: Callable[..., AbstractContextManager[Emulator]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        denied, good = role(999988887777, "Locked"), role(111122223333)
        path = tmp_path / "t.csv"
        path.write_text(
            "ConfigurationSetName,RoleArn\n"
            + "".join(f"t-{i},{denied if i % 2 else good}\n" for i in range(6))
        )
        config = unthrottled(denied_roles=frozenset({denied}))
        with threaded_emulator(config) as emulator:
            monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emulator.url)
            result = run_bulk(
                "provision", path, "--endpoint-url", emulator.url, "--rate", "0", cwd=tmp_path
            )
            placed = emulator.state.names(("111122223333", "us-east-1"))

        assert result.returncode == 3, result.stderr
        assert "Traceback" not in result.stderr and "Refreshing" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("bulk: error:")]
        assert errors == [
            f"bulk: error: pinpoint-email/{denied}/us-east-1: cannot assume role {denied} "
            f"(AccessDenied: User: arn:aws:iam::123456789012:user/emulator is not authorized to "
            f"perform: sts:AssumeRole on resource: {denied}); check the role's trust policy and "
            "that the run's credentials may call sts:AssumeRole on it"
        ]
        assert placed == ["t-0", "t-2", "t-4"]
