"""What is live in a lane, read through its limiters: the names of its configuration sets, and
one set's options and tags.

Every read is a call like any other (:class:`~bulk.engine.sender.LaneCalls`): its lane's limiter
for the operation (reads spend the account's budget too), one of the run's call slots, the
run's retry policy. Reads mutate nothing, so they need no intent line.

- :func:`list_names`: every set's name, one ``ListConfigurationSets`` call per
  :data:`PAGE_SIZE` sets. A lane that cannot list (a least-privilege policy that allows only
  the create, throttling past every retry) gets ``None`` and the reason: it then learns of a
  live name only from the create's ``AlreadyExists``, as it did before listing existed.
- :func:`read_set`: ``GetConfigurationSet`` and the set's tags (both APIs answer them in
  the set; were a model's answer to lack them, ``ListTagsForResource`` and the set's ARN,
  asked only when the caller wants tags).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bulk.engine.target import CallKind, CallResult
from bulk.input.columns import operation_shape
from bulk.input.regions import partition_of

if TYPE_CHECKING:
    from bulk.engine.sender import LaneCalls

__all__ = [
    "GET_SET",
    "LISTED",
    "LIST_SETS",
    "LIST_TAGS",
    "PAGE_SIZE",
    "LiveSet",
    "configuration_set_arn",
    "list_names",
    "read_pages",
    "read_set",
]

LIST_SETS: Final = "ListConfigurationSets"
GET_SET: Final = "GetConfigurationSet"
LIST_TAGS: Final = "ListTagsForResource"
PAGE_SIZE: Final = 1000  # sets per ListConfigurationSets page: the most both APIs give

# What a create would answer for a name the lane's listing found live, given without the call.
LISTED: Final = CallResult(
    CallKind.EXISTS, "AlreadyExistsException", "live before the run (ListConfigurationSets)"
)


def configuration_set_arn(region: str, account: str, name: str) -> str:
    """The ARN of configuration set ``name``: ``arn:PARTITION:ses:REGION:ACCOUNT:
    configuration-set/NAME``, the partition that of ``region`` (``aws-cn`` for ``cn-*``...)."""
    return f"arn:{partition_of(region)}:ses:{region}:{account}:configuration-set/{name}"


async def list_names(calls: LaneCalls) -> tuple[frozenset[str] | None, str]:
    """Every configuration set's name in ``calls``' lane, or ``None`` and why not.

    The first page is the lane's pre-flight answer when its target kept one (a
    :class:`~bulk.engine.target.ServiceTarget` does): a lane of up to 1,000 sets then lists
    them without a call of its own. Raises :class:`~bulk.engine.stopping.Halt` when the run
    or the lane stops, and :class:`~bulk.errors.TargetError` when the lane's credentials fail.
    """
    # Taken once: a later listing of the lane (there is none today) would read afresh.
    first: CallResult | None = getattr(calls.target, "first_page", None)
    if first is not None:
        calls.target.first_page = None  # type: ignore[attr-defined]  # ServiceTarget's
        if first.kind is CallKind.OK and first.data.get("NextToken"):
            await _charge(calls, LIST_SETS)  # the pre-flight's call, made outside the limiter
    names, why = await read_pages(
        calls, LIST_SETS, {"PageSize": PAGE_SIZE}, "ConfigurationSets", first=first
    )
    return (None, why) if names is None else (frozenset(names), "")


async def read_pages(
    calls: LaneCalls,
    operation: str,
    request: Mapping[str, Any],
    key: str,
    *,
    first: CallResult | None = None,
) -> tuple[list[Any] | None, str]:
    """The items under ``key`` of every page of list ``operation`` (``NextToken`` paging),
    starting from ``first`` when given; ``None`` and why when a page cannot be read.

    Raises as :func:`list_names` does.
    """
    items: list[Any] = []
    token: str | None = None
    result = first
    while True:
        if result is None:
            page = {**request, "NextToken": token} if token else request
            result = await calls.step(operation, page, ambiguous=False)
        if result.kind is not CallKind.OK:
            return None, _said(result)
        items.extend(result.data.get(key) or ())
        token = result.data.get("NextToken")
        if not token:
            return items, ""
        result = None


async def _charge(calls: LaneCalls, operation: str) -> None:
    """Take a token of the lane's ``operation`` for a call made outside its limiter (the
    pre-flight), so that the next call keeps its distance from it."""
    await calls.control.acquire(calls.lane, operation)
    calls.lane.limiter(operation).on_wire()


@dataclass(frozen=True)
class LiveSet:
    """One set as read: ``options`` (``GetConfigurationSet``'s answer), ``tags`` (None: not
    read), or ``problem``, why it could not be read."""

    options: Mapping[str, Any] | None = None
    tags: Sequence[Mapping[str, str]] | None = None
    problem: str = ""


async def read_set(calls: LaneCalls, name: str, *, tags: bool) -> LiveSet:
    """Set ``name`` of ``calls``' lane, with its tags when ``tags``.

    Raises as :func:`list_names` does.
    """
    result = await calls.step(GET_SET, {"ConfigurationSetName": name}, ambiguous=False)
    if result.kind is not CallKind.OK:
        return LiveSet(problem=_said(result))
    options = dict(result.data)
    found = options.pop("Tags", None)
    lane = calls.lane.lane
    if found is None and _answers_tags(lane.service):
        found = []  # the answer holds the set's tags, and it has none
    if not tags or found is not None:
        return LiveSet(options, found if tags else None)
    arn = configuration_set_arn(lane.region, await calls.target.account(), name)
    result = await calls.step(LIST_TAGS, {"ResourceArn": arn}, ambiguous=False)
    if result.kind is not CallKind.OK:
        return LiveSet(options, problem=f"tags: {_said(result)}")
    return LiveSet(options, result.data.get("Tags") or [])


@functools.cache
def _answers_tags(service: str) -> bool:
    """Whether ``service``'s ``GetConfigurationSet`` answers the set's tags (both do now)."""
    output = operation_shape(service, GET_SET, output=True)
    return output is not None and "Tags" in output.members


def _said(result: CallResult) -> str:
    return f"{result.code}: {result.message}".rstrip(": ") if result.code else result.message
