"""The limits on a request: every ``min``/``max`` of the model, and the documented ones it lacks.

`limits_for` reads every bound the model of ``CreateConfigurationSet`` gives (and the few the
service documents but its model lacks, `_DOCUMENTED_LIMITS`); `limit_problems` checks a
request against them and says each problem in the input's terms (columns are named by their
leaf member, see :mod:`bulk.input.columns`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bulk.input.columns import TAG_PREFIX, Problem, input_shape, show

__all__ = ["Limit", "limit_problems", "limits_for"]

_Path = tuple[str, ...]  # member names from the request's root; "[]" steps into each list item

# Limits the service documents but its model does not carry (no "max" trait in either
# pinpoint-email or sesv2), by request path. Used only where the model has no limit of its own.
_DOCUMENTED_LIMITS: Final[Mapping[_Path, tuple[int, str]]] = {
    # SES v2 API reference, "Tag": "A resource can have as many as 50 tags." (tags whose key
    # starts with aws: do not count, but such keys are refused anyway).
    ("Tags",): (50, "a configuration set can have at most 50 tags (SES API reference, Tag)"),
    # Dedicated IP pool names: the API references (CreateDedicatedIpPool, DedicatedIpPool) give
    # no length; CloudFormation documents AWS::SES::DedicatedIpPool PoolName as
    # ^[a-z0-9_-]{0,64}$ (the CDK: "must not exceed 64 characters"). Only the length is checked
    # here: the character rule is CloudFormation's, and the API itself does not state it.
    ("DeliveryOptions", "SendingPoolName"): (64, "a dedicated IP pool name is at most 64"),
    # A domain name: at most 253 characters (RFC 1035's 255 octets on the wire).
    ("TrackingOptions", "CustomRedirectDomain"): (253, "a domain name is at most 253"),
}
_LENGTH_TYPES: Final = frozenset({"string", "list", "map", "blob"})
_NUMBER_TYPES: Final = frozenset({"integer", "long", "float", "double"})


@dataclass(frozen=True, slots=True)
class Limit:
    """A bound on one member of the request: its length (text, list) or its value (number).

    ``rule`` says the documented limit in words (from `_DOCUMENTED_LIMITS`); '' for the model's.
    """

    path: _Path
    length: bool
    minimum: float | None
    maximum: float | None
    rule: str = ""


@functools.cache
def limits_for(service: str) -> tuple[Limit, ...]:
    """Every min/max the model of ``service`` gives, plus the documented ones it lacks.

    botocore's ParamValidator checks ``min`` only; this covers both, so a limit a newer model
    adds is checked without a code change.
    """
    found: dict[_Path, Limit] = {}

    def walk(shape: Any, path: _Path, seen: frozenset[str]) -> None:
        if shape.name in seen:  # a recursive shape: its members were walked further up
            return
        seen = seen | {shape.name}
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        kind = shape.type_name
        bounded = low is not None or high is not None
        if path and bounded and (kind in _LENGTH_TYPES or kind in _NUMBER_TYPES):
            found[path] = Limit(path, kind in _LENGTH_TYPES, low, high)
        documented = _DOCUMENTED_LIMITS.get(path)
        if documented is not None and kind in _LENGTH_TYPES and high is None:
            found[path] = Limit(path, True, low, documented[0], documented[1])
        if kind == "structure":
            for name, member in shape.members.items():
                walk(member, (*path, name), seen)
        elif kind == "list":
            walk(shape.member, (*path, "[]"), seen)

    walk(input_shape(service), (), frozenset())
    return tuple(found.values())


def limit_problems(request: Mapping[str, Any], limits: Sequence[Limit]) -> list[Problem]:
    """A problem for each value of ``request`` outside one of ``limits``."""
    problems: list[Problem] = []
    for limit in limits:
        if "[]" in limit.path:
            found: Iterable[tuple[Any, Any]] = _values_at(request, limit.path, None)
        else:  # the common case, without a generator
            value: Any = request
            for step in limit.path:
                value = value.get(step) if isinstance(value, dict) else None
                if value is None:
                    break
            if value is None:
                continue
            found = ((None, value),)
        for item, value in found:
            if isinstance(value, bool):
                continue
            if limit.length:
                if not isinstance(value, str | bytes | list | dict):
                    continue  # a wrong type: ParamValidator's to report
                size: float = len(value)
            elif isinstance(value, int | float):
                size = value
            else:
                continue
            if (limit.minimum is None or size >= limit.minimum) and (
                limit.maximum is None or size <= limit.maximum
            ):
                continue
            problems.append(_limit_problem(limit, item, value, size))
    return problems


def _values_at(node: Any, path: _Path, item: Any) -> Iterator[tuple[Any, Any]]:
    """The values at ``path`` below ``node``, each with the list item it is in (or None)."""
    if not path:
        yield item, node
        return
    step, rest = path[0], path[1:]
    if step == "[]":
        if isinstance(node, list):
            for each in node:
                yield from _values_at(each, rest, each)
    elif isinstance(node, dict) and node.get(step) is not None:
        yield from _values_at(node[step], rest, item)


def _limit_problem(limit: Limit, item: Any, value: Any, size: float) -> Problem:
    """The message for ``value`` outside ``limit``, in the input's terms."""
    low, high = limit.minimum, limit.maximum
    too_long = high is not None and size > high
    if limit.path == ("Tags",) and high is not None and size > high:
        return Problem(
            "TooManyTags",
            f"{_figure(size)} tag: columns are set in this row; {limit.rule}; "
            f"empty {_figure(size - high)} of them",
        )
    if limit.path[0] == "Tags" and isinstance(item, dict) and "Key" in item:
        where = f"column {show(TAG_PREFIX + str(item['Key']))}"
    else:
        # Columns are named by their leaf member (the names are unique in both models).
        where = f"column {[step for step in limit.path if step != '[]'][-1]}"
    if not limit.length:
        return Problem(
            "InvalidNumber", f"{where}: {_figure(value)} is out of range ({_bounds(low, high)})"
        )
    unit = "characters" if isinstance(value, str | bytes) else "items"
    rule = (limit.rule or f"at most {_figure(high)}") if too_long else f"at least {_figure(low)}"
    shown = show(value)
    # show() cuts a long value and gives its length itself.
    size_text = "is too long" if shown.endswith(" characters)") else f"is {_figure(size)} {unit}"
    return Problem(
        "ValueTooLong" if too_long else "ValueTooShort",
        f"{where}: {shown} {size_text}; {rule} {unit}; {'shorten' if too_long else 'lengthen'} it",
    )


def _figure(number: float | None) -> str:
    """A number as a person writes it: 1000000, not 1e+06 or 1000000.0."""
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return str(number)


def _bounds(low: float | None, high: float | None) -> str:
    return f"{'' if low is None else _figure(low)}-{'' if high is None else _figure(high)}"
