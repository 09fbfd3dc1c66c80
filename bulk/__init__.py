"""bulk: provision email configuration sets at the service's limit, with a resumable ledger."""

from __future__ import annotations

from bulk.errors import BulkError, InputError, LedgerError, TargetError, UsageError
from bulk.models import Lane, Outcome, Record, Row, Status

__all__ = [
    "BulkError",
    "InputError",
    "Lane",
    "LedgerError",
    "Outcome",
    "Record",
    "Row",
    "Status",
    "TargetError",
    "UsageError",
]
