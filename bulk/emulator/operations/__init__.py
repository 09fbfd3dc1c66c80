"""The operations the emulator answers, on validated input; each returns the modeled output
or raises ``ServiceError``. One module per resource: ``sets``, ``tenants``, ``destinations``,
``tags``; ``call`` holds what they share (the call, paging)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bulk.emulator.operations import destinations, sets, tags, tenants
from bulk.emulator.operations.call import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Call, paging_of

# What GetAccount says about the (imaginary) account: healthy, out of the sandbox.
ACCOUNT = {
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0.0},
    "SendingEnabled": True,
    "DedicatedIpAutoWarmupEnabled": False,
    "EnforcementStatus": "HEALTHY",
    "ProductionAccessEnabled": True,
    "SuppressionAttributes": {"SuppressedReasons": []},
}

Handler = Callable[[Call], dict[str, Any]]


def run(call: Call) -> dict[str, Any]:
    """Run the call's operation against the state; errors are ``ServiceError``."""
    return HANDLERS[call.route.operation](call)


def get_account(call: Call) -> dict[str, Any]:
    return call.output(ACCOUNT)


# Looked up at every call, so a test may replace one handler.
HANDLERS: dict[str, Handler] = {
    **sets.HANDLERS,
    **tenants.HANDLERS,
    **destinations.HANDLERS,
    **tags.HANDLERS,
    "GetAccount": get_account,
}

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "HANDLERS",
    "MAX_PAGE_SIZE",
    "Call",
    "Handler",
    "paging_of",
    "run",
]
