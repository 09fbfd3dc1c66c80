"""The service end of a lane: one aiobotocore client, one call, and what its answer means.

Every answer or failure of ``CreateConfigurationSet`` is classified into a :class:`CallKind`;
the retry policy and the engine decide from the kind alone, never from exception types.

The engine takes its targets as a parameter, the way an httpx client takes a transport: it
asks a :class:`Targets` for each lane's :class:`Target` and never knows what is behind it.
:class:`TargetPool` (aiobotocore clients, :class:`ServiceTarget`) is the default; a test hands
the engine a fake that answers from a script, without a network.
"""

from __future__ import annotations

import enum
import platform
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

import aiobotocore
import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)
from botocore.useragent import sanitize_user_agent_string_component

from bulk.engine.credentials import CREDENTIAL_ERRORS, credential_message, quiet_refresh_logs
from bulk.errors import TargetError
from bulk.models import Lane, bulk_version, redact_url

_CREATE = "CreateConfigurationSet"


class CallKind(enum.Enum):
    """What one attempt's answer means for the row and for the run."""

    OK = "ok"  # 200: created by this attempt
    EXISTS = "exists"  # AlreadyExistsException
    BAD_REQUEST = "bad_request"  # BadRequestException and other 4xx the row caused
    NOT_FOUND = "not_found"  # NotFoundException: permanent
    QUOTA = "quota"  # LimitExceededException: the account's quota of sets is used up
    THROTTLED = "throttled"  # 429: not processed, retry after slowing down
    UNSENT = "unsent"  # connection refused / connect timeout: the request never left
    AMBIGUOUS = "ambiguous"  # 5xx, read timeout, dropped connection: may have been created
    AUTH = "auth"  # credentials or permission: systemic, no row can succeed
    # An answer that is not the service's (no request id, not JSON, not the operation's
    # output): a proxy, a captive portal, the wrong port. It may have reached the service.
    FOREIGN = "foreign"

    @property
    def retryable(self) -> bool:
        """True when another attempt at the same row can succeed."""
        return self in _RETRYABLE


_RETRYABLE = frozenset({CallKind.THROTTLED, CallKind.UNSENT, CallKind.AMBIGUOUS, CallKind.FOREIGN})

# The kinds after which the service may hold what the call asked for.
MAYBE_DONE = frozenset({CallKind.AMBIGUOUS, CallKind.FOREIGN})

# Error codes that say the caller, not the row, is wrong. 403 answers carry several codes.
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "IncompleteSignature",
        "AuthFailure",
    }
)


@dataclass(frozen=True)
class CallResult:
    """The classified answer to one attempt."""

    kind: CallKind
    code: str | None = None
    message: str = ""
    http_status: int | None = None
    request_id: str | None = None
    latency_ms: float = 0.0


class Target(Protocol):
    """One lane's calls: what the engine needs of the service (:class:`ServiceTarget`).

    ``create`` makes exactly one ``CreateConfigurationSet`` attempt and returns its classified
    answer, whatever the service said; it raises :class:`~bulk.errors.TargetError` only for a
    failure no row of the lane can get past (no credentials), and anything else it raises is
    a bug, not an answer. ``preflight`` proves the lane usable before its first row, or raises
    :class:`~bulk.errors.TargetError` saying what to fix.
    """

    @property
    def lane(self) -> Lane: ...

    async def create(self, request: Mapping[str, Any]) -> CallResult: ...

    async def preflight(self) -> None: ...


class Targets(Protocol):
    """Where the engine gets each lane's :class:`Target` (:class:`TargetPool` by default).

    ``get`` is called for every row: it returns the lane's target, the same one each time,
    after running its :meth:`~Target.preflight` once (the first call), and raises
    :class:`~bulk.errors.TargetError` when the lane cannot be used. The engine calls
    ``aclose`` once, when the run ends, as an httpx client closes its transport.
    """

    async def get(self, lane: Lane) -> Target: ...

    async def aclose(self) -> None: ...


