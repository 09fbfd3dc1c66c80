"""What the emulator remembers per account and Region: configuration sets, their event
destinations and tags, tenants and their resource associations; and its counters."""

from __future__ import annotations

import copy
import enum
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from bulk.emulator.accounts import Accounts
from bulk.emulator.arns import CONFIGURATION_SET, TENANT, Arn
from bulk.emulator.counters import Counters, Kind, Scope
from bulk.emulator.links import Links

__all__ = ["CreateResult", "EmulatorState", "Kind", "Record", "Result", "Scope"]

# A scope is (account, Region). Methods that take one also accept an access key id in place of
# the account, and store or read under that key's account (what a client signing with it sees).
Record = dict[str, Any]


class Result(enum.Enum):
    """The outcome of a change to the state; the operations turn it into an answer."""

    CREATED = "created"
    EXISTS = "exists"  # what was to be created exists already
    LIMIT = "limit"  # a quota is used up
    DONE = "done"  # an update or delete took effect
    MISSING = "missing"  # what was to be changed does not exist
    MISSING_TENANT = "missing_tenant"  # the tenant the call names does not exist
    MISSING_RESOURCE = "missing_resource"  # the set (or resource) the call names does not exist


CreateResult = Result  # the name earlier callers (benchmarks, tests) import


