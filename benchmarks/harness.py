"""What every scenario shares: the emulator in its own process, workloads, subprocess timing.

The emulator always runs in a separate process, so a contender's CPU use never slows the server
it is measured against (and the server never slows the contender) beyond what two processes on
one machine do to each other. Counters come from the server (``/_emulator/stats``): what
reached it is counted there, whatever retries a client library hides.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REGION = "us-east-1"
# The emulator's account for keys AssumeRole did not issue (bulk.emulator.config's default):
# the account of the dummy credentials below.
DEFAULT_ACCOUNT = "123456789012"
SERVICE = "pinpoint-email"
OPERATION = "CreateConfigurationSet"

# Dummy credentials: the emulator accepts any signature and names the account after the key id.
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIDBULKBENCHMARK",
    "AWS_SECRET_ACCESS_KEY": "bulk-benchmark-not-a-secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
_AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")

_START_TIMEOUT = 20.0  # seconds for the emulator to print its URL and answer
_STOP_TIMEOUT = 10.0
_LISTENING = "listening on "

# A child process that only runs the emulator: ``bulk.emulator`` does not import the engine.
_EMULATOR_SCRIPT = """
import json, sys
from bulk.emulator import EmulatorConfig, serve_forever
serve_forever(EmulatorConfig(**json.loads(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]))
"""
# The same, with creates timed by lane (benchmarks/timed_emulator.py). The checkout's root goes
# on the path first, so that the child finds this package whatever its working directory.
_TIMED_EMULATOR_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[3])
from benchmarks.timed_emulator import main
main(sys.argv[1:3])
"""
_ROOT = Path(__file__).resolve().parent.parent


def offline_aws_environment() -> None:
    """Point every AWS client of this process and its children at dummy, local-only settings."""
    for name in _AWS_UNSET:
        os.environ.pop(name, None)
    os.environ.update(_AWS_ENV)


# -- the emulator --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerCounts:
    """What reached the server since its last reset, from ``/_emulator/stats``."""

    created: int
    create_calls: int  # every CreateConfigurationSet that arrived, throttled or not
    throttled: int
    errors: Mapping[str, int]

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.create_calls if self.create_calls else 0.0

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> ServerCounts:
        return cls(
            created=int(stats["created"]),
            create_calls=int(stats["calls"].get(OPERATION, 0)),
            throttled=int(stats["throttled"]),
            errors=dict(stats["errors"]),
        )


