"""Helpers shared by the reliability tests: inputs with known good and bad rows, and the invariants.

The invariants, checked after a run and its resumes (DESIGN.md, "Ledger"):

- the service holds exactly the valid names: nothing lost, nothing extra;
- the ledger's latest record for every data row is settled, ``created`` for a valid row
  (``exists`` only where a killed run lost the answer of a call in flight) and ``invalid``
  for a bad one;
- no invalid row ever reached the service;
- no name was sent again once the ledger had settled it (``create_attempts`` per name, before
  and after a resume).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from click.testing import CliRunner, Result

from bulk import Settings
from bulk.cli import main
from bulk.emulator import Emulator
from bulk.engine.pipeline import EMULATOR_CREDENTIALS, Engine
from bulk.engine.summary import Summary
from bulk.ledger.reader import read_records

ACCOUNT = (EMULATOR_CREDENTIALS[0], "us-east-1")
SETTLED = frozenset({"created", "exists", "invalid"})


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a CSV file with the union of their columns, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


@dataclass(frozen=True)
class Tenants:
    """An input file and what a correct run must make of it."""

    path: Path
    valid: frozenset[str]  # names the service must end up holding
    invalid_rows: frozenset[int]  # 1-based data rows that must end invalid, never sent
    unsent_names: frozenset[str]  # names that appear only on invalid rows: never on the wire
    total: int

    @property
    def ledger(self) -> Path:
        return Path(f"{self.path}.ledger.jsonl")


def tenants_file(path: Path, n: int, *, bad_every: int = 50) -> Tenants:
    """``n`` tenants with options and tags, every ``bad_every``-th row spoiled in a new way.

    The bad rows cycle through a bad boolean, an unknown enum, a bad timestamp, a bad
    character in the name, a tag value over 256 characters and a duplicate of an earlier name;
    apart from the last two, a bad row's name is unique, so it can be looked for on the wire.
    """
    rows: list[dict[str, Any]] = []
    invalid_rows: set[int] = set()
    unsent: set[str] = set()
    spoilers: list[tuple[str, str | None]] = [
        ("SendingEnabled", "maybe"),
        ("TlsPolicy", "SOMETIMES"),
        ("LastFreshStart", "yesterday"),
        ("ConfigurationSetName", None),  # a bad character
        ("tag:team", "v" * 257),
        ("ConfigurationSetName", "duplicate"),
    ]
    for i in range(n):
        row: dict[str, Any] = {
            "ConfigurationSetName": f"tenant-{i:05d}",
            "TlsPolicy": "REQUIRE" if i % 2 else "OPTIONAL",
            "SendingEnabled": "true" if i % 3 else "no",
            "tag:team": f"team-{i % 7}",
        }
        if i and i % bad_every == 0:
            column, value = spoilers[(i // bad_every - 1) % len(spoilers)]
            if column == "ConfigurationSetName" and value is None:
                row[column] = f"bad name {i}!"
            elif value == "duplicate":
                row[column] = rows[0]["ConfigurationSetName"]
            else:
                row[column] = value
                unsent.add(row["ConfigurationSetName"])
            invalid_rows.add(i + 1)
        rows.append(row)
    write_csv(path, rows)
    valid = {r["ConfigurationSetName"] for i, r in enumerate(rows) if i + 1 not in invalid_rows}
    return Tenants(path, frozenset(valid), frozenset(invalid_rows), frozenset(unsent), n)


def row_records(ledger: Path) -> list[dict[str, Any]]:
    """The ledger's row records in file order (reading it also proves every line is whole)."""
    return [r for r in read_records(ledger) if "status" in r]


def latest_by_row(ledger: Path) -> dict[int, dict[str, Any]]:
    """The latest record of each data row."""
    return {r["row"]: r for r in row_records(ledger)}


def settled_names(ledger: Path) -> set[str]:
    """Names whose latest record is ``created`` or ``exists``: never to be sent again."""
    if not ledger.exists():
        return set()
    latest: dict[str, str] = {}
    for record in row_records(ledger):
        if record["status"] != "invalid":
            latest[record["name"]] = record["status"]
    return {name for name, status in latest.items() if status in ("created", "exists")}


