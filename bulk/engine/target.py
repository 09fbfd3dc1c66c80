"""The service end of a lane: one aiobotocore client, any operation of the service, one call.

The engine takes its targets as a parameter, the way an httpx client takes a transport: it
asks a :class:`Targets` for each lane's :class:`Target` and never knows what is behind it.
:class:`TargetPool` (aiobotocore clients, :class:`ServiceTarget`) is the default; a test hands
the engine a fake that answers from a script, without a network. What each answer means is
:mod:`bulk.engine.answers`' to say.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

import aiobotocore
import anyio
from aiobotocore.config import AioConfig
from botocore import xform_name
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.useragent import sanitize_user_agent_string_component

from bulk.engine.answers import (
    MAYBE_DONE,
    CallKind,
    CallResult,
    classify_client_error,
    classify_exception,
    foreign_answer,
)
from bulk.engine.credentials import CREDENTIAL_ERRORS, credential_message, quiet_refresh_logs
from bulk.engine.http import SharedTLSSession, watch_departures
from bulk.engine.sessions import Clock, Sessions, role_failure, signing_as
from bulk.errors import TargetError
from bulk.models import Lane, bulk_version, redact_url

__all__ = [
    "CREATE",
    "MAYBE_DONE",
    "CallKind",
    "CallResult",
    "ClientSettings",
    "ServiceTarget",
    "Target",
    "TargetPool",
    "Targets",
    "classify_client_error",
    "classify_exception",
    "client_config",
    "foreign_answer",
    "user_agent",
]

CREATE = "CreateConfigurationSet"
# The pre-flight's read: cheap, and in every implementation of both APIs. Its page is the
# lane's first page of names (bulk.engine.live), so it asks for a whole one.
_PROBE = "ListConfigurationSets"
_PROBE_PAGE = 1000


class Target(Protocol):
    """One lane's calls: what the engine needs of the service (:class:`ServiceTarget`).

    ``call`` makes exactly one attempt at ``operation`` (any operation the service's model
    has, by its API name: ``"CreateConfigurationSet"``) and returns its classified answer,
    whatever the service said; it raises :class:`~bulk.errors.TargetError` only for a failure
    no call of the lane can get past (no credentials), and anything else it raises is a bug,
    not an answer. ``preflight`` proves the lane usable before its first row, or raises
    :class:`~bulk.errors.TargetError` saying what to fix. ``account`` is the id of the
    account the lane's credentials act in (STS ``GetCallerIdentity``, asked once and kept),
    which a resource's ARN names; it raises :class:`~bulk.errors.TargetError` when it
    cannot be learned.
    """

    @property
    def lane(self) -> Lane: ...

    async def call(self, operation: str, request: Mapping[str, Any]) -> CallResult: ...

    async def preflight(self) -> None: ...

    async def account(self) -> str: ...


class Targets(Protocol):
    """Where the engine gets each lane's :class:`Target` (:class:`TargetPool` by default).

    ``get`` is called for every row: it returns the lane's target, the same one each time,
    after running its :meth:`~Target.preflight` once (the first call), and raises
    :class:`~bulk.errors.TargetError` when the lane cannot be used (then the engine stops that
    lane alone). The engine calls ``aclose`` once, when the run ends, as an httpx client
    closes its transport.
    """

    async def get(self, lane: Lane) -> Target: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class _Operation:
    """One operation of a client: its method and the members its output may have."""

    method: Callable[..., Any]
    output: frozenset[str]


# Opens an STS client with a lane's credentials (``async with sts() as client``).
StsClients = Callable[[], AbstractAsyncContextManager[Any]]


class ServiceTarget:
    """The :class:`Target` of one lane over one aiobotocore client; ``call`` makes exactly one
    attempt.

    ``sts`` opens an STS client with the same credentials, for :meth:`account`; without it
    (a client made by hand) the account cannot be learned. ``credentials``: the lane's own,
    which each call is signed with when ``client`` is shared by lanes of several credentials
    (see :meth:`~bulk.engine.sessions.Sessions.shared`); a client of one lane's own (made by
    hand) signs with its own, and needs none.
    """

    def __init__(
        self,
        client: Any,
        lane: Lane,
        endpoint: str | None = None,
        *,
        sts: StsClients | None = None,
        credentials: Any = None,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self.lane = lane
        # Where the lane's calls go, as a message may show it (no credentials in it).
        self.endpoint = endpoint or _endpoint_of(client)
        self._operations: dict[str, _Operation] = {}
        self._sts = sts
        self._account: str | None = None
        self._account_lock = anyio.Lock()
        # The pre-flight's answer, when it was a page of names: the lane's listing starts
        # there instead of asking for the same page again (see bulk.engine.live).
        self.first_page: CallResult | None = None

    def _operation(self, name: str) -> _Operation:
        """``name``'s method and output members, read from the client's model once."""
        found = self._operations.get(name)
        if found is None:
            output = self._client.meta.service_model.operation_model(name).output_shape
            found = self._operations[name] = _Operation(
                getattr(self._client, xform_name(name)),
                frozenset(output.members) if output is not None else frozenset(),
            )
        return found

    async def call(self, operation: str, request: Mapping[str, Any]) -> CallResult:
        """One attempt at ``operation``, classified; never raises for service errors."""
        op = self._operation(operation)
        start = time.perf_counter()
        try:
            with signing_as(self._credentials):
                response = await op.method(**request)
        except CREDENTIAL_ERRORS as exc:
            raise TargetError(credential_message(exc, self.lane)) from exc
        except Exception as exc:
            if isinstance(exc, ClientError) and exc.operation_name != operation:
                # Not the service's answer: a call made to sign this one failed (STS, while
                # the lane's role credentials were being refreshed).
                said = role_failure(exc, self.lane) if self.lane.role_arn else None
                raise TargetError(f"{self.lane}: {said or exc}") from exc
            result = classify_exception(exc)
            if result is None:
                raise
            return _with_latency(result, start)
        meta = response.pop("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        problem = foreign_answer(meta) or _unexpected_members(operation, op.output, response)
        if problem is not None:
            # Not the service's word: never a success. It may have reached the service.
            return _with_latency(CallResult(CallKind.FOREIGN, f"HTTP{status}", problem), start)
        return _with_latency(
            CallResult(
                CallKind.OK, http_status=status, request_id=meta.get("RequestId"), data=response
            ),
            start,
        )

    async def preflight(self) -> None:
        """Prove credentials and endpoint with a cheap read; raise :class:`TargetError` if not.

        ``ListConfigurationSets`` exists in every implementation of both APIs; its first
        page is kept (:attr:`first_page`) for the lane's listing. An ``AccessDenied`` answer
        still proves the credentials and the endpoint: a least-privilege policy may allow
        only the create; so does a 429.
        """
        result = await self.call(_PROBE, {"PageSize": _PROBE_PAGE})
        kind = result.kind
        if kind is CallKind.OK:
            self.first_page = result
        what = f"{result.code}: {result.message}"
        if kind in (CallKind.OK, CallKind.THROTTLED):
            return
        if result.code in ("AccessDenied", "AccessDeniedException"):
            return
        if kind is CallKind.FOREIGN:
            message = (
                f"{self.endpoint} answered, but not as the service: {result.message}; "
                "check --endpoint-url, the Region and any proxy (HTTPS_PROXY)"
            )
        elif kind is CallKind.AUTH:
            message = (
                f"the service refused the credentials ({what}); "
                "refresh them (aws sso login, new keys) and run again"
            )
        elif kind in (CallKind.UNSENT, CallKind.AMBIGUOUS):
            message = (
                f"endpoint unreachable ({what}); check --endpoint-url, --region and the network"
            )
        else:
            message = f"pre-flight {_PROBE} failed ({what})"
        raise TargetError(f"{self.lane}: {message}")

    async def account(self) -> str:
        """The id of the account the lane's credentials act in, asked of STS once.

        Rows that need it at the same time wait for the one ``GetCallerIdentity`` call (a
        lock); the answer is kept for the lane's life, as its credentials' account never
        changes. Raises :class:`TargetError` naming the lane when STS cannot say.
        """
        if self._account is None:
            async with self._account_lock:
                if self._account is None:
                    self._account = await self._caller_account()
        return self._account

    async def _caller_account(self) -> str:
        if self._sts is None:
            raise TargetError(f"{self.lane}: no STS client to learn the account id from")
        try:
            async with self._sts() as sts:
                identity = await sts.get_caller_identity()
        except CREDENTIAL_ERRORS as exc:
            raise TargetError(credential_message(exc, self.lane)) from exc
        except Exception as exc:
            said = _sts_failure(exc)
            if said is None:
                raise
            raise TargetError(
                f"{self.lane}: cannot learn the account id (STS GetCallerIdentity: {said}); "
                "check the network and AWS_ENDPOINT_URL_STS, then run the same command to "
                "resume"
            ) from exc
        account = identity.get("Account")
        if not isinstance(account, str) or not account:
            raise TargetError(f"{self.lane}: STS GetCallerIdentity named no account")
        return account


def _sts_failure(error: Exception) -> str | None:
    """What an STS call's failure says, or None when it is not a failure of the call.

    STS answers in XML: its errors are read from the ``ClientError`` itself, not classified
    as an email API answer (:func:`~bulk.engine.answers.classify_exception`) would be.
    """
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return f"{err.get('Code') or 'Unknown'}: {err.get('Message') or ''}".rstrip(": ")
    result = classify_exception(error)
    return None if result is None else f"{result.code}: {result.message}".rstrip(": ")


def _unexpected_members(
    operation: str, output: frozenset[str], response: Mapping[str, Any]
) -> str | None:
    """Why a parsed 200 answer is not ``operation``'s output, or None.

    botocore turns a body that is not JSON into ``{"message": body}``; no operation's output
    has such a member.
    """
    extra = sorted(set(response) - output)
    if not extra:
        return None
    return f"the answer does not parse as {operation}'s output (unexpected {extra[0]!r})"


def _endpoint_of(client: Any) -> str:
    """The client's endpoint URL, as a message may show it."""
    return redact_url(str(getattr(client.meta, "endpoint_url", "") or "")) or "the endpoint"


