"""``bulk provision``: create one configuration set per row of an input file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from bulk.engine.pipeline import Engine
from bulk.engine.summary import RunStats, Summary
from bulk.engine.target import Targets
from bulk.settings import Settings

__all__ = ["emulated", "provision"]


async def provision(
    input_path: str | Path,
    settings: Settings | None = None,
    *,
    targets: Targets | None = None,
    on_start: Callable[[RunStats], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
    handle_signals: bool = False,
) -> Summary:
    """Create one configuration set per valid row of ``input_path``; return the run's summary.

    Running it again with the same ledger resumes: settled rows are skipped without a call,
    the rest are sent. Raises :class:`~bulk.InputError`, :class:`~bulk.LedgerError` or
    :class:`~bulk.TargetError` when nothing could be done; problems met once rows are flowing
    (a quota stop, an interrupt, a systemic abort) are reported in the summary instead.
    ``on_start`` receives the live :class:`RunStats` (for a progress display). With
    ``handle_signals`` the first SIGINT/SIGTERM stops the run: no new call starts, calls
    already sent finish (bounded wait), and an interrupted summary is returned; a second one
    exits the process at once. ``on_interrupt`` is called at each of those signals.
    ``settings.emulator`` runs against the embedded emulator, started here for the run.
    ``targets`` replaces the service: each lane's calls go to what it gives (see
    :class:`~bulk.engine.target.Targets`; a test's fake, say), and no emulator is started.
    """
    settings = settings or Settings()
    async with emulated(settings, needed=targets is None) as settings:
        engine = Engine(
            Path(input_path),
            settings,
            targets=targets,
            on_start=on_start,
            on_interrupt=on_interrupt,
            handle_signals=handle_signals,
        )
        return await engine.run()


@asynccontextmanager
async def emulated(settings: Settings, *, needed: bool = True) -> AsyncIterator[Settings]:
    """With ``settings.emulator``, start the emulator on a free loopback port and target it.

    The emulator is imported only here: a run against AWS never loads it. A dry run sends
    nothing, so it starts none; nor does a run given its targets (not ``needed``).
    """
    if not needed or not settings.emulator or settings.endpoint_url or settings.dry_run:
        yield settings
        return
    from bulk.emulator import EmulatorConfig, running_emulator

    config = EmulatorConfig(rate=settings.emulator_rate, burst=settings.emulator_burst)
    async with running_emulator(config) as emulator:
        yield replace(settings, endpoint_url=emulator.url)
