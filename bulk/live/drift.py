"""How a live configuration set differs from an input row: for ``plan --diff`` and drift records.

`drift` compares only what the row claims: each model column with a value in its request
(an empty cell claims nothing) and, when the set's tags are known, each tag the row names.
Both sides go through the same cells (:func:`~bulk.live.cells.model_cells`), so they are
compared as a file would hold them: enums by value, timestamps as UTC instants (whatever zone
botocore gave), numbers numerically, lists as sets of items (order does not count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulk.input.columns import TAG_PREFIX, columns_for
from bulk.live.cells import CellValue, column_order, csv_text, model_cells

__all__ = ["Difference", "as_record", "drift"]


@dataclass(frozen=True)
class Difference:
    """One column whose live value is not the input row's, both as CSV cell text.

    ``live``: what the account has, None where it is not set; ``input``: what the row says
    (None: not set; `drift` never gives that, as an empty cell claims nothing).
    """

    column: str
    live: str | None
    input: str | None


def drift(
    service: str,
    request: Mapping[str, Any],
    live: Mapping[str, Any],
    tags: Sequence[Mapping[str, str]] | None = None,
) -> tuple[Difference, ...]:
    """The differences between a validated row's ``request`` and the set as ``live`` has it.

    ``request``: a `~bulk.models.Row`'s ``CreateConfigurationSet`` arguments (with ``Tags``);
    ``live``: ``service``'s ``GetConfigurationSet`` answer; ``tags``: the set's tags, or None
    to leave tags out. A union that chose another member is one difference, on the union's
    column: the columns below it follow from the choice. In `column_order`.
    """
    claimed = model_cells(service, request)
    actual = model_cells(service, live)
    found: dict[str, Difference] = {}
    for name, value in claimed.items():
        now = actual.get(name)
        if not _same(value, now):
            found[name] = Difference(name, None if now is None else csv_text(now), csv_text(value))
    columns = columns_for(service)
    chosen = [columns[name].path for name in found if columns[name].kind == "union"]
    for name in list(found):
        path = columns[name].path
        if any(len(path) > len(union) and path[: len(union)] == union for union in chosen):
            del found[name]
    if tags is not None:
        have = {tag["Key"]: tag["Value"] for tag in tags}
        for tag in request.get("Tags", ()):
            key, value = tag["Key"], tag["Value"]
            if have.get(key) != value:
                column = f"{TAG_PREFIX}{key}"
                found[column] = Difference(column, have.get(key), value)
    return tuple(found[name] for name in column_order(service, found))


def as_record(differences: Sequence[Difference]) -> dict[str, dict[str, str | None]]:
    """``differences`` as a ledger record and ``--json`` hold them: column → live and input."""
    return {d.column: {"live": d.live, "input": d.input} for d in differences}


def _same(claimed: CellValue, actual: CellValue | None) -> bool:
    """Whether two cells of one column hold the same value (a list's order does not count)."""
    if isinstance(claimed, list) and isinstance(actual, list):
        return set(claimed) == set(actual)
    return claimed == actual
