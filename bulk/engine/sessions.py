"""Where each lane's credentials come from: a botocore session per profile, and per role.

A lane's credentials are its profile's (botocore's standard chain: environment, config file,
SSO, ...), or, with a role, that role's, assumed through STS from the profile's. Role
credentials use botocore's own refreshing machinery (an assume-role fetcher behind deferred
refreshable credentials): the first lane of a role assumes it once, every other lane of the
role (its other Regions) shares the result, and botocore assumes it again a little before the
credentials expire, while calls go on. Never one ``AssumeRole`` per row.

STS is reached as botocore reaches it: its own endpoint conventions (``AWS_ENDPOINT_URL_STS``,
a profile's ``services`` section), or ``sts_endpoint_url`` (the embedded emulator's).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from contextvars import ContextVar
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioAssumeRoleCredentialFetcher,
    AioCredentialResolver,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.hooks import AioHierarchicalEmitter
from aiobotocore.session import AioSession
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
)

from bulk.engine.answers import classify_exception
from bulk.engine.credentials import CREDENTIAL_ERRORS, credential_message
from bulk.engine.limiter import AdaptiveLimiter
from bulk.errors import TargetError
from bulk.models import Lane

__all__ = ["Sessions", "role_failure", "signing_as"]

# The session name CloudTrail shows for calls made with an assumed role.
ROLE_SESSION_NAME = "bulk"

Clock = Callable[[], datetime.datetime]

# AssumeRole is paced for the whole run: every role is assumed from the run's own credentials,
# against one account's STS quota, and hundreds of lanes starting at once would otherwise meet
# STS's throttling and botocore's backoff (seconds per throttled role) before their first
# create. An adaptive limiter starts at this rate and burst and follows STS's answers, as a
# lane's limiter follows the email API's.
STS_RATE = 100.0
STS_BURST = 5
_STS_THROTTLING = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})

# STS calls keep botocore's standard retries (10 attempts: hundreds of roles assumed as a run
# starts meet STS's throttling), but an endpoint that cannot be reached is not waited out:
# after this many refused or timed-out connections the call fails, and its lane stops saying
# so within seconds, not after minutes of backoff.
STS_CONNECT_ATTEMPTS = 2


#: The credentials the current task's calls through a shared client are signed with.
_SIGNING_AS: ContextVar[Any] = ContextVar("bulk_signing_as", default=None)


@contextmanager
def signing_as(credentials: Any) -> Iterator[None]:
    """Sign the calls the current task makes (through any shared client, see
    :meth:`Sessions.shared`) with ``credentials``, botocore credentials of one lane."""
    token = _SIGNING_AS.set(credentials)
    try:
        yield
    finally:
        _SIGNING_AS.reset(token)


class _LaneCredentials:
    """The credentials of a client that lanes of many roles share: each call is signed with
    the credentials of the lane making it (:func:`signing_as`), which its task names.

    botocore's signer asks a client's credentials for their frozen value at every request
    (``get_frozen_credentials``, in the task that makes the call), so one client per
    service, Region and profile serves every role's lanes there: a client costs some 8 ms of
    CPU and a megabyte, and 500 lanes of 250 roles need two clients, not 500. A call made
    outside any lane fails: it is never signed with another lane's credentials, nor with the
    profile's own.
    """

    method = "bulk-lane"

    @staticmethod
    def _current() -> Any:
        credentials = _SIGNING_AS.get()
        if credentials is None:
            raise RuntimeError("a shared client's call was made outside any lane")
        return credentials

    async def get_frozen_credentials(self) -> Any:
        return await self._current().get_frozen_credentials()

    async def get_account_id(self) -> Any:
        getter = getattr(self._current(), "get_account_id", None)
        return None if getter is None else await getter()

    def get_deferred_property(self, name: str) -> Callable[[], Any]:
        """botocore's deferred read of a credentials property (the account id, for endpoint
        rules), of the calling lane's credentials when it is read."""
        return lambda: getattr(self._current(), name, None)


class _LaneCredentialsProvider:
    """A credential provider (botocore's interface) whose credentials are the lanes'."""

    METHOD = _LaneCredentials.method
    CANONICAL_NAME = "BulkLane"

    async def load(self) -> _LaneCredentials:
        return _LaneCredentials()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class _NoCache(dict[str, Any]):
    """A credential cache that holds nothing.

    The refreshable credentials already keep what the fetcher returns and decide when to
    fetch again (by their clock); a cache in the fetcher would answer a refresh with the
    credentials being replaced, judged fresh by the wall clock.
    """

    def __contains__(self, key: object) -> bool:
        return False

    def __setitem__(self, key: str, value: Any) -> None:
        pass


