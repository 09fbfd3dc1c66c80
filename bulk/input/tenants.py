"""The ``TenantName`` column: the SES v2 tenants a configuration set belongs to.

A cell holds one tenant name or several separated by commas (spaces around a name do not
count; ``[]`` is none); a Parquet cell may also be a list of names. Names that repeat within
a cell collapse to the first; the result keeps the cell's order. Each name follows the
model's ``CreateTenant`` ``TenantName`` shape (its ``min``, ``max`` and ``pattern``) and,
where the model is silent, the documented rule: 1-64 characters of ``A-Z a-z 0-9 _ -``.
Pinpoint Email has no tenants: there the column is a file-level error (`no_tenants`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from bulk.input.columns import TENANT_COLUMN, Problem, operation_shape, show
from bulk.input.convert import EMPTY_LIST, as_text
from bulk.input.names import name_problem
from bulk.models import SERVICES

__all__ = ["TenantRule", "no_tenants", "tenant_rule"]

# The documented name rule (DESIGN.md, "Names (sets, tenants)"), for what the model lacks:
# botocore's sesv2 model gives TenantName only "min": 1.
_DOCUMENTED_MAX: Final = 64
_DOCUMENTED_CHARS: Final = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TenantRule:
    """What a tenant name may be in one service's model, and how a cell becomes names."""

    minimum: int
    maximum: int
    pattern: re.Pattern[str]
    rule: str

    def names(self, value: Any) -> tuple[str, ...]:
        """The tenant names of a ``TenantName`` cell, in its order, repeats dropped.

        Raises `Problem` naming the column and quoting the bad name.
        """
        if isinstance(value, list | tuple):
            items = [as_text(each) for each in value]
            if any(each is None for each in items):
                raise Problem(
                    "InvalidTenantName",
                    f"column {TENANT_COLUMN}: {show(value)} holds an item that is not text; "
                    f"{self.rule}",
                )
            texts = [each.strip() for each in items if each is not None]
        else:
            text = as_text(value)
            if text is None:
                raise Problem(
                    "InvalidTenantName", name_problem(f"column {TENANT_COLUMN}", value, None)
                )
            if text == EMPTY_LIST:
                return ()
            texts = [each.strip() for each in text.split(",")]
        for each in texts:
            if not (self.minimum <= len(each) <= self.maximum and self.pattern.fullmatch(each)):
                where = f"column {TENANT_COLUMN}"
                if not each:
                    raise Problem(
                        "InvalidTenantName",
                        f"{where}: {show(value)} has an empty name; separate tenant names "
                        f"with single commas; {self.rule}",
                    )
                raise Problem(
                    "InvalidTenantName",
                    name_problem(where, each, each, self.rule, self.pattern, self.maximum),
                )
        return tuple(dict.fromkeys(texts))


@functools.cache
def tenant_rule(service: str) -> TenantRule | None:
    """The tenant name rule of ``service``'s model; None if the service has no tenants."""
    shape = operation_shape(service, "CreateTenant")
    if shape is None:
        return None
    name = shape.members["TenantName"].metadata
    minimum = max(1, name.get("min", 1))
    maximum = name.get("max", _DOCUMENTED_MAX)
    model_pattern = name.get("pattern")
    # A model pattern is anchored or not; fullmatch treats both alike.
    pattern = re.compile(model_pattern) if model_pattern else _DOCUMENTED_CHARS
    chars = f"matching {model_pattern!r}" if model_pattern else "of A-Z a-z 0-9 _ -"
    return TenantRule(
        minimum, maximum, pattern, f"a tenant name is {minimum}-{maximum} characters {chars}"
    )


def no_tenants(service: str) -> str:
    """What is wrong with a ``TenantName`` column for ``service``, which has no tenants."""
    what = "Pinpoint Email" if service == "pinpoint-email" else service
    others = [each for each in SERVICES if tenant_rule(each) is not None]
    return (
        f"column {show(TENANT_COLUMN)}: {what} has no tenants; use --service {others[0]}, "
        "or drop the column"
    )
