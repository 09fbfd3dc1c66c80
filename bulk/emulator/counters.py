"""What the emulator counts: calls, errors, faults, and what was created and deleted, by kind."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from typing import Any

from bulk.emulator.config import CREATE

Scope = tuple[str, str]  # (account, Region)


class Kind(enum.StrEnum):
    """What the emulator stores; the keys of the per-kind counters in ``stats()``."""

    CONFIGURATION_SETS = "configuration_sets"
    TENANTS = "tenants"
    EVENT_DESTINATIONS = "event_destinations"
    TENANT_ASSOCIATIONS = "tenant_associations"


class Counters:
    """Every counter of an emulator. Not thread-safe: ``EmulatorState`` holds its one lock
    around every use, so that a count and the change it counts are seen together.

    ``created``/``deleted`` count by kind, a delete's cascade included; ``creations`` count
    each item by key (see ``EmulatorState.creations``), so that "created exactly once" can be
    told from "created, deleted, created again".
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.calls_by_service: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.create_attempts: Counter[str] = Counter()
        self.create_accepted: Counter[str] = Counter()
        self.created: Counter[Kind] = Counter()
        self.deleted: Counter[Kind] = Counter()
        self.creations: dict[Scope, dict[Kind, Counter[str]]] = {}
        self.scope_calls: dict[Scope, Counter[str]] = {}
        self.scope_throttled: dict[Scope, Counter[str]] = {}
        self.scope_created: Counter[Scope] = Counter()
        self.assume_role: Counter[str] = Counter()

    def count_created(self, scope: Scope, kind: Kind, key: str) -> None:
        """One more item ``key`` of ``kind`` created in ``scope``."""
        self.created[kind] += 1
        self.creations.setdefault(scope, {}).setdefault(kind, Counter())[key] += 1
        if kind is Kind.CONFIGURATION_SETS:
            self.events["created"] += 1  # the historical total, sets only
            self.scope_created[scope] += 1

    def count_deleted(self, kind: Kind, count: int = 1) -> None:
        """``count`` items of ``kind`` deleted (by a delete call or its cascade)."""
        self.deleted[kind] += count
        if kind is Kind.CONFIGURATION_SETS:
            self.events["deleted"] += count

    def stats(
        self, existing: Callable[[Scope | None], dict[str, int]], scopes: set[Scope]
    ) -> dict[str, Any]:
        """The counters as JSON-ready data. ``existing(scope)`` says how many of each kind
        exist in ``scope`` (``None``: everywhere); ``scopes`` are those holding anything."""
        return {
            "calls": dict(sorted(self.calls.items())),
            "calls_by_service": dict(sorted(self.calls_by_service.items())),
            "created": self.events["created"],
            "deleted": self.events["deleted"],
            "throttled": self.events["throttled"],
            "faults": self.events["faults"],
            "ambiguous": self.events["ambiguous"],
            "dropped": self.events["dropped"],
            "errors": dict(sorted(self.errors.items())),
            **existing(None),
            "created_by_kind": {str(kind): self.created[kind] for kind in Kind},
            "deleted_by_kind": {str(kind): self.deleted[kind] for kind in Kind},
            "create_attempts": dict(self.create_attempts),
            "create_accepted": dict(self.create_accepted),
            "by_scope": self._by_scope(existing, scopes | set(self.scope_calls)),
            "assume_role": dict(sorted(self.assume_role.items())),
        }

    def _by_scope(
        self, existing: Callable[[Scope | None], dict[str, int]], scopes: set[Scope]
    ) -> dict[str, dict[str, Any]]:
        """Counters per ``"ACCOUNT/REGION"``."""
        out = {}
        for scope in sorted(scopes):
            calls = self.scope_calls.get(scope, Counter())
            throttled = self.scope_throttled.get(scope, Counter())
            account, region = scope
            creations = self.creations.get(scope, {})
            out[f"{account}/{region}"] = {
                "account": account,
                "region": region,
                "calls": dict(sorted(calls.items())),
                "throttled": dict(sorted(throttled.items())),
                "creates": {
                    "accepted": calls[CREATE] - throttled[CREATE],
                    "throttled": throttled[CREATE],
                },
                "created": self.scope_created[scope],
                **existing(scope),
                "creations": {
                    str(kind): dict(sorted(creations[kind].items()))
                    for kind in Kind
                    if kind in creations
                },
            }
        return out
