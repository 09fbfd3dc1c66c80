"""How each answer of the service is classified: the engine's decisions rest on it."""

from __future__ import annotations

import importlib.metadata
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bulk.engine.target import CREATE, CallKind, ClientSettings, TargetPool, classify_exception
from bulk.errors import TargetError
from bulk.models import Lane

from .torture import cli, latest_by_row, one_line_error


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {
            "HTTPStatusCode": status,
            "RequestId": "req-1",
            "HTTPHeaders": {"content-type": "application/json", "x-amzn-requestid": "req-1"},
        },
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
        assert retryable == {
            CallKind.THROTTLED,
            CallKind.UNSENT,
            CallKind.AMBIGUOUS,
            CallKind.FOREIGN,
        }

    @pytest.mark.parametrize(
        ("status", "headers"),
        [
            (403, {"content-type": "text/html"}),  # a proxy's "forbidden" page
            (400, {"content-type": "text/html", "x-amzn-requestid": "r"}),
            (500, {"content-type": "application/json"}),  # no request id
        ],
    )
    def test_an_error_that_is_not_the_services_is_foreign(
        self, status: int, headers: dict[str, str]
    ) -> None:
        response = {
            "Error": {"Code": str(status), "Message": "<html>Forbidden</html>"},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": headers.get("x-amzn-requestid"),
                "HTTPHeaders": headers,
            },
        }
        result = classify_exception(ClientError(response, "CreateConfigurationSet"))  # type: ignore[arg-type]
        assert result is not None and result.kind is CallKind.FOREIGN
        assert f"HTTP {status}" in result.message
        assert "<html>" not in result.message

    def test_a_429_slows_down_whoever_sends_it(self) -> None:
        response = {
            "Error": {"Code": "429", "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": 429, "HTTPHeaders": {}},
        }
        result = classify_exception(ClientError(response, "CreateConfigurationSet"))  # type: ignore[arg-type]
        assert result is not None and result.kind is CallKind.THROTTLED


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
            return web.json_response({}, headers={"x-amzn-RequestId": "req-1"})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with TargetPool(ClientSettings(endpoint_url=f"http://127.0.0.1:{port}")) as pool:
                target = await pool.get(Lane("sesv2", "us-east-1", None))
                result = await target.call(CREATE, {"ConfigurationSetName": "tenant-1"})
        finally:
            await runner.cleanup()
        assert result.kind is CallKind.OK
        assert len(seen) == 2  # the pre-flight and the create
        version = importlib.metadata.version("bulk")
        for agent in seen:
            assert agent.startswith(f"bulk/{version} aiobotocore/"), agent
            assert ("app/migration-day#7" in agent) is (app_id is not None), agent


