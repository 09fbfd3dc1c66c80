"""``bulk export``: an account's sets as an input file, through the CLI against the emulator.

Round trip: sets made with plain boto3 (every field, tags, event destinations, tenants),
exported, provisioned into an empty account, exported again: the same rows. An export
killed mid-way resumes without reading again what it has.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulk.emulator import Emulator, EmulatorConfig

from .test_chain_crash import destination
from .test_live_cells import REQUESTS
from .torture import cli, one_line_error, running_bulk, start_bulk

ThreadedEmulator = Callable[..., Any]
ACCOUNT = "123456789012/us-east-1"


def seed(client: Any, service: str) -> None:
    """Every request of ``service`` (every field between them), two event destinations on
    the first set and, with SES v2, its tenants."""
    for request in REQUESTS[service]:
        client.create_configuration_set(**request)
    first = REQUESTS[service][0]["ConfigurationSetName"]
    for name in ("bounces", "opens"):
        item = destination(name)
        client.create_configuration_set_event_destination(
            ConfigurationSetName=first,
            EventDestinationName=item.pop("Name"),
            EventDestination=item,
        )
    if service == "sesv2":
        arn = f"arn:aws:ses:us-east-1:123456789012:configuration-set/{first}"
        for tenant in ("acme", "beta"):
            client.create_tenant(TenantName=tenant)
            client.create_tenant_resource_association(TenantName=tenant, ResourceArn=arn)


def read(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


def calls(emu: Emulator) -> dict[str, int]:
    """Calls the emulator answered in the tests' account, by operation (429s too)."""
    return dict(emu.stats()["by_scope"].get(ACCOUNT, {}).get("calls", {}))


def admitted(emu: Emulator, operation: str) -> int:
    """Calls of ``operation`` the emulator admitted (not answered 429)."""
    scope = emu.stats()["by_scope"].get(ACCOUNT, {})
    return scope.get("calls", {}).get(operation, 0) - scope.get("throttled", {}).get(operation, 0)


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> Callable[[Emulator], None]:
    """Point STS (the account id, for ARNs) at an emulator."""
    return lambda emu: monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emu.url)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("source", "target"),
    [("sesv2", "sesv2"), ("pinpoint-email", "pinpoint-email"), ("pinpoint-email", "sesv2")],
)
def test_round_trip(
    tmp_path: Path,
    threaded_emulator: ThreadedEmulator,
    boto3_client: Callable[..., Any],
    sts: Callable[[Emulator], None],
    suffix: str,
    source: str,
    target: str,
) -> None:
    first, again = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    with threaded_emulator() as a, threaded_emulator() as b:
        sts(a)
        seed(boto3_client(a, source), source)
        exported = cli("export", first, "--service", source, "--endpoint-url", a.url)
        assert exported.exit_code == 0, exported.output
        assert f"export: {len(REQUESTS[source])} sets written to {first}" in exported.stdout

        sts(b)
        made = cli("provision", first, "--service", target, "--endpoint-url", b.url, "--rate", "0")
        assert made.exit_code == 0, made.output
        back = cli("export", again, "--service", target, "--endpoint-url", b.url)
        assert back.exit_code == 0, back.output

    rows, rows_again = read(first), read(again)
    assert rows.height == len(REQUESTS[source])
    assert rows_again.equals(rows), f"{rows}\n{rows_again}"
    if source == "sesv2":
        every = rows.filter(pl.col("ConfigurationSetName") == "v2-every").row(0, named=True)
        assert every["TenantName"] == "acme,beta"
        assert [d["Name"] for d in json.loads(every["EventDestinations"])] == ["bounces", "opens"]


def test_several_regions_give_one_file_with_a_region_column(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]
) -> None:
    out = tmp_path / "all.csv"
    with threaded_emulator() as emu:
        for region in ("us-east-1", "eu-west-1"):
            client = boto3_client(emu, "pinpoint-email", region=region)
            client.create_configuration_set(ConfigurationSetName=f"set-{region}")
        result = cli(
            "export", out, "--service", "pinpoint-email", "--endpoint-url", emu.url,
            "--region", "us-east-1", "--region", "eu-west-1",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read(out)
    assert rows.columns[-1] == "Region"
    # No event destinations is "[]": provisioned with --event-destinations, it stays none.
    assert rows.rows() == [
        ("set-eu-west-1", "[]", "eu-west-1"),
        ("set-us-east-1", "[]", "us-east-1"),
    ]


def test_an_empty_account_is_a_header(tmp_path: Path, threaded_emulator: ThreadedEmulator) -> None:
    out = tmp_path / "none.csv"
    with threaded_emulator() as emu:
        result = cli("export", out, "--endpoint-url", emu.url)
    assert result.exit_code == 0, result.output
    assert out.read_text() == "ConfigurationSetName\n"


def test_reads_are_paced_by_the_rate(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]
) -> None:
    """Reads spend the account's budget: at --rate 20 no operation goes faster."""
    out = tmp_path / "paced.csv"
    with threaded_emulator() as emu:
        client = boto3_client(emu, "pinpoint-email")
        for i in range(30):
            client.create_configuration_set(ConfigurationSetName=f"s-{i:02d}")
        before = calls(emu)
        start = time.monotonic()
        result = cli("export", out, "--endpoint-url", emu.url, "--rate", "20", "--json")
        took = time.monotonic() - start
        made = {op: n - before.get(op, 0) for op, n in calls(emu).items()}
    assert result.exit_code == 0, result.output
    assert made["GetConfigurationSet"] == 30 and made["GetConfigurationSetEventDestinations"] == 30
    # 30 reads of one operation at 20/s with a bucket of one: at least 29 intervals of 50 ms.
    assert took >= 29 / 20
    assert json.loads(result.stdout)["throttled"] == 0


