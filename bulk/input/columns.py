"""The input columns of a service, read from botocore's model: names, places, kinds, limits.

Every leaf member of the service's ``CreateConfigurationSet`` input is a column named by its
leaf member name (`columns_for`; the names are unique within each model, and building the
columns checks it), placed at its path in the nested request. Nothing here is a hand-kept
table: a member AWS adds is a column without a code change.

How a cell holds each kind of member (see `Column.kind` and :mod:`bulk.input.convert`):

- scalars: text, an enum value (any case), a boolean (true/false, 1/0, yes/no), a timestamp
  (ISO-8601 or epoch seconds), a whole or decimal number, within the model's enum and min/max;
- a list of scalars (``SuppressedReasons``): items separated by commas (``BOUNCE,COMPLAINT``,
  spaces around items ignored), ``[]`` for the empty list; Parquet: a native list column or
  the same text. ``[]`` in a column that is not a list is a row error;
- a union (a structure with the ``union`` trait, such as ``SigningScheme``): its leaves are
  columns like any other (``SignatureFormat``, which chooses ``SmimeScheme``), and a column
  named by the union member holds the name of the choice (``DefaultScheme``/``SmimeScheme``,
  any case) for choices that are structures, which may hold nothing at all. A union of simple
  values needs no such column: setting one of its leaf columns is the choice. Columns that
  choose different members of one union are a row error (botocore's, said in columns);
- anything else a future model may add (a map, a list of structures, a document): JSON text;
- ``Tags``: one ``tag:KEY`` column per tag, the cell its value.

Beyond the set's own members: ``TenantName`` (SES v2, where the model has ``CreateTenant``),
``EventDestinations`` (a JSON array), and the routing columns ``Region``, ``Profile``,
``RoleArn``. Columns whose name starts with ``bulk_`` (the report's) are ignored.

The AWS tag rules, `show` (how a message quotes a value) and `Problem` (one problem with a
row, as every check reports it) live here too; the model's limits are :mod:`bulk.input.limits`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bulk.errors import UsageError
from bulk.models import SERVICES

__all__ = [
    "DESTINATIONS_COLUMN",
    "IGNORED_PREFIX",
    "NAME_COLUMN",
    "PROFILE_COLUMN",
    "REGION_COLUMN",
    "ROLE_COLUMN",
    "ROUTING_COLUMNS",
    "TAG_PREFIX",
    "TENANT_COLUMN",
    "Column",
    "Problem",
    "columns_for",
    "input_shape",
    "model_columns",
    "operation_shape",
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
TENANT_COLUMN: Final = "TenantName"
DESTINATIONS_COLUMN: Final = "EventDestinations"
# Columns the report command adds (bulk_status, ...): a fixed report file is provisioned as
# it is, so these are neither options nor errors.
IGNORED_PREFIX: Final = "bulk_"

# An IAM role's ARN in any partition (aws, aws-cn, aws-us-gov, ...): account, then the role's
# path and name (IAM allows \w+=,.@- and / in them, 512 characters in all).
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)

_OPERATION = "CreateConfigurationSet"
# botocore type names of the members a cell holds as one value, and their column kinds.
_SCALAR_KINDS: Final = {
    "string": "text",
    "blob": "text",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "integer": "integer",
    "long": "integer",
    "float": "number",
    "double": "number",
}

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

    ``kind``: for the set's members ``text``, ``enum``, ``boolean``, ``timestamp``,
    ``integer``, ``number``, ``list`` (``item`` converts each item), ``union`` (``enum``
    holds the choices) or ``json``; ``name``, ``tenants``, ``destinations``, ``region``,
    ``profile`` or ``role`` for the others. ``path``: the member names from the request's
    root to the member the column sets (for a union column, the union member itself).
    """

    name: str
    kind: str
    path: tuple[str, ...] = ()
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    item: Column | None = None


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
    # The common case first, without quoting the value for a message (every tag cell).
    if len(value) <= _TAG_VALUE_MAX and value[:4].lower() != "aws:" and _TAG_RE.fullmatch(value):
        return None
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


# -- the model ------------------------------------------------------------------------------


@functools.cache
def _service_model(service: str) -> Any:
    """botocore's model of ``service`` (loaded once).

    Read with botocore's loader alone, not a session: a session reads the user's AWS config
    file, and a broken one must be reported where credentials are (exit 3, naming the file),
    not here before any lane exists.
    """
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    data = create_loader().load_service_model(service, "service-2")
    return ServiceModel(data, service_name=service)