def foreign_answer(meta: Mapping[str, Any]) -> str | None:
    """Why an HTTP answer is not the service's own, or None when it is.

    Every answer of both APIs, success or error, carries an ``x-amzn-RequestId`` header
    (botocore's ``RequestId``) and a JSON body; a proxy's or a portal's page has neither.
    """
    status = meta.get("HTTPStatusCode")
    headers = meta.get("HTTPHeaders") or {}
    content_type = str(headers.get("content-type") or "no content type").split(";")[0]
    if not meta.get("RequestId"):
        return f"HTTP {status} ({content_type}) without a request id is not the service's answer"
    if "json" not in content_type:
        return f"HTTP {status} ({content_type}) is not the service's JSON answer"
    return None


def classify_client_error(error: ClientError) -> CallResult:
    """Map a modeled or unmodeled service error to a :class:`CallKind`."""
    err = error.response.get("Error", {})
    meta = error.response.get("ResponseMetadata", {})
    code = str(err.get("Code") or "Unknown")
    message = str(err.get("Message") or "")
    status = meta.get("HTTPStatusCode")
    request_id = meta.get("RequestId")
    foreign = foreign_answer(meta)
    if foreign is not None and status != 429:
        # A 429 means "slow down" whoever says it; anything else not from the service
        # says nothing about the row, and the request may have reached the service.
        return CallResult(CallKind.FOREIGN, f"HTTP{status}", foreign, status)
    if code == "AlreadyExistsException":
        kind = CallKind.EXISTS
    elif code == "LimitExceededException":
        # botocore calls this a throttling error; for this API it is the quota of sets.
        kind = CallKind.QUOTA
    elif code in ("TooManyRequestsException", "ThrottlingException") or status == 429:
        kind = CallKind.THROTTLED
    elif code == "NotFoundException":
        kind = CallKind.NOT_FOUND
    elif code in _AUTH_CODES or status in (401, 403):
        kind = CallKind.AUTH
    elif status is not None and status >= 500:
        # Includes ConcurrentModificationException (500) and InternalFailure: the service
        # may or may not have stored the set before failing.
        kind = CallKind.AMBIGUOUS
    else:
        kind = CallKind.BAD_REQUEST
    return CallResult(kind, code, message, status, request_id)


def classify_exception(error: BaseException) -> CallResult | None:
    """Map a transport-level failure to a :class:`CallKind`; ``None`` if it is not one."""
    if isinstance(error, ClientError):
        return classify_client_error(error)
    if isinstance(error, SSLError):
        # The TLS handshake failed: the request was never sent.
        return CallResult(
            CallKind.UNSENT,
            "SSLError",
            f"TLS handshake failed ({error}); if the endpoint speaks plain HTTP, use http://",
        )
    if isinstance(error, ConnectTimeoutError):
        return CallResult(CallKind.UNSENT, "ConnectTimeout", str(error))
    if isinstance(error, EndpointConnectionError):
        # A refused connect never carried the request; anything else (a reset after
        # sending) might have.
        inner = getattr(error, "kwargs", {}).get("error")
        unsent = inner is None or isinstance(inner, aiohttp.ClientConnectorError)
        kind = CallKind.UNSENT if unsent else CallKind.AMBIGUOUS
        return CallResult(kind, "EndpointConnectionError", str(error))
    if isinstance(error, ReadTimeoutError):
        return CallResult(CallKind.AMBIGUOUS, "ReadTimeout", str(error))
    if isinstance(error, ConnectionClosedError | HTTPClientError):
        return CallResult(CallKind.AMBIGUOUS, "ConnectionClosed", str(error))
    if isinstance(error, TimeoutError):
        return CallResult(CallKind.AMBIGUOUS, "Timeout", "the call timed out")
    return None