class FakeEndpoint:
    """A plain HTTP server on 127.0.0.1 answering every request as ``answer`` says.

    ``answer(method, path)`` returns (status, content type, body, with a request id).
    Requests seen are counted by method.
    """

    def __init__(self, answer: Callable[[str, str], tuple[int, str, bytes, bool]]) -> None:
        self.answer = answer
        self.calls: Counter[str] = Counter()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                endpoint.calls[self.command] += 1
                status, content_type, body, request_id = endpoint.answer(self.command, self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if request_id:
                    self.send_header("x-amzn-RequestId", "req-fake")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _reply

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


HTML = b"<html><body>Welcome to the portal</body></html>"
LIST_OK = (200, "application/json", b'{"ConfigurationSets":[]}', True)


def provision_against(url: str, tmp_path: Path, *more: str) -> Any:
    path = tmp_path / "plain.csv"
    path.write_text("ConfigurationSetName\nacme\nglobex\n")
    return cli("provision", path, "--endpoint-url", url, "--rate", "0", *more)


class TestNotTheServicesAnswer:
    """An answer that is not the service's is never a success (no request id, not JSON)."""

    def test_a_200_html_endpoint_fails_the_preflight_naming_it(self, tmp_path: Path) -> None:
        with FakeEndpoint(lambda m, p: (200, "text/html", HTML, False)) as fake:
            result = provision_against(fake.url, tmp_path)
        assert result.exit_code == 3
        line = one_line_error(result.stderr)
        assert fake.url in line and "HTTP 200 (text/html)" in line
        assert "not the service" in line
        assert fake.calls["POST"] == 0, "a create was sent"
        assert not (tmp_path / "plain.csv.ledger.jsonl").exists()

    def test_a_proxys_403_page_names_the_endpoint_and_status_not_credentials(
        self, tmp_path: Path
    ) -> None:
        with FakeEndpoint(lambda m, p: (403, "text/html", HTML, False)) as fake:
            result = provision_against(fake.url, tmp_path)
        assert result.exit_code == 3
        line = one_line_error(result.stderr)
        assert fake.url in line and "HTTP 403" in line
        assert "sso" not in line and "<html>" not in line and "portal" not in line

    def test_creates_answered_200_html_are_retried_and_never_settle(self, tmp_path: Path) -> None:
        def answer(method: str, path: str) -> tuple[int, str, bytes, bool]:
            return LIST_OK if method == "GET" else (200, "text/html", HTML, False)

        with FakeEndpoint(answer) as fake:
            result = provision_against(fake.url, tmp_path, "--max-attempts", "2")
            again = provision_against(fake.url, tmp_path, "--max-attempts", "2")
        assert result.exit_code == 1 and again.exit_code == 1
        assert fake.calls["POST"] == 8, "each run tries each row twice"
        records = latest_by_row(tmp_path / "plain.csv.ledger.jsonl")
        assert {r["status"] for r in records.values()} == {"failed"}
        assert all(r["ambiguous"] for r in records.values())
        assert "not the service" in records[1]["message"]

    def test_a_json_200_without_a_request_id_is_not_a_success(self, tmp_path: Path) -> None:
        def answer(method: str, path: str) -> tuple[int, str, bytes, bool]:
            return LIST_OK if method == "GET" else (200, "application/json", b"{}", False)

        with FakeEndpoint(answer) as fake:
            result = provision_against(fake.url, tmp_path, "--max-attempts", "1")
        assert result.exit_code == 1
        records = latest_by_row(tmp_path / "plain.csv.ledger.jsonl")
        assert {r["status"] for r in records.values()} == {"failed"}

    def test_https_to_a_plain_http_server_is_systemic_and_says_use_http(
        self, tmp_path: Path
    ) -> None:
        with FakeEndpoint(lambda m, p: LIST_OK) as fake:
            result = provision_against(fake.url.replace("http://", "https://"), tmp_path)
        assert result.exit_code == 3
        line = one_line_error(result.stderr)
        assert "TLS" in line and "http://" in line
        assert fake.calls["POST"] == 0


class TestAccount:
    """The account id a lane's ARNs name: STS ``GetCallerIdentity`` with the lane's own
    credentials, asked once per lane however many rows need it at once."""

    @staticmethod
    def settings(emulator: Any) -> ClientSettings:
        return ClientSettings(
            endpoint_url=emulator.url,
            static_credentials=("AKIDBULKEMULATOR", "secret"),
            sts_endpoint_url=emulator.url,
        )

    async def test_the_account_is_asked_of_sts_once_per_lane(self, emulator: Any) -> None:
        lane = Lane("sesv2", "us-east-1")
        accounts: list[str] = []
        async with TargetPool(self.settings(emulator)) as pool:
            target = await pool.get(lane)

            async def ask() -> None:
                accounts.append(await target.account())

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(ask)
            accounts.append(await target.account())

        assert accounts == ["123456789012"] * 6  # the emulator's account for plain keys
        scopes = emulator.stats()["by_scope"]
        calls = sum(scope["calls"].get("GetCallerIdentity", 0) for scope in scopes.values())
        assert calls == 1

    async def test_a_role_lanes_account_is_the_roles(self, emulator: Any) -> None:
        lane = Lane("sesv2", "eu-west-1", None, "arn:aws:iam::210987654321:role/Provisioner")
        async with TargetPool(self.settings(emulator)) as pool:
            target = await pool.get(lane)
            assert await target.account() == "210987654321"

    async def test_sts_refusing_is_a_lane_error_naming_the_lane_and_sts(
        self, emulator: Any
    ) -> None:
        denied = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            b"<Message>nope</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        )
        lane = Lane("sesv2", "us-east-1")
        with FakeEndpoint(lambda m, p: (403, "text/xml", denied, True)) as sts:
            settings = ClientSettings(
                endpoint_url=emulator.url,
                static_credentials=("AKIDBULKEMULATOR", "secret"),
                sts_endpoint_url=sts.url,
            )
            async with TargetPool(settings) as pool:
                target = await pool.get(lane)
                with pytest.raises(TargetError) as raised:
                    await target.account()
        message = str(raised.value)
        assert message.startswith(f"{lane}: cannot learn the account id (STS GetCallerIdentity")
        assert "AccessDenied: nope" in message