class _AssumedRole:
    """A credential provider (botocore's interface) whose credentials are one role's."""

    METHOD = "assume-role"
    CANONICAL_NAME = "AssumeRole"

    def __init__(
        self, source: AioSession, role_arn: str, client_creator: Callable[..., Any], clock: Clock
    ) -> None:
        self._source = source
        self._role_arn = role_arn
        self._client_creator = client_creator
        self._clock = clock

    async def load(self) -> AioDeferredRefreshableCredentials:
        source_credentials = await self._source.get_credentials()
        if source_credentials is None:
            raise NoCredentialsError()
        fetcher = AioAssumeRoleCredentialFetcher(
            client_creator=self._client_creator,
            source_credentials=source_credentials,
            role_arn=self._role_arn,
            extra_args={"RoleSessionName": ROLE_SESSION_NAME},
            cache=_NoCache(),
        )
        # Empty until first used: the role is assumed at the lane's pre-flight.
        return AioDeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials,
            method=self.METHOD,
            time_fetcher=self._clock,
        )


class Sessions:
    """The botocore sessions of a run's lanes: one per profile, and one per (profile, role).

    ``static_credentials`` (the emulator's dummy keys) replace the credential chain of every
    profile; roles are still assumed from them. ``clock`` is what role credentials read the
    time from (tests move it to make them expire).
    """

    def __init__(
        self,
        *,
        static_credentials: tuple[str, str] | None = None,
        sts_endpoint_url: str | None = None,
        sts_config: AioConfig | None = None,
        clock: Clock = _now,
    ) -> None:
        self._static = static_credentials
        self._sts_endpoint_url = sts_endpoint_url
        self._sts_config = sts_config
        self._clock = clock
        # botocore's loader of its data files (service models, endpoint rules), shared: each
        # session would otherwise read and keep its own copy, some 5 MB per role.
        self._loader: Any = None
        # The event hooks every session shares (each client copies them as it is made).
        self._events: AioHierarchicalEmitter | None = None
        self._assume_role_pacing = _Pacing(AdaptiveLimiter(STS_RATE, STS_BURST))
        # The STS clients roles are assumed with, per (profile, Region): shared by every role.
        self._sts_clients: dict[tuple[str | None, str], _SharedClients] = {}
        self._profiles: dict[str | None, AioSession] = {}
        self._shared: dict[str | None, AioSession] = {}
        self._roles: dict[tuple[str | None, str], AioSession] = {}
        self._locks: dict[tuple[str | None, str], anyio.Lock] = {}
        # Why a role could not be assumed: said again for its other lanes, not asked again.
        self._refused: dict[tuple[str | None, str], tuple[str, BaseException]] = {}

    def profile(self, profile: str | None) -> AioSession:
        """The session of ``profile`` (None: the default chain)."""
        session = self._profiles.get(profile)
        if session is None:
            session = self._profiles[profile] = self._session(profile)
            if self._static is not None:
                session.set_credentials(*self._static)
        return session

    def shared(self, profile: str | None) -> AioSession:
        """The session of ``profile`` whose clients sign each call as the lane making it does
        (:func:`signing_as`): a client from it serves every lane of its service and Region
        whose credentials come from ``profile``, its own or a role's."""
        session = self._shared.get(profile)
        if session is None:
            session = self._shared[profile] = self._session(profile)
            session.register_component(
                "credential_provider", AioCredentialResolver([_LaneCredentialsProvider()])
            )
        return session

    def _session(self, profile: str | None) -> AioSession:
        """A new session of ``profile`` on the run's one data loader and event hooks."""
        if self._events is None:
            # botocore's built-in handlers, registered once: some 6,000 registrations, 25 ms
            # of CPU per session, for hooks that every session holds alike.
            self._events = AioHierarchicalEmitter()
            session = AioSession(profile=profile, event_hooks=self._events)
            session.register("needs-retry.sts", _unreachable_sts_fails_fast)
            session.register("before-send.sts.AssumeRole", self._assume_role_pacing.before_send)
            session.register("needs-retry.sts.AssumeRole", self._assume_role_pacing.answered)
        else:
            session = AioSession(
                profile=profile, event_hooks=self._events, include_builtin_handlers=False
            )
        if self._loader is None:
            self._loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", self._loader)
        return session

    async def aclose(self) -> None:
        """Close the STS clients roles were assumed with."""
        for clients in self._sts_clients.values():
            await clients.aclose()
        self._sts_clients.clear()

    async def for_lane(self, lane: Lane) -> AioSession:
        """The session whose credentials ``lane`` uses, its role assumed (once per role).

        Raises :class:`TargetError` naming the lane when the role cannot be assumed.
        """
        if lane.role_arn is None:
            return self.profile(lane.profile)
        key = (lane.profile, lane.role_arn)
        session = self._roles.get(key)
        if session is None:
            session = self._roles[key] = self._session(lane.profile)
            creator = self._sts_clients.get((lane.profile, lane.region))
            if creator is None:
                creator = self._sts_clients[(lane.profile, lane.region)] = _SharedClients(
                    functools.partial(
                        self.profile(lane.profile).create_client,
                        region_name=lane.region,
                        endpoint_url=self._sts_endpoint_url,
                        config=self._sts_config,
                    )
                )
            provider = _AssumedRole(self.profile(lane.profile), lane.role_arn, creator, self._clock)
            session.register_component("credential_provider", AioCredentialResolver([provider]))
        async with self._locks.setdefault(key, anyio.Lock()):
            refused = self._refused.get(key)
            if refused is not None:
                reason, error = refused
                raise TargetError(f"{lane}: {reason}") from error
            try:
                credentials = await session.get_credentials()
                await credentials.get_frozen_credentials()
            except Exception as exc:
                said = role_failure(exc, lane)
                if said is None:
                    raise
                self._refused[key] = (said, exc)
                raise TargetError(f"{lane}: {said}") from exc
        return session


