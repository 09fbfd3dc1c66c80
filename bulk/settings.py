"""The settings of one provisioning run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bulk.errors import UsageError
from bulk.models import SERVICES


@dataclass(frozen=True)
class Settings:
    """Everything a run needs besides the input file; the CLI fills it from its options.

    ``rate`` is requests per second per lane, the most the engine ever sends (``0`` turns the
    client-side limit off); the adaptive limiter lowers it on 429s and probes back up to it.
    """

    service: str = "pinpoint-email"
    region: str = "us-east-1"
    profile: str | None = None
    endpoint_url: str | None = None
    ledger: Path | None = None
    rate: float = 1.0
    burst: int = 1
    concurrency: int = 16
    max_attempts: int = 8
    timeout: float = 30.0
    adaptive: bool = True
    dry_run: bool = False
    # Set by --emulator: the embedded emulator's URL and fixed dummy credentials.
    emulator: bool = False

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise UsageError(f"unknown service {self.service!r}; use one of {', '.join(SERVICES)}")
        if self.rate < 0:
            raise UsageError(f"--rate {self.rate:g} is negative; use 0 to turn the limit off")
        if self.burst < 1:
            raise UsageError(f"--burst {self.burst} must be at least 1")
        if self.concurrency < 1:
            raise UsageError(f"--concurrency {self.concurrency} must be at least 1")
        if self.max_attempts < 1:
            raise UsageError(f"--max-attempts {self.max_attempts} must be at least 1")
        if self.timeout <= 0:
            raise UsageError(f"--timeout {self.timeout:g} must be positive")

    def ledger_path(self, input_path: Path) -> Path:
        """``--ledger``, or ``INPUT.ledger.jsonl`` beside the input."""
        return self.ledger if self.ledger is not None else Path(f"{input_path}.ledger.jsonl")

    def header(self) -> dict[str, Any]:
        """The settings as written into the ledger's run header (no secrets live here)."""
        data = asdict(self)
        data["ledger"] = str(self.ledger) if self.ledger is not None else None
        return data
