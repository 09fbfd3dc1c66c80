"""Running the emulator: in the caller's loop (aiobotocore), restarted, and in the foreground."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiobotocore.session import get_session
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from bulk.emulator import (
    ConfigError,
    Emulator,
    EmulatorConfig,
    EmulatorState,
    make_app,
    running_emulator,
    serve_forever,
    server,
)
from bulk.errors import UsageError

from .torture import cli, one_line_error, run_bulk

SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIARATE/20240101/us-east-1/ses/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "Content-Type": "application/json",
}


@asynccontextmanager
async def async_client(emulator: Emulator, service: str = "sesv2") -> AsyncIterator[Any]:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=10)
    async with get_session().create_client(
        service,
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAASYNC",
        aws_secret_access_key="secret",
        config=config,
    ) as client:
        yield client


class TestRunningEmulator:
    async def test_serves_aiobotocore_in_the_same_loop(self, emulator: Emulator) -> None:
        assert emulator.url.startswith("http://127.0.0.1:")
        assert emulator.config.rate == 0  # the fixture's default: unthrottled, no faults
        async with async_client(emulator, "pinpoint-email") as client:
            await client.create_configuration_set(
                ConfigurationSetName="async", Tags=[{"Key": "k", "Value": "v"}]
            )
            got = await client.get_configuration_set(ConfigurationSetName="async")
            assert got["Tags"] == [{"Key": "k", "Value": "v"}]
            listed = await client.list_configuration_sets(PageSize=1)
            assert listed["ConfigurationSets"] == ["async"]
            with pytest.raises(client.exceptions.AlreadyExistsException):
                await client.create_configuration_set(ConfigurationSetName="async")
        assert emulator.stats()["created"] == 1

    async def test_a_dropped_connection_reaches_aiobotocore_as_connection_closed(
        self, emulator_factory: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(rate=0, ambiguous_rate=1.0, ambiguous_drop_share=1.0)
        async with emulator_factory(config) as emulator, async_client(emulator) as client:
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(
                    client.create_configuration_set(ConfigurationSetName="lost"), 5
                )
            emulator.configure(ambiguous_rate=0)
            with pytest.raises(client.exceptions.AlreadyExistsException):
                await client.create_configuration_set(ConfigurationSetName="lost")

    async def test_restart_on_the_same_port_keeps_the_sets(
        self, emulator_factory: Callable[..., Any]
    ) -> None:
        state = EmulatorState()
        async with emulator_factory(state=state) as first, async_client(first) as client:
            await client.create_configuration_set(ConfigurationSetName="survivor")
            port = first.port
        async with (
            emulator_factory(state=state, port=port) as second,
            async_client(second) as client,
        ):
            assert second.url == first.url
            got = await client.get_configuration_set(ConfigurationSetName="survivor")
            assert got["ConfigurationSetName"] == "survivor"

    async def test_make_app_accepts_an_existing_state(self) -> None:
        state = EmulatorState()
        state.create(("AKIARATE", "us-east-1"), "premade", {}, max_sets=None)
        runner = web.AppRunner(make_app(EmulatorConfig(rate=0), state))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/v2/email/configuration-sets/premade"
                async with session.get(url, headers=SIGNED) as response:
                    assert response.status == 200
                    assert (await response.json())["ConfigurationSetName"] == "premade"
        finally:
            await runner.cleanup()

    async def test_admitted_rate_is_precise_under_a_concurrent_flood(
        self, emulator_factory: Callable[..., Any]
    ) -> None:
        rate, burst, duration = 100.0, 5, 1.5
        async with emulator_factory(EmulatorConfig(rate=rate, burst=burst)) as emulator:
            url = emulator.url + "/v2/email/configuration-sets"
            statuses: list[int] = []
            counter = iter(range(1_000_000))

            async def flood(session: aiohttp.ClientSession, deadline: float) -> None:
                while time.monotonic() < deadline:
                    body = json.dumps({"ConfigurationSetName": f"f{next(counter)}"})
                    async with session.post(url, data=body, headers=SIGNED) as response:
                        await response.read()
                        statuses.append(response.status)

            async with aiohttp.ClientSession() as session:
                start = time.monotonic()
                deadline = start + duration
                async with asyncio.TaskGroup() as group:
                    for _ in range(8):
                        group.create_task(flood(session, deadline))
                elapsed = time.monotonic() - start
        ok = statuses.count(200)
        assert set(statuses) == {200, 429}
        assert statuses.count(429) > ok  # the flood really was faster than the limit
        # never more than the bucket allows; only a little less (a busy CI loop can stall)
        assert ok <= burst + rate * elapsed + 1
        assert ok >= (burst + rate * duration) * 0.93


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """One line of the process's stdout, or fail after ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            pytest.fail(f"no output within {timeout} s")
    return process.stdout.readline()


