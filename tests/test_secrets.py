"""Secrets stay secret, input cannot drive the terminal, and the emulator stays on loopback.

- Credentials from the environment (a sentinel secret key and session token) appear nowhere a
  user could share: not in the ledger, stdout, stderr, progress lines or ``--debug``
  tracebacks; neither does a password in ``--endpoint-url``.
- Control characters in input (cells, column names, file names) reach the terminal escaped.
- ``bulk emulate``, ``--emulator`` and the library's emulator listen on 127.0.0.1 unless told
  otherwise.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner, Result

from bulk.cli import main
from bulk.emulator import EmulatorConfig, running_emulator
from bulk.engine.progress import render_summary
from bulk.engine.summary import RunStats

from .torture import (
    latest_by_row,
    one_line_error,
    run_bulk,
    running_bulk,
    tenants_file,
    write_csv,
)

ThreadedEmulator = Any
SECRET = "SENTINELsecretKEY0000000000000000000000zz"
TOKEN = "SENTINELsessionTOKEN/IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3Qt"
KEY_ID = "AKIASENTINEL00000001"
SENTINELS = (SECRET, TOKEN, "SENTINEL")
ESC = "\x1b"


@pytest.fixture
def sentinel_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)


def assert_no_secret(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        for sentinel in SENTINELS:
            assert sentinel.encode() not in data, f"{sentinel[:12]}... leaked"


def files_under(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in directory.rglob("*") if path.is_file()]


def invoke(*args: str | Path) -> Result:
    """The command line in this process; ``color=True`` keeps what click would strip from a
    pipe, as a terminal would receive it."""
    runner = CliRunner()
    return runner.invoke(main, [str(arg) for arg in args], color=True, catch_exceptions=False)


class TestCredentials:
    def test_a_run_with_debug_and_progress_never_shows_them(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator, sentinel_credentials: None
    ) -> None:
        # Faults, throttling and invalid rows, and long enough for a plain progress line.
        tenants = tenants_file(tmp_path / "t.csv", 330, bad_every=30)
        config = EmulatorConfig(rate=50, burst=2, fault_rate=0.05, ambiguous_rate=0.05, seed=4)
        with threaded_emulator(config) as emu:
            result = run_bulk(
                "provision",
                tenants.path,
                "--endpoint-url",
                emu.url,
                "--rate",
                "60",
                "--debug",
                cwd=tmp_path,
            )
            assert result.returncode == 1, result.stderr
            assert "bulk: " in result.stderr  # at least one progress line
            assert "rows/s" in result.stderr
            assert emu.stats()["configuration_sets"] > 0
        records = latest_by_row(tenants.ledger)
        assert len(records) == tenants.total
        assert_no_secret(result.stdout, result.stderr, *files_under(tmp_path))
        # The access key id is no secret, but the ledger's header keeps none either.
        assert KEY_ID.encode() not in tenants.ledger.read_bytes()

    @pytest.mark.parametrize(
        "endpoint",
        ["http://127.0.0.1:9", "http://user:SENTINELpassword@127.0.0.1:9"],
        ids=["plain", "password-in-url"],
    )
    def test_a_traceback_with_debug_does_not_show_them(
        self, tmp_path: Path, sentinel_credentials: None, endpoint: str
    ) -> None:
        path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "acme"}])
        result = invoke("provision", path, "--endpoint-url", endpoint, "--debug")
        assert result.exit_code == 3
        assert "Traceback" in result.stderr  # --debug shows it
        assert result.stderr.strip().splitlines()[-1].startswith("bulk: error: ")
        assert_no_secret(result.stdout, result.stderr, *files_under(tmp_path))

    def test_a_refused_ledger_with_debug_does_not_show_them(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator, sentinel_credentials: None
    ) -> None:
        path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "acme"}])
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            first = invoke("provision", path, "--endpoint-url", emu.url)
            assert first.exit_code == 0, first.output
            other = invoke(
                "provision", path, "--endpoint-url", emu.url, "--region", "eu-west-1", "--debug"
            )
        assert other.exit_code == 2
        assert "Traceback" in other.stderr
        assert "belongs to another region" in other.stderr
        assert_no_secret(first.stdout, first.stderr, other.stdout, other.stderr)
        assert_no_secret(*files_under(tmp_path))


class TestControlCharacters:
    def test_a_column_name_with_an_escape_sequence_is_shown_escaped(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        path = tmp_path / "t.csv"
        path.write_bytes(b"ConfigurationSetName,\x1b[31mEvil\x07\nacme,x\n")
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            result = invoke("provision", path, "--endpoint-url", emu.url)
        assert result.exit_code == 2
        line = one_line_error(result.stderr)
        assert ESC not in line and "\x07" not in line
        assert "unknown column '\\x1b[31mEvil\\x07'" in line

    def test_cells_with_control_characters_reach_the_ledger_escaped_not_the_terminal(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        rows = [
            {"ConfigurationSetName": "acme", "SendingEnabled": "true"},
            {"ConfigurationSetName": "evil\x1b[31mred", "SendingEnabled": "true"},
            {"ConfigurationSetName": "globex", "SendingEnabled": "\x1b]0;pwned\x07"},
        ]
        path = write_csv(tmp_path / "t.csv", rows)
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            result = invoke("provision", path, "--endpoint-url", emu.url)
            assert emu.state.all_names() == {"acme"}
        assert result.exit_code == 1
        assert ESC not in result.output and "\x07" not in result.output
        ledger = Path(f"{path}.ledger.jsonl").read_bytes()
        assert b"\x1b" not in ledger and b"\x07" not in ledger  # JSON escapes: safe to cat
        latest = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert latest[2]["name"] == "evil\x1b[31mred"  # kept exactly, for the record
        assert "'evil\\x1b[31mred' contains '\\x1b', '['" in latest[2]["message"]
        assert "'\\x1b]0;pwned\\x07' is not a boolean" in latest[3]["message"]

    def test_an_input_file_name_with_control_characters_is_shown_escaped(
        self, tmp_path: Path, threaded_emulator: ThreadedEmulator
    ) -> None:
        path = write_csv(tmp_path / "t\x1b]0;pwned\x07\r.csv", [{"ConfigurationSetName": "acme"}])
        with threaded_emulator(EmulatorConfig(rate=0)) as emu:
            result = invoke("provision", path, "--endpoint-url", emu.url, "--rate", "0")
            assert emu.state.all_names() == {"acme"}
        assert result.exit_code == 0, result.output
        assert ESC not in result.output and "\x07" not in result.output
        assert "\r" not in result.output
        assert "t\\x1b]0;pwned\\x07\\r.csv.ledger.jsonl" in result.stdout

    def test_every_line_of_the_summary_is_escaped(self, tmp_path: Path) -> None:
        stats = RunStats(total=3, ledger=tmp_path / "evil\x1b[2J.ledger.jsonl")
        stats.note_drift("evil\x1b[31mred", 2)  # names are validated; the summary escapes anyway
        stats.skipped = 3
        text = render_summary(stats.summary(interrupted=True), command="bulk provision \x1b[2J")
        assert ESC not in text
        assert "evil\\x1b[31mred (row 2)" in text
        assert "evil\\x1b[2J.ledger.jsonl" in text
        assert text.count("\n") == len(text.splitlines()) - 1  # no line was split or joined


class TestEmulatorBindsLoopback:
    async def test_the_library_emulator_listens_on_loopback_by_default(self) -> None:
        async with running_emulator(EmulatorConfig()) as emu:
            assert emu.host == "127.0.0.1"
            assert emu.url.startswith("http://127.0.0.1:")
            listening = [
                c.laddr
                for c in psutil.Process().net_connections("inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == emu.port
            ]
            assert listening and all(addr.ip == "127.0.0.1" for addr in listening)

    def test_bulk_emulate_listens_on_loopback_by_default(self, tmp_path: Path) -> None:
        with running_bulk("emulate", "--port", "0", cwd=tmp_path) as proc:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("bulk emulator listening on http://127.0.0.1:"), first
            port = int(first.split(":")[-1].split()[0])
            deadline = time.monotonic() + 10
            listening: list[Any] = []
            while not listening and time.monotonic() < deadline:
                listening = [
                    c.laddr
                    for c in psutil.Process(proc.pid).net_connections("inet")
                    if c.status == psutil.CONN_LISTEN
                ]
            assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}
            assert {addr.port for addr in listening} == {port}
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0
            assert "bulk emulator stopped" in out

    def test_provision_with_emulator_uses_loopback(self, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "t.csv", [{"ConfigurationSetName": "acme"}])
        result = invoke("provision", path, "--emulator", "--rate", "0")
        assert result.exit_code == 0, result.output
        assert result.stderr.startswith("bulk: Region us-east-1 (")
        assert " · emulator at http://127.0.0.1:" in result.stderr.splitlines()[0]

    def test_the_host_option_defaults_to_loopback(self) -> None:
        emulate = main.commands["emulate"]  # type: ignore[attr-defined]
        host = next(p for p in emulate.params if p.name == "host")
        assert host.default == "127.0.0.1"
