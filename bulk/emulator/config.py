"""How the emulator throttles and fails: one frozen record, replaced (never mutated) at run time."""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bulk.errors import UsageError

CREATE = "CreateConfigurationSet"
CREATE_TENANT = "CreateTenant"
CREATE_ASSOCIATION = "CreateTenantResourceAssociation"
CREATE_DESTINATION = "CreateConfigurationSetEventDestination"
# The operations that create something. Each has its own bucket per account and Region, all
# sized by ``rate``/``burst``: SES documents its 1 request/s for the creates it names, and the
# engine paces each (lane, operation) on its own, so the emulator does too. Reads, updates and
# deletes get ``other_rate``.
CREATES = (CREATE, CREATE_TENANT, CREATE_ASSOCIATION, CREATE_DESTINATION)
# The email-API operations the emulator answers; a service answers those its model has
# (pinpoint-email has no tenants).
OPERATIONS = (
    "CreateConfigurationSet",
    "GetConfigurationSet",
    "ListConfigurationSets",
    "DeleteConfigurationSet",
    "GetAccount",
    "CreateTenant",
    "GetTenant",
    "ListTenants",
    "DeleteTenant",
    "CreateTenantResourceAssociation",
    "DeleteTenantResourceAssociation",
    "ListTenantResources",
    "ListResourceTenants",
    "CreateConfigurationSetEventDestination",
    "GetConfigurationSetEventDestinations",
    "UpdateConfigurationSetEventDestination",
    "DeleteConfigurationSetEventDestination",
    "ListTagsForResource",
    "TagResource",
    "UntagResource",
)
ASSUME_ROLE = "AssumeRole"
GET_CALLER_IDENTITY = "GetCallerIdentity"
STS_OPERATIONS = (ASSUME_ROLE, GET_CALLER_IDENTITY)
# Every operation the emulator answers, email APIs and STS: the names limits and faults accept.
ALL_OPERATIONS = OPERATIONS + STS_OPERATIONS

# The account of access keys that neither AssumeRole issued nor ``key_accounts`` names.
DEFAULT_ACCOUNT = "123456789012"
ACCOUNT_ID = re.compile(r"[0-9]{12}")
# arn:aws:iam::ACCOUNT:role/[PATH/]NAME, in any partition (aws, aws-cn, aws-us-gov, ...).
ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):role/"
    r"(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]{1,64})"
)

# The ports a TCP socket can bind; 0 asks the system for any free one.
MAX_PORT = 65535

Limit = tuple[float, int]  # (requests per second, burst)


class ConfigError(UsageError, ValueError):
    """A setting is out of range or of the wrong type; the message names it and quotes the value.

    A ``UsageError``, so ``bulk emulate --fault-rate 2`` ends as a one-line message with exit 2.
    ``settings`` are the names the message uses for the settings at fault (``fault_rate``), so
    that a command line can say its own option names instead (``--fault-rate``).
    """

    def __init__(self, message: str, *settings: str) -> None:
        super().__init__(message)
        self.settings = settings


