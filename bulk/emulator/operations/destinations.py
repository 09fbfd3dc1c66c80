"""Event destinations of configuration sets: create, get, update, delete."""

from __future__ import annotations

from typing import Any

from bulk.emulator.operations.call import Call
from bulk.emulator.protocol import (
    ServiceError,
    already_exists,
    bad_request,
    check_name,
    not_found,
)
from bulk.emulator.state import Result

# "10 event destinations per configuration set" (SES service quotas); not adjustable.
MAX_EVENT_DESTINATIONS = 10


def create_configuration_set_event_destination(call: Call) -> dict[str, Any]:
    set_name, name, definition = _destination(call)
    result = call.state.create_destination(
        call.scope, set_name, name, definition, limit=MAX_EVENT_DESTINATIONS
    )
    if result is Result.MISSING_RESOURCE:
        raise not_found(set_name)
    if result is Result.EXISTS:
        raise already_exists(name, "Event destination")
    if result is Result.LIMIT:
        raise ServiceError(
            400,
            "LimitExceededException",
            f"Maximum number of event destinations ({MAX_EVENT_DESTINATIONS}) reached for "
            f"configuration set <{set_name}>.",
        )
    return {}


def get_configuration_set_event_destinations(call: Call) -> dict[str, Any]:
    set_name = check_name(call.params["ConfigurationSetName"])
    destinations = call.state.destinations(call.scope, set_name)
    if destinations is None:
        raise not_found(set_name)
    return call.output({"EventDestinations": destinations})


def update_configuration_set_event_destination(call: Call) -> dict[str, Any]:
    set_name, name, definition = _destination(call)
    result = call.state.update_destination(call.scope, set_name, name, definition)
    _raise_missing(result, set_name, name)
    return {}


def delete_configuration_set_event_destination(call: Call) -> dict[str, Any]:
    set_name = check_name(call.params["ConfigurationSetName"])
    name = check_name(call.params["EventDestinationName"], "event destination")
    _raise_missing(call.state.delete_destination(call.scope, set_name, name), set_name, name)
    return {}


def _destination(call: Call) -> tuple[str, str, dict[str, Any]]:
    """(set name, destination name, definition) of a create or update, checked."""
    set_name = check_name(call.params["ConfigurationSetName"])
    name = check_name(call.params["EventDestinationName"], "event destination")
    definition = call.params["EventDestination"]
    shape = call.route.model.input_shape.members["EventDestination"]
    # The destination kinds are the definition's structure members, as the model lists them
    # (EventBridge is SES v2's only). SES documents "one, and only one, destination".
    kinds = [member for member, s in shape.members.items() if s.type_name == "structure"]
    given = [kind for kind in kinds if definition.get(kind) is not None]
    if len(given) != 1:
        raise bad_request(
            f"An event destination needs exactly one of {', '.join(kinds)}; "
            f"got {', '.join(given) or 'none'}."
        )
    # Optional in the input model but required in the output one: the service has event
    # types for every destination it stores, so a definition without any is refused.
    if not definition.get("MatchingEventTypes"):
        raise bad_request("An event destination needs at least one of MatchingEventTypes.")
    return set_name, name, definition


def _raise_missing(result: Result, set_name: str, name: str) -> None:
    if result is Result.MISSING_RESOURCE:
        raise not_found(set_name)
    if result is Result.MISSING:
        raise not_found(name, "Event destination")


HANDLERS = {
    "CreateConfigurationSetEventDestination": create_configuration_set_event_destination,
    "GetConfigurationSetEventDestinations": get_configuration_set_event_destinations,
    "UpdateConfigurationSetEventDestination": update_configuration_set_event_destination,
    "DeleteConfigurationSetEventDestination": delete_configuration_set_event_destination,
}