class EmulatorProcess:
    """``bulk.emulator.serve_forever`` in a child process on a loopback port (0: any free one).

    Use as a context manager: it waits until the server answers and stops it (SIGTERM, then
    SIGKILL) at the end of the block, whatever happens inside. With ``timed`` the child runs
    :mod:`benchmarks.timed_emulator` instead (the same server), whose stats also hold, per
    lane, when creates arrived and succeeded (read them with :func:`lane_times`).
    """

    def __init__(self, workdir: Path, *, port: int = 0, timed: bool = False, **config: Any) -> None:
        self.config = {"seed": 7, **config}
        self.port = port
        self.timed = timed
        self._log_path = workdir / f"emulator-{os.getpid()}-{time.monotonic_ns()}.log"
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.url = ""

    def __enter__(self) -> EmulatorProcess:
        self._log = self._log_path.open("w")
        script, extra = (
            (_TIMED_EMULATOR_SCRIPT, [str(_ROOT)]) if self.timed else (_EMULATOR_SCRIPT, [])
        )
        self._process = subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(self.config), str(self.port), *extra],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        try:
            self.url = self._read_url()
            self._wait_until_answering()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.communicate(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
            elif process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/_emulator/stats")

    def counts(self) -> ServerCounts:
        return ServerCounts.from_stats(self.stats())

    def reset(self) -> None:
        """Forget every configuration set and counter; every bucket starts full again."""
        self._request("POST", "/_emulator/reset")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, from ``/proc``.

        The difference across a run is what serving it cost; 0.0 where ``/proc`` is missing.
        """
        if self._process is None:
            return 0.0
        return process_cpu_seconds(self._process.pid)

    def _request(self, method: str, path: str) -> dict[str, Any]:
        body = b"" if method == "POST" else None
        request = urllib.request.Request(self.url + path, method=method, data=body)
        with _LOCAL.open(request, timeout=30) as response:
            data: dict[str, Any] = json.loads(response.read())
        return data

    def _read_url(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()  # the server prints its URL first
        if _LISTENING not in line:
            assert self._log is not None
            self._log.flush()
            self._process.wait(_STOP_TIMEOUT)
            log = self._log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"the emulator did not start: {line!r} {' | '.join(log)}")
        return line.split(_LISTENING, 1)[1].split()[0]

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


# Loopback only: never through a proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of /proc/PID/stat's CPU times


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/PID/stat``), 0.0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    # Fields after the command name, which is in parentheses and may hold spaces: utime and
    # stime are the 14th and 15th fields of the line, the 12th and 13th after ")".
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass(frozen=True)
class LaneTimes:
    """When one lane's creates reached a timed emulator (its monotonic clock, seconds)."""

    lane: str  # "ACCOUNT/REGION"
    first_call: float
    first_created: float | None
    last_created: float | None


def lane_times(stats: Mapping[str, Any]) -> list[LaneTimes]:
    """Every lane's create times from a timed emulator's stats (empty from an untimed one)."""
    times = stats.get("create_times") or {}
    return [
        LaneTimes(lane, float(t["first_call"]), t.get("first_created"), t.get("last_created"))
        for lane, t in times.items()
    ]


# -- workloads -----------------------------------------------------------------------------------

COLUMNS = (
    "ConfigurationSetName",
    "TlsPolicy",
    "ReputationMetricsEnabled",
    "SendingEnabled",
    "tag:team",
    "tag:tier",
)


def tenant_name(number: int) -> str:
    return f"tenant-{number:07d}"


def cells(number: int) -> tuple[str, str, str, str, str, str]:
    """Row ``number`` of every generated input: a few options, two tags, some empty cells."""
    tier = "" if number % 3 == 0 else ("gold" if number % 2 else "silver")
    return (
        tenant_name(number),
        "REQUIRE" if number % 2 else "OPTIONAL",
        "true" if number % 3 else "false",
        "yes" if number % 5 else "no",
        f"team-{number % 97}",
        tier,
    )


def write_csv(path: Path, rows: int) -> Path:
    """A tenants file of ``rows`` data rows, in the format users write."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        writer.writerows(cells(number) for number in range(1, rows + 1))
    return path


def requests(rows: int) -> list[dict[str, Any]]:
    """The ``CreateConfigurationSet`` keyword arguments of :func:`write_csv`'s rows.

    What a hand-written script would send for the same file: baselines send exactly these,
    so they make the same calls as the engine (which derives them from the CSV).
    """
    return [_request(number) for number in range(1, rows + 1)]


def _request(number: int) -> dict[str, Any]:
    name, tls, reputation, sending, team, tier = cells(number)
    tags = [{"Key": "team", "Value": team}]
    if tier:
        tags.append({"Key": "tier", "Value": tier})
    return {
        "ConfigurationSetName": name,
        "DeliveryOptions": {"TlsPolicy": tls},
        "ReputationOptions": {"ReputationMetricsEnabled": reputation == "true"},
        "SendingOptions": {"SendingEnabled": sending == "yes"},
        "Tags": tags,
    }


class Workspace:
    """A temporary directory of generated inputs and ledgers, each made once per run.

    ``url`` is a loopback endpoint reserved for the scenarios that share settled ledgers: a
    ledger is bound to its endpoint, so the emulator that resumes one must listen there.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{free_port()}"
        self.port = int(self.url.rsplit(":", 1)[1])
        self._inputs: dict[int, Path] = {}
        self.ledgers: dict[int, Path] = {}  # rows -> a ledger settling all of them, for url
        self.ledger_seconds: dict[int, float] = {}  # rows -> time it took to write it

    def tenants(self, rows: int) -> Path:
        path = self._inputs.get(rows)
        if path is None:
            path = self._inputs[rows] = write_csv(self.root / f"tenants-{rows}.csv", rows)
        return path

    def fresh(self, name: str) -> Path:
        """A path in the workspace that does not exist (yet)."""
        path = self.root / name
        path.unlink(missing_ok=True)
        return path


def free_port() -> int:
    """A loopback port nothing listens on now (the emulator binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- child processes -----------------------------------------------------------------------------

# GNU time reports its child's peak RSS. Measured through it because Linux carries a process's
# peak RSS across fork and exec: a child forked (or vforked) straight from this harness reports
# at least the harness's own size, whatever the child itself uses. ``time`` is small, so the
# program it starts inherits almost nothing.
_GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: exit code, wall time, peak resident memory, output."""

    argv: Sequence[str]
    exit_code: int
    wall_s: float
    max_rss_mb: float
    stdout: str
    stderr: str
    cpu_s: float = 0.0  # user + system CPU of the child (and anything it waited for)


def run_child(
    argv: Sequence[str],
    workdir: Path,
    *,
    timeout: float = 600.0,
    env: Mapping[str, str] | None = None,
) -> ChildRun:
    """Run ``argv`` to the end and measure its wall time, CPU time and its own peak RSS.

    With GNU time the peak comes from ``time -f %M``; without it, from the child's
    ``VmHWM`` (its own high-water mark, which exec resets), read every few milliseconds.
    The CPU time is this process's ``RUSAGE_CHILDREN`` across the run: ``time`` waits for the
    program it starts, so the program's CPU is counted there. ``env`` is added to this
    process's environment for the child.
    """
    out_path, err_path, rss_path = (workdir / f"child.{kind}" for kind in ("out", "err", "rss"))
    rss_path.unlink(missing_ok=True)
    command = list(argv)
    if _GNU_TIME.exists():
        command = [str(_GNU_TIME), "-f", "%M", "-o", str(rss_path), *command]
    peak_kib = 0
    child_env = None if env is None else {**os.environ, **env}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out_path.open("w") as out, err_path.open("w") as err:
        start = time.perf_counter()
        # Its own process group, so a timeout or Ctrl-C stops ``time`` and its child alike.
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=child_env,
        )
        try:
            while process.poll() is None:
                if not _GNU_TIME.exists():
                    peak_kib = max(peak_kib, _high_water_kib(process.pid))
                if time.perf_counter() - start > timeout:
                    break
                time.sleep(0.005)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if rss_path.exists():
        lines = rss_path.read_text().split()
        peak_kib = int(lines[-1]) if lines and lines[-1].isdigit() else peak_kib
    return ChildRun(
        argv=tuple(argv),
        exit_code=process.returncode,
        wall_s=wall,
        max_rss_mb=peak_kib / 1024.0,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        cpu_s=cpu,
    )


