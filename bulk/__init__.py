"""bulk: provision email configuration sets at the service's limit, with a resumable ledger.

The library API is :func:`provision` with :class:`Settings`; it returns a :class:`Summary`.
``provision(..., targets=...)`` takes the service end as a parameter: any :class:`Targets`
whose :class:`Target` answers each call with a :class:`CallResult` (tests pass a fake).
:func:`provision` and the target types are imported on first use, and with them polars and
aiobotocore: importing ``bulk`` leaves polars unloaded, so the command line can set polars'
allocator up first (:mod:`bulk.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bulk.engine.summary import LaneSummary, RunStats, Summary
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
    from bulk.engine.target import CallKind, CallResult, Target, Targets

__all__ = [
    "BulkError",
    "CallKind",
    "CallResult",
    "InputError",
    "InputRow",
    "Lane",
    "LaneSummary",
    "LedgerError",
    "LedgerWriteError",
    "Outcome",
    "Row",
    "RunStats",
    "Settings",
    "Status",
    "Summary",
    "Target",
    "TargetError",
    "Targets",
    "UsageError",
    "provision",
]


# Imported on first use: where each lazily exported name lives.
_LAZY = {
    "provision": "bulk.commands.provision",
    "CallKind": "bulk.engine.target",
    "CallResult": "bulk.engine.target",
    "Target": "bulk.engine.target",
    "Targets": "bulk.engine.target",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bulk' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