@dataclass(frozen=True)
class EmulatorConfig:
    """Settings of a running emulator.

    Throttling is a token bucket per account, Region and operation. ``rate`` and ``burst`` size
    the bucket of each create operation (``CreateConfigurationSet``, ``CreateTenant``,
    ``CreateTenantResourceAssociation``, ``CreateConfigurationSetEventDestination``: one bucket
    each; AWS documents 1 request/s for SES); ``rate=0`` turns their throttling off.
    ``operation_limits`` maps any other operation (STS's included, and the creates other than
    ``CreateConfigurationSet``) to its own ``(rate, burst)``; the rest get
    ``other_rate``/``other_burst``, generous so that pre-flight probes and test reads are never
    throttled. ``latency_ms`` (mean, uniform jitter of ``±latency_jitter``), ``fault_rate`` (a
    500 with nothing stored) and ``ambiguous_rate`` (stored, then a 500 or, for a share of
    ``ambiguous_drop_share``, a dropped connection) apply to ``fault_operations`` only (by
    default ``CreateConfigurationSet``; any operation may be named). ``max_sets`` caps the
    configuration sets of one account and Region (``LimitExceededException``). ``seed`` makes
    latency and faults repeatable.

    Accounts: keys issued by STS ``AssumeRole`` belong to the role's account; other access keys
    to the account ``key_accounts`` maps them to, else to ``default_account``.
    ``denied_roles`` holds role ARNs, or account ids (every role of that account), that
    ``AssumeRole`` refuses with ``AccessDenied``. ``credential_lifetime`` (seconds) caps the
    lifetime of issued credentials, whatever ``DurationSeconds`` asks (``None``: as asked,
    AWS's 3,600 s when not asked); a request signed with expired ones is refused.
    """

    rate: float = 1.0
    burst: int = 1
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    ambiguous_rate: float = 0.0
    max_sets: int | None = None
    seed: int | None = None
    other_rate: float = 50.0
    other_burst: int = 50
    latency_jitter: float = 0.5
    ambiguous_drop_share: float = 0.5
    fault_operations: frozenset[str] = frozenset({CREATE})
    default_account: str = DEFAULT_ACCOUNT
    # Mappings are stored read-only; they take no part in the hash (dicts cannot be hashed).
    key_accounts: Mapping[str, str] = field(default_factory=dict, hash=False)
    denied_roles: Collection[str] = frozenset()  # stored as a frozenset
    credential_lifetime: int | None = None
    operation_limits: Mapping[str, Limit] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("rate", "other_rate", "latency_ms"):
            _check_number(name, getattr(self, name), low=0.0)
        for name in ("fault_rate", "ambiguous_rate", "latency_jitter", "ambiguous_drop_share"):
            _check_number(name, getattr(self, name), low=0.0, high=1.0)
        if self.fault_rate + self.ambiguous_rate > 1.0:
            raise ConfigError(
                f"fault_rate + ambiguous_rate must be at most 1, got "
                f"{self.fault_rate!r} + {self.ambiguous_rate!r}",
                "fault_rate",
                "ambiguous_rate",
            )
        for name in ("burst", "other_burst"):
            _check_int(name, getattr(self, name), low=1)
        if self.max_sets is not None:
            _check_int("max_sets", self.max_sets, low=0)
        if self.seed is not None:
            _check_int("seed", self.seed, low=None)
        if self.credential_lifetime is not None:
            _check_int("credential_lifetime", self.credential_lifetime, low=1)
        unknown = set(self.fault_operations) - set(ALL_OPERATIONS)
        if unknown:
            raise ConfigError(
                f"fault_operations: unknown operation(s) {sorted(unknown)!r}", "fault_operations"
            )
        _check_account("default_account", self.default_account)
        # Normalised here, so that the constructor and ``replace`` take JSON-friendly values.
        object.__setattr__(self, "key_accounts", _key_accounts(self.key_accounts))
        object.__setattr__(self, "denied_roles", _denied_roles(self.denied_roles))
        object.__setattr__(self, "operation_limits", _operation_limits(self.operation_limits))

    def limits(self) -> tuple[dict[str, Limit], Limit]:
        """The bucket of each operation that has its own, and the bucket of every other one."""
        return (
            {**dict.fromkeys(CREATES, (self.rate, self.burst)), **self.operation_limits},
            (self.other_rate, self.other_burst),
        )

    def replace(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with ``changes`` applied (JSON-friendly: lists become frozensets)."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown!r}; known: {sorted(fields)!r}")
        values = dict(changes)
        if "fault_operations" in values:
            operations = values["fault_operations"]
            if isinstance(operations, str) or not isinstance(operations, list | tuple | set):
                raise ConfigError(
                    f"fault_operations must be a list, got {operations!r}", "fault_operations"
                )
            values["fault_operations"] = frozenset(operations)
        return dataclasses.replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view, as the admin endpoints show it."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["fault_operations"] = sorted(self.fault_operations)
        values["denied_roles"] = sorted(self.denied_roles)
        values["key_accounts"] = dict(sorted(self.key_accounts.items()))
        values["operation_limits"] = {
            operation: [rate, burst]
            for operation, (rate, burst) in sorted(self.operation_limits.items())
        }
        return values


