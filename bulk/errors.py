"""Exceptions raised by bulk.

The CLI turns each into one line on stderr and an exit code; no traceback unless ``--debug``::

    BulkError                 base class; exit_code 1
    ├── UsageError            bad option or option combination; exit 2, nothing sent
    ├── InputError            the input file cannot be used (missing, unreadable, header); exit 2
    ├── LedgerError           the ledger cannot be used (other target, locked, unwritable); exit 2
    │   └── LedgerWriteError  writing the ledger failed mid-run (disk full, read-only); exit 3
    └── TargetError           systemic failure of the service (credentials, permissions,
                              endpoint unreachable); exit 3, unsent rows stay pending

Messages name the file, row, column and value involved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class BulkError(Exception):
    """Base class of every error bulk reports to a user."""

    exit_code = 1


class UsageError(BulkError):
    """An option or a combination of options is wrong."""

    exit_code = 2


class InputError(BulkError):
    """The input file cannot be used: missing, empty, unreadable, or a bad header."""

    exit_code = 2


class LedgerError(BulkError):
    """The ledger cannot be used for this run: another target or input, or locked by a run."""

    exit_code = 2


class LedgerWriteError(LedgerError):
    """Writing to the ledger failed during a run (disk full, read-only file system)."""

    exit_code = 3


class TargetError(BulkError):
    """The service cannot be used at all: bad credentials, no permission, endpoint unreachable."""

    exit_code = 3


def sole_exception(error: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups, else ``error``.

    Task groups wrap what their tasks raise; a user's error is reported as itself.
    """
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


@contextlib.contextmanager
def user_errors_unwrapped() -> Iterator[None]:
    """Around task groups: a user's error (:class:`BulkError`) raised in one comes out as
    itself, not wrapped in exception groups; anything else is left as it is."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf = sole_exception(group)
        if isinstance(leaf, BulkError):
            raise leaf from None
        raise