class NoResend:
    """Remembers the settled names and their attempt counts; checks a later run sent none."""

    def __init__(self, ledger: Path, stats: Callable[[], Mapping[str, Any]]) -> None:
        self._stats = stats
        self.names = settled_names(ledger)
        attempts = stats()["create_attempts"]
        self.attempts = {name: attempts.get(name, 0) for name in self.names}

    def check(self) -> None:
        attempts = self._stats()["create_attempts"]
        resent = {n for n in self.names if attempts.get(n, 0) != self.attempts[n]}
        assert not resent, f"settled names sent again: {sorted(resent)[:10]}"


def check_invariants(
    tenants: Tenants,
    emulator_names: set[str],
    stats: Mapping[str, Any],
    *,
    exists_allowed: int = 0,
) -> dict[int, dict[str, Any]]:
    """The end state after a run and its resumes; returns the latest record of each row."""
    assert emulator_names == tenants.valid, (
        f"missing {sorted(tenants.valid - emulator_names)[:5]}, "
        f"extra {sorted(emulator_names - tenants.valid)[:5]}"
    )
    latest = latest_by_row(tenants.ledger)
    assert sorted(latest) == list(range(1, tenants.total + 1)), "a row has no record"
    for number, record in latest.items():
        if number in tenants.invalid_rows:
            assert record["status"] == "invalid", record
        else:
            assert record["status"] in ("created", "exists"), record
    exists = [r for r in latest.values() if r["status"] == "exists"]
    assert len(exists) <= exists_allowed, exists[:3]
    sent = set(stats["create_attempts"])
    assert not sent & tenants.unsent_names, sorted(sent & tenants.unsent_names)
    assert not any(" " in name for name in sent), "a row with a bad name reached the service"
    # The store refuses a second create of a name: "created" counts each name once.
    assert stats["created"] == len(tenants.valid)
    return latest


def emulator_settings(emulator: Emulator | str, **overrides: Any) -> Settings:
    """Settings for a run against an emulator (its URL, its fixed dummy credentials)."""
    url = emulator if isinstance(emulator, str) else emulator.url
    base: dict[str, Any] = {"endpoint_url": url, "emulator": True, "rate": 0, "concurrency": 8}
    return Settings(**{**base, **overrides})


def fast_retries(scale: float) -> Callable[[float], Any]:
    """A retry sleep ``scale`` times the policy's: keeps fault tests short, backoff intact."""

    async def sleep(seconds: float) -> None:
        await anyio.sleep(seconds * scale)

    return sleep


async def run_engine(path: Path, settings: Settings, *, retry_scale: float = 1.0) -> Summary:
    """One run in this process, as ``provision`` does it, with scaled retry waits."""
    engine = Engine(path, settings, retry_sleep=fast_retries(retry_scale))
    return await engine.run()


# -- the command line ---------------------------------------------------------------------------


def bulk_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "bulk", *map(str, args)]


def run_bulk(
    *args: str | Path, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``bulk ARGS`` as a user runs it: a subprocess (about 1.5 s of imports each)."""
    return subprocess.run(
        bulk_command(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def start_bulk(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        bulk_command(*args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


@contextmanager
def running_bulk(*args: str | Path, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """``bulk ARGS`` as a child process, killed and reaped on the way out if still running."""
    proc = start_bulk(*args, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


def cli(*args: str | Path) -> Result:
    """``bulk ARGS`` in this process through click's runner: exit code, stdout, stderr."""
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def one_line_error(stderr: str) -> str:
    """A user's error is one line on stderr, ``bulk: error: ...``, and no traceback.

    A run that started says first where it sends (``bulk: Region ...``); a bad input file
    stops it before that line.
    """
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    if len(lines) == 2 and lines[0].startswith("bulk: Region "):
        del lines[0]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("bulk: error: "), stderr
    return lines[0]


def recorded_rows(ledger: Path) -> int:
    """Distinct data rows with a record (0 while there is no ledger)."""
    return len(latest_by_row(ledger)) if ledger.exists() else 0


def wait_for_rows(ledger: Path, count: int, proc: subprocess.Popen[str], limit: float = 60) -> bool:
    """Wait (bounded) until ``count`` rows have a record; False if the run ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if recorded_rows(ledger) >= count:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise AssertionError(f"the ledger did not reach {count} rows in {limit} s")