def json_summary(run: ChildRun) -> dict[str, Any]:
    """The summary a ``bulk ... --json`` child printed (its last JSON line), or ``{}``."""
    for line in reversed(run.stdout.splitlines()):
        try:
            summary = json.loads(line)
        except ValueError:
            continue
        if isinstance(summary, dict):
            return summary
    return {}


def pending_by_lane(summary: Mapping[str, Any]) -> str:
    """``N pending (LANE n, ...)`` from a run's JSON summary: rows it never settled."""
    lanes = [
        f"{lane.get('lane')} {lane.get('pending'):,}"
        for lane in summary.get("lanes", [])
        if isinstance(lane.get("pending"), int) and lane["pending"]
    ]
    pending = summary.get("pending", 0)
    return f"{pending:,} pending" + (f" ({', '.join(lanes)})" if lanes else "")


def _high_water_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def bulk_command(*args: str) -> list[str]:
    """``bulk ...`` as the installed entry point runs it, with this interpreter."""
    return [sys.executable, "-m", "bulk", *args]


def last_record(path: Path) -> dict[str, Any]:
    """The last whole JSON line of a ledger (the end record of the last run)."""
    with path.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(max(0, size - 65536))
        lines = stream.read().splitlines()
    for line in reversed(lines):
        try:
            record: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        return record
    return {}


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def chunks(items: Sequence[Any], parts: int) -> Iterator[Sequence[Any]]:
    """``items`` dealt round-robin into ``parts`` shares (each thread's share of the names)."""
    for index in range(parts):
        yield items[index::parts]