class ServiceTarget:
    """The :class:`Target` of one lane over one aiobotocore client; ``create`` makes exactly one
    attempt."""

    def __init__(self, client: Any, lane: Lane, endpoint: str | None = None) -> None:
        self._client = client
        self.lane = lane
        # Where the lane's calls go, as a message may show it (no credentials in it).
        self.endpoint = endpoint or _endpoint_of(client)
        output = client.meta.service_model.operation_model(_CREATE).output_shape
        self._create_output = frozenset(output.members) if output is not None else frozenset()

    async def create(self, request: Mapping[str, Any]) -> CallResult:
        """One ``CreateConfigurationSet`` attempt, classified; never raises for service errors."""
        start = time.perf_counter()
        try:
            response = await self._client.create_configuration_set(**request)
        except CREDENTIAL_ERRORS as exc:
            raise TargetError(credential_message(exc, self.lane)) from exc
        except Exception as exc:
            result = classify_exception(exc)
            if result is None:
                raise
            return _with_latency(result, start)
        meta = response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        problem = foreign_answer(meta) or self._unexpected_members(response)
        if problem is not None:
            # Not the service's word: never a success. It may have reached the service.
            return _with_latency(CallResult(CallKind.FOREIGN, f"HTTP{status}", problem), start)
        return _with_latency(
            CallResult(CallKind.OK, http_status=status, request_id=meta.get("RequestId")),
            start,
        )

    def _unexpected_members(self, response: Mapping[str, Any]) -> str | None:
        """Why a parsed 200 answer is not the operation's output, or None.

        botocore turns a body that is not JSON into ``{"message": body}``; the operation's
        output has no such member.
        """
        extra = sorted(set(response) - self._create_output - {"ResponseMetadata"})
        if not extra:
            return None
        return f"the answer does not parse as {_CREATE}'s output (unexpected {extra[0]!r})"

    async def preflight(self) -> None:
        """Prove credentials and endpoint with a cheap read; raise :class:`TargetError` if not.

        ``ListConfigurationSets`` with ``PageSize=1`` exists in every implementation of both
        APIs. An ``AccessDenied`` answer still proves the credentials and the endpoint: a
        least-privilege policy may allow only the create.
        """
        try:
            response = await self._client.list_configuration_sets(PageSize=1)
        except CREDENTIAL_ERRORS as exc:
            raise TargetError(credential_message(exc, self.lane)) from exc
        except Exception as exc:
            result = classify_exception(exc)
            if result is None:
                raise
            if result.kind is CallKind.FOREIGN:
                raise TargetError(
                    f"{self.lane}: {self.endpoint} answered, but not as the service: "
                    f"{result.message}; check --endpoint-url, the Region and any proxy "
                    "(HTTPS_PROXY)"
                ) from exc
            if result.code in ("AccessDenied", "AccessDeniedException"):
                return
            if result.kind is CallKind.AUTH:
                raise TargetError(
                    f"{self.lane}: the service refused the credentials ({result.code}: "
                    f"{result.message}); refresh them (aws sso login, new keys) and run again"
                ) from exc
            if result.kind in (CallKind.UNSENT, CallKind.AMBIGUOUS):
                raise TargetError(
                    f"{self.lane}: endpoint unreachable ({result.code}: {result.message}); "
                    "check --endpoint-url, --region and the network"
                ) from exc
            if result.kind is not CallKind.THROTTLED:
                raise TargetError(
                    f"{self.lane}: pre-flight ListConfigurationSets failed "
                    f"({result.code}: {result.message})"
                ) from exc
            return
        problem = foreign_answer(response.get("ResponseMetadata", {}))
        if problem is not None:
            raise TargetError(
                f"{self.lane}: {self.endpoint} answered, but not as the service: {problem}; "
                "check --endpoint-url, the Region and any proxy (HTTPS_PROXY)"
            )


def _endpoint_of(client: Any) -> str:
    """The client's endpoint URL, as a message may show it."""
    return redact_url(str(getattr(client.meta, "endpoint_url", "") or "")) or "the endpoint"


