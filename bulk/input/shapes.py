"""botocore's ParamValidator on a service's requests: memoised, its errors said in columns.

`ShapeCheck.check` runs ParamValidator on a row's request, remembering the request *forms*
that passed (see its docstring), and says each error in the input's terms: the columns
involved rather than request paths. `memo_of` is what of a column's value decides the
verdict, and so belongs in the memo key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from bulk.input.columns import NAME_COLUMN, Column, Problem, show

__all__ = ["ShapeCheck", "memo_of", "same"]

# A bound on the memo, keyed by file content, so a hostile file cannot grow it forever.
_SHAPE_CACHE_MAX: Final = 4096


def same(value: Any) -> Any:
    """The value itself, as a memo key part."""
    return value


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def memo_of(column: Column) -> Callable[[Any], object] | None:
    """What of ``column``'s converted value decides ParamValidator's verdict; None: nothing
    beyond the column's presence (its converter fixes the value's type)."""
    if column.kind == "union":  # which member of the union is set
        return same
    if column.kind == "json":  # any shape at all: the whole value
        return _json_key
    if column.kind == "list":
        item = column.item
        if column.minimum is None and (item is None or item.minimum is None):
            return None
        return tuple
    # botocore checks "min" by value: such values belong in the memo key.
    return None if column.minimum is None else same


class ShapeCheck:
    """ParamValidator on requests of one input shape, memoised by the request's form.

    ``columns`` are the service's (see :func:`~bulk.input.columns.columns_for`), to say
    errors in their names.
    """

    def __init__(self, columns: Mapping[str, Column], shape: Any) -> None:
        from botocore.validate import ParamValidator

        self._columns = tuple(columns.values())
        self._shape = shape
        self._validator = ParamValidator()
        self._passed: set[tuple[object, ...]] = set()
        self.has_tags = "Tags" in shape.members
        # Whether botocore checks the name's or the tags' values ("min"): then those values
        # go into the memo key too (no model has it today; a future one might).
        self.name_checked = "min" in shape.members[NAME_COLUMN].metadata
        tags = shape.members.get("Tags")
        self.tags_checked = tags is not None and any(
            "min" in each.metadata for each in (tags, *tags.member.members.values())
        )

    def check(self, request: dict[str, Any], form: list[object]) -> Iterator[Problem]:
        """Botocore's ParamValidator on the request, memoised by the request's form.

        ParamValidator's verdict depends on which members are present, their Python types
        and, for members with a ``min`` trait, their values (beyond types botocore checks
        only ``required``, ``min``, ``document`` and ``union``). Each column's converter
        fixes its type, so the columns present plus the values `memo_of` gives (``min``-
        checked columns, the choice of a union column) determine the verdict: a form that
        passed once passes again. Saves ~25 us a row.
        """
        key = tuple(form)
        if key in self._passed:
            return
        report = self._validator.validate(request, self._shape)
        if not report.has_errors():
            if len(self._passed) < _SHAPE_CACHE_MAX:
                self._passed.add(key)
            return
        # botocore has no public list of a report's errors, only its text: ``_errors`` holds
        # (kind, path, details) tuples in every botocore pyproject allows; a release that
        # changes that fails tests/test_dependencies.py.
        for kind, path, details in report._errors:
            yield Problem("ParamValidation", self._problem(kind, path, details, request))

    def _problem(
        self, kind: str, path: str, details: Mapping[str, Any], request: Mapping[str, Any]
    ) -> str:
        """One ParamValidator error in the input's terms: columns rather than request paths."""
        members = tuple(part.partition("[")[0] for part in path.split(".") if part)
        columns = self._columns
        if kind == "missing required field":
            needed = (*members, str(details.get("required_name")))
            required = [c.name for c in columns if c.path[: len(needed)] == needed]
            what = (
                f"column {required[0]}" if len(required) == 1 else f"one of {', '.join(required)}"
            )
            given = ", ".join(_set_under(request, members, columns))
            return f"{what} is required when {given or 'its group'} is set"
        if kind in ("more than one input", "empty input"):
            given = ", ".join(_set_under(request, members, columns))
            node: Any = request
            for step in members:
                node = node.get(step, {}) if isinstance(node, dict) else {}
            chosen = " and ".join(str(each) for each in node) or "none of its members"
            return (
                f"{members[-1]} takes one choice (a union), but columns {given} set {chosen}; "
                "keep the columns of one choice and empty the others"
            )
        exact = [c.name for c in columns if c.path == members]
        where = f"column {exact[0]}" if exact else (".".join(members) or "request")
        if kind == "invalid length":  # ParamValidator's "param" here is the length
            return (
                f"{where} is too short: {details.get('param')} long, "
                f"at least {details.get('min_allowed')}"
            )
        if kind == "invalid range":
            return f"{where}: {show(details.get('param'))} is below {details.get('min_allowed')}"
        if kind == "invalid type":
            return f"{where}: {show(details.get('param'))} has the wrong type"
        return f"{where}: {kind}"


def _set_under(
    request: Mapping[str, Any], prefix: tuple[str, ...], columns: Iterable[Column]
) -> list[str]:
    """The columns that set something at or below ``prefix`` in ``request`` (a union column:
    when its union is there)."""
    found = []
    for column in columns:
        path = column.path
        if not path or path[: len(prefix)] != prefix[: len(path)]:
            continue
        node: Any = request
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        if node is not None:
            found.append(column.name)
    return found