def operation_shape(service: str, operation: str, *, output: bool = False) -> Any:
    """The input (or ``output``) shape of ``operation`` in ``service``'s model; None if the
    service has no such operation."""
    model = _service_model(service)
    if operation not in model.operation_names:
        return None
    found = model.operation_model(operation)
    return found.output_shape if output else found.input_shape


@functools.cache
def input_shape(service: str) -> Any:
    """The botocore input shape of CreateConfigurationSet for ``service`` (loaded once)."""
    return operation_shape(service, _OPERATION)


def model_columns(shape: Any) -> dict[str, Column]:
    """A column for every leaf member of ``shape`` (an operation's input), by name.

    The name is the leaf member's; ``ConfigurationSetName`` and ``Tags`` are left to the
    caller. Raises RuntimeError when two leaves share a name: a model that breaks the rule
    columns rely on must fail loudly (in the tests), never map a column to the wrong place.
    """
    found: dict[str, Column] = {}

    def add(column: Column) -> None:
        if column.name in found:
            raise RuntimeError(
                f"{shape.name}: members {'.'.join(found[column.name].path)} and "
                f"{'.'.join(column.path)} share the name {column.name!r}, but input columns "
                "are named by leaf member: the model breaks that rule"
            )
        found[column.name] = column

    def walk(structure: Any, path: tuple[str, ...], seen: frozenset[str]) -> None:
        for name, member in structure.members.items():
            here = (*path, name)
            if not path and name in (NAME_COLUMN, "Tags"):
                continue
            kind = member.type_name
            if kind in _SCALAR_KINDS:
                add(_scalar(name, member, here))
            elif kind == "list" and member.member.type_name in _SCALAR_KINDS:
                item = _scalar(name, member.member, here)
                low, high = member.metadata.get("min"), member.metadata.get("max")
                add(Column(name, "list", here, item.enum, low, high, item))
            elif (
                kind == "structure"
                and not member.metadata.get("document")
                and member.name not in seen  # a recursive shape: JSON below its first use
            ):
                if member.is_tagged_union:
                    # Choices that are structures may hold nothing: only a column naming
                    # the choice can set them. Scalar choices are set by their own column.
                    choices = [each for each, m in member.members.items() if m.type_name == kind]
                    if choices:
                        add(Column(name, "union", here, tuple(choices)))
                walk(member, here, seen | {member.name})
            else:  # a map, a list of structures, a document: JSON text
                add(Column(name, "json", here))

    walk(shape, (), frozenset({shape.name}))
    return found


def _scalar(name: str, shape: Any, path: tuple[str, ...]) -> Column:
    enum = tuple(shape.metadata.get("enum", ()))
    kind = "enum" if enum else _SCALAR_KINDS[shape.type_name]
    return Column(name, kind, path, enum, shape.metadata.get("min"), shape.metadata.get("max"))


@functools.cache
def columns_for(service: str) -> Mapping[str, Column]:
    """The columns ``service`` accepts, by name, in a stable order (tags: any ``tag:KEY``).

    The name, the model's leaf members (`model_columns`), ``TenantName`` where the model has
    tenants, ``EventDestinations``, then the routing columns.
    """
    if service not in SERVICES:
        raise UsageError(f"unknown service {show(service)}; use one of: {', '.join(SERVICES)}")
    columns = {NAME_COLUMN: Column(NAME_COLUMN, "name", (NAME_COLUMN,))}
    others = [Column(DESTINATIONS_COLUMN, "destinations")]
    if operation_shape(service, "CreateTenant") is not None:
        others.insert(0, Column(TENANT_COLUMN, "tenants"))
    others += [
        Column(REGION_COLUMN, "region"),
        Column(PROFILE_COLUMN, "profile"),
        Column(ROLE_COLUMN, "role"),
    ]
    members = model_columns(input_shape(service))
    for column in (*columns.values(), *others):
        if column.name in members:
            raise RuntimeError(
                f"{service}: the model's member {'.'.join(members[column.name].path)} is "
                f"named like bulk's own column {column.name!r}"
            )
    columns.update(members)
    columns.update((column.name, column) for column in others)
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
