"""Cell converters: a cell as the file holds it becomes the value its request member takes.

One converter per column kind (``text``, ``enum``, ``boolean``, ``timestamp``, ``integer``,
``number``, ``list``, ``union``, ``json``: see `Column.kind`), given by `converter`, plus
`tag_value` for ``tag:KEY`` columns. A cell is text from a CSV file or a native value from
Parquet; each converter takes both, and either returns the request value or raises a
`Problem` naming the column and quoting the value. `as_text` is how any cell that must be
text is read.

Lists: a cell holds items separated by commas (spaces around an item do not count), ``[]``
is the empty list, and a Parquet list holds the items themselves; each item is converted as
the list's member (an enum item names the allowed values). ``[]`` in a column that holds one
value is a `Problem`, not the text ``[]``: it can only be a list meant for another column.
Unions: the cell names the choice, one of the union's members (any case).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Final

from bulk.input.columns import Column, Problem, show, tag_value_problem

__all__ = ["EMPTY_LIST", "as_text", "converter", "tag_value"]

EMPTY_LIST: Final = "[]"

_EPOCH_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_BOOLEAN_HINT = "use true/false, 1/0, yes/no"


def as_text(value: object) -> str | None:
    """Text cells as they are; integers (a Parquet int column) as digits; others None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def tag_value(column: str, value: Any) -> str:
    """The value of a ``tag:KEY`` cell: text that the AWS tag rules allow."""
    text = as_text(value)
    if text is None:
        raise Problem("InvalidTag", f"column {show(column)}: {show(value)} is not text")
    problem = tag_value_problem(text)
    if problem is not None:
        raise Problem("InvalidTag", f"column {show(column)}: {problem}")
    return text


# -- converters: one per column kind; each returns the request value or raises Problem --


def _not_a_list(column: Column, value: Any) -> None:
    """Raise the `Problem` of ``[]`` in a column that holds one value (else nothing)."""
    if value == EMPTY_LIST:
        raise Problem(
            "NotAList",
            f"column {column.name}: {show(value)} is an empty list, but {column.name} holds "
            "one value, not a list; leave the cell empty to leave it unset",
        )


def _text(column: Column, value: Any) -> str:
    text = as_text(value)
    if text is None:
        raise Problem("InvalidValue", f"column {column.name}: {show(value)} is not text")
    _not_a_list(column, text)
    return text


def _enum(column: Column, value: Any) -> str:
    text = as_text(value)
    if text is not None:
        if text in column.enum:
            return text
        # Case-insensitive: 'require' can only mean REQUIRE.
        for allowed in column.enum:
            if allowed.lower() == text.lower():
                return allowed
        _not_a_list(column, text)
    raise Problem(
        "InvalidEnum",
        f"column {column.name}: {show(value)} is not one of {', '.join(column.enum)}",
    )


def _boolean(column: Column, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = value.lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        _not_a_list(column, value)
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Problem(
        "InvalidBoolean",
        f"column {column.name}: {show(value)} is not a boolean ({_BOOLEAN_HINT})",
    )


def _timestamp(column: Column, value: Any) -> datetime:
    """ISO-8601 (a zone-less one is UTC) or epoch seconds, as an aware UTC datetime."""
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = _from_epoch(value)
        elif isinstance(value, str) and _EPOCH_RE.fullmatch(value):
            moment = _from_epoch(float(value) if "." in value else int(value))
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value)
        else:
            raise ValueError(value)
    except (ValueError, OverflowError, OSError):
        _not_a_list(column, value)
        hint = "ISO-8601 like 2024-05-01T12:00:00Z, or epoch seconds"
        if isinstance(value, str | int | float) and _looks_like_milliseconds(value):
            hint = "epoch seconds, not milliseconds"
        raise Problem(
            "InvalidTimestamp", f"column {column.name}: {show(value)} is not a timestamp ({hint})"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(seconds)
    return datetime.fromtimestamp(seconds, UTC)


def _looks_like_milliseconds(value: str | float) -> bool:
    try:
        return abs(float(value)) >= 1e11
    except ValueError:
        return False


def _integer(column: Column, value: Any) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _INTEGER_RE.fullmatch(value)
    ):
        number = int(value)
    low = column.minimum
    high = column.maximum
    limits = f"{'' if low is None else low}-{'' if high is None else high}"
    if number is None:
        _not_a_list(column, value)
        raise Problem(
            "InvalidNumber", f"column {column.name}: {show(value)} is not a whole number ({limits})"
        )
    if (low is not None and number < low) or (high is not None and number > high):
        raise Problem("InvalidNumber", f"column {column.name}: {number} is out of range ({limits})")
    return number


def _number(column: Column, value: Any) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        _not_a_list(column, value)
        raise Problem("InvalidNumber", f"column {column.name}: {show(value)} is not a number")
    return number


def _union(column: Column, value: Any) -> str:
    """The name of the union member the cell chooses (one of ``column.enum``, any case)."""
    text = as_text(value)
    if text is not None:
        for allowed in column.enum:
            if allowed.lower() == text.lower():
                return allowed
        _not_a_list(column, text)
    raise Problem(
        "InvalidChoice",
        f"column {column.name}: {show(value)} is not one of {', '.join(column.enum)} "
        f"(the {column.name} to use)",
    )


def _json(column: Column, value: Any) -> Any:
    """A member no simpler cell can hold (a map, a list of structures): JSON text."""
    text = as_text(value)
    try:
        if text is None:
            raise ValueError("not text")
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise Problem(
            "InvalidJson", f"column {column.name}: {show(value)} is not JSON ({exc})"
        ) from None


def _list(column: Column, item: Callable[[Any], Any], value: Any) -> list[Any]:
    """Comma-separated items (``[]``: none) or a Parquet list, each converted by ``item``."""
    if isinstance(value, str):
        if value == EMPTY_LIST:
            return []
        items: list[Any] = [each.strip() for each in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [each.strip() if isinstance(each, str) else each for each in value]
    else:
        raise Problem(
            "InvalidList", f"column {column.name}: {show(value)} is not a list ({_LIST_HINT})"
        )
    for position, each in enumerate(items, 1):
        if each is None or each == "":
            raise Problem(
                "InvalidList",
                f"column {column.name}: {show(value)} has an empty item (item {position}); "
                f"{_LIST_HINT}",
            )
    return [item(each) for each in items]


_LIST_HINT = "separate items with commas, like A,B; write [] for an empty list"

_CONVERTERS: Final = {
    "text": _text,
    "enum": _enum,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "integer": _integer,
    "number": _number,
    "union": _union,
    "json": _json,
}


def converter(column: Column) -> Callable[[Any], Any]:
    """The converter of an option column: a cell in, its request value out (or a `Problem`)."""
    if column.kind == "list":
        assert column.item is not None
        return functools.partial(_list, column, converter(column.item))
    return functools.partial(_CONVERTERS[column.kind], column)
