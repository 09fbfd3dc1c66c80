"""Configuration sets: create, get, list, delete."""

from __future__ import annotations

from typing import Any

from bulk.emulator.operations.call import Call
from bulk.emulator.protocol import already_exists, check_name, limit_exceeded, not_found
from bulk.emulator.state import Result


def create_configuration_set(call: Call) -> dict[str, Any]:
    name = check_name(call.params["ConfigurationSetName"])
    result = call.state.create(call.scope, name, call.params, max_sets=call.config.max_sets)
    if result is Result.EXISTS:
        raise already_exists(name)
    if result is Result.LIMIT:
        raise limit_exceeded(call.config.max_sets or 0)
    return {}


def get_configuration_set(call: Call) -> dict[str, Any]:
    name = check_name(call.params["ConfigurationSetName"])
    stored = call.state.get(call.scope, name)
    if stored is None:
        raise not_found(name)
    return call.output({**stored, "ConfigurationSetName": name})


def delete_configuration_set(call: Call) -> dict[str, Any]:
    name = check_name(call.params["ConfigurationSetName"])
    if not call.state.delete(call.scope, name):
        raise not_found(name)
    return {}


def list_configuration_sets(call: Call) -> dict[str, Any]:
    names = call.state.names(call.scope)
    contains = (call.params.get("Filter") or {}).get("CONFIGURATION_SET_NAME_CONTAINS")
    if contains:
        names = [name for name in names if contains in name]
    return call.page(names, key=lambda name: name)


HANDLERS = {
    "CreateConfigurationSet": create_configuration_set,
    "GetConfigurationSet": get_configuration_set,
    "ListConfigurationSets": list_configuration_sets,
    "DeleteConfigurationSet": delete_configuration_set,
}
