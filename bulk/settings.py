"""The settings of one provisioning run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bulk.errors import UsageError
from bulk.input.columns import role_arn_problem
from bulk.input.regions import RunRegion, run_region
from bulk.models import SERVICES, redact_url

# The ranges of the numeric settings, checked in one place (Settings.__post_init__) so that the
# library refuses what the command line refuses. Each bound is far beyond any useful value, and
# well short of the values that hurt: `--concurrency 1000000` once took 8 GB and all of a core
# before sending a row, and a NaN or infinite rate or timeout broke the limiter or the client.

# Calls in flight, all lanes together. Each is a task holding a pooled connection (a file
# descriptor): past about a thousand a run meets the usual open-file limit (`ulimit -n` 1,024)
# before any service limit, and 1,024 covers lanes x rate x latency for any real run
# (hundreds of lanes at 1 request/s and a second of latency).
MAX_CONCURRENCY = 1024
# Requests per second per lane and operation. SES allows about 1/s per account and Region; the
# emulator and the benchmarks go to 1,000/s. Past 10,000/s one process cannot send that fast
# anyway, so a larger value is a typo; `--rate 0` is how to say "no client-side limit".
MAX_RATE = 10_000.0
# Token bucket size: the most calls sent at once after an idle spell. No more than
# MAX_CONCURRENCY calls can be in flight, so a larger bucket changes nothing but the memory
# of a typo.
MAX_BURST = 1000
# Attempts per row. Retries wait up to 20 s each (full jitter, capped), so 100 attempts can hold
# a worker for half an hour; a row that still fails is recorded `failed` and the next run
# retries it, which is the better way to wait longer.
MAX_ATTEMPTS = 100
# Seconds per call. botocore's own default is 60 s; an answer that takes an hour is a dead
# connection, and a call must end within a bounded time for Ctrl-C and SIGTERM to finish.
MAX_TIMEOUT = 3600.0
# What an --endpoint-url error suggests: `bulk emulate`'s address with another port.
_ENDPOINT_EXAMPLE = "http://127.0.0.1:4568"


def ledger_path(input_path: Path | None, ledger: Path | None) -> Path:
    """``ledger`` (``--ledger``), else ``INPUT.ledger.jsonl`` beside the input (one of the
    two is given)."""
    if ledger is not None:
        return ledger
    assert input_path is not None
    return Path(f"{input_path}.ledger.jsonl")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs besides the input file; the CLI fills it from its options.

    ``rate`` is requests per second per lane, the most the engine ever sends (``0`` turns the
    client-side limit off); the adaptive limiter lowers it on 429s and probes back up to it.
    ``region`` None (the default) means "resolve it": ``AWS_REGION``, ``AWS_DEFAULT_REGION``,
    then the profile's (see :meth:`run_region`); never a guessed one.
    """

    service: str = "pinpoint-email"
    region: str | None = None
    profile: str | None = None
    # Rows without a RoleArn cell use credentials for this role, assumed from the profile's.
    role_arn: str | None = None
    endpoint_url: str | None = None
    ledger: Path | None = None
    rate: float = 1.0
    burst: int = 1
    concurrency: int = 16
    max_attempts: int = 8
    timeout: float = 30.0
    adaptive: bool = True
    dry_run: bool = False
    # --emulator: the run starts the embedded emulator (its CreateConfigurationSet limit:
    # emulator_rate requests/s, burst emulator_burst) and sends to it with dummy credentials.
    emulator: bool = False
    emulator_rate: float = 1.0
    emulator_burst: int = 1
    # --event-destinations: a JSON array of event destinations for rows whose
    # EventDestinations cell is empty (read by bulk.input.destinations.load_event_destinations).
    event_destinations: Path | None = None

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise UsageError(f"unknown service {self.service!r}; use one of {', '.join(SERVICES)}")
        _check_range("--rate", self.rate, 0, MAX_RATE, "requests/s per lane; 0 turns the limit off")
        _check_range("--burst", self.burst, 1, MAX_BURST, "calls at once after an idle spell")
        _check_range("--concurrency", self.concurrency, 1, MAX_CONCURRENCY, "calls in flight")
        _check_range("--max-attempts", self.max_attempts, 1, MAX_ATTEMPTS, "attempts per row")
        _check_range("--timeout", self.timeout, 0, MAX_TIMEOUT, "seconds per call", open_low=True)
        # The embedded emulator's bucket, refused here rather than when the run starts it.
        _check_range("--emulator-rate", self.emulator_rate, 0, MAX_RATE, "0: unthrottled")
        _check_range("--emulator-burst", self.emulator_burst, 1, MAX_BURST, "its bucket size")
        if self.endpoint_url is not None:
            _check_endpoint_url(self.endpoint_url)
        if self.role_arn is not None and (problem := role_arn_problem(self.role_arn)):
            raise UsageError(f"--role-arn {self.role_arn!r} {problem}")

    @property
    def known_regions_only(self) -> bool:
        """Whether a Region must be one botocore knows: not when ``--endpoint-url`` points
        elsewhere (its Regions are its own); with ``--emulator`` yes, as a rehearsal."""
        return self.endpoint_url is None or self.emulator

    def run_region(self) -> RunRegion:
        """This run's Region and where it was found (see :func:`bulk.input.regions.run_region`).

        Raises :class:`UsageError` for a Region that does not exist; ``region`` None in the
        result: none anywhere (an error only if some row needs it).
        """
        return run_region(self.region, self.profile, known_only=self.known_regions_only)

    def ledger_path(self, input_path: Path) -> Path:
        """``--ledger``, or ``INPUT.ledger.jsonl`` beside the input."""
        return ledger_path(input_path, self.ledger)

    def header(self) -> dict[str, Any]:
        """The settings as written into the ledger's run header (no secrets live here)."""
        data = asdict(self)
        data["ledger"] = str(self.ledger) if self.ledger is not None else None
        if self.event_destinations is not None:
            data["event_destinations"] = str(self.event_destinations)
        return data


