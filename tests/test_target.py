"""How each answer of the service is classified: the engine's decisions rest on it."""

from __future__ import annotations

import importlib.metadata
from contextlib import AsyncExitStack

import aiohttp
import pytest
from aiohttp import web
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bulk.models import Lane
from bulk.target import CallKind, ClientSettings, TargetPool, classify_exception


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-1"},
    }
    return ClientError(response, "CreateConfigurationSet")  # type: ignore[arg-type]


class TestServiceErrors:
    @pytest.mark.parametrize(
        ("code", "status", "kind"),
        [
            ("AlreadyExistsException", 400, CallKind.EXISTS),
            ("BadRequestException", 400, CallKind.BAD_REQUEST),
            ("NotFoundException", 404, CallKind.NOT_FOUND),
            # botocore lists it as throttling; for this API it is the quota of sets.
            ("LimitExceededException", 400, CallKind.QUOTA),
            ("TooManyRequestsException", 429, CallKind.THROTTLED),
            ("ConcurrentModificationException", 500, CallKind.AMBIGUOUS),
            ("InternalFailure", 500, CallKind.AMBIGUOUS),
            ("ServiceUnavailable", 503, CallKind.AMBIGUOUS),
            ("AccessDeniedException", 403, CallKind.AUTH),
            ("UnrecognizedClientException", 403, CallKind.AUTH),
            ("ExpiredTokenException", 400, CallKind.AUTH),
        ],
    )
    def test_codes(self, code: str, status: int, kind: CallKind) -> None:
        result = classify_exception(client_error(code, status, "why"))
        assert result is not None
        assert result.kind is kind
        assert result.code == code
        assert result.message == "why"
        assert result.request_id == "req-1"

    def test_only_transient_kinds_are_retried(self) -> None:
        retryable = {kind for kind in CallKind if kind.retryable}
        assert retryable == {CallKind.THROTTLED, CallKind.UNSENT, CallKind.AMBIGUOUS}


class TestTransportErrors:
    def test_refused_connection_was_never_sent(self) -> None:
        refused = aiohttp.ClientConnectorError(
            aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None),
            OSError(111, "Connection refused"),
        )
        result = classify_exception(EndpointConnectionError(endpoint_url="u", error=refused))
        assert result is not None and result.kind is CallKind.UNSENT

    def test_connect_timeout_was_never_sent(self) -> None:
        result = classify_exception(ConnectTimeoutError(endpoint_url="u", error="x"))
        assert result is not None and result.kind is CallKind.UNSENT

    @pytest.mark.parametrize(
        "error",
        [
            ReadTimeoutError(endpoint_url="u", error="x"),
            ConnectionClosedError(endpoint_url="u", error="x"),
            EndpointConnectionError(endpoint_url="u", error=aiohttp.ClientOSError(104, "reset")),
        ],
    )
    def test_failures_after_sending_are_ambiguous(self, error: Exception) -> None:
        result = classify_exception(error)
        assert result is not None and result.kind is CallKind.AMBIGUOUS

    def test_unknown_exceptions_are_not_swallowed(self) -> None:
        assert classify_exception(ValueError("bug")) is None


class TestClient:
    @pytest.mark.parametrize("app_id", [None, "migration day#7"])
    async def test_every_call_names_the_tool_in_its_user_agent(
        self, app_id: str | None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The pre-flight and each create carry ``bulk/<version>``, as CloudTrail will show,
        and the operator's application id when one is configured, as botocore writes it."""
        if app_id is not None:
            monkeypatch.setenv("AWS_SDK_UA_APP_ID", app_id)
        seen: list[str] = []

        async def answer(request: web.Request) -> web.Response:
            seen.append(request.headers.get("User-Agent", ""))
            return web.json_response({})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with AsyncExitStack() as stack:
                pool = TargetPool(ClientSettings(endpoint_url=f"http://127.0.0.1:{port}"), stack)
                target = await pool.get(Lane("sesv2", "us-east-1", None))
                result = await target.create({"ConfigurationSetName": "tenant-1"})
        finally:
            await runner.cleanup()
        assert result.kind is CallKind.OK
        assert len(seen) == 2  # the pre-flight and the create
        version = importlib.metadata.version("bulk")
        for agent in seen:
            assert agent.startswith(f"bulk/{version} aiobotocore/"), agent
            assert ("app/migration-day#7" in agent) is (app_id is not None), agent
