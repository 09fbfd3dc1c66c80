"""``bulk export``: every configuration set of an account's Region(s), written as an input file
that ``bulk provision`` reads as it is.

Per Region (a lane), concurrently: the names (paged ``ListConfigurationSets``), then per set
``GetConfigurationSet`` (options and tags), ``GetConfigurationSetEventDestinations`` and, for
SES v2, ``ListResourceTenants`` (the tenants it belongs to). Every read passes the lane's
limiter for its operation (reads spend the account's budget too), with ``--rate``, ``--burst``
and ``--concurrency`` as in provision, and the run's retry policy.

Each set read goes to a partial file beside OUTPUT at once (:class:`~bulk.live.output.ExportFile`);
OUTPUT is written only when every set is read, aside and then renamed. An export that was
interrupted or could not read some sets keeps its partial: the same command run again reads
only the sets the partial lacks.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import anyio

from bulk.commands.provision import emulated
from bulk.engine.http import LEAVING
from bulk.engine.live import configuration_set_arn, list_names, read_pages, read_set
from bulk.engine.pipeline import open_targets
from bulk.engine.sender import LaneCalls, Sender
from bulk.engine.stopping import Halt, RunControl, each_at_once
from bulk.engine.summary import RunStats
from bulk.engine.target import CallKind, Targets
from bulk.errors import TargetError, UsageError, user_errors_unwrapped
from bulk.input.columns import NAME_COLUMN, REGION_COLUMN, operation_shape
from bulk.input.regions import run_region as resolve_region
from bulk.ledger.index import ResumeIndex
from bulk.live.cells import CellValue, set_cells
from bulk.live.output import ExportFile
from bulk.models import Lane
from bulk.settings import Settings

__all__ = ["ExportProgress", "ExportSummary", "export", "show_progress"]

GET_DESTINATIONS = "GetConfigurationSetEventDestinations"
LIST_TENANTS = "ListResourceTenants"


@dataclass
class ExportProgress:
    """An export's live counters, for a progress display: sets ``listed`` and ``read`` (this
    run), ``resumed`` (read by an earlier run); per lane, its sets."""

    listed: int = 0
    read: int = 0
    resumed: int = 0
    started: float = field(default_factory=time.monotonic)
    lanes: dict[str, int] = field(default_factory=dict)

    @property
    def left(self) -> int:
        return max(0, self.listed - self.read - self.resumed)

    @property
    def speed(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.read / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """``120/500 sets read · 3.1 sets/s · ETA 2m02s · 2 Regions``, as a display shows it."""
        done = self.read + self.resumed
        speed = self.speed
        eta = f"{self.left / speed:.0f}s" if speed > 0 else "?"
        if speed > 0 and self.left / speed >= 60:
            minutes, seconds = divmod(int(self.left / speed), 60)
            eta = f"{minutes}m{seconds:02d}s"
        lanes = f" · {len(self.lanes)} Regions" if len(self.lanes) > 1 else ""
        return f"{done}/{self.listed} sets read · {speed:.1f} sets/s · ETA {eta}{lanes}"


async def show_progress(progress: ExportProgress, stream: TextIO, *, interval: float) -> None:
    """Write ``progress`` to ``stream`` until cancelled: one line rewritten in place on a
    terminal, a new line every ``interval`` seconds otherwise."""
    terminal = stream.isatty()
    try:
        while True:
            await anyio.sleep(0.5 if terminal else interval)
            if terminal:
                stream.write(f"\r\x1b[Kbulk: export: {progress.line()}")
            else:
                stream.write(f"bulk: export: {progress.line()}\n")
            stream.flush()
    finally:
        if terminal:
            stream.write("\r\x1b[K")
            stream.flush()


@dataclass(frozen=True)
class ExportSummary:
    """What an export did. ``rows``: sets in OUTPUT (None: OUTPUT not written, some sets
    could not be read, or the export was interrupted); ``read``: sets read by this run,
    ``resumed``: read by an earlier one; ``gone``: listed, then deleted before they could be
    read; ``problems``: per lane, why it could not be read in full."""

    output: str
    rows: int | None
    lanes: dict[str, int]
    read: int
    resumed: int
    gone: int
    calls: int
    throttled: int
    elapsed_s: float
    problems: dict[str, str] = field(default_factory=dict)
    unusable: tuple[str, ...] = ()
    interrupted: bool = False
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 written · 1 some sets could not be read · 3 a lane cannot be used (``unusable``:
        credentials, endpoint, listing refused) · 130 interrupted."""
        if self.interrupted:
            return 130
        if self.unusable:
            return 3
        return 0 if self.rows is not None else 1

    def as_record(self) -> dict[str, Any]:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


async def export(
    output: str | Path,
    settings: Settings | None = None,
    *,
    regions: Sequence[str] = (),
    force: bool = False,
    targets: Targets | None = None,
    on_start: Callable[[ExportProgress], None] | None = None,
    control: RunControl | None = None,
) -> ExportSummary:
    """Write every configuration set of ``regions`` (default: the run's Region) to ``output``.

    Raises :class:`~bulk.UsageError` for a bad output path or Region before any call.
    ``control`` lets a caller stop it (the CLI's Ctrl-C): the partial is kept.
    """
    settings = replace(settings or Settings(), dry_run=False)
    async with emulated(settings, needed=targets is None) as settings:
        exporter = _Exporter(Path(output), settings, regions, force, control or RunControl())
        with user_errors_unwrapped():
            return await exporter.run(targets, on_start)


