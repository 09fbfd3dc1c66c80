"""One TLS context for every client of the process (bulk.engine.http)."""

from __future__ import annotations

import inspect
from typing import Any

from aiobotocore.httpsession import AIOHTTPSession

from bulk.engine.http import SharedTLSSession
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