def test_a_killed_export_resumes_without_reading_again(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]
) -> None:
    out = tmp_path / "big.csv"
    partial = tmp_path / "big.csv.partial.jsonl"
    sets, concurrency = 200, 4
    with threaded_emulator(EmulatorConfig(rate=0.0, latency_ms=20)) as emu:
        client = boto3_client(emu, "pinpoint-email")
        for i in range(sets):
            client.create_configuration_set(ConfigurationSetName=f"s-{i:03d}")
        args = ("export", out, "--endpoint-url", emu.url, "--rate", "0")
        args += ("--concurrency", str(concurrency))
        with running_bulk(*args, cwd=tmp_path) as proc:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if partial.exists() and len(partial.read_text().splitlines()) > 60:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the export ended before it could be killed"
            proc.kill()
            proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert not out.exists(), "no OUTPUT until every set is read"
        kept = len(partial.read_text().splitlines()) - 1  # less its header

        final = start_bulk(*args, cwd=tmp_path)
        _, err = final.communicate(timeout=120)
        reads = admitted(emu, "GetConfigurationSet")

    assert final.returncode == 0, err
    assert read(out).height == sets
    assert not partial.exists()
    # Each set read once, plus at most the reads in flight at the kill, whose answers the
    # partial never got.
    assert sets <= reads <= sets + concurrency, (reads, kept)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("missing/out.csv", "no directory"),
        ("out.xlsx", "bulk export writes .csv or .parquet files"),
        ("exists.csv", "already exists; use --force to replace it"),
    ],
)
def test_bad_output_paths_are_one_line_and_exit_2(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, name: str, said: str
) -> None:
    (tmp_path / "exists.csv").write_text("keep\n")
    with threaded_emulator() as emu:
        result = cli("export", tmp_path / name, "--endpoint-url", emu.url)
        assert sum(calls(emu).values()) == 0, "nothing sent"
    assert result.exit_code == 2
    assert said in one_line_error(result.stderr)
    assert (tmp_path / "exists.csv").read_text() == "keep\n"


def test_force_replaces_an_existing_output(
    tmp_path: Path, threaded_emulator: ThreadedEmulator
) -> None:
    out = tmp_path / "exists.csv"
    out.write_text("old\n")
    with threaded_emulator() as emu:
        result = cli("export", out, "--endpoint-url", emu.url, "--force")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "ConfigurationSetName\n"


def test_an_endpoint_that_does_not_answer_is_exit_3(tmp_path: Path) -> None:
    result = cli(
        "export", tmp_path / "o.csv", "--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "2"
    )
    assert result.exit_code == 3, result.output
    assert "endpoint unreachable" in result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_ctrl_c_keeps_what_was_read_and_exits_130(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, boto3_client: Callable[..., Any]
) -> None:
    out = tmp_path / "o.csv"
    partial = tmp_path / "o.csv.partial.jsonl"
    with threaded_emulator() as emu:
        client = boto3_client(emu, "pinpoint-email")
        for i in range(40):
            client.create_configuration_set(ConfigurationSetName=f"s-{i:02d}")
        args = ("export", out, "--endpoint-url", emu.url, "--rate", "10")
        with running_bulk(*args, cwd=tmp_path) as proc:
            deadline = time.monotonic() + 60
            while not (partial.exists() and len(partial.read_text().splitlines()) > 5):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130
        assert "not written (interrupted)" in stdout and not out.exists()
        kept = len(partial.read_text().splitlines()) - 1
        reads = admitted(emu, "GetConfigurationSet")

        again = cli("export", out, "--endpoint-url", emu.url, "--rate", "0")

        assert again.exit_code == 0, again.output
        assert f"{40 - kept} sets read now, {kept} by an earlier run" in again.stdout
        assert admitted(emu, "GetConfigurationSet") - reads == 40 - kept
    assert read(out).height == 40


def test_a_role_exports_its_own_account(
    tmp_path: Path, threaded_emulator: ThreadedEmulator, sts: Callable[[Emulator], None]
) -> None:
    """--role-arn as in provision: the sets of the role's account, not the caller's."""
    role = "arn:aws:iam::111122223333:role/Migrator"
    path = tmp_path / "in.csv"
    path.write_text("ConfigurationSetName\nin-the-role-account\n")
    with threaded_emulator() as emu:
        sts(emu)
        made = cli("provision", path, "--endpoint-url", emu.url, "--role-arn", role, "--rate", "0")
        assert made.exit_code == 0, made.output
        theirs = cli(
            "export", tmp_path / "theirs.csv", "--endpoint-url", emu.url, "--role-arn", role
        )
        ours = cli("export", tmp_path / "ours.csv", "--endpoint-url", emu.url)
    assert theirs.exit_code == 0 and ours.exit_code == 0, theirs.output + ours.output
    assert read(tmp_path / "theirs.csv")["ConfigurationSetName"].to_list() == [
        "in-the-role-account"
    ]
    assert read(tmp_path / "ours.csv").height == 0