class _Exporter:
    def __init__(
        self,
        output: Path,
        settings: Settings,
        regions: Sequence[str],
        force: bool,
        control: RunControl,
    ) -> None:
        self.output = output
        self.control = control
        self.force = force
        if regions:
            known = settings.known_regions_only
            chosen = [
                resolve_region(r, settings.profile, known_only=known).region
                for r in dict.fromkeys(regions)
            ]
        else:
            found = settings.run_region()
            if found.region is None:
                raise UsageError(
                    "no Region: pass --region (several for several Regions), or set "
                    "AWS_REGION or a profile's region"
                )
            chosen = [found.region]
        self.regions = [r for r in chosen if r is not None]
        self.settings = replace(settings, region=self.regions[0])
        s = self.settings
        self.lanes = [Lane(s.service, r, s.profile, s.role_arn) for r in self.regions]
        self.tenants = operation_shape(s.service, LIST_TENANTS) is not None
        self.progress = ExportProgress()
        self.problems: dict[str, str] = {}
        self.unusable: set[str] = set()
        self.gone = 0

    def identity(self) -> dict[str, Any]:
        """What decides what is read: a partial of other arguments is not resumed."""
        s = self.settings
        return {
            "service": s.service,
            "regions": self.regions,
            "profile": s.profile,
            "role_arn": s.role_arn,
            "endpoint": "emulator" if s.emulator else s.endpoint_url,
        }

    async def run(
        self, targets: Targets | None, on_start: Callable[[ExportProgress], None] | None
    ) -> ExportSummary:
        s = self.settings
        stats = RunStats(total=0, ledger=self.output)
        with ExportFile.open(
            self.output, service=s.service, identity=self.identity(), force=self.force
        ) as file:
            self.file = file
            sender = Sender(s, self.control, stats, ResumeIndex())
            if on_start is not None:
                on_start(self.progress)
            async with open_targets(s, targets) as pool, anyio.create_task_group() as tg:
                for lane in self.lanes:
                    tg.start_soon(self._lane, sender, pool, lane)
            whole = not self.problems and not self.control.stopping.is_set()
            rows = file.finish(with_region=len(self.regions) > 1) if whole else None
            notes = tuple(file.notes)
        return ExportSummary(
            output=str(self.output),
            rows=rows,
            lanes=dict(self.progress.lanes),
            read=self.progress.read,
            resumed=self.progress.resumed,
            gone=self.gone,
            calls=stats.attempts,
            throttled=stats.throttled,
            elapsed_s=round(stats.elapsed, 3),
            problems=dict(self.problems),
            unusable=tuple(sorted(self.unusable)),
            interrupted=self.control.interrupted,
            notes=notes,
        )

    async def _lane(self, sender: Sender, pool: Targets, lane: Lane) -> None:
        """List the lane's sets, then read those the partial lacks, ``concurrency`` at once."""
        state = sender.lane(lane)
        try:
            target = await pool.get(lane)
            calls = LaneCalls(sender, state, target)
            LEAVING.set(calls.on_wire)
            names, why = await list_names(calls)
        except TargetError as exc:
            self._unusable(lane, str(exc))
            return
        except Halt:
            return
        if names is None:
            self._unusable(lane, f"{lane}: cannot list its sets ({why})")
            return
        done = self.file.done(lane.region)
        todo = sorted(names - done)
        self.progress.listed += len(names)
        self.progress.resumed += len(names & done)
        self.progress.lanes[str(lane)] = len(names)
        await each_at_once(
            todo,
            self.settings.concurrency,
            functools.partial(self._set, sender, target, lane),
            lambda: self.control.stopping.is_set() or str(lane) in self.problems,
        )

    def _unusable(self, lane: Lane, why: str) -> None:
        """``lane`` cannot be read at all (credentials, endpoint, a refused listing)."""
        self.unusable.add(str(lane))
        self.problems.setdefault(str(lane), why)

    def _problem(self, lane: Lane, why: str) -> None:
        """A set of ``lane`` could not be read: the export cannot be whole."""
        self.problems.setdefault(str(lane), f"{lane}: {why}")

    async def _set(self, sender: Sender, target: Any, lane: Lane, name: str) -> None:
        try:
            calls = LaneCalls(sender, sender.lane(lane), target)
            LEAVING.set(calls.on_wire)
            record = await self._read(calls, lane, name)
        except TargetError as exc:
            self._unusable(lane, str(exc))
            return
        except Halt:
            return
        if record is None:
            return
        self.file.append([record])
        self.progress.read += 1

    async def _read(self, calls: LaneCalls, lane: Lane, name: str) -> dict[str, CellValue] | None:
        """One set's cells (None: it is gone, or could not be read: noted)."""
        live = await read_set(calls, name, tags=True)
        if live.options is None:
            if live.problem.startswith("NotFoundException"):
                self.gone += 1  # deleted since it was listed: not part of the account now
                return None
            self._problem(lane, f"cannot read set {name!r} ({live.problem})")
            return None
        result = await calls.step(GET_DESTINATIONS, {NAME_COLUMN: name}, ambiguous=False)
        if result.kind is not CallKind.OK:
            self._problem(
                lane, f"cannot read {name!r}'s event destinations ({result.code}: {result.message})"
            )
            return None
        destinations = list(result.data.get("EventDestinations") or [])
        tenants: list[str] = []
        if self.tenants:
            arn = configuration_set_arn(lane.region, await calls.target.account(), name)
            found, why = await read_pages(
                calls, LIST_TENANTS, {"ResourceArn": arn}, "ResourceTenants"
            )
            if found is None:
                self._problem(lane, f"cannot read {name!r}'s tenants ({why})")
                return None
            tenants = [tenant["TenantName"] for tenant in found]
        cells = set_cells(
            self.settings.service,
            live.options,
            tags=live.tags or (),
            tenants=tenants,
            destinations=destinations,
        )
        cells[REGION_COLUMN] = lane.region
        return cells