class _SharedClients:
    """A client creator for botocore's assume-role fetcher whose clients are shared.

    The fetcher makes a client for each ``AssumeRole`` (``async with creator("sts", keys)``)
    and closes it after: some 8 ms of CPU each, 250 of them for 250 roles. This creator makes
    one client per source credentials (the run's own, so usually one) and lends it out;
    :meth:`aclose` closes them when the run ends.
    """

    def __init__(self, create: Callable[..., Any]) -> None:
        self._create = create
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._stack = AsyncExitStack()
        self._lock: anyio.Lock | None = None

    def __call__(self, service: str, **keys: Any) -> _Lent:
        return _Lent(self, service, keys)

    async def get(self, service: str, keys: dict[str, Any]) -> Any:
        key = (service, *sorted(keys.items()))
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = await self._stack.enter_async_context(self._create(service, **keys))
                self._clients[key] = client
        return client

    async def aclose(self) -> None:
        self._clients.clear()
        await self._stack.aclose()


class _Lent:
    """``async with`` one of :class:`_SharedClients`' clients, left open on the way out."""

    def __init__(self, clients: _SharedClients, service: str, keys: dict[str, Any]) -> None:
        self._clients = clients
        self._service = service
        self._keys = keys

    async def __aenter__(self) -> Any:
        return await self._clients.get(self._service, self._keys)

    async def __aexit__(self, *_: object) -> None:
        return None


class _Pacing:
    """botocore hooks that pace one operation's attempts (botocore's own retries included)
    through ``limiter``, told of each answer: a throttling error, or anything else."""

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.limiter = limiter

    async def before_send(self, **_: Any) -> None:
        await self.limiter.acquire()

    def answered(self, response: Any = None, **_: Any) -> None:
        code = response[1].get("Error", {}).get("Code") if response is not None else None
        if code in _STS_THROTTLING:
            self.limiter.on_throttle()
        else:
            self.limiter.on_success()


def _unreachable_sts_fails_fast(
    attempts: int, caught_exception: BaseException | None = None, **_: Any
) -> None:
    """A ``needs-retry`` handler of STS clients: ends the retries of a call whose connection
    failed :data:`STS_CONNECT_ATTEMPTS` times (raising its error, as the call then does);
    everything else is left to botocore's retry handler."""
    unreachable = isinstance(caught_exception, EndpointConnectionError | ConnectTimeoutError)
    if unreachable and attempts >= STS_CONNECT_ATTEMPTS:
        assert caught_exception is not None
        raise caught_exception


def role_failure(error: Exception, lane: Lane) -> str | None:
    """Why ``lane``'s role could not be assumed, after the lane's name in a message; None when
    ``error`` is not such a failure.

    STS answers in XML, so its errors are read from the ``ClientError`` itself rather than
    classified as an email API answer would be.
    """
    role = lane.role_arn
    if isinstance(error, CREDENTIAL_ERRORS):
        source = credential_message(error, Lane(lane.service, lane.region, lane.profile))
        return f"cannot assume role {role}: {source}"
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        what = f"{err.get('Code') or 'Unknown'}: {err.get('Message') or ''}".rstrip(": ")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if status < 500 and err.get("Code") not in ("Throttling", "ThrottlingException"):
            return (
                f"cannot assume role {role} ({what}); check the role's trust policy and that "
                "the run's credentials may call sts:AssumeRole on it"
            )
        return f"cannot assume role {role}: STS failed ({what}); run the same command to resume"
    result = classify_exception(error)
    if result is None:
        return None
    return (
        f"cannot assume role {role}: STS unreachable ({result.code}: {result.message}); check "
        "the network and AWS_ENDPOINT_URL_STS, then run the same command to resume"
    )
