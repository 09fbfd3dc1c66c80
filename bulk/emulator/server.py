"""Ways to run the emulator: an async context manager, a background thread, the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import queue
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bulk.emulator.app import EmulatorRuntime, app_for
from bulk.emulator.config import EmulatorConfig, check_port
from bulk.emulator.state import EmulatorState
from bulk.errors import UsageError

# Handlers still running when the server stops get this long to finish (latency sleeps);
# idle keep-alive connections are closed at once.
SHUTDOWN_TIMEOUT = 2.0


@dataclass(frozen=True)
class Emulator:
    """A running emulator: where it listens, and handles on its settings, state and counters.

    ``configure``, ``reset`` and ``stats`` do what the ``/_emulator/...`` endpoints do, and are
    safe to call from any thread.
    """

    url: str
    host: str
    port: int
    runtime: EmulatorRuntime

    @property
    def config(self) -> EmulatorConfig:
        """The settings in force now."""
        return self.runtime.config

    @property
    def state(self) -> EmulatorState:
        """The stored configuration sets and counters; pass it to a new emulator to restart."""
        return self.runtime.state

    def stats(self) -> dict[str, Any]:
        """The same JSON as ``GET /_emulator/stats``."""
        return self.runtime.stats()

    def configure(self, changes: Mapping[str, Any] | None = None, **more: Any) -> EmulatorConfig:
        """Change settings from now on (e.g. ``configure(rate=5, fault_rate=0.2)``)."""
        return self.runtime.configure({**(changes or {}), **more})

    def reset(self) -> None:
        """Forget every set and counter; refill every bucket."""
        self.runtime.reset()


@asynccontextmanager
async def running_emulator(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state: EmulatorState | None = None,
) -> AsyncIterator[Emulator]:
    """Serve the emulator on the running loop for the duration of the block.

    ``port=0`` picks a free port; the ``Emulator`` yielded has the URL to use as
    ``endpoint_url``. Pass ``state`` from an earlier emulator to keep its configuration sets.
    It shares the loop with the caller, so use async clients (aiobotocore) in the block: a
    blocking client would stall the loop that serves it (see ``threaded_emulator``). Raises
    ``ConfigError`` for a port outside 0..65535, ``OSError`` when it cannot listen.
    """
    check_port(port)
    runtime = EmulatorRuntime(
        config if config is not None else EmulatorConfig(),
        state if state is not None else EmulatorState(),
    )
    runner = web.AppRunner(app_for(runtime), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        sock = _listen(host, port)
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            raise
        bound = sock.getsockname()[1]
        yield Emulator(_url(host, bound), host, bound, runtime)
    finally:
        await runner.cleanup()


@contextmanager
def threaded_emulator(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state: EmulatorState | None = None,
    timeout: float = 10.0,
) -> Iterator[Emulator]:
    """Serve the emulator from a background thread with its own event loop.

    For blocking clients (plain boto3) and code without a loop; stops when the block ends.
    """
    started: queue.Queue[tuple[Emulator, asyncio.AbstractEventLoop, asyncio.Event] | BaseException]
    started = queue.Queue(maxsize=1)

    async def serve() -> None:
        stop = asyncio.Event()
        running = False
        try:
            async with running_emulator(config, host=host, port=port, state=state) as emulator:
                running = True
                started.put((emulator, asyncio.get_running_loop(), stop))
                await stop.wait()
        except Exception as exc:
            if running:
                raise
            started.put(exc)  # a failed start is raised in the caller, who is waiting for it

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="bulk-emulator")
    thread.daemon = True  # never keeps a test run alive
    thread.start()
    try:
        item = started.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"the emulator did not start within {timeout} s") from None
    if isinstance(item, BaseException):
        thread.join(timeout)
        raise item
    emulator, loop, stop = item
    try:
        yield emulator
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout + SHUTDOWN_TIMEOUT)


def serve_forever(config: EmulatorConfig, *, host: str, port: int) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM, for ``bulk emulate``; then return.

    Prints the URL and the settings first, and a one-line summary of the counters at the end.
    Raises ``UsageError`` when it cannot listen on ``host:port`` (the message says why, and
    what to pass instead), ``ConfigError`` (a ``UsageError`` too) for a port out of range.
    """
    # Ctrl-C normally arrives as a signal handled by the loop; KeyboardInterrupt can still
    # escape where the loop cannot install handlers (Windows, or outside the main thread).
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, host, port))


