"""The contenders: the engine, and the clients a user would otherwise write.

- ``run_engine``: ``bulk.provision`` in this process (no progress display), as a library user
  calls it; in-process so that interpreter start-up and imports are not counted against it.
- ``run_boto3_threads``: plain boto3, one shared client, N threads each creating its share of
  the names, botocore's own retries in ``standard`` or ``adaptive`` mode.
- ``run_boto3_loop``: the script a user writes for a limit of about 1 call a second: one
  client, one call after another, optionally ``time.sleep(pause)`` after each.
- ``run_aiobotocore``: N tasks pulling requests from one shared iterator, botocore retries off;
  unpaced it is the bare loop the engine's overhead is measured against (configured as a
  script would, or as the engine configures its client), paced (an aiolimiter bucket at the
  server's rate and burst) it is what a client that knows the limit can reach.

Each returns a :class:`ClientRun`; what reached the server is read from the emulator.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import REGION, SERVICE, chunks

_THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException"})
_EXISTS = "AlreadyExistsException"
# A client that is throttled even after botocore's retries sends the row again, like a user's
# script would: at most this many times, so a run always ends.
_MAX_RESENDS = 50


@dataclass(frozen=True)
class ClientRun:
    """One contender's run, as seen from the client.

    ``wall_s`` is the whole run (client set-up, for the engine also reading the input);
    ``window_s`` runs from the first call sent to the last answer received.
    """

    label: str
    wall_s: float
    window_s: float
    unfinished: int  # rows neither created nor found to exist when the run ended
    detail: str = ""
    cpu_s: float = 0.0  # CPU time of this process (all threads) over ``wall_s``


def engine_import_error() -> str | None:
    """Why ``bulk.engine.pipeline`` cannot be imported yet, or ``None`` when it can."""
    try:
        import bulk.engine.pipeline  # noqa: F401
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# -- the engine ----------------------------------------------------------------------------------


def run_engine(
    label: str,
    input_path: Path,
    url: str,
    ledger: Path,
    *,
    rate: float,
    burst: int = 1,
    concurrency: int = 16,
) -> tuple[ClientRun, Any]:
    """One ``provision()`` run; returns the client view and the engine's own ``Summary``.

    The window starts at ``on_start`` (credentials proven, the first batch of rows about to be
    read) and ends when ``provision`` returns (the ledger closed): both ends count a little
    of the engine's own work against it.
    """
    from bulk.commands.provision import provision
    from bulk.settings import Settings

    settings = Settings(
        service=SERVICE,
        region=REGION,
        endpoint_url=url,
        ledger=ledger,
        rate=rate,
        burst=burst,
        concurrency=concurrency,
    )
    first: list[float] = []

    def on_start(stats: Any) -> None:
        first.append(time.perf_counter())

    start, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(provision(input_path, settings, on_start=on_start))
    end, cpu = time.perf_counter(), time.process_time() - cpu
    counts = summary.counts
    unfinished = summary.total - counts.get("created", 0) - counts.get("exists", 0)
    window = end - (first[0] if first else start)
    detail = f"attempts {summary.attempts}, retries {summary.retries}, learned rate " + ", ".join(
        _rate(rate) for rate in summary.rates.values()
    )
    return ClientRun(label, end - start, window, unfinished, detail, cpu), summary


def _rate(rate: float | None) -> str:
    return "unlimited" if rate is None else f"{rate:.4g}/s"


# -- plain boto3 with botocore's retries ---------------------------------------------------------


def run_boto3_threads(
    label: str,
    requests: Sequence[dict[str, Any]],
    url: str,
    *,
    mode: str,
    threads: int = 32,
    max_attempts: int = 10,
) -> ClientRun:
    """``threads`` threads share one client (adaptive mode's rate limiter is per client)."""
    import boto3
    from botocore.config import Config

    start = time.perf_counter()
    config = Config(
        retries={"mode": mode, "max_attempts": max_attempts},
        max_pool_connections=threads,
    )
    client = boto3.session.Session().client(
        SERVICE, region_name=REGION, endpoint_url=url, config=config
    )
    barrier = threading.Barrier(threads + 1)
    unfinished = [0] * threads
    resent = [0] * threads
    failures: list[str] = []

    def work(index: int, share: Sequence[dict[str, Any]]) -> None:
        barrier.wait()
        for request in share:
            resends, failure = _create_with_resends(client, request)
            resent[index] += resends
            if failure is not None:
                failures.append(failure)
                unfinished[index] += 1

    workers = [
        threading.Thread(target=work, args=(index, share), name=f"boto3-{index}")
        for index, share in enumerate(chunks(requests, threads))
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    first = time.perf_counter()
    for worker in workers:
        worker.join()
    end = time.perf_counter()
    client.close()
    detail = f"{threads} threads, max_attempts {max_attempts}"
    if sum(resent):
        detail += f", {sum(resent)} rows re-sent after botocore gave up"
    if failures:
        detail += f", errors: {sorted(set(failures))}"
    return ClientRun(label, end - start, end - first, sum(unfinished), detail)


def run_boto3_loop(
    label: str,
    requests: Sequence[dict[str, Any]],
    url: str,
    *,
    pause: float = 0.0,
    mode: str | None = None,
    max_attempts: int = 10,
) -> ClientRun:
    """One client, one thread, ``time.sleep(pause)`` after each call; ``mode=None``: botocore's
    default retry configuration, as a script that sets none gets it.

    The window ends at the last answer: the pause after it is not counted.
    """
    import boto3
    from botocore.config import Config

    start = time.perf_counter()
    config = Config(retries={"mode": mode, "max_attempts": max_attempts}) if mode else Config()
    client = boto3.session.Session().client(
        SERVICE, region_name=REGION, endpoint_url=url, config=config
    )
    unfinished, resent = 0, 0
    failures: set[str] = set()
    first = last = time.perf_counter()
    for index, request in enumerate(requests):
        if index and pause:
            time.sleep(pause)
        resends, failure = _create_with_resends(client, request)
        resent += resends
        if failure is not None:
            failures.add(failure)
            unfinished += 1
        last = time.perf_counter()
    client.close()
    detail = f"1 thread, retries {mode or 'default'}" + (
        f", sleep({pause:g}) after each call" if pause else ""
    )
    if resent:
        detail += f", {resent} rows re-sent after botocore gave up"
    if failures:
        detail += f", errors: {sorted(failures)}"
    return ClientRun(label, last - start, last - first, unfinished, detail)


def _create_with_resends(client: Any, request: dict[str, Any]) -> tuple[int, str | None]:
    """One row as a boto3 script sends it: again after botocore gives up on 429s.

    Returns how many times it was re-sent, and why it was not created (None if it was, or it
    already existed): an error code, an exception's name, or "resends" when they ran out.
    """
    from botocore.exceptions import ClientError

    for resends in range(_MAX_RESENDS):
        try:
            client.create_configuration_set(**request)
            return resends, None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code == _EXISTS:
                return resends, None
            if code not in _THROTTLED:
                return resends, code
        except Exception as exc:  # connection trouble: counted, never retried here
            return resends, type(exc).__name__
    return _MAX_RESENDS, "resends"


# -- aiobotocore loops ---------------------------------------------------------------------------


def run_aiobotocore(
    label: str,
    requests: Sequence[dict[str, Any]],
    url: str,
    *,
    tasks: int,
    rate: float | None = None,
    burst: int = 1,
    engine_client: bool = False,
) -> ClientRun:
    """``tasks`` tasks pull from one iterator; with ``rate``, every attempt takes a token.

    With ``engine_client`` the client is configured as the engine configures its own
    (:func:`bulk.engine.target.client_config`); otherwise as a script would: defaults, retries off.
    """
    cpu = time.process_time()
    run = asyncio.run(
        _aiobotocore(
            label, requests, url, tasks=tasks, rate=rate, burst=burst, engine_client=engine_client
        )
    )
    return replace(run, cpu_s=time.process_time() - cpu)


async def _aiobotocore(
    label: str,
    requests: Sequence[dict[str, Any]],
    url: str,
    *,
    tasks: int,
    rate: float | None,
    burst: int,
    engine_client: bool,
) -> ClientRun:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession
    from aiolimiter import AsyncLimiter
    from botocore.exceptions import ClientError

    start = time.perf_counter()
    if engine_client:
        from bulk.engine.target import ClientSettings, client_config

        config = client_config(ClientSettings(pool_size=tasks))
    else:
        config = AioConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=tasks,
        )
    # Rate R with burst B: a bucket of B tokens refilled in B / R seconds.
    limiter = AsyncLimiter(burst, burst / rate) if rate else None
    pending: Iterator[dict[str, Any]] = iter(requests)
    unfinished = 0
    failures: set[str] = set()

    async with AioSession().create_client(
        SERVICE, region_name=REGION, endpoint_url=url, config=config
    ) as client:

        async def worker() -> None:
            nonlocal unfinished
            for request in pending:  # one shared iterator: each request is taken once
                for _ in range(_MAX_RESENDS):
                    if limiter is not None:
                        await limiter.acquire()
                    try:
                        await client.create_configuration_set(**request)
                        break
                    except ClientError as exc:
                        code = str(exc.response.get("Error", {}).get("Code"))
                        if code == _EXISTS:
                            break
                        if code not in _THROTTLED or limiter is None:
                            failures.add(code)
                            unfinished += 1
                            break
                    except Exception as exc:
                        failures.add(type(exc).__name__)
                        unfinished += 1
                        break
                else:
                    unfinished += 1

        first = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(tasks):
                group.start_soon(worker)
        last = time.perf_counter()
    end = time.perf_counter()
    detail = f"{tasks} tasks" + (f", paced {rate:g}/s burst {burst}" if rate else ", unpaced")
    if failures:
        detail += f", errors: {sorted(failures)}"
    return ClientRun(label, end - start, last - first, unfinished, detail)
