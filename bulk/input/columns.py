"""The input columns of a service: their names, where each goes in the request, their limits.

Input columns are the API's member names. Which columns a service has, their types, enum
values and numeric limits all come from botocore's model of ``CreateConfigurationSet``; this
module only says where each column goes in the request (`OPTION_COLUMNS`). Every ``min``/``max``
of the model is checked on a request by `limit_problems` (with the few limits the service
documents but its model lacks, `_DOCUMENTED_LIMITS`). The AWS tag rules, `show` (how a
message quotes a value) and `Problem` (one problem with a row, as every check reports it) live
here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bulk.errors import UsageError
from bulk.models import SERVICES

__all__ = [
    "NAME_COLUMN",
    "OPTION_COLUMNS",
    "PROFILE_COLUMN",
    "REGION_COLUMN",
    "ROLE_COLUMN",
    "ROUTING_COLUMNS",
    "TAG_PREFIX",
    "Column",
    "Limit",
    "Problem",
    "columns_for",
    "input_shape",
    "limit_problems",
    "limits_for",
    "role_arn_problem",
    "show",
    "tag_key_problem",
    "tag_value_problem",
]

NAME_COLUMN: Final = "ConfigurationSetName"
REGION_COLUMN: Final = "Region"
PROFILE_COLUMN: Final = "Profile"
ROLE_COLUMN: Final = "RoleArn"
# The columns that say where a row goes (its lane), in the order lanes are keyed by.
ROUTING_COLUMNS: Final = (REGION_COLUMN, PROFILE_COLUMN, ROLE_COLUMN)
TAG_PREFIX: Final = "tag:"

# An IAM role's ARN in any partition (aws, aws-cn, aws-us-gov, ...): account, then the role's
# path and name (IAM allows \w+=,.@- and / in them, 512 characters in all).
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)

# Where each option column goes in the request: (structure, member). The column exists for a
# service only if the service's input shape has that member (HttpsPolicy and
# MaxDeliverySeconds are SES v2 only).
OPTION_COLUMNS: Final[Mapping[str, tuple[str, str]]] = {
    "SendingPoolName": ("DeliveryOptions", "SendingPoolName"),
    "TlsPolicy": ("DeliveryOptions", "TlsPolicy"),
    "MaxDeliverySeconds": ("DeliveryOptions", "MaxDeliverySeconds"),
    "ReputationMetricsEnabled": ("ReputationOptions", "ReputationMetricsEnabled"),
    "LastFreshStart": ("ReputationOptions", "LastFreshStart"),
    "SendingEnabled": ("SendingOptions", "SendingEnabled"),
    "CustomRedirectDomain": ("TrackingOptions", "CustomRedirectDomain"),
    "HttpsPolicy": ("TrackingOptions", "HttpsPolicy"),
}

_OPERATION = "CreateConfigurationSet"

# AWS tag rules (SES API reference, "Tag"): key 1-128, value 0-256 characters of Unicode
# letters, digits, white space and _ . : / = + - @; the aws: prefix is reserved.
_TAG_KEY_MAX = 128
_TAG_VALUE_MAX = 256
# \w is letters, digits and _; the rest are the Unicode space separators (category Z).
_TAG_CHARS_RULE = "tags allow letters, digits, spaces and _ . : / = + - @"
_TAG_RE = re.compile(r"[\w.:/=+\-@ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*")
_SHOW_LIMIT = 80


@dataclass(frozen=True)
class Column:
    """One input column of a service: where it goes in the request and what it holds.

    ``kind`` is ``text``, ``enum``, ``boolean``, ``timestamp`` or ``integer`` for option
    columns (from the member's shape), ``name``, ``region`` or ``profile`` for the others.
    """

    name: str
    kind: str
    structure: str | None = None
    member: str | None = None
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None


def show(value: object, limit: int = _SHOW_LIMIT) -> str:
    """Quote a value for a one-line message: repr-escaped (terminal-safe), long ones cut."""
    if isinstance(value, bool | int | float):
        return repr(value)
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return f"{text[:limit]!r}... ({len(text)} characters)"
    return repr(text)


def tag_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a tag key (AWS tag rules), or None if it can."""
    if not key:
        return "a tag key is 1-128 characters"
    return _tag_problem(key, f"tag key {show(key)}", "a tag key", _TAG_KEY_MAX)


def tag_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a tag value (AWS tag rules), or None if it can."""
    return _tag_problem(value, show(value), "a tag value", _TAG_VALUE_MAX)


def _tag_problem(text: str, shown: str, what: str, maximum: int) -> str | None:
    """The rules keys and values share: a length, no aws: prefix, the allowed characters."""
    if len(text) > maximum:
        return f"{shown} is {len(text)} characters; {what} is at most {maximum}"
    if text[:4].lower() == "aws:":
        return f"{shown} starts with 'aws:', which AWS reserves"
    bad = _bad_tag_characters(text)
    if bad:
        return f"{shown} contains {bad}; {_TAG_CHARS_RULE}"
    return None


def _bad_tag_characters(text: str) -> str:
    """The characters of ``text`` that AWS tags do not allow, quoted, or ''."""
    if _TAG_RE.fullmatch(text):
        return ""
    bad: list[str] = []
    for ch in text:
        if not _TAG_RE.fullmatch(ch) and ch not in bad:
            bad.append(ch)
    return ", ".join(repr(ch) for ch in bad[:5])


@functools.cache
def input_shape(service: str) -> Any:
    """The botocore input shape of CreateConfigurationSet for ``service`` (loaded once).

    Read with botocore's loader alone, not a session: a session reads the user's AWS config
    file, and a broken one must be reported where credentials are (exit 3, naming the file),
    not here before any lane exists.
    """
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    data = create_loader().load_service_model(service, "service-2")
    model = ServiceModel(data, service_name=service)
    return model.operation_model(_OPERATION).input_shape


# -- limits: the model's min/max on every member, and the documented ones it lacks ----------

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


@functools.cache
def columns_for(service: str) -> Mapping[str, Column]:
    """The columns ``service`` accepts, by name, in a stable order (tags: any ``tag:KEY``)."""
    if service not in SERVICES:
        raise UsageError(f"unknown service {show(service)}; use one of: {', '.join(SERVICES)}")
    shape = input_shape(service)
    columns: dict[str, Column] = {NAME_COLUMN: Column(NAME_COLUMN, "name")}
    for name, (structure, member) in OPTION_COLUMNS.items():
        if structure not in shape.members:
            continue
        parent = shape.members[structure]
        if member not in parent.members:
            continue
        leaf = parent.members[member]
        kind = {
            "boolean": "boolean",
            "timestamp": "timestamp",
            "integer": "integer",
            "long": "integer",
            "string": "enum" if leaf.metadata.get("enum") else "text",
        }[leaf.type_name]
        columns[name] = Column(
            name,
            kind,
            structure,
            member,
            tuple(leaf.metadata.get("enum", ())),
            leaf.metadata.get("min"),
            leaf.metadata.get("max"),
        )
    columns[REGION_COLUMN] = Column(REGION_COLUMN, "region")
    columns[PROFILE_COLUMN] = Column(PROFILE_COLUMN, "profile")
    columns[ROLE_COLUMN] = Column(ROLE_COLUMN, "role")
    return columns


def role_arn_problem(text: str) -> str | None:
    """Why ``text`` is not an IAM role's ARN, or None when it is one."""
    if _ROLE_ARN.fullmatch(text):
        return None
    return "is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"


class Problem(Exception):
    """One problem with one cell: an error code and a message naming column and value.

    Raised by the converters (:mod:`bulk.input.convert`) and returned by the checks here; the
    `~bulk.input.validate.Validator` reports every problem of a row in one ``invalid``
    outcome, so a `Problem` never leaves it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