async def _serve(config: EmulatorConfig, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                emulator = await stack.enter_async_context(
                    running_emulator(config, host=host, port=port)
                )
            except OSError as exc:
                raise UsageError(_cannot_listen(host, port, exc)) from exc
            print(f"bulk emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
            for line in describe(config, emulator.url):
                print(f"  {line}", flush=True)
            await stop.wait()
            stats = emulator.stats()
        print(
            f"bulk emulator stopped: {sum(stats['calls'].values())} calls, "
            f"{stats['created']} created, {stats['throttled']} throttled, "
            f"{stats['faults']} faults, {stats['ambiguous']} ambiguous",
            flush=True,
        )
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def describe(config: EmulatorConfig, url: str) -> list[str]:
    """The settings of an emulator, one human-readable line each (``bulk emulate`` prints them)."""
    limits, other = config.limits()
    by_limit: dict[tuple[float, int], list[str]] = {}
    for operation, limit in limits.items():
        by_limit.setdefault(limit, []).append(operation)
    own = "; ".join(f"{', '.join(ops)}: {_limit(*limit)}" for limit, ops in by_limit.items())
    faults = ", ".join(sorted(config.fault_operations)) or "none"
    keys = ", ".join(f"{key} in {account}" for key, account in sorted(config.key_accounts.items()))
    denied = ", ".join(sorted(config.denied_roles)) or "none"
    lifetime = (
        "as asked (DurationSeconds)"
        if config.credential_lifetime is None
        else f"at most {config.credential_lifetime} s"
    )
    return [
        f"per account and Region, one bucket per operation: {own}; "
        f"other operations: {_limit(*other)}",
        f"latency {config.latency_ms:g} ms (±{config.latency_jitter:.0%}), "
        f"fault rate {config.fault_rate:g}, ambiguous rate {config.ambiguous_rate:g} "
        f"(on {faults})",
        f"max sets per account and Region: {_or(config.max_sets, 'unlimited')}, "
        f"seed: {_or(config.seed, 'random')}",
        f"access keys belong to account {config.default_account}"
        + (f" ({keys})" if keys else "")
        + "; AssumeRole keys to the role's account",
        f"STS on the same URL: AssumeRole credentials last {lifetime}; denied roles: {denied}",
        "any SigV4-signed request is accepted; signatures are not verified",
        f"use --endpoint-url {url} (and AWS_ENDPOINT_URL_STS={url}); "
        f"counters at {url}/_emulator/stats",
    ]


def _limit(rate: float, burst: int) -> str:
    return "unthrottled" if rate <= 0 else f"{rate:g}/s, burst {burst}"


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """What ``bulk emulate`` says when binding ``host:port`` failed with ``exc``, and what to do."""
    where = f"cannot listen on {_authority(host, port)}"
    code = exc.errno
    if code == errno.EADDRINUSE:
        also = " (LocalStack uses 4566 too)" if port == 4566 else ""
        return (
            f"{where}: address already in use{also}; "
            "pass --port 0 for any free port, or another port"
        )
    if code == errno.EADDRNOTAVAIL:
        return (
            f"{where}: no network interface of this machine has that address; "
            "pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)"
        )
    if code == errno.EACCES:
        return (
            f"{where}: permission denied (ports below 1024 need privileges); "
            "pass --port 0 for any free port, or one above 1023"
        )
    # Name resolution failed: socket.create_server re-raises a gaierror as an OSError that
    # keeps its (negative) EAI_* code.
    if isinstance(exc, socket.gaierror) or (code is not None and code < 0):
        return f"{where}: cannot resolve host {host!r}; pass an IP address such as 127.0.0.1"
    reason = os.strerror(code) if code else str(exc)
    return f"{where}: {reason}; pass another --host or --port"


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=512)


def _url(host: str, port: int) -> str:
    return f"http://{_authority(host, port)}"


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _or(value: int | None, default: str) -> str:
    return default if value is None else str(value)