def _with_latency(result: CallResult, start: float) -> CallResult:
    return dataclasses.replace(result, latency_ms=(time.perf_counter() - start) * 1000.0)


@dataclass(frozen=True)
class ClientSettings:
    """How clients are built: endpoint, credentials source, timeouts, pool size."""

    endpoint_url: str | None = None
    timeout: float = 30.0
    pool_size: int = 64
    # Only set by --emulator: fixed dummy keys so no real credentials are looked up.
    static_credentials: tuple[str, str] | None = None
    # Where roles are assumed; None: botocore's conventions (AWS_ENDPOINT_URL_STS, ...).
    sts_endpoint_url: str | None = None


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
        # One TLS context for every client of the process (bulk.engine.http).
        http_session_cls=SharedTLSSession,
    )


class TargetPool:
    """The default :class:`Targets`: a :class:`ServiceTarget` per lane, opened on first use
    and proven by a pre-flight call; :meth:`aclose` (or leaving ``async with``) closes them all.

    Lanes appear as rows are read (``Region``, ``Profile`` and ``RoleArn`` columns), so targets
    are made lazily; a lock per lane makes sure exactly one pre-flight runs for it. A lane's
    credentials come from :class:`~bulk.engine.sessions.Sessions` (its profile's, or its role's,
    assumed once per role); ``clock`` is the time role credentials expire by. The lanes of
    one profile, service and Region share one aiobotocore client, each call signed with its
    own lane's credentials (:meth:`~bulk.engine.sessions.Sessions.shared`): 250 roles in two
    Regions are two clients, not 500.
    """

    def __init__(self, settings: ClientSettings, *, clock: Clock | None = None) -> None:
        quiet_refresh_logs()
        self._settings = settings
        self._stack = AsyncExitStack()
        self._config = client_config(settings)
        sts_config = AioConfig(
            # AssumeRole is not paced by the lanes' limiters (once per role, and again before
            # expiry) but by the sessions' own (bulk.engine.sessions), and botocore's retries
            # see it through STS's throttling, as for any client.
            retries={"mode": "standard", "total_max_attempts": 10},
            http_session_cls=SharedTLSSession,
            # One client assumes every role: as many connections as the lanes' clients.
            max_pool_connections=settings.pool_size,
            connect_timeout=min(10.0, settings.timeout),
            read_timeout=settings.timeout,
            user_agent=user_agent(),
        )
        self._sts_config = sts_config
        self._sessions = Sessions(
            static_credentials=settings.static_credentials,
            sts_endpoint_url=settings.sts_endpoint_url,
            sts_config=sts_config,
            **({} if clock is None else {"clock": clock}),
        )
        self._targets: dict[Lane, ServiceTarget] = {}
        self._locks: dict[Lane, anyio.Lock] = {}
        self._clients: dict[tuple[str | None, str, str], Any] = {}
        self._client_locks: dict[tuple[str | None, str, str], anyio.Lock] = {}

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
        try:
            await self._stack.aclose()
        finally:
            await self._sessions.aclose()

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
        try:
            session = await self._sessions.for_lane(lane)
            credentials = await session.get_credentials()
            if credentials is None:
                raise NoCredentialsError()
            client = await self._client(lane)
        except CREDENTIAL_ERRORS as exc:
            raise TargetError(credential_message(exc, lane)) from exc
        # The account id (for ARNs) comes from STS with the lane's own credentials, reached
        # as the sessions reach it for roles: sts_endpoint_url, else botocore's conventions.
        sts = functools.partial(
            session.create_client,
            "sts",
            region_name=lane.region,
            endpoint_url=self._settings.sts_endpoint_url,
            config=self._sts_config,
        )
        return ServiceTarget(client, lane, sts=sts, credentials=credentials)

    async def _client(self, lane: Lane) -> Any:
        """The client of ``lane``'s service and Region that every lane of its profile shares,
        each signing its calls with its own credentials (its profile's or its role's)."""
        key = (lane.profile, lane.service, lane.region)
        client = self._clients.get(key)
        if client is None:
            lock = self._client_locks.setdefault(key, anyio.Lock())
            async with lock:
                client = self._clients.get(key)
                if client is None:
                    session = self._sessions.shared(lane.profile)
                    # A fixed user_agent replaces botocore's builder, which would have added it.
                    app_id = session.get_config_variable("user_agent_appid")
                    config = client_config(self._settings, app_id) if app_id else self._config
                    client = await self._stack.enter_async_context(
                        session.create_client(
                            lane.service,
                            region_name=lane.region,
                            endpoint_url=self._settings.endpoint_url,
                            config=config,
                        )
                    )
                    watch_departures(client)
                    self._clients[key] = client
        return client