def parse_limit(text: str) -> tuple[str, Limit]:
    """``OPERATION=RATE[/BURST]`` (``ListConfigurationSets=5/10``) as ``(operation, limit)``.

    The burst defaults to 1. ``bulk emulate --limit`` takes this form.
    """
    operation, sep, value = text.partition("=")
    rate_text, _, burst_text = value.partition("/")
    try:
        if not sep:
            raise ValueError
        rate = float(rate_text)
        burst = int(burst_text) if burst_text else 1
    except ValueError:
        raise ConfigError(
            f"operation_limits: expected OPERATION=RATE[/BURST] such as "
            f"ListConfigurationSets=5/10, got {text!r}",
            "operation_limits",
        ) from None
    return operation.strip(), (rate, burst)


def parse_key_account(text: str) -> tuple[str, str]:
    """``ACCESS_KEY_ID=ACCOUNT`` as a pair (``bulk emulate --key-account`` takes this form)."""
    key, sep, account = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"key_accounts: expected ACCESS_KEY_ID=ACCOUNT such as "
            f"AKIAEXAMPLE=111111111111, got {text!r}",
            "key_accounts",
        )
    return key.strip(), account.strip()


def check_port(port: object) -> None:
    """Raise ``ConfigError`` unless ``port`` is a TCP port, 0 to 65535 (0: any free port)."""
    _check_int("port", port, low=0, high=MAX_PORT)


def _key_accounts(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"key_accounts must map access key ids to accounts, got {value!r}", "key_accounts"
        )
    for key, account in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(
                f"key_accounts: an access key id must be a non-empty string, got {key!r}",
                "key_accounts",
            )
        _check_account("key_accounts", account, f" (for {key})")
    return types.MappingProxyType(dict(value))


def _denied_roles(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(
            f"denied_roles must be a list of role ARNs or account ids, got {value!r}",
            "denied_roles",
        )
    roles = frozenset(value)
    for role in roles:
        if not isinstance(role, str) or not (
            ACCOUNT_ID.fullmatch(role) or ROLE_ARN.fullmatch(role)
        ):
            raise ConfigError(
                f"denied_roles: expected a role ARN (arn:aws:iam::ACCOUNT:role/NAME) or a "
                f"12-digit account id, got {role!r}",
                "denied_roles",
            )
    return roles


def _operation_limits(value: object) -> Mapping[str, Limit]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"operation_limits must map operations to [rate, burst], got {value!r}",
            "operation_limits",
        )
    limits: dict[str, Limit] = {}
    for operation, limit in value.items():
        if operation == CREATE:
            raise ConfigError(
                f"operation_limits: set {CREATE}'s limit with rate and burst",
                "operation_limits",
                "rate",
                "burst",
            )
        if operation not in ALL_OPERATIONS:
            raise ConfigError(
                f"operation_limits: unknown operation {operation!r}; known: "
                f"{sorted(set(ALL_OPERATIONS) - {CREATE})!r}",
                "operation_limits",
            )
        if isinstance(limit, str) or not isinstance(limit, list | tuple) or len(limit) != 2:
            raise ConfigError(
                f"operation_limits: {operation} needs [rate, burst], got {limit!r}",
                "operation_limits",
            )
        rate, burst = limit
        _check_number("operation_limits", rate, low=0.0, what=f"{operation}'s rate")
        _check_int("operation_limits", burst, low=1, what=f"{operation}'s burst")
        limits[operation] = (float(rate), burst)
    return types.MappingProxyType(limits)


def _check_account(name: str, value: object, where: str = "") -> None:
    if not isinstance(value, str) or ACCOUNT_ID.fullmatch(value) is None:
        raise ConfigError(f"{name} must be a 12-digit account id{where}, got {value!r}", name)


def _check_number(
    name: str, value: object, *, low: float, high: float | None = None, what: str | None = None
) -> None:
    what = what or name
    bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
    prefix = "" if what == name else f"{name}: "
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{prefix}{what} must be a number ({bounds}), got {value!r}", name)
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{prefix}{what} must be {bounds}, got {value!r}", name)


def _check_int(
    name: str, value: object, *, low: int | None, high: int | None = None, what: str | None = None
) -> None:
    what = what or name
    prefix = "" if what == name else f"{name}: "
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{prefix}{what} must be an integer, got {value!r}", name)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bounds = f"at least {low}"
        else:
            bounds = f"at most {high}" if low is None else f"between {low} and {high}"
        raise ConfigError(f"{prefix}{what} must be {bounds}, got {value!r}", name)
