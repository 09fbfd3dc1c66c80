"""bulk: provision email configuration sets at the service's limit, with a resumable ledger.

The library API is :func:`provision` with :class:`Settings`; it returns a :class:`Summary`.
"""

from __future__ import annotations

from bulk.engine import provision
from bulk.errors import (
    BulkError,
    InputError,
    LedgerError,
    LedgerWriteError,
    TargetError,
    UsageError,
)
from bulk.models import Lane, Outcome, Record, Row, Status
from bulk.settings import Settings
from bulk.summary import RunStats, Summary

__all__ = [
    "BulkError",
    "InputError",
    "Lane",
    "LedgerError",
    "LedgerWriteError",
    "Outcome",
    "Record",
    "Row",
    "RunStats",
    "Settings",
    "Status",
    "Summary",
    "TargetError",
    "UsageError",
    "provision",
]
