"""What the emulator remembers: configuration sets per account and Region, and its counters."""

from __future__ import annotations

import copy
import enum
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from bulk.emulator.accounts import Accounts
from bulk.emulator.config import CREATE

# (account, Region). Methods that take a scope also accept an access key id in place of the
# account, and store or read under that key's account (what a client signing with it sees).
Scope = tuple[str, str]


class CreateResult(enum.Enum):
    """The outcome of storing a new configuration set."""

    CREATED = "created"
    EXISTS = "exists"
    LIMIT = "limit"


class EmulatorState:
    """Stored configuration sets and counters, shared by every request of an emulator.

    Pass the same object to a new emulator (``make_app``/``running_emulator``) to keep the
    configuration sets and counters across a restart. Every method is atomic (one lock, never
    held across an ``await``), so tests may read it from another thread while it serves.

    Both APIs see the same sets, as on AWS: a set created through ``pinpoint-email`` is found
    through ``sesv2``. ``accounts`` holds the credentials STS issued, and says which account a
    key belongs to.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accounts = Accounts()
        self._sets: dict[Scope, dict[str, dict[str, Any]]] = {}
        self._calls: Counter[str] = Counter()
        self._calls_by_service: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._events: Counter[str] = Counter()
        self._create_attempts: Counter[str] = Counter()
        self._create_accepted: Counter[str] = Counter()
        self._scope_calls: dict[Scope, Counter[str]] = {}
        self._scope_throttled: dict[Scope, Counter[str]] = {}
        self._scope_created: Counter[Scope] = Counter()
        self._assume_role: Counter[str] = Counter()

    # -- configuration sets ---------------------------------------------------------------------

    def create(
        self, scope: Scope, name: str, fields: Mapping[str, Any], *, max_sets: int | None
    ) -> CreateResult:
        """Store a new set unless it exists or the scope already holds ``max_sets`` sets."""
        scope = self.resolve(scope)
        with self._lock:
            sets = self._sets.setdefault(scope, {})
            if name in sets:
                return CreateResult.EXISTS
            if max_sets is not None and len(sets) >= max_sets:
                return CreateResult.LIMIT
            sets[name] = copy.deepcopy(dict(fields))
            self._events["created"] += 1
            self._scope_created[scope] += 1
            return CreateResult.CREATED

    def get(self, scope: Scope, name: str) -> dict[str, Any] | None:
        """A copy of the stored request of set ``name``, or ``None``."""
        scope = self.resolve(scope)
        with self._lock:
            fields = self._sets.get(scope, {}).get(name)
            return None if fields is None else copy.deepcopy(fields)

    def delete(self, scope: Scope, name: str) -> bool:
        """Remove set ``name``; ``False`` if there was none."""
        scope = self.resolve(scope)
        with self._lock:
            removed = self._sets.get(scope, {}).pop(name, None) is not None
            if removed:
                self._events["deleted"] += 1
            return removed

    def names(self, scope: Scope) -> list[str]:
        """The names of the sets in ``scope``, sorted (the order ``ListConfigurationSets`` uses)."""
        scope = self.resolve(scope)
        with self._lock:
            return sorted(self._sets.get(scope, {}))

    def all_names(self) -> set[str]:
        """Every stored name, whatever the account and Region."""
        with self._lock:
            return {name for sets in self._sets.values() for name in sets}

    def snapshot(self) -> dict[Scope, dict[str, dict[str, Any]]]:
        """A deep copy of every stored set, by (account, Region) and name."""
        with self._lock:
            return copy.deepcopy(self._sets)

    def resolve(self, scope: Scope) -> Scope:
        """``scope`` with an access key id in place of the account replaced by its account."""
        key_or_account, region = scope
        return self.accounts.account_of(key_or_account), region

    # -- counters -------------------------------------------------------------------------------

    def count_call(self, service: str, operation: str) -> None:
        """A recognised call reached the server (throttled or not)."""
        with self._lock:
            self._calls[operation] += 1
            self._calls_by_service[service] += 1

    def count_create_attempt(self, name: str, *, accepted: bool) -> None:
        """A create for ``name`` arrived; ``accepted`` when it got past the throttle."""
        with self._lock:
            self._create_attempts[name] += 1
            if accepted:
                self._create_accepted[name] += 1

    def count_scoped(self, scope: Scope, operation: str, *, admitted: bool) -> None:
        """A call of ``operation`` by an account in a Region; ``admitted`` past the throttle."""
        with self._lock:
            self._scope_calls.setdefault(scope, Counter())[operation] += 1
            if not admitted:
                self._scope_throttled.setdefault(scope, Counter())[operation] += 1

    def count_assume_role(self, role_arn: str) -> None:
        """An ``AssumeRole`` call named ``role_arn`` (throttled, denied or granted)."""
        with self._lock:
            self._assume_role[role_arn] += 1

    def count_event(self, event: str) -> None:
        """One of ``throttled``, ``faults``, ``ambiguous``, ``dropped``."""
        with self._lock:
            self._events[event] += 1

    def count_error(self, code: str) -> None:
        """An error reply was sent (throttles and faults included)."""
        with self._lock:
            self._errors[code] += 1

    def stats(self) -> dict[str, Any]:
        """The counters as JSON-ready data; the body of ``GET /_emulator/stats``."""
        with self._lock:
            return {
                "calls": dict(sorted(self._calls.items())),
                "calls_by_service": dict(sorted(self._calls_by_service.items())),
                "created": self._events["created"],
                "deleted": self._events["deleted"],
                "throttled": self._events["throttled"],
                "faults": self._events["faults"],
                "ambiguous": self._events["ambiguous"],
                "dropped": self._events["dropped"],
                "errors": dict(sorted(self._errors.items())),
                "configuration_sets": sum(len(sets) for sets in self._sets.values()),
                "create_attempts": dict(self._create_attempts),
                "create_accepted": dict(self._create_accepted),
                "by_scope": self._by_scope(),
                "assume_role": dict(sorted(self._assume_role.items())),
                "issued_credentials": self.accounts.issued(),
            }

    def _by_scope(self) -> dict[str, dict[str, Any]]:
        """Counters per ``"ACCOUNT/REGION"``; the caller holds the lock."""
        scopes = set(self._scope_calls) | set(self._sets)
        out = {}
        for scope in sorted(scopes):
            calls = self._scope_calls.get(scope, Counter())
            throttled = self._scope_throttled.get(scope, Counter())
            account, region = scope
            out[f"{account}/{region}"] = {
                "account": account,
                "region": region,
                "calls": dict(sorted(calls.items())),
                "throttled": dict(sorted(throttled.items())),
                "creates": {
                    "accepted": calls[CREATE] - throttled[CREATE],
                    "throttled": throttled[CREATE],
                },
                "created": self._scope_created[scope],
                "configuration_sets": len(self._sets.get(scope, {})),
            }
        return out

    def reset(self) -> None:
        """Forget every set and zero every counter; credentials STS issued stay valid."""
        with self._lock:
            self._sets.clear()
            self._scope_calls.clear()
            self._scope_throttled.clear()
            for counter in (
                self._calls,
                self._calls_by_service,
                self._errors,
                self._events,
                self._create_attempts,
                self._create_accepted,
                self._scope_created,
                self._assume_role,
            ):
                counter.clear()
