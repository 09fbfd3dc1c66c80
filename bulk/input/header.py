"""The header of an input file: its names against the service's columns, Parquet types.

`check_header` refuses an unnamed, duplicate or unknown column (naming the closest known
one), a column only another service has (naming it), ``TenantName`` where the service has no
tenants, a bad ``tag:KEY``, and a header without ``ConfigurationSetName``. Columns named
``bulk_...`` (a report file's) are ignored. `check_parquet_types` refuses a Parquet column
whose type cannot hold its column's values.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import polars as pl

from bulk.errors import InputError
from bulk.input.columns import (
    IGNORED_PREFIX,
    NAME_COLUMN,
    TAG_PREFIX,
    TENANT_COLUMN,
    Column,
    columns_for,
    show,
    tag_key_problem,
)
from bulk.input.tenants import no_tenants
from bulk.models import SERVICES

__all__ = ["allowed_columns", "check_header", "check_parquet_types"]


def allowed_columns(service: str | None) -> Mapping[str, Column]:
    """The columns of ``service``, or (None) of any service, by name."""
    if service is not None:
        return columns_for(service)
    union: dict[str, Column] = {}
    for each in SERVICES:
        for name, column in columns_for(each).items():
            union.setdefault(name, column)
    # Routing columns last, as in each service's own listing.
    routing = ("region", "profile", "role")
    return dict(sorted(union.items(), key=lambda item: item[1].kind in routing))


def check_header(
    path: Path, names: Sequence[str], allowed: Mapping[str, Column], service: str | None
) -> None:
    """File-level header checks; raises InputError for the first problem found."""
    listing = f"column names are the API's member names: {', '.join(allowed)}, {TAG_PREFIX}KEY"
    seen: dict[str, int] = {}
    for position, name in enumerate(names, 1):
        if not name:
            raise InputError(
                f"{path}: column {position} of the header has no name; "
                "name it or delete the column (a trailing comma in the header?)"
            )
        if name in seen:
            raise InputError(
                f"{path}: column {show(name)} appears twice in the header "
                f"(columns {seen[name]} and {position}); keep one"
            )
        seen[name] = position
        if name.startswith(IGNORED_PREFIX):
            continue
        if name.startswith(TAG_PREFIX):
            problem = tag_key_problem(name[len(TAG_PREFIX) :])
            if problem is not None:
                raise InputError(f"{path}: column {show(name)}: {problem}; rename the column")
            continue
        if name in allowed:
            continue
        if service is not None and name == TENANT_COLUMN:
            raise InputError(f"{path}: {no_tenants(service)}")
        if service is not None and name in allowed_columns(None):
            others = [each for each in SERVICES if name in columns_for(each)]
            raise InputError(
                f"{path}: column {show(name)} is not a {service} field (it is one of "
                f"{', '.join(others)}); remove the column or use --service {others[0]}"
            )
        raise InputError(
            f"unknown column {show(name)} in {path}{_suggest(name, allowed)}; {listing}"
        )
    if NAME_COLUMN not in seen:
        raise InputError(f"{path}: no {NAME_COLUMN} column; every row needs a name; {listing}")


def _suggest(name: str, allowed: Iterable[str]) -> str:
    """' (did you mean 'X'?)' for a near miss of a known column, else ''."""
    folded = {each.lower(): each for each in allowed}
    lowered = name.lower()
    if lowered in folded:
        return f" (did you mean {folded[lowered]!r}?)"
    prefix, colon, key = name.partition(":")
    if colon and prefix.lower() in ("tag", "tags") and key:
        return f" (did you mean {TAG_PREFIX + key!r}?)"
    for sep in ("_", "-", "."):
        if lowered.startswith("tag" + sep) and len(name) > 4:
            return f" (did you mean {TAG_PREFIX + name[4:]!r}?)"
    close = difflib.get_close_matches(lowered, list(folded), n=1, cutoff=0.75)
    if close:
        return f" (did you mean {folded[close[0]]!r}?)"
    return ""


# -- Parquet ------------------------------------------------------------------------------

# What each kind of column may hold in Parquet: (dtype test, description for messages).
_TEXT_TYPES: Final = (pl.String, pl.Categorical, pl.Enum, pl.Null)


def _is_text(dtype: Any) -> bool:
    return bool(dtype.base_type() in _TEXT_TYPES or dtype.is_integer())


def _is_boolean(dtype: Any) -> bool:
    return bool(dtype.base_type() in (pl.Boolean, *_TEXT_TYPES) or dtype.is_integer())


def _is_number(dtype: Any) -> bool:
    return bool(dtype.base_type() in _TEXT_TYPES or dtype.is_numeric())


def _is_names(dtype: Any) -> bool:
    """Text, or a list of text (TenantName)."""
    return bool(_is_text(dtype) or (dtype.base_type() == pl.List and _is_text(dtype.inner)))


def _is_timestamp(dtype: Any) -> bool:
    return bool(
        dtype.base_type() in (pl.Datetime, pl.Date, *_TEXT_TYPES)
        or dtype.is_integer()
        or dtype.is_float()
    )


_PARQUET_TYPES: Final[Mapping[str, tuple[Callable[[Any], bool], str]]] = {
    "text": (_is_text, "text (String)"),
    "enum": (_is_text, "text (String)"),
    "name": (_is_text, "text (String)"),
    "region": (_is_text, "text (String)"),
    "profile": (_is_text, "text (String)"),
    "role": (_is_text, "text (String)"),
    "tag": (_is_text, "text (String)"),
    "boolean": (_is_boolean, "Boolean (or text true/false, 1/0, yes/no)"),
    "timestamp": (_is_timestamp, "Datetime, Date, epoch seconds or ISO-8601 text"),
    "integer": (_is_text, "an integer"),
    "number": (_is_number, "a number"),
    "union": (_is_text, "text (String): the name of the choice"),
    "json": (_is_text, "JSON text (String)"),
    "destinations": (_is_text, "JSON text (String): an array of event destinations"),
    "tenants": (_is_names, "text (String) or a list of text (List(String))"),
}


def _type_problem(column: Column | None, dtype: Any) -> str | None:
    """What a Parquet column of ``dtype`` should be instead, or None if it fits ``column``
    (None: a tag).

    A list column is a native list of its items' type, or text (``A,B``, ``[]``).
    """
    kind = "tag" if column is None else column.kind
    if kind == "list":
        assert column is not None and column.item is not None
        test, expected = _PARQUET_TYPES[column.item.kind]
        if _is_text(dtype) or (dtype.base_type() == pl.List and test(dtype.inner)):
            return None
        return f"a list of {expected} (or text: items separated by commas)"
    test, expected = _PARQUET_TYPES[kind]
    return None if test(dtype) else expected


def check_parquet_types(
    path: Path, names: Sequence[str], dtypes: Sequence[Any], allowed: Mapping[str, Column]
) -> None:
    """Raise InputError for the first Parquet column whose type cannot hold its values."""
    for name, dtype in zip(names, dtypes, strict=True):
        if name.startswith(IGNORED_PREFIX):
            continue
        column = None if name.startswith(TAG_PREFIX) else allowed[name]
        expected = _type_problem(column, dtype)
        if expected is not None:
            raise InputError(
                f"{path}: column {show(name)} has type {dtype}; expected {expected}; "
                "convert the column"
            )