class TestServeForever:
    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
    def test_prints_its_url_and_stops_cleanly(self, signum: int) -> None:
        code = (
            "from bulk.emulator import EmulatorConfig, serve_forever\n"
            "serve_forever(EmulatorConfig(rate=0, seed=1), host='127.0.0.1', port=0)\n"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            first = read_line(process, 20)
            assert first.startswith("bulk emulator listening on http://127.0.0.1:")
            assert first.rstrip().endswith("(Ctrl-C to stop)")
            url = first.split()[4]
            with urllib.request.urlopen(url + "/_emulator/stats", timeout=5) as response:
                assert json.load(response)["config"]["seed"] == 1
            process.send_signal(signum)
            process.wait(timeout=10)
            assert process.stdout is not None and process.stderr is not None
            out, err = first + process.stdout.read(), process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0
        assert "Traceback" not in err
        assert "signatures are not verified" in out
        assert "bulk emulator stopped: 0 calls" in out

    def test_a_busy_port_is_a_usage_error(self) -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with pytest.raises(UsageError) as caught:
                serve_forever(EmulatorConfig(), host="127.0.0.1", port=port)
        assert str(caught.value) == (
            f"cannot listen on 127.0.0.1:{port}: address already in use; "
            "pass --port 0 for any free port, or another port"
        )

    @pytest.mark.parametrize("port", [-1, 65536, 99999])
    async def test_a_port_out_of_range_is_a_config_error(self, port: int) -> None:
        with pytest.raises(ConfigError, match=f"port must be between 0 and 65535, got {port}"):
            async with running_emulator(port=port):
                pass


def busy_port() -> socket.socket:
    """A socket listening on a free loopback port: that port is then in use."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    return busy


class TestEmulateCommand:
    """``bulk emulate`` with a bad option or an address it cannot use: exit 2, one line."""

    def test_a_busy_port_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        with busy_port() as busy:
            port = busy.getsockname()[1]
            result = run_bulk("emulate", "--port", str(port), cwd=tmp_path, timeout=60)
        assert result.returncode == 2
        assert one_line_error(result.stderr) == (
            f"bulk: error: cannot listen on 127.0.0.1:{port}: address already in use; "
            "pass --port 0 for any free port, or another port"
        )
        assert result.stdout == ""

    def test_the_default_port_in_use_mentions_localstack(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # 4566 itself may be free or taken on the machine running the tests: stand in for it.
        def taken(host: str, port: int) -> socket.socket:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))

        monkeypatch.setattr(server, "_listen", taken)
        result = cli("emulate")
        assert result.exit_code == 2
        assert one_line_error(result.stderr) == (
            "bulk: error: cannot listen on 127.0.0.1:4566: address already in use "
            "(LocalStack uses 4566 too); pass --port 0 for any free port, or another port"
        )

    def test_an_address_not_of_this_machine_is_one_line(self) -> None:
        # 192.0.2.1 is TEST-NET-1 (RFC 5737): no interface has it, and nothing is sent to it.
        result = cli("emulate", "--host", "192.0.2.1", "--port", "0")
        assert result.exit_code == 2
        line = one_line_error(result.stderr)
        assert line.startswith("bulk: error: cannot listen on 192.0.2.1:0: ")
        assert "pass --host 127.0.0.1" in line

    @pytest.mark.parametrize(
        ("options", "expect"),
        [
            (["--fault-rate", "2"], "--fault-rate must be between 0 and 1, got 2.0"),
            (["--ambiguous-rate", "-0.1"], "--ambiguous-rate must be between 0 and 1, got -0.1"),
            (
                ["--fault-rate", "0.6", "--ambiguous-rate", "0.6"],
                "--fault-rate + --ambiguous-rate must be at most 1, got 0.6 + 0.6",
            ),
            (["--rate", "-1"], "--rate must be at least 0, got -1.0"),
            (["--rate", "nan"], "--rate must be a number (at least 0), got nan"),
            (["--rate", "inf"], "--rate must be a number (at least 0), got inf"),
            (["--burst", "0"], "--burst must be at least 1, got 0"),
            (["--latency-ms", "-5"], "--latency-ms must be at least 0, got -5.0"),
            (["--max-sets", "-1"], "--max-sets must be at least 0, got -1"),
            (["--port", "99999"], "--port must be between 0 and 65535, got 99999"),
            (["--port", "-1"], "--port must be between 0 and 65535, got -1"),
            (
                ["--limit", "ListConfigurationSets"],
                "--limit: expected OPERATION=RATE[/BURST] such as ListConfigurationSets=5/10, "
                "got 'ListConfigurationSets'",
            ),
            (
                ["--limit", "GetAccount=-1"],
                "--limit: GetAccount's rate must be at least 0, got -1.0",
            ),
            (
                ["--limit", "CreateConfigurationSet=5"],
                "--limit: set CreateConfigurationSet's limit with --rate and --burst",
            ),
            (["--account", "12"], "--account must be a 12-digit account id, got '12'"),
            (
                ["--key-account", "AKIAEXAMPLE"],
                "--key-account: expected ACCESS_KEY_ID=ACCOUNT such as AKIAEXAMPLE=111111111111, "
                "got 'AKIAEXAMPLE'",
            ),
            (
                ["--deny-role", "admin"],
                "--deny-role: expected a role ARN (arn:aws:iam::ACCOUNT:role/NAME) or a 12-digit "
                "account id, got 'admin'",
            ),
            (["--credential-lifetime", "0"], "--credential-lifetime must be at least 1, got 0"),
        ],
    )
    def test_a_bad_option_is_one_line_and_exit_2(self, options: list[str], expect: str) -> None:
        result = cli("emulate", *options)
        assert result.exit_code == 2
        assert one_line_error(result.stderr) == f"bulk: error: {expect}"
        assert result.stdout == "", "it started listening"

    def test_an_unknown_operation_limit_names_the_known_ones(self) -> None:
        result = cli("emulate", "--limit", "SendEmail=5")
        assert result.exit_code == 2
        line = one_line_error(result.stderr)
        assert line.startswith("bulk: error: --limit: unknown operation 'SendEmail'; known: ")
        assert "'AssumeRole'" in line and "'ListConfigurationSets'" in line

    def test_account_options_reach_the_emulator(self, monkeypatch: pytest.MonkeyPatch) -> None:
        started: list[EmulatorConfig] = []

        def serve(config: EmulatorConfig, *, host: str, port: int) -> None:
            started.append(config)

        monkeypatch.setattr("bulk.emulator.serve_forever", serve)
        role = "arn:aws:iam::111111111111:role/locked"
        result = cli(
            "emulate",
            *("--account", "000000000000", "--key-account", "AKIAOTHER=222222222222"),
            *("--deny-role", role, "--deny-role", "333333333333"),
            *("--credential-lifetime", "60", "--limit", "ListConfigurationSets=5/10"),
            *("--limit", "AssumeRole=2"),
        )
        assert result.exit_code == 0, result.stderr
        (config,) = started
        assert config.default_account == "000000000000"
        assert dict(config.key_accounts) == {"AKIAOTHER": "222222222222"}
        assert config.denied_roles == frozenset({role, "333333333333"})
        assert config.credential_lifetime == 60
        assert dict(config.operation_limits) == {
            "ListConfigurationSets": (5.0, 10),
            "AssumeRole": (2.0, 1),
        }
        assert cli("emulate").exit_code == 0
        assert started[-1].default_account == EmulatorConfig().default_account  # not given


class TestHelp:
    def test_the_command_list_shows_each_description_whole(self) -> None:
        result = cli("--help")
        assert result.exit_code == 0
        commands = result.stdout.split("Commands:")[1]
        assert "Run a local Pinpoint Email / SES v2 emulator." in commands
        assert "Create a configuration set per row of INPUT." in commands
        assert "..." not in commands

    def test_lane_is_explained_where_help_uses_it(self) -> None:
        for command in ("provision", "emulate"):
            text = " ".join(cli(command, "--help").stdout.split())
            if "lane" in text:
                assert "a lane is one service, account (profile or role) and Region" in text
