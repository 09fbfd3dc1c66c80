"""Tenant-resource associations of one account and Region, indexed from both ends."""

from __future__ import annotations


class Links:
    """Which tenants each resource is associated with, and since when (epoch seconds).

    Kept twice, by tenant and by resource, so that deleting a tenant or a resource drops its
    associations in time proportional to its own links, never to the whole scope's (a rollback
    deletes thousands of sets, one call each). Invariant: ``by_tenant[t][r] == by_resource[r][t]``
    for every link, and neither index keeps an empty entry. Not thread-safe: ``EmulatorState``
    holds its lock around every call.
    """

    __slots__ = ("by_resource", "by_tenant")

    def __init__(self) -> None:
        self.by_tenant: dict[str, dict[str, float]] = {}
        self.by_resource: dict[str, dict[str, float]] = {}

    def __len__(self) -> int:
        return sum(len(resources) for resources in self.by_tenant.values())

    def has(self, tenant: str, resource: str) -> bool:
        """Whether ``tenant`` is associated with ``resource``."""
        return resource in self.by_tenant.get(tenant, {})

    def add(self, tenant: str, resource: str, at: float) -> bool:
        """Associate them at ``at``; ``False`` (and nothing changes) when they already are."""
        if self.has(tenant, resource):
            return False
        self.by_tenant.setdefault(tenant, {})[resource] = at
        self.by_resource.setdefault(resource, {})[tenant] = at
        return True

    def remove(self, tenant: str, resource: str) -> bool:
        """Dissociate them; ``False`` when they were not associated."""
        if not self.has(tenant, resource):
            return False
        _pop(self.by_tenant, tenant, resource)
        _pop(self.by_resource, resource, tenant)
        return True

    def drop_tenant(self, tenant: str) -> int:
        """Remove every association of ``tenant``; how many there were."""
        resources = self.by_tenant.pop(tenant, {})
        for resource in resources:
            _pop(self.by_resource, resource, tenant)
        return len(resources)

    def drop_resource(self, resource: str) -> int:
        """Remove every association of ``resource``; how many there were."""
        tenants = self.by_resource.pop(resource, {})
        for tenant in tenants:
            _pop(self.by_tenant, tenant, resource)
        return len(tenants)

    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(tenant, resource)``, sorted."""
        return sorted(
            (tenant, resource)
            for tenant, resources in self.by_tenant.items()
            for resource in resources
        )


def _pop(index: dict[str, dict[str, float]], outer: str, inner: str) -> None:
    """Remove ``index[outer][inner]``, and ``index[outer]`` once empty."""
    entries = index[outer]
    del entries[inner]
    if not entries:
        del index[outer]
