"""The ledger open for a run: the one writer of an append-only JSONL file a run resumes from.

One file, one writer. :meth:`Ledger.open` locks the file (``flock``, non-blocking: a second
run on the same ledger is refused), reads what earlier runs recorded
(:func:`~bulk.ledger.reader.scan`, into a :class:`~bulk.ledger.index.ResumeIndex`), refuses a
ledger bound to another target or input file, cuts away a line torn by a crash, then appends
this run's header. This module owns the open file: appending, locking, syncing, closing, and
saving the resume index beside a big ledger (:func:`save_index`: at open, at checkpoints and
at close) so that the next run need not parse it all. The lines are
:mod:`~bulk.ledger.records`', written as the engine hands the outcomes over: the ledger adds
nothing to them.

Invariants: each record is one ``os.write`` of a whole line on an ``O_APPEND`` descriptor, so
it reaches the OS before :meth:`Ledger.append` returns and a killed process loses at most the
rows still in flight; a crash can only tear the last line, which the next open cuts away.
``fsync`` happens in :meth:`Ledger.sync` (the engine calls it at intervals, in a thread) and at
:meth:`Ledger.close`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from bulk.errors import LedgerError, LedgerWriteError
from bulk.ledger import index_file
from bulk.ledger.index import ResumeIndex
from bulk.ledger.reader import Scan, scan
from bulk.ledger.records import (
    FINGERPRINTS,
    RunHeader,
    end_to_json,
    header_to_json,
    intent_to_json,
    rate_to_json,
    record_to_json,
    timestamp,
)
from bulk.models import Destination, Lane, Outcome, Row, redact_url

__all__ = ["Ledger", "save_index"]

_RECOVER = "restore it or pass --ledger NEW"
_OTHER_LEDGER = "pass --ledger NEW to keep this run's records in another file"


def _same_file(path: Path, other: Path) -> bool:
    """Whether two paths name one file (a hard link or symlink counts), existing or not."""
    try:
        return os.path.samefile(path, other)
    except OSError:  # one of them does not exist (yet)
        return path.resolve() == other.resolve()


def _kind_of_file(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


class Ledger:
    """An open ledger: the resume index of earlier runs, and the writer of this run's records.

    Use :meth:`open`. ``append``, ``append_rate``, ``append_end`` and ``close`` belong to one
    thread (the engine's event loop: each is one small ``write`` to the page cache); ``sync``
    and ``checkpoint`` may run concurrently in worker threads. With ``dry_run`` the file is
    only read: no lock beyond a shared one, no header, and appends are ignored.
    """

    path: Path
    index: ResumeIndex
    run_id: str
    dry_run: bool
    #: What the open found odd and worked around, one line each, for the user to read once:
    #: a damaged saved index (ignored), fingerprints of another scheme (rows validated once).
    notes: list[str]

    def __init__(
        self, path: Path, fd: int | None, index: ResumeIndex, end: int, *, dry_run: bool
    ) -> None:
        self.path = path
        self.index = index
        self.run_id = uuid.uuid4().hex
        self.dry_run = dry_run
        self.notes = []
        self._fd = fd
        self._end = end  # file size after the last whole record this process wrote
        self._written = 0  # records this run appended, its header not counted
        self._dirty = False  # written since the last fsync
        self._failed: LedgerWriteError | None = None
        self._sync_lock = threading.Lock()  # sync() in a thread must not fsync a closed fd
        # checkpoint() in a thread must not read a closed fd, nor save beside close()
        self._index_lock = threading.Lock()
        self._indexed = index.image_records  # row records the saved index covers

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        input_name: str,
        target: Destination,
        settings: Mapping[str, Any],
        dry_run: bool = False,
    ) -> Ledger:
        """Open (or create) the ledger at ``path`` for a run reading ``input_name``.

        Takes the lock, reads earlier runs into :attr:`index`, checks that the ledger belongs
        to this input file name and target, cuts away a torn last line, and (unless
        ``dry_run``) appends the run header with ``settings`` (secret-looking keys removed).
        Raises :class:`LedgerError` before anything is sent if the ledger cannot be used.
        """
        path = Path(path)
        fd = _open_for_read(path) if dry_run else _open_for_append(path)
        if fd is None:  # dry run, no ledger yet
            return cls(path, None, ResumeIndex(), 0, dry_run=True)
        try:
            _lock(fd, path, shared=dry_run)
            # A run that may save the index reads the names it needs (see _save_index).
            found = _scan(fd, path, keep_names=not dry_run)
            _check_compatible(path, found.runs, input_name, target)
            if not dry_run and found.end < found.size:
                _truncate(fd, path, found.end)
            ledger = cls(path, fd, found.index, found.end, dry_run=dry_run)
            saved = not dry_run and ledger._save_index(fd, found)
            ledger.notes = _notes(found, saved=saved, dry_run=dry_run)
            found.index.drop_names()
            if not dry_run:
                header = header_to_json(ledger.run_id, input_name, target, settings)
                ledger._write(header, header=True)
        except BaseException:
            os.close(fd)
            raise
        return ledger

    @staticmethod
    def check_path(path: Path, input_path: Path) -> None:
        """Refuse a ledger path that can never hold a ledger: the input file itself, or an
        existing directory, device or pipe.

        Raises :class:`LedgerError` (exit 2). The engine calls it before anything is sent,
        the pre-flight call included: a ``/dev/null`` ledger would take the creates and fail
        only when written, and the input file as ledger would be refused as corrupt after.
        """
        if _same_file(path, input_path):
            raise LedgerError(
                f"--ledger {path} is the input file itself; the ledger must be a file of its "
                "own: pass --ledger with another path, or leave it out for INPUT.ledger.jsonl"
            )
        try:
            mode = path.stat().st_mode
        except OSError:
            return  # missing (a new ledger) or unreadable: Ledger.open says which
        if not stat.S_ISREG(mode):
            raise LedgerError(
                f"ledger {path} is {_kind_of_file(mode)}, not a regular file; bulk appends to "
                "the ledger and reads it back to resume: pass --ledger with the path of a file"
            )

    @property
    def records_written(self) -> int:
        """Records this run appended (its header not counted)."""
        return self._written

    def append(self, outcome: Outcome) -> None:
        """Record what happened to one row; the line reaches the OS before this returns.

        The record is ``outcome`` as given (:func:`~bulk.ledger.records.record_to_json`): the
        engine sets its ``ambiguous`` mark (:func:`~bulk.ledger.rules.carries_ambiguity`).
        """
        self.append_many((outcome,))

    def append_many(self, outcomes: Sequence[Outcome]) -> None:
        """Record several rows with one write: all of them reach the OS, or none.

        What :meth:`append` does for each, in order; the writer task hands over every outcome
        waiting for it at once, so a busy run makes one system call per batch, not per row.
        """
        now = timestamp()  # one write, one time
        lines = [record_to_json(outcome, now) for outcome in outcomes]
        if lines:
            self._write("\n".join(lines), records=len(lines))

    def append_intents(self, rows: Sequence[Row], op: str | None = None) -> None:
        """Say, before their calls go out, that ``rows`` are about to be sent (one write).

        The lines reach the OS before this returns: a process killed with the calls in
        flight leaves them, and its resume knows those calls may have gone through
        (:func:`~bulk.ledger.records.intent_to_json`).
        """
        now = timestamp()
        lines = [intent_to_json(row, now, op) for row in rows]
        if lines:
            self._write("\n".join(lines), records=len(lines))

    def append_rate(self, lane: Lane, rate: float, operation: str | None = None) -> None:
        """Record the adaptive limiter's learned rate for ``lane``'s ``operation`` (None:
        ``CreateConfigurationSet``); a resumed run starts there.

        Raises ``ValueError`` unless ``rate`` is a finite number >= 0.
        """
        self._write(rate_to_json(lane, rate, operation))

    def append_end(self, summary: Mapping[str, Any]) -> None:
        """Record the run's summary counts as its last record."""
        self._write(end_to_json(self.run_id, summary))

    def sync(self) -> None:
        """``fsync`` what was written since the last sync. Safe to call from another thread."""
        with self._sync_lock:
            if self._fd is None or not self._dirty:
                return
            self._dirty = False
            try:
                os.fsync(self._fd)
            except OSError as error:
                raise self._fail(error) from error

    def checkpoint(self) -> None:
        """Save the resume index of what is written so far, when :meth:`close` would.

        For a long run that is then killed outright: the next run loads the index instead
        of parsing the whole ledger. Safe to call from another thread beside the appends:
        it reads only the records whose writes had returned when it started.
        """
        with self._index_lock:
            if self._fd is None or self.dry_run or self._failed is not None:
                return
            self._save_index(self._fd)

    def close(self) -> None:
        """Flush to disk and release the lock. Idempotent."""
        with self._index_lock, self._sync_lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                if self._dirty and self._failed is None:
                    os.fsync(fd)
                if not self.dry_run and self._failed is None:
                    self._save_index(fd)
            except OSError as error:
                raise self._fail(error) from error
            finally:
                os.close(fd)  # releases the flock

    def _save_index(self, fd: int, found: Scan | None = None) -> bool:
        """Save the resume index beside a big ledger when much of the ledger is not in it;
        whether it was saved.

        At open (``found``: the scan just made), at checkpoints and at close, so that the next
        run loads it instead of parsing the whole ledger (:mod:`~bulk.ledger.index_file`), even
        if this one is killed; a ledger that gained only a few records since is not worth
        rewriting it for.
        """
        records = self.index.records + self._written
        # Read after records: _write adds to _end first, so each record counted ends before it.
        end = self._end
        if not index_file.worth_saving(records, self._indexed):
            return False
        with contextlib.suppress(OSError, LedgerError):  # a cache: the ledger is what counts
            if save_index(fd, self.path, found, end=end):
                self._indexed = records
                return True
        return False

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except LedgerError:
            if exc is None:
                raise  # otherwise the original error is the one to report

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else "dry run" if self.dry_run else "open"
        return f"<Ledger {str(self.path)!r} {state}, {len(self.index)} earlier rows>"

    def _write(self, line: str, *, header: bool = False, records: int = 1) -> None:
        if self.dry_run:
            return
        if self._failed is not None:
            raise LedgerWriteError(*self._failed.args)  # the run must not go on with holes
        if self._fd is None:
            raise ValueError(f"ledger {self.path} is closed")
        data = (line + "\n").encode()
        view = memoryview(data)
        try:
            while view:  # one call unless the disk fills up mid-line
                written = os.write(self._fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as error:
            raise self._fail(error) from error
        self._end += len(data)
        self._dirty = True
        if not header:
            self._written += records

    def _fail(self, error: OSError) -> LedgerWriteError:
        """Remember a write failure (later appends raise it again) and undo a partial line."""
        if self._failed is None:
            if self._fd is not None:
                # A partial line would glue onto the next record; if this fails too, the next
                # open cuts it away as a torn line.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._end)
            reason = error.strerror or str(error)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                advice = "free space and run the same command to resume"
            else:
                advice = "fix that and run the same command to resume"
            self._failed = LedgerWriteError(
                f"cannot write ledger {self.path}: {reason}; "
                f"{self._written} records written before; {advice}"
            )
        return self._failed


def save_index(fd: int, path: Path, found: Scan | None = None, *, end: int | None = None) -> bool:
    """Save the index of the ledger open on ``fd`` beside it; whether it was saved.

    ``found``: a scan of it made with ``keep_names``, else it is scanned again (from the
    saved index if valid), whole or its first ``end`` bytes (see
    :func:`~bulk.ledger.reader.scan`). The caller holds the ledger's exclusive lock.
    """
    if found is None or not found.index.names_kept:
        found = scan(fd, path, keep_names=True, end=end)
    return index_file.save(fd, path, found.index.image(), found.end, found.runs)


def _notes(found: Scan, *, saved: bool, dry_run: bool) -> list[str]:
    """What a run should be told of the ledger it opened, one line each (see Ledger.notes)."""
    notes = []
    damaged = found.damaged
    if damaged is not None:
        notes.append(
            f"resume index {damaged.path} is damaged ({damaged.reason}) and was ignored: the "
            "ledger was read in full" + (", and the index written again" if saved else "")
        )
    counts = found.index.counts
    settled = counts.get("created", 0) + counts.get("exists", 0)
    if found.runs and settled and not found.index.current_scheme:
        then = (
            "a run records their new fingerprints" if dry_run else "the next resume is fast again"
        )
        notes.append(
            "this ledger's row fingerprints were made with another scheme than "
            f"{FINGERPRINTS} (an earlier bulk): this resume validates every settled row once; "
            f"{then}"
        )
    return notes


def _open_for_append(path: Path) -> int:
    created = not path.exists()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        verb = "create" if created else "open"
        raise LedgerError(
            f"cannot {verb} ledger {path}: {error.strerror}; "
            "check that its directory exists and is writable, or pass --ledger PATH"
        ) from error
    if created:
        _sync_directory(path.parent)
    return fd


def _open_for_read(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LedgerError(f"cannot read ledger {path}: {error.strerror}") from error


def _lock(fd: int, path: Path, *, shared: bool) -> None:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _lock_holder(fd)
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        raise LedgerError(
            f"ledger {path} is in use by another bulk run ({holder}); "
            f"wait for it to finish, or {_OTHER_LEDGER}"
        ) from None
    except OSError as error:
        raise LedgerError(f"cannot lock ledger {path}: {error.strerror}") from error


def _lock_holder(fd: int) -> int | None:
    """The pid holding a ``flock`` on ``fd``'s file, from ``/proc/locks`` (Linux only)."""
    stat = os.fstat(fd)
    inode = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2187433 0 EOF"; waiters have "->" after "1:"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def _scan(fd: int, path: Path, *, keep_names: bool) -> Scan:
    try:
        return scan(fd, path, keep_names=keep_names, only_if_unsaved=True)
    except OSError as error:
        raise LedgerError(f"cannot read ledger {path}: {error.strerror}") from error


def _check_compatible(
    path: Path, runs: list[RunHeader], input_name: str, target: Destination
) -> None:
    """Refuse a ledger whose runs read another input file name or sent to another target."""
    want = _identity(input_name, target)
    for run in runs:
        have = _identity(run.input, run.target)
        for key, value in want.items():
            if have[key] != value:
                raise LedgerError(
                    f"ledger {path} belongs to another {key}: {_show(have[key])} in the ledger, "
                    f"{_show(value)} for this run; {_OTHER_LEDGER}"
                )


def _identity(input_name: str, target: Destination) -> dict[str, str | None]:
    return {
        "service": target.service,
        "region": target.region,
        "profile": target.profile,
        "role": target.role_arn,
        "endpoint": redact_url(target.endpoint),
        "input file": os.path.basename(input_name),
    }


def _show(value: str | None) -> str:
    return "none" if value is None else repr(value)


def _truncate(fd: int, path: Path, end: int) -> None:
    try:
        os.ftruncate(fd, end)
    except OSError as error:
        raise LedgerError(
            f"cannot cut the torn last line of ledger {path}: {error.strerror}; {_RECOVER}"
        ) from error


def _sync_directory(directory: Path) -> None:
    """Make a new ledger's directory entry durable (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
