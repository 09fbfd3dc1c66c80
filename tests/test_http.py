"""The HTTP side of every client (bulk.engine.http): one TLS context for the process, and
the moment each call leaves."""

from __future__ import annotations

import inspect
from typing import Any

from aiobotocore.httpsession import AIOHTTPSession

from bulk.emulator import Emulator
from bulk.engine.http import LEAVING, SharedTLSSession
from bulk.engine.pipeline import EMULATOR_CREDENTIALS
from bulk.engine.target import ClientSettings, TargetPool
from bulk.models import Lane


def tls_context(target: Any) -> Any:
    """The TLS context the target's client would open its connections with."""
    session = target._client._endpoint.http_session
    assert isinstance(session, SharedTLSSession)
    return session._build_ssl_contexts(None)[0]


async def test_every_lanes_client_shares_one_tls_context() -> None:
    settings = ClientSettings(
        endpoint_url="https://127.0.0.1:9", static_credentials=EMULATOR_CREDENTIALS
    )
    lanes = [Lane("sesv2", region) for region in ("us-east-1", "eu-west-1", "ap-south-1")]
    async with TargetPool(settings) as targets:
        contexts = [tls_context(await targets._open(lane)) for lane in lanes]
    assert contexts[0] is contexts[1] is contexts[2]
    assert contexts[0].verify_mode.name == "CERT_REQUIRED", "verification kept"


def test_aiobotocore_builds_its_connectors_context_where_the_session_shares_it() -> None:
    """The override is of a private method: a release that renames it would make every
    client build its own context again (some 40 ms of CPU and a megabyte each)."""
    source = inspect.getsource(AIOHTTPSession._create_connector)
    assert "self._build_ssl_contexts(" in source


async def test_each_call_says_when_it_leaves_to_the_task_that_made_it(
    emulator: Emulator,
) -> None:
    settings = ClientSettings(endpoint_url=emulator.url, static_credentials=EMULATOR_CREDENTIALS)
    left: list[str] = []
    async with TargetPool(settings) as targets:
        target = await targets.get(Lane("sesv2", "us-east-1"))  # its pre-flight: nobody told
        assert left == []
        LEAVING.set(lambda: left.append("left"))
        for n in range(3):
            await target.call("CreateConfigurationSet", {"ConfigurationSetName": f"s-{n}"})
    assert left == ["left"] * 3
