"""One validated call, and the paging every list operation shares."""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.session

from bulk.emulator.config import EmulatorConfig
from bulk.emulator.protocol import Route, bad_request, project
from bulk.emulator.state import EmulatorState, Scope

# Neither model bounds PageSize for the lists the emulator answers (MaxItems has no min/max);
# a model that does is enforced by validation before a handler runs. Larger pages are cut to
# MAX_PAGE_SIZE rather than refused: the engine lists live names 1,000 at a time.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

T = TypeVar("T")


class Call:
    """One validated call: what an operation needs to run.

    ``scope`` is the caller's (account, Region); ``now`` the wall clock (epoch seconds) at
    which the call runs, for the timestamps the service records.
    """

    __slots__ = ("config", "now", "params", "route", "scope", "state")

    def __init__(
        self,
        route: Route,
        params: dict[str, Any],
        scope: Scope,
        state: EmulatorState,
        config: EmulatorConfig,
        now: float = 0.0,
    ) -> None:
        self.route = route
        self.params = params
        self.scope = scope
        self.state = state
        self.config = config
        self.now = now

    def output(self, value: dict[str, Any]) -> dict[str, Any]:
        """``value`` as the operation's modeled output shape (unknown members dropped)."""
        shape = self.route.model.output_shape
        return {} if shape is None else dict(project(value, shape))

    def page(
        self,
        items: Sequence[T],
        key: Callable[[T], str],
        render: Callable[[T], Any] = lambda item: item,
    ) -> dict[str, Any]:
        """The output of a list operation: the page of ``items`` the call asks for.

        ``items`` are sorted by ``key``. The token is the key of the page's last item, so the
        next page starts right after it: an item deleted or added between pages neither
        repeats nor hides another one. Member names come from the model (``Paging``).
        """
        paging = paging_of(self.route.service, self.route.operation)
        size = self.params.get(paging.limit_key, DEFAULT_PAGE_SIZE)
        if size < 1:
            raise bad_request(f"{paging.limit_key} must be at least 1, got {size}.")
        size = min(size, MAX_PAGE_SIZE)
        token = self.params.get(paging.input_token)
        start = 0
        if token:
            keys = [key(item) for item in items]
            start = bisect.bisect_right(keys, _decode_token(token))
        chunk = items[start : start + size]
        output: dict[str, Any] = {paging.result_key: [render(item) for item in chunk]}
        if start + size < len(items):
            output[paging.output_token] = _encode_token(key(chunk[-1]))
        return self.output(output)


@dataclass(frozen=True)
class Paging:
    """The members a list operation pages with, as its model names them."""

    input_token: str
    limit_key: str
    output_token: str
    result_key: str


@functools.cache
def paging_of(service: str, operation: str) -> Paging:
    """The paging members of ``operation``: from botocore's paginator model when it has one
    (SES v2 has none for ``ListConfigurationSets``), else the members both APIs use.

    Raises ``LookupError`` when the operation's shapes lack them: not a list the emulator
    can page.
    """
    session = botocore.session.get_session()
    model = session.get_service_model(service).operation_model(operation)
    try:
        config = session.get_paginator_model(service).get_paginator(operation)
    except ValueError:
        lists = [
            member
            for member, shape in model.output_shape.members.items()
            if shape.type_name == "list"
        ]
        config = {
            "input_token": "NextToken",
            "limit_key": "PageSize",
            "output_token": "NextToken",
            "result_key": lists[0] if len(lists) == 1 else "",
        }
    paging = Paging(
        config["input_token"], config["limit_key"], config["output_token"], config["result_key"]
    )
    inputs, outputs = model.input_shape.members, model.output_shape.members
    if not {paging.input_token, paging.limit_key} <= set(inputs) or not {
        paging.output_token,
        paging.result_key,
    } <= set(outputs):
        raise LookupError(f"{service} {operation} does not page with {paging}")
    return paging


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_request(f"Invalid NextToken {token!r}.") from None