def _check_range(
    option: str, value: float, low: float, high: float, what: str, *, open_low: bool = False
) -> None:
    """Raise ``UsageError`` unless ``value`` is a finite number in ``[low, high]``.

    With ``open_low``, ``low`` itself is refused too (``(low, high]``).
    """
    if open_low:
        span = f"more than {_show(low)} and at most {_show(high)} ({what})"
    else:
        span = f"{_show(low)} to {_show(high)} ({what})"
    if not math.isfinite(value):
        raise UsageError(f"{option} {_show(value)} is not a finite number; use {span}")
    if value < low or (open_low and value == low):
        floor = f"more than {_show(low)}" if open_low else f"at least {_show(low)}"
        raise UsageError(f"{option} {_show(value)} must be {floor}")
    if value > high:
        raise UsageError(f"{option} {_show(value)} is too large; use {span}")


def _show(value: float) -> str:
    """A number as a user typed it: ``1000000`` rather than ``1e+06`` or ``1000000.0``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_endpoint_url(url: str) -> None:
    """Raise ``UsageError`` unless ``url`` is an absolute http(s) URL with a host botocore takes."""
    example = f"pass one like {_ENDPOINT_EXAMPLE}"
    if not url.strip():
        raise UsageError(f"--endpoint-url is empty; {example}")
    shown = _shown_url(url)
    if "://" not in url:
        fixed = _ENDPOINT_EXAMPLE if "@" in shown else f"http://{shown}"
        raise UsageError(
            f"--endpoint-url {shown!r} has no scheme; pass {fixed} "
            "(or https:// if the endpoint speaks TLS)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number in 0..65535 raises here
    except ValueError as exc:
        raise UsageError(
            f"--endpoint-url {shown!r} is not a valid URL ({exc}); {example}"
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(f"--endpoint-url {shown!r} must start with http:// or https://; {example}")
    # botocore's own test of the host, so that a URL passed here is one its client accepts.
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    if not parts.hostname or not (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        raise UsageError(f"--endpoint-url {shown!r} has no valid host name; {example}")


def _shown_url(url: str) -> str:
    """``url`` as a message may quote it: without the user:password it may carry."""
    try:
        shown = redact_url(url) or ""
    except ValueError:  # not even splittable
        shown = url
    if "@" in shown:  # not redacted (no scheme, say): keep only what follows the credentials
        shown = "***@" + shown.rpartition("@")[2]
    return shown
