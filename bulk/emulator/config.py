"""How the emulator throttles and fails: one frozen record, replaced (never mutated) at run time."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bulk.errors import UsageError

CREATE = "CreateConfigurationSet"
OPERATIONS = (
    "CreateConfigurationSet",
    "GetConfigurationSet",
    "ListConfigurationSets",
    "DeleteConfigurationSet",
    "GetAccount",
)


# The ports a TCP socket can bind; 0 asks the system for any free one.
MAX_PORT = 65535


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

    ``rate`` and ``burst`` are the token bucket of ``CreateConfigurationSet`` per account and
    Region (AWS documents 1 request/s for SES); ``rate=0`` turns throttling off. The other
    operations share ``other_rate``/``other_burst``, generous so that pre-flight probes and test
    reads are never throttled. ``latency_ms`` (mean, uniform jitter of ``±latency_jitter``),
    ``fault_rate`` (a 500 with nothing stored) and ``ambiguous_rate`` (stored, then a 500 or, for
    a share of ``ambiguous_drop_share``, a dropped connection) apply to ``fault_operations``
    only. ``max_sets`` caps the configuration sets of one account and Region
    (``LimitExceededException``). ``seed`` makes latency and faults repeatable.
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
        unknown = set(self.fault_operations) - set(OPERATIONS)
        if unknown:
            raise ConfigError(
                f"fault_operations: unknown operation(s) {sorted(unknown)!r}", "fault_operations"
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
        values = dataclasses.asdict(self)
        values["fault_operations"] = sorted(self.fault_operations)
        return values


def check_port(port: object) -> None:
    """Raise ``ConfigError`` unless ``port`` is a TCP port, 0 to 65535 (0: any free port)."""
    _check_int("port", port, low=0, high=MAX_PORT)


def _check_number(name: str, value: object, *, low: float, high: float | None = None) -> None:
    bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number ({bounds}), got {value!r}", name)
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be {bounds}, got {value!r}", name)


def _check_int(name: str, value: object, *, low: int | None, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}", name)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bounds = f"at least {low}"
        else:
            bounds = f"at most {high}" if low is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {bounds}, got {value!r}", name)