def _with_latency(result: CallResult, start: float) -> CallResult:
    return CallResult(
        result.kind,
        result.code,
        result.message,
        result.http_status,
        result.request_id,
        (time.perf_counter() - start) * 1000.0,
    )


@dataclass(frozen=True)
class ClientSettings:
    """How clients are built: endpoint, credentials source, timeouts, pool size."""

    endpoint_url: str | None = None
    timeout: float = 30.0
    pool_size: int = 64
    # Only set by --emulator: fixed dummy keys so no real credentials are looked up.
    static_credentials: tuple[str, str] | None = None


def user_agent(app_id: str | None = None) -> str:
    """Every call's User-Agent: this tool and the libraries beneath it (botocore adds its own).

    It names the tool in the service's logs (CloudTrail's ``userAgent``), followed by the
    operator's application id (``AWS_SDK_UA_APP_ID`` or ``sdk_ua_app_id``) as botocore would
    write it. Being fixed, it also spares botocore rebuilding the header for each request,
    which otherwise costs about a quarter of the client's CPU per call.
    """
    agent = (
        f"bulk/{bulk_version()} aiobotocore/{aiobotocore.__version__} "
        f"Python/{platform.python_version()}"
    )
    if app_id:
        agent += f" app/{sanitize_user_agent_string_component(app_id, allow_hash=True)}"
    return agent


def client_config(settings: ClientSettings, app_id: str | None = None) -> AioConfig:
    """The configuration of every lane's client (``app_id``: see :func:`user_agent`)."""
    return AioConfig(
        # One retry layer only (tenacity): botocore's own retries are off.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=min(10.0, settings.timeout),
        read_timeout=settings.timeout,
        max_pool_connections=settings.pool_size,
        # The validator has already run botocore's ParamValidator on every row's request
        # against the same model; the client would run it again on every attempt.
        parameter_validation=False,
        user_agent=user_agent(app_id),
    )


class TargetPool:
    """The default :class:`Targets`: one aiobotocore client per lane, opened on first use and
    proven by a pre-flight call; :meth:`aclose` (or leaving ``async with``) closes them all.

    Lanes appear as rows are read (``Region`` and ``Profile`` columns), so clients are made
    lazily; a lock per lane makes sure exactly one pre-flight runs for it.
    """

    def __init__(self, settings: ClientSettings) -> None:
        quiet_refresh_logs()
        self._settings = settings
        self._stack = AsyncExitStack()
        self._config = client_config(settings)
        self._sessions: dict[str | None, AioSession] = {}
        self._targets: dict[Lane, ServiceTarget] = {}
        self._locks: dict[Lane, anyio.Lock] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every client the pool opened."""
        await self._stack.aclose()

    async def get(self, lane: Lane) -> ServiceTarget:
        """The lane's target, opening its client and running its pre-flight the first time."""
        target = self._targets.get(lane)
        if target is not None:
            return target
        lock = self._locks.setdefault(lane, anyio.Lock())
        async with lock:
            target = self._targets.get(lane)
            if target is None:
                target = await self._open(lane)
                await target.preflight()
                self._targets[lane] = target
        return target

    async def _open(self, lane: Lane) -> ServiceTarget:
        kwargs: dict[str, Any] = {}
        if self._settings.static_credentials is not None:
            key_id, secret = self._settings.static_credentials
            kwargs = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        try:
            session = self._sessions.get(lane.profile)
            if session is None:
                session = self._sessions[lane.profile] = AioSession(profile=lane.profile)
            # A fixed user_agent replaces botocore's builder, which would have added it.
            app_id = session.get_config_variable("user_agent_appid")
            config = client_config(self._settings, app_id) if app_id else self._config
            client = await self._stack.enter_async_context(
                session.create_client(
                    lane.service,
                    region_name=lane.region,
                    endpoint_url=self._settings.endpoint_url,
                    config=config,
                    **kwargs,
                )
            )
        except CREDENTIAL_ERRORS as exc:
            raise TargetError(credential_message(exc, lane)) from exc
        return ServiceTarget(client, lane)
