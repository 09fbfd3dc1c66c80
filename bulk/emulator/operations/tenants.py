"""SES v2 tenants and their resource associations.

A tenant is unique by name in an account and Region. A resource is named by its ARN; the only
resources the emulator holds are configuration sets, so an ARN of another kind (an identity,
a template), or of another account or Region, names nothing here (``NotFoundException``).
"""

from __future__ import annotations

import uuid
from typing import Any

from bulk.emulator.arns import CONFIGURATION_SET, Arn
from bulk.emulator.operations.call import Call
from bulk.emulator.operations.tags import check_tags, parse_arn, resource_not_found
from bulk.emulator.protocol import ServiceError, already_exists, bad_request, check_name, not_found
from bulk.emulator.state import Record, Result

# What every tenant's sending status is here: nothing pauses a tenant in the emulator.
SENDING_STATUS = "ENABLED"
# ListTenantResources' ResourceType of each ARN resource type the emulator holds.
RESOURCE_TYPES = {CONFIGURATION_SET: "CONFIGURATION_SET"}


def create_tenant(call: Call) -> dict[str, Any]:
    name = check_name(call.params["TenantName"], "tenant")
    account, region = call.scope
    tenant_id = str(uuid.uuid4())  # opaque: SES documents no format for it
    record: Record = {
        "TenantName": name,
        "TenantId": tenant_id,
        "TenantArn": str(Arn.tenant(account, region, name, tenant_id)),
        "CreatedTimestamp": call.now,
        "SendingStatus": SENDING_STATUS,
    }
    if "Tags" in call.params:
        record["Tags"] = check_tags(call.params["Tags"])
    if "SuppressionAttributes" in call.params:
        record["SuppressionAttributes"] = call.params["SuppressionAttributes"]
    if call.state.create_tenant(call.scope, record) is Result.EXISTS:
        raise already_exists(name, "Tenant")
    return call.output(record)


def get_tenant(call: Call) -> dict[str, Any]:
    name = check_name(call.params["TenantName"], "tenant")
    record = call.state.tenant(call.scope, name)
    if record is None:
        raise not_found(name, "Tenant")
    return call.output({"Tenant": record})


def list_tenants(call: Call) -> dict[str, Any]:
    records = call.state.tenant_records(call.scope)
    filters = call.params.get("Filter") or {}
    contains = filters.get("TENANT_NAME_CONTAINS")
    if contains:
        records = [r for r in records if contains in r["TenantName"]]
    status = filters.get("SENDING_STATUS")
    if status:
        records = [r for r in records if r["SendingStatus"] == status]
    return call.page(records, key=lambda record: record["TenantName"])


def delete_tenant(call: Call) -> dict[str, Any]:
    # SES: "When you delete a tenant, its associations with resources are removed, but the
    # resources themselves are not deleted." So a tenant with associations may be deleted.
    name = check_name(call.params["TenantName"], "tenant")
    if not call.state.delete_tenant(call.scope, name):
        raise not_found(name, "Tenant")
    return {}


def _association(call: Call) -> tuple[str, Any, str]:
    """The (tenant, ARN, set name) of an association call; the resource must be a set the
    caller's account and Region hold (a missing tenant is reported first, as SES does)."""
    tenant = check_name(call.params["TenantName"], "tenant")
    arn = parse_arn(call.params["ResourceArn"])
    set_name = _held_set(call, arn)
    if set_name is None:
        _raise_unless_tenant(call, tenant)
        raise resource_not_found(arn)
    return tenant, arn, set_name


def create_tenant_resource_association(call: Call) -> dict[str, Any]:
    tenant, arn, set_name = _association(call)
    result = call.state.associate(call.scope, tenant, set_name, call.now)
    if result is Result.MISSING_TENANT:
        raise not_found(tenant, "Tenant")
    if result is Result.MISSING_RESOURCE:
        raise resource_not_found(arn)
    if result is Result.EXISTS:
        raise ServiceError(
            400,
            "AlreadyExistsException",
            f"Resource <{arn}> is already associated with tenant <{tenant}>.",
        )
    return {}


def delete_tenant_resource_association(call: Call) -> dict[str, Any]:
    tenant, arn, set_name = _association(call)
    canonical = str(Arn.configuration_set(*call.scope, set_name))
    result = call.state.dissociate(call.scope, tenant, canonical)
    if result is Result.MISSING_TENANT:
        raise not_found(tenant, "Tenant")
    if result is Result.MISSING:
        raise ServiceError(
            404,
            "NotFoundException",
            f"Resource <{arn}> is not associated with tenant <{tenant}>.",
        )
    return {}


def list_tenant_resources(call: Call) -> dict[str, Any]:
    tenant = check_name(call.params["TenantName"], "tenant")
    wanted = (call.params.get("Filter") or {}).get("RESOURCE_TYPE")
    if wanted is not None:
        output_shape = call.route.model.output_shape
        known = output_shape.members["TenantResources"].member.members["ResourceType"].enum
        if wanted not in known:
            raise bad_request(
                f"Invalid RESOURCE_TYPE filter {wanted!r}: use one of {', '.join(known)}."
            )
    arns = call.state.tenant_resources(call.scope, tenant)
    if arns is None:
        raise not_found(tenant, "Tenant")
    listed = [(arn, _resource_type(arn)) for arn in arns]
    if wanted is not None:
        listed = [item for item in listed if item[1] == wanted]
    return call.page(
        listed,
        key=lambda item: item[0],
        render=lambda item: {"ResourceType": item[1], "ResourceArn": item[0]},
    )


def list_resource_tenants(call: Call) -> dict[str, Any]:
    arn = parse_arn(call.params["ResourceArn"])
    set_name = _held_set(call, arn)
    tenants = None if set_name is None else call.state.resource_tenants(call.scope, set_name)
    if tenants is None:
        raise resource_not_found(arn)
    return call.page(tenants, key=lambda tenant: tenant["TenantName"])


def _held_set(call: Call, arn: Arn) -> str | None:
    """The configuration set ``arn`` names, if it is of the caller's account and Region."""
    if arn.kind != CONFIGURATION_SET or not arn.within(*call.scope):
        return None
    return arn.name


def _raise_unless_tenant(call: Call, tenant: str) -> None:
    """A missing tenant is reported before a missing resource, as for held resources."""
    if call.state.tenant(call.scope, tenant) is None:
        raise not_found(tenant, "Tenant")


def _resource_type(arn: str) -> str:
    parsed = Arn.parse(arn)
    return RESOURCE_TYPES.get(parsed.kind, "") if parsed is not None else ""


HANDLERS = {
    "CreateTenant": create_tenant,
    "GetTenant": get_tenant,
    "ListTenants": list_tenants,
    "DeleteTenant": delete_tenant,
    "CreateTenantResourceAssociation": create_tenant_resource_association,
    "DeleteTenantResourceAssociation": delete_tenant_resource_association,
    "ListTenantResources": list_tenant_resources,
    "ListResourceTenants": list_resource_tenants,
}
