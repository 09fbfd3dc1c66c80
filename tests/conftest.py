"""Shared fixtures: the local emulator (in the test's loop or in a thread) and boto3 clients.

No test needs AWS or the internet: every client points at an emulator on a free loopback port,
and the environment holds dummy credentials only (no profile, no instance metadata).

- ``emulator``: an unthrottled, fault-free emulator in the test's event loop (async clients).
- ``emulator_factory(config, **kwargs)``: ``async with`` one with any ``EmulatorConfig``.
- ``threaded_emulator(config, **kwargs)``: ``with`` one served from a background thread, for
  blocking clients such as plain boto3 (a blocking call in an async test would stall the loop
  that has to answer it).
- ``boto3_client(emulator, service, ...)``: a plain boto3 client for it, botocore retries off.
- ``served``: an unthrottled, fault-free emulator served from a thread; ``service``: each
  service in turn; ``client``: a boto3 client of ``served`` for ``service``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bulk.emulator import Emulator, EmulatorConfig, running_emulator, threaded_emulator

ACCESS_KEY = "AKIAEMULATORTEST"
REGION = "us-east-1"
SERVICES = ("pinpoint-email", "sesv2")

EmulatorFactory = Callable[..., AbstractAsyncContextManager[Emulator]]
ThreadedEmulatorFactory = Callable[..., AbstractContextManager[Emulator]]


def unthrottled(**settings: Any) -> EmulatorConfig:
    """The fixtures' default: no throttling of creates, no faults, plus ``settings``."""
    return EmulatorConfig(**{"rate": 0.0, **settings})


@pytest.fixture(autouse=True)
def _offline_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no shared config, so no test can reach a real account."""
    # A caller's AWS_REGION would win over the AWS_DEFAULT_REGION set below.
    for name in (
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A role assumed outside --emulator goes where botocore sends STS: here nowhere (the
    # discard port refuses at once), never to AWS. A test points it at its own emulator.
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """An unthrottled, fault-free emulator serving from the test's event loop."""
    async with running_emulator(unthrottled()) as running:
        yield running


@pytest.fixture
def emulator_factory() -> EmulatorFactory:
    """``async with emulator_factory(EmulatorConfig(...), state=..., port=...) as emulator``."""

    def factory(
        config: EmulatorConfig | None = None, **kwargs: Any
    ) -> AbstractAsyncContextManager[Emulator]:
        return running_emulator(config or unthrottled(), **kwargs)

    return factory


@pytest.fixture(name="threaded_emulator")
def threaded_emulator_factory() -> ThreadedEmulatorFactory:
    """``with threaded_emulator(EmulatorConfig(...)) as emulator``: served from a thread."""

    def factory(
        config: EmulatorConfig | None = None, **kwargs: Any
    ) -> AbstractContextManager[Emulator]:
        return threaded_emulator(config or unthrottled(), **kwargs)

    return factory


@pytest.fixture
def boto3_client() -> Iterator[Callable[..., Any]]:
    """``boto3_client(emulator, "sesv2", region=..., access_key=...)``: plain boto3, one attempt."""
    clients: list[Any] = []

    def make(
        emulator: Emulator,
        service: str = "sesv2",
        *,
        region: str = REGION,
        access_key: str = ACCESS_KEY,
        **config: Any,
    ) -> Any:
        client = boto3.session.Session().client(
            service,
            endpoint_url=emulator.url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key="emulator-secret",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=10, **config),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A ledger's path in the test's own folder (the ledger tests' file under test)."""
    return tmp_path / "tenants.csv.ledger.jsonl"


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    """Each service in turn: a test that asks for ``service`` runs once for each."""
    return str(request.param)


@pytest.fixture
def served(threaded_emulator: ThreadedEmulatorFactory) -> Iterator[Emulator]:
    """An unthrottled, fault-free emulator served from a thread (for blocking clients)."""
    with threaded_emulator() as running:
        yield running


@pytest.fixture
def client(served: Emulator, service: str, boto3_client: Callable[..., Any]) -> Any:
    """A plain boto3 client of ``served`` for ``service``."""
    return boto3_client(served, service)
