"""SES resource ARNs: how the emulator names configuration sets and tenants, and reads ARNs back.

The formats are IAM's for SES (service authorization reference):

- configuration set: ``arn:PARTITION:ses:REGION:ACCOUNT:configuration-set/NAME``
- tenant: ``arn:PARTITION:ses:REGION:ACCOUNT:tenant/NAME/TENANT_ID``

A tenant's ARN carries its id, so the ARN of a tenant deleted and created again under the same
name names nothing: the new tenant has a new id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONFIGURATION_SET = "configuration-set"
TENANT = "tenant"

_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):ses:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"(?P<kind>[a-z-]+)/(?P<path>.+)"
)


@dataclass(frozen=True)
class Arn:
    """One SES resource ARN: its place (partition, Region, account) and the resource it names.

    ``kind`` is the resource type (``configuration-set``, ``tenant``, or one the emulator does
    not hold, such as ``identity``); ``name`` the resource's name; ``tenant_id`` a tenant's id.
    """

    partition: str
    region: str
    account: str
    kind: str
    name: str
    tenant_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> Arn | None:
        """The ARN ``text`` spells, or ``None`` when it is not an SES resource ARN."""
        match = _ARN.fullmatch(text)
        if match is None:
            return None
        kind, path = match["kind"], match["path"]
        name, tenant_id = path, None
        if kind == TENANT:
            name, slash, tenant_id = path.partition("/")
            if not slash or not tenant_id or "/" in tenant_id:
                return None
        elif kind == CONFIGURATION_SET and "/" in path:
            return None
        return cls(match["partition"], match["region"], match["account"], kind, name, tenant_id)

    @classmethod
    def configuration_set(cls, account: str, region: str, name: str) -> Arn:
        """The ARN of configuration set ``name`` of ``account`` in ``region``."""
        return cls(partition_of(region), region, account, CONFIGURATION_SET, name)

    @classmethod
    def tenant(cls, account: str, region: str, name: str, tenant_id: str) -> Arn:
        """The ARN of tenant ``name`` (id ``tenant_id``) of ``account`` in ``region``."""
        return cls(partition_of(region), region, account, TENANT, name, tenant_id)

    def within(self, account: str, region: str) -> bool:
        """Whether the ARN names a resource of ``account`` in ``region`` (any partition)."""
        return (self.account, self.region) == (account, region)

    def __str__(self) -> str:
        path = self.name if self.tenant_id is None else f"{self.name}/{self.tenant_id}"
        return f"arn:{self.partition}:ses:{self.region}:{self.account}:{self.kind}/{path}"


def partition_of(region: str) -> str:
    """The partition of a Region, by its prefix (``cn-north-1`` is in ``aws-cn``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