class EmulatorState:
    """Everything stored, and the counters, shared by every request of an emulator.

    Pass the same object to a new emulator (``make_app``/``running_emulator``) to keep what was
    stored and counted across a restart. Every method is atomic (one lock, never held across an
    ``await``), so tests may read it from another thread while it serves.

    Both APIs see the same sets, as on AWS: a set created through ``pinpoint-email`` is found
    through ``sesv2``. Deleting a tenant deletes its associations, not the resources (as SES
    documents). Deleting a set deletes its event destinations and its associations: they are
    parts of the set, and a set created again under the same name starts without them (SES
    does not say; an association naming a set that is gone could only mislead). ``accounts``
    holds the credentials STS issued, and says which account a key belongs to.

    Accessors for tests, each for one account and Region: ``names`` (sets), ``get`` (a set's
    stored request), ``destinations``, ``tenants``, ``tenant``, ``associations`` and
    ``creations`` (how many times each item was created: "exactly once" after a resumed run).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accounts = Accounts()
        self._sets: dict[Scope, dict[str, Record]] = {}
        # set name -> destination name -> definition, in the order they were created
        self._destinations: dict[Scope, dict[str, dict[str, Record]]] = {}
        self._tenants: dict[Scope, dict[str, Record]] = {}  # name -> the Tenant shape's members
        self._links: dict[Scope, Links] = {}  # tenant name <-> canonical resource ARN
        self._counters = Counters()

    # -- configuration sets ---------------------------------------------------------------------

    def create(
        self, scope: Scope, name: str, fields: Mapping[str, Any], *, max_sets: int | None
    ) -> Result:
        """Store a new set unless it exists or the scope already holds ``max_sets`` sets."""
        scope = self.resolve(scope)
        with self._lock:
            sets = self._sets.setdefault(scope, {})
            if name in sets:
                return Result.EXISTS
            if max_sets is not None and len(sets) >= max_sets:
                return Result.LIMIT
            sets[name] = copy.deepcopy(dict(fields))
            self._counters.count_created(scope, Kind.CONFIGURATION_SETS, name)
            return Result.CREATED

    def get(self, scope: Scope, name: str) -> Record | None:
        """A copy of the stored request of set ``name``, or ``None``."""
        scope = self.resolve(scope)
        with self._lock:
            fields = self._sets.get(scope, {}).get(name)
            return None if fields is None else copy.deepcopy(fields)

    def delete(self, scope: Scope, name: str) -> bool:
        """Remove set ``name`` with its event destinations and associations; ``False`` if none."""
        scope = self.resolve(scope)
        with self._lock:
            if self._sets.get(scope, {}).pop(name, None) is None:
                return False
            self._counters.count_deleted(Kind.CONFIGURATION_SETS)
            destinations = self._destinations.get(scope, {}).pop(name, {})
            self._counters.count_deleted(Kind.EVENT_DESTINATIONS, len(destinations))
            links = self._links.get(scope)
            if links is not None:
                arn = str(Arn.configuration_set(*scope, name))
                self._counters.count_deleted(Kind.TENANT_ASSOCIATIONS, links.drop_resource(arn))
            return True

    def names(self, scope: Scope) -> list[str]:
        """The names of the sets in ``scope``, sorted (the order ``ListConfigurationSets`` uses)."""
        scope = self.resolve(scope)
        with self._lock:
            return sorted(self._sets.get(scope, {}))

    def all_names(self) -> set[str]:
        """Every stored set name, whatever the account and Region."""
        with self._lock:
            return {name for sets in self._sets.values() for name in sets}

    def snapshot(self) -> dict[Scope, dict[str, Record]]:
        """A deep copy of every stored set, by (account, Region) and name."""
        with self._lock:
            return copy.deepcopy(self._sets)

    def resolve(self, scope: Scope) -> Scope:
        """``scope`` with an access key id in place of the account replaced by its account."""
        key_or_account, region = scope
        return self.accounts.account_of(key_or_account), region

    # -- event destinations ---------------------------------------------------------------------

    def create_destination(
        self, scope: Scope, set_name: str, name: str, definition: Mapping[str, Any], *, limit: int
    ) -> Result:
        """Add destination ``name`` to a set that holds fewer than ``limit`` of them."""
        scope = self.resolve(scope)
        with self._lock:
            if set_name not in self._sets.get(scope, {}):
                return Result.MISSING_RESOURCE
            destinations = self._destinations.setdefault(scope, {}).setdefault(set_name, {})
            if name in destinations:
                return Result.EXISTS
            if len(destinations) >= limit:
                return Result.LIMIT
            destinations[name] = copy.deepcopy(dict(definition))
            self._counters.count_created(scope, Kind.EVENT_DESTINATIONS, f"{set_name}/{name}")
            return Result.CREATED

    def update_destination(
        self, scope: Scope, set_name: str, name: str, definition: Mapping[str, Any]
    ) -> Result:
        """Replace the definition of destination ``name`` of a set."""
        scope = self.resolve(scope)
        with self._lock:
            if set_name not in self._sets.get(scope, {}):
                return Result.MISSING_RESOURCE
            destinations = self._destinations.get(scope, {}).get(set_name, {})
            if name not in destinations:
                return Result.MISSING
            destinations[name] = copy.deepcopy(dict(definition))
            return Result.DONE

    def delete_destination(self, scope: Scope, set_name: str, name: str) -> Result:
        """Remove destination ``name`` of a set."""
        scope = self.resolve(scope)
        with self._lock:
            if set_name not in self._sets.get(scope, {}):
                return Result.MISSING_RESOURCE
            if self._destinations.get(scope, {}).get(set_name, {}).pop(name, None) is None:
                return Result.MISSING
            self._counters.count_deleted(Kind.EVENT_DESTINATIONS)
            return Result.DONE

    def destinations(self, scope: Scope, set_name: str) -> list[Record] | None:
        """The destinations of a set as ``GetConfigurationSetEventDestinations`` lists them
        (``Name`` plus the definition), in the order they were created; ``None``: no such set."""
        scope = self.resolve(scope)
        with self._lock:
            if set_name not in self._sets.get(scope, {}):
                return None
            stored = self._destinations.get(scope, {}).get(set_name, {})
            return [{"Name": name, **copy.deepcopy(d)} for name, d in stored.items()]

    # -- tenants and their resources ------------------------------------------------------------

    def create_tenant(self, scope: Scope, record: Mapping[str, Any]) -> Result:
        """Store a tenant (``record`` holds the ``Tenant`` shape's members) unless it exists."""
        scope = self.resolve(scope)
        name = record["TenantName"]
        with self._lock:
            tenants = self._tenants.setdefault(scope, {})
            if name in tenants:
                return Result.EXISTS
            tenants[name] = copy.deepcopy(dict(record))
            self._counters.count_created(scope, Kind.TENANTS, name)
            return Result.CREATED

    def tenant(self, scope: Scope, name: str) -> Record | None:
        """A copy of tenant ``name`` (the ``Tenant`` shape's members), or ``None``."""
        scope = self.resolve(scope)
        with self._lock:
            record = self._tenants.get(scope, {}).get(name)
            return None if record is None else copy.deepcopy(record)

    def tenants(self, scope: Scope) -> list[str]:
        """The names of the tenants in ``scope``, sorted (the order ``ListTenants`` uses)."""
        scope = self.resolve(scope)
        with self._lock:
            return sorted(self._tenants.get(scope, {}))

    def tenant_records(self, scope: Scope) -> list[Record]:
        """Every tenant of ``scope``, sorted by name; shallow copies (records are never mutated
        in place, so their members may be shared)."""
        scope = self.resolve(scope)
        with self._lock:
            tenants = self._tenants.get(scope, {})
            return [dict(tenants[name]) for name in sorted(tenants)]

    def delete_tenant(self, scope: Scope, name: str) -> bool:
        """Remove tenant ``name`` and its associations (not the resources); ``False`` if none."""
        scope = self.resolve(scope)
        with self._lock:
            if self._tenants.get(scope, {}).pop(name, None) is None:
                return False
            self._counters.count_deleted(Kind.TENANTS)
            links = self._links.get(scope)
            if links is not None:
                self._counters.count_deleted(Kind.TENANT_ASSOCIATIONS, links.drop_tenant(name))
            return True

    def associate(self, scope: Scope, tenant: str, set_name: str, at: float) -> Result:
        """Associate configuration set ``set_name`` with ``tenant`` at ``at`` (epoch seconds)."""
        scope = self.resolve(scope)
        with self._lock:
            if tenant not in self._tenants.get(scope, {}):
                return Result.MISSING_TENANT
            if set_name not in self._sets.get(scope, {}):
                return Result.MISSING_RESOURCE
            arn = str(Arn.configuration_set(*scope, set_name))
            if not self._links.setdefault(scope, Links()).add(tenant, arn, at):
                return Result.EXISTS
            self._counters.count_created(scope, Kind.TENANT_ASSOCIATIONS, f"{tenant}/{arn}")
            return Result.CREATED

    def dissociate(self, scope: Scope, tenant: str, arn: str) -> Result:
        """Remove the association of ``tenant`` with the resource of (canonical) ``arn``."""
        scope = self.resolve(scope)
        with self._lock:
            if tenant not in self._tenants.get(scope, {}):
                return Result.MISSING_TENANT
            links = self._links.get(scope)
            if links is None or not links.remove(tenant, arn):
                return Result.MISSING
            self._counters.count_deleted(Kind.TENANT_ASSOCIATIONS)
            return Result.DONE

    def tenant_resources(self, scope: Scope, tenant: str) -> list[str] | None:
        """The ARNs associated with ``tenant``, sorted; ``None``: no such tenant."""
        scope = self.resolve(scope)
        with self._lock:
            if tenant not in self._tenants.get(scope, {}):
                return None
            links = self._links.get(scope, Links())
            return sorted(links.by_tenant.get(tenant, {}))

    def resource_tenants(self, scope: Scope, set_name: str) -> list[Record] | None:
        """The tenants of configuration set ``set_name`` as ``ListResourceTenants`` lists them,
        sorted by tenant name; ``None``: no such set."""
        scope = self.resolve(scope)
        with self._lock:
            if set_name not in self._sets.get(scope, {}):
                return None
            arn = str(Arn.configuration_set(*scope, set_name))
            tenants = self._tenants.get(scope, {})
            linked = self._links.get(scope, Links()).by_resource.get(arn, {})
            return [
                {
                    "TenantName": name,
                    "TenantId": tenants[name]["TenantId"],
                    "ResourceArn": arn,
                    "AssociatedTimestamp": linked[name],
                }
                for name in sorted(linked)
            ]

    def associations(self, scope: Scope) -> list[tuple[str, str]]:
        """Every ``(tenant name, resource ARN)`` association in ``scope``, sorted."""
        scope = self.resolve(scope)
        with self._lock:
            links = self._links.get(scope)
            return [] if links is None else links.pairs()

    # -- tags -----------------------------------------------------------------------------------

    def tags(self, scope: Scope, arn: Arn) -> list[Record] | None:
        """The tags of the set or tenant ``arn`` names; ``None``: no such resource here."""
        scope = self.resolve(scope)
        with self._lock:
            record = self._taggable(scope, arn)
            return None if record is None else copy.deepcopy(record.get("Tags", []))

    def tag(
        self, scope: Scope, arn: Arn, tags: Iterable[Mapping[str, str]], *, limit: int
    ) -> Result:
        """Add ``tags`` (a key given again takes the new value), keeping at most ``limit``."""
        scope = self.resolve(scope)
        with self._lock:
            record = self._taggable(scope, arn)
            if record is None:
                return Result.MISSING
            merged = {tag["Key"]: tag["Value"] for tag in record.get("Tags", [])}
            merged.update((tag["Key"], tag["Value"]) for tag in tags)
            if len(merged) > limit:
                return Result.LIMIT
            # A new list, never a mutation: tenant_records hands out shallow copies.
            record["Tags"] = [{"Key": key, "Value": value} for key, value in merged.items()]
            return Result.DONE

    def untag(self, scope: Scope, arn: Arn, keys: Iterable[str]) -> Result:
        """Remove the tags of ``keys`` (keys it does not have are ignored)."""
        scope = self.resolve(scope)
        drop = set(keys)
        with self._lock:
            record = self._taggable(scope, arn)
            if record is None:
                return Result.MISSING
            record["Tags"] = [tag for tag in record.get("Tags", []) if tag["Key"] not in drop]
            return Result.DONE

    def _taggable(self, scope: Scope, arn: Arn) -> Record | None:
        """The stored record whose ``Tags`` ``arn`` names; the caller holds the lock."""
        if not arn.within(*scope):
            return None
        if arn.kind == CONFIGURATION_SET:
            return self._sets.get(scope, {}).get(arn.name)
        if arn.kind == TENANT:
            record = self._tenants.get(scope, {}).get(arn.name)
            # The id tells a tenant from an earlier one of the same name.
            return record if record is not None and record["TenantId"] == arn.tenant_id else None
        return None

    # -- counters -------------------------------------------------------------------------------

    def creations(self, scope: Scope, kind: Kind) -> dict[str, int]:
        """How many times each item of ``kind`` was created in ``scope``, deleted ones included.

        Keys: a set's or tenant's name, ``SET/DESTINATION`` for an event destination,
        ``TENANT/RESOURCE_ARN`` for an association.
        """
        scope = self.resolve(scope)
        with self._lock:
            return dict(self._counters.creations.get(scope, {}).get(kind, {}))

    def count_call(self, service: str, operation: str) -> None:
        """A recognised call reached the server (throttled or not)."""
        with self._lock:
            self._counters.calls[operation] += 1
            self._counters.calls_by_service[service] += 1

    def count_create_attempt(self, name: str, *, accepted: bool) -> None:
        """A create for set ``name`` arrived; ``accepted`` when it got past the throttle."""
        with self._lock:
            self._counters.create_attempts[name] += 1
            if accepted:
                self._counters.create_accepted[name] += 1

    def count_scoped(self, scope: Scope, operation: str, *, admitted: bool) -> None:
        """A call of ``operation`` by an account in a Region; ``admitted`` past the throttle."""
        with self._lock:
            self._counters.scope_calls.setdefault(scope, Counter())[operation] += 1
            if not admitted:
                self._counters.scope_throttled.setdefault(scope, Counter())[operation] += 1

    def count_assume_role(self, role_arn: str) -> None:
        """An ``AssumeRole`` call named ``role_arn`` (throttled, denied or granted)."""
        with self._lock:
            self._counters.assume_role[role_arn] += 1

    def count_event(self, event: str) -> None:
        """One of ``throttled``, ``faults``, ``ambiguous``, ``dropped``."""
        with self._lock:
            self._counters.events[event] += 1

    def count_error(self, code: str) -> None:
        """An error reply was sent (throttles and faults included)."""
        with self._lock:
            self._counters.errors[code] += 1

    def stats(self) -> dict[str, Any]:
        """The counters as JSON-ready data; the body of ``GET /_emulator/stats``.

        ``created``/``deleted`` count configuration sets (as they always have);
        ``created_by_kind``/``deleted_by_kind`` count every kind, a delete's cascade included;
        ``configuration_sets``, ``tenants``, ``event_destinations`` and ``tenant_associations``
        are how many exist now; ``by_scope`` has the same per account and Region, with
        ``creations`` (see ``creations``).
        """
        with self._lock:
            scopes = set(self._sets) | set(self._tenants)
            stats = self._counters.stats(self._existing, scopes)
        stats["issued_credentials"] = self.accounts.issued()
        return stats

    def _existing(self, scope: Scope | None) -> dict[str, int]:
        """How many of each kind exist, in ``scope`` or everywhere; the caller holds the lock."""

        def of(table: Mapping[Scope, Any]) -> list[Any]:
            return list(table.values()) if scope is None else [table.get(scope, {})]

        return {
            str(Kind.CONFIGURATION_SETS): sum(len(sets) for sets in of(self._sets)),
            str(Kind.TENANTS): sum(len(tenants) for tenants in of(self._tenants)),
            str(Kind.EVENT_DESTINATIONS): sum(
                len(destinations)
                for by_set in of(self._destinations)
                for destinations in by_set.values()
            ),
            str(Kind.TENANT_ASSOCIATIONS): sum(len(links) for links in of(self._links)),
        }

    def reset(self) -> None:
        """Forget everything stored and zero every counter; credentials STS issued stay valid."""
        with self._lock:
            self._sets.clear()
            self._destinations.clear()
            self._tenants.clear()
            self._links.clear()
            self._counters = Counters()
