"""bulk: provision email configuration sets at the service's limit, with a resumable ledger.

The library API is :func:`provision` with :class:`Settings`; it returns a :class:`Summary`.
:func:`provision` is imported on first use, and with it polars: importing ``bulk`` leaves
polars unloaded, so the command line can set polars' allocator up first (:mod:`bulk.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bulk.engine.summary import RunStats, Summary
from bulk.errors import (
    BulkError,
    InputError,
    LedgerError,
    LedgerWriteError,
    TargetError,
    UsageError,
)
from bulk.models import InputRow, Lane, Outcome, Row, Status
from bulk.settings import Settings

if TYPE_CHECKING:
    from bulk.commands.provision import provision

__all__ = [
    "BulkError",
    "InputError",
    "InputRow",
    "Lane",
    "LedgerError",
    "LedgerWriteError",
    "Outcome",
    "Row",
    "RunStats",
    "Settings",
    "Status",
    "Summary",
    "TargetError",
    "UsageError",
    "provision",
]


def __getattr__(name: str) -> Any:
    if name == "provision":
        from bulk.commands.provision import provision

        return provision
    raise AttributeError(f"module 'bulk' has no attribute {name!r}")
