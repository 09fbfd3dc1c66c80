"""Data that crosses stages: small frozen records."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SERVICES = ("pinpoint-email", "sesv2")


class Status(enum.StrEnum):
    """What happened to a row; the ``status`` field of a ledger record."""

    CREATED = "created"  # the service created it (also after an ambiguous attempt)
    EXISTS = "exists"  # it existed before this run touched it
    INVALID = "invalid"  # rejected before sending, or by the service as a bad request
    FAILED = "failed"  # gave up: permanent error, retries exhausted, quota stop
    DELETED = "deleted"  # removed by rollback

    @property
    def settled(self) -> bool:
        """A settled row is never sent again by a resumed run (``invalid`` only while unchanged)."""
        return self in SETTLED


SETTLED = frozenset({Status.CREATED, Status.EXISTS, Status.INVALID})


@dataclass(frozen=True)
class Lane:
    """One stream of calls with its own rate limit: service + credentials source + Region.

    The credentials are the ``profile``'s (None: the default credential chain) or, with
    ``role_arn``, those of that role, assumed from the profile's. AWS limits each account and
    Region on its own, so every lane runs at its own limit.
    """

    service: str
    region: str
    profile: str | None = None
    role_arn: str | None = None

    @property
    def credentials(self) -> str:
        """Where the lane's credentials come from, as shown: ``default``, the profile, the
        role, or ``PROFILE>ROLE``."""
        source = self.profile or "default"
        if self.role_arn is None:
            return source
        return self.role_arn if self.profile is None else f"{source}>{self.role_arn}"

    def __str__(self) -> str:
        return f"{self.service}/{self.credentials}/{self.region}"


@dataclass(frozen=True)
class InputRow:
    """One data row as read from the input file, before validation.

    ``number`` is the 1-based data row number (the header is not counted). ``values`` maps
    each column of the file to its cell; an empty cell is ``None``. CSV cells are strings,
    Parquet cells are native Python values. ``fingerprint`` is a 64-bit hash of the row number
    and the raw cells (see :func:`~bulk.engine.intake.row_fingerprints`), when the reader computed
    one.
    """

    number: int
    values: Mapping[str, Any]
    fingerprint: int | None = None


@dataclass(frozen=True)
class Row:
    """A validated row, ready to send: the ``CreateConfigurationSet`` keyword arguments, and
    what goes with the set.

    ``tenants``: the SES v2 tenants the set belongs to (its ``TenantName`` cell), each created
    when missing and associated with the set. ``destinations``: its event destinations, each
    the ``CreateConfigurationSetEventDestination`` keyword arguments but the set's name
    (``EventDestinationName`` and ``EventDestination``). ``digest`` is a stable hash of all
    of it and ``lane``: the ledger keeps it so a resumed run can tell a row the user changed
    from one it already handled. ``fingerprint`` is its record's (see :class:`InputRow`).
    """

    number: int
    name: str
    lane: Lane
    request: Mapping[str, Any]
    digest: str
    fingerprint: int | None = None
    tenants: tuple[str, ...] = ()
    destinations: tuple[Mapping[str, Any], ...] = ()

    def outcome(self, status: Status, **fields: Any) -> Outcome:
        """This row's ledger record: its number, name, lane, digest and fingerprint, plus
        ``status`` and ``fields`` (see :class:`Outcome`)."""
        return Outcome(
            row=self.number,
            name=self.name,
            status=status,
            lane=self.lane,
            digest=self.digest,
            fingerprint=self.fingerprint,
            **fields,
        )


@dataclass(frozen=True)
class Outcome:
    """The result of one row: one ledger record.

    ``restated``: not this run's work, but an earlier record said again with the row's
    fingerprint in the current scheme (see :data:`bulk.ledger.records.FINGERPRINTS`); it is
    written to the ledger and not counted in the run's summary.
    """

    row: int
    name: str
    status: Status
    lane: Lane
    digest: str
    code: str | None = None
    message: str = ""
    attempts: int = 0
    latency_ms: float | None = None
    request_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: int | None = None  # the input row's (see InputRow): lets a resume skip it unread
    restated: bool = False


@dataclass(frozen=True)
class Destination:
    """Where a run sends its calls; a ledger is bound to one target and one input file name.

    ``endpoint`` is ``None`` for AWS's own endpoint and ``"emulator"`` for ``--emulator``
    (whose port changes every run). ``role_arn``: the run's ``--role-arn``.
    """

    service: str
    region: str
    profile: str | None = None
    endpoint: str | None = None
    role_arn: str | None = None


@functools.cache
def bulk_version() -> str:
    """This package's installed version ("unknown" when it is imported from a bare tree)."""
    try:
        return metadata.version("bulk")
    except metadata.PackageNotFoundError:
        return "unknown"


def redact_url(url: str | None) -> str | None:
    """``url`` without user:password (an endpoint URL may carry them)."""
    if url is None or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
