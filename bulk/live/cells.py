"""A live configuration set as the cells of an input row: the inverse of the input columns.

`set_cells` turns a ``GetConfigurationSet`` answer, with the set's tags, tenants and event
destinations, into a row's cells by column name (:mod:`bulk.input.columns`), each typed by
its column's kind (`cell`); `csv_text` is how a cell is written into CSV, and `column_order`
the order of an export file's columns. The contract is a round trip: the cells, read back by
the `~bulk.input.validate.Validator` (from CSV through `csv_text`, or from Parquet as they
are), give the request that created the set.

In both models ``GetConfigurationSet``'s output has the same members, at the same places, as
``CreateConfigurationSet``'s input, so each column's ``path`` is walked in the answer
(`model_cells`); a member only the answer has has no column and is left out. Timestamps come
back as aware datetimes in the *local* zone (botocore parses epoch seconds with ``tzlocal``),
so a cell holds them as UTC text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

from bulk.input.columns import (
    DESTINATIONS_COLUMN,
    NAME_COLUMN,
    REGION_COLUMN,
    TAG_PREFIX,
    TENANT_COLUMN,
    Column,
    columns_for,
)
from bulk.input.convert import EMPTY_LIST

__all__ = ["CellValue", "cell", "column_order", "csv_text", "model_cells", "set_cells"]

CellValue: TypeAlias = str | bool | int | float | list[str]


def set_cells(
    service: str,
    live: Mapping[str, Any],
    *,
    tags: Sequence[Mapping[str, str]] = (),
    tenants: Sequence[str] = (),
    destinations: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, CellValue]:
    """The cells of the input row that provisions the set ``live`` describes, by column.

    ``live`` is ``service``'s ``GetConfigurationSet`` answer (without ResponseMetadata).
    ``tags`` give one ``tag:KEY`` cell each; ``tenants`` the ``TenantName`` cell (SES v2
    only: ignored where the model has no tenants); ``destinations``, each as
    ``GetConfigurationSetEventDestinations`` returns one, the ``EventDestinations`` cell
    (``[]`` for none; None: no cell, so a provision run's ``--event-destinations`` applies).
    """
    cells: dict[str, CellValue] = {NAME_COLUMN: str(live[NAME_COLUMN])}
    cells.update(model_cells(service, live))
    for tag in tags:
        cells[f"{TAG_PREFIX}{tag['Key']}"] = str(tag["Value"])
    if tenants and TENANT_COLUMN in columns_for(service):
        cells[TENANT_COLUMN] = ",".join(tenants)
    if destinations is not None:
        cells[DESTINATIONS_COLUMN] = _json_text(list(destinations))
    return cells


def model_cells(service: str, tree: Mapping[str, Any]) -> dict[str, CellValue]:
    """The cells of ``service``'s model columns whose member has a value in ``tree``.

    ``tree`` is a ``CreateConfigurationSet`` request or a ``GetConfigurationSet`` answer:
    their members have the same names and places. Cells come in `columns_for` order. A union
    that chooses a scalar member has no cell of its own: that member's column says it.
    """
    columns, paths = _model(service)
    cells: dict[str, CellValue] = {}
    for column in columns:
        value = _at(tree, column.path)
        if value is None:
            continue
        found = cell(column, value)
        if column.kind == "union" and found not in column.enum and (*column.path, found) in paths:
            continue
        cells[column.name] = found
    return cells


def cell(column: Column, value: Any) -> CellValue:
    """The cell of ``column`` that reads back as ``value``, a member of a request or answer.

    By kind: text and enums as text, booleans, whole and decimal numbers as themselves,
    timestamps as ISO-8601 UTC text (``2024-05-01T12:00:00Z``; a naive one is UTC), lists as
    lists of item text, a union as the name of its choice, anything else as JSON text.
    A union's unknown choice (botocore's ``SDK_UNKNOWN_MEMBER``) is kept as it is: a row
    cannot hold it, and provision says so, naming the column, instead of dropping it.
    """
    kind = column.kind
    if kind == "list":
        assert column.item is not None
        item = column.item
        return [csv_text(cell(item, each)) for each in value]
    if kind == "boolean":
        return bool(value)
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "timestamp":
        return _utc_text(value)
    if kind == "union":
        return str(next(iter(value)))
    if kind == "json":
        # Sorted keys: equal values give equal text, whatever order the service answers in.
        return _json_text(value, sort_keys=True)
    return str(value)


def csv_text(value: CellValue) -> str:
    """How ``value`` is written into a CSV cell so that provision reads back the same value.

    ``true``/``false``; a list's items joined by commas, ``[]`` for the empty list; a
    decimal number by ``repr`` (the shortest text that parses back to it); text as it is.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value) if value else EMPTY_LIST
    if isinstance(value, float):
        return repr(value)
    return str(value)


def column_order(service: str, present: Iterable[str]) -> list[str]:
    """The columns of ``present`` in an export file's stable order.

    ``ConfigurationSetName``; the model's columns in `columns_for` order; ``TenantName``,
    ``EventDestinations``; the ``tag:`` columns sorted; any others sorted (``Profile``,
    ``RoleArn``); ``Region`` last.
    """
    wanted = set(present)
    columns, _ = _model(service)
    head = [NAME_COLUMN, *(column.name for column in columns), TENANT_COLUMN, DESTINATIONS_COLUMN]
    tags = sorted(name for name in wanted if name.startswith(TAG_PREFIX))
    rest = sorted(wanted.difference(head, tags, [REGION_COLUMN]))
    return [name for name in (*head, *tags, *rest, REGION_COLUMN) if name in wanted]


@functools.cache
def _model(service: str) -> tuple[tuple[Column, ...], frozenset[tuple[str, ...]]]:
    """``service``'s model columns (those with a member path) and their paths."""
    columns = tuple(
        column for column in columns_for(service).values() if column.path and column.kind != "name"
    )
    return columns, frozenset(column.path for column in columns)


def _at(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested mappings, or None where any step is missing."""
    node: Any = tree
    for step in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


def _utc_text(value: datetime | date) -> str:
    """``value`` as ISO-8601 UTC text with a ``Z``; a naive datetime is taken as UTC."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat() + "Z"


def _json_text(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON; a timestamp inside (none expected) as its UTC text."""
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, default=_json_default
    )


def _json_default(value: object) -> str:
    if isinstance(value, date):
        return _utc_text(value)
    raise TypeError(f"{type(value).__name__} is not JSON: {value!r}")
