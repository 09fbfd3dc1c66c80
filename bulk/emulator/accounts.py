"""Who is calling: the account an access key belongs to, and the credentials AssumeRole issues.

AWS keeps state and limits per account, not per access key: several keys of one account (an
IAM user's, and the session keys of each role assumed into it) share one account's sets and
one account's buckets. Here a key issued by ``AssumeRole`` belongs to the role's account until
it expires; any other key belongs to the account ``key_accounts`` names, else to the default
account. Signatures are never verified, but an issued key must come with its own session token.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from bulk.emulator.config import ACCOUNT_ID, DEFAULT_ACCOUNT, ROLE_ARN
from bulk.emulator.protocol import ServiceError


@dataclass(frozen=True)
class Role:
    """An IAM role, from its ARN ``arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME``."""

    arn: str
    partition: str
    account: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> Role | None:
        """The role an ARN names, or ``None`` when it is not a role ARN."""
        match = ROLE_ARN.fullmatch(arn)
        if match is None:
            return None
        return cls(arn, match["partition"], match["account"], match["name"])

    @property
    def role_id(self) -> str:
        """A stable unique id (``AROA...``), as IAM gives every role."""
        return "AROA" + _digest(self.arn, 17)


@dataclass(frozen=True)
class Caller:
    """The identity behind an access key: what ``GetCallerIdentity`` answers."""

    access_key: str
    account: str
    arn: str
    user_id: str


@dataclass(frozen=True)
class Session:
    """Temporary credentials issued by ``AssumeRole``; ``expires`` in epoch seconds."""

    caller: Caller
    role_arn: str
    secret_key: str
    token: str
    expires: float

    @property
    def expiration(self) -> datetime.datetime:
        """``expires`` as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self.expires, tz=datetime.UTC)


class Accounts:
    """The sessions ``AssumeRole`` issued, and the account of every other key.

    Lives in ``EmulatorState``, so issued credentials survive a restart with the same state and
    a ``reset`` (they are the client's, not the service's). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._default_account = DEFAULT_ACCOUNT
        self._key_accounts: Mapping[str, str] = {}

    def configure(self, default_account: str, key_accounts: Mapping[str, str]) -> None:
        """Where keys that ``AssumeRole`` did not issue belong (from ``EmulatorConfig``)."""
        with self._lock:
            self._default_account = default_account
            self._key_accounts = dict(key_accounts)

    def account_of(self, key_or_account: str) -> str:
        """The account of an access key id; a 12-digit account id is returned as it is."""
        if ACCOUNT_ID.fullmatch(key_or_account):
            return key_or_account
        with self._lock:
            session = self._sessions.get(key_or_account)
            if session is not None:
                return session.caller.account
            return self._key_accounts.get(key_or_account, self._default_account)

    def identify(self, access_key: str, token: str | None, now: float) -> Caller:
        """The caller signing with ``access_key`` (and ``token``) at ``now`` (epoch seconds).

        Raises ``ServiceError`` for an issued key sent with another session token
        (``UnrecognizedClientException``) or after it expired (``ExpiredTokenException``).
        """
        with self._lock:
            session = self._sessions.get(access_key)
            if session is None:
                account = self._key_accounts.get(access_key, self._default_account)
                return Caller(
                    access_key,
                    account,
                    f"arn:aws:iam::{account}:user/emulator",
                    "AIDA" + _digest(access_key, 17),
                )
        if token != session.token:
            raise ServiceError(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        if now >= session.expires:
            raise ServiceError(
                403,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )
        return session.caller

    def issue(self, role: Role, session_name: str, lifetime: float, now: float) -> Session:
        """New credentials of ``role`` for ``lifetime`` seconds from ``now``."""
        access_key = "ASIA" + secrets.token_hex(8).upper()
        caller = Caller(
            access_key,
            role.account,
            f"arn:{role.partition}:sts::{role.account}:assumed-role/{role.name}/{session_name}",
            f"{role.role_id}:{session_name}",
        )
        session = Session(
            caller,
            role.arn,
            secrets.token_urlsafe(30),
            secrets.token_urlsafe(96),
            # Whole milliseconds, as the Expiration a client reads says: exactly when it lapses.
            math.floor((now + lifetime) * 1000) / 1000,
        )
        with self._lock:
            self._sessions[access_key] = session
        return session

    def issued(self) -> int:
        """How many sessions were issued (expired ones included)."""
        with self._lock:
            return len(self._sessions)


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()[:length]
