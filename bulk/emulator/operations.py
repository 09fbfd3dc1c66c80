"""The five operations, on validated input; each returns the modeled output or raises."""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable
from typing import Any

from bulk.emulator.config import EmulatorConfig
from bulk.emulator.protocol import (
    Route,
    already_exists,
    bad_request,
    check_name,
    limit_exceeded,
    not_found,
    project,
)
from bulk.emulator.state import CreateResult, EmulatorState, Scope

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# What GetAccount says about the (imaginary) account: healthy, out of the sandbox.
ACCOUNT = {
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0.0},
    "SendingEnabled": True,
    "DedicatedIpAutoWarmupEnabled": False,
    "EnforcementStatus": "HEALTHY",
    "ProductionAccessEnabled": True,
    "SuppressionAttributes": {"SuppressedReasons": []},
}

Handler = Callable[["Call"], dict[str, Any]]


class Call:
    """One validated call: what an operation needs to run."""

    __slots__ = ("config", "params", "route", "scope", "state")

    def __init__(
        self,
        route: Route,
        params: dict[str, Any],
        scope: Scope,
        state: EmulatorState,
        config: EmulatorConfig,
    ) -> None:
        self.route = route
        self.params = params
        self.scope = scope
        self.state = state
        self.config = config

    def output(self, value: dict[str, Any]) -> dict[str, Any]:
        """``value`` as the operation's modeled output shape (unknown members dropped)."""
        shape = self.route.model.output_shape
        return {} if shape is None else dict(project(value, shape))


def run(call: Call) -> dict[str, Any]:
    """Run the call's operation against the state; errors are ``ServiceError``."""
    return HANDLERS[call.route.operation](call)


def create_configuration_set(call: Call) -> dict[str, Any]:
    name = check_name(call.params["ConfigurationSetName"])
    result = call.state.create(call.scope, name, call.params, max_sets=call.config.max_sets)
    if result is CreateResult.EXISTS:
        raise already_exists(name)
    if result is CreateResult.LIMIT:
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
    page_size = call.params.get("PageSize", DEFAULT_PAGE_SIZE)
    if page_size < 1:
        raise bad_request(f"PageSize must be at least 1, got {page_size}.")
    page_size = min(page_size, MAX_PAGE_SIZE)
    token = call.params.get("NextToken")
    # Names are listed sorted; a token is the last name of the previous page, so a set
    # deleted between pages neither repeats nor hides another one.
    start = bisect.bisect_right(names, _decode_token(token)) if token else 0
    page = names[start : start + page_size]
    output: dict[str, Any] = {"ConfigurationSets": page}
    if start + page_size < len(names):
        output["NextToken"] = _encode_token(page[-1])
    return call.output(output)


def get_account(call: Call) -> dict[str, Any]:
    return call.output(ACCOUNT)


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_request(f"Invalid NextToken {token!r}.") from None


HANDLERS: dict[str, Handler] = {
    "CreateConfigurationSet": create_configuration_set,
    "GetConfigurationSet": get_configuration_set,
    "ListConfigurationSets": list_configuration_sets,
    "DeleteConfigurationSet": delete_configuration_set,
    "GetAccount": get_account,
}
