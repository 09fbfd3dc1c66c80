"""The command line: parses options, calls the library, turns errors into one line and an exit code.

click gives subcommands, typed and validated options, and ``--help`` text from one
declaration per option; usage mistakes exit 2 as the contract says.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# polars' allocator (jemalloc) reads this once, as polars loads (through bulk.commands below;
# importing bulk alone does not load it): one arena instead of four per core, so pages that
# one thread frees are reused by the next instead of held. A million-record ledger parses in
# 30-50 MB less at the same speed (benchmarks/RESULTS.md). polars puts its own options first
# and leaves them in the environment, where a child such as this process inherits them: so
# narenas is added to what is there, unless an operator set it.
_JEMALLOC = os.environ.get("_RJEM_MALLOC_CONF", "")
if "narenas:" not in _JEMALLOC:
    os.environ["_RJEM_MALLOC_CONF"] = ",".join(filter(None, (_JEMALLOC, "narenas:1")))

import anyio
import click
from anyio.abc import TaskGroup

from bulk.commands.provision import provision
from bulk.engine.progress import Display, render_summary, safe
from bulk.engine.stopping import RunControl
from bulk.engine.summary import RunStats, Summary
from bulk.errors import BulkError, UsageError, sole_exception
from bulk.models import SERVICES
from bulk.settings import Settings

if TYPE_CHECKING:
    from bulk.emulator import ConfigError

EMULATOR_HINT = "the embedded emulator (no AWS account needed)"
# The options' defaults are the library's: Settings() only checks its fields (nothing is
# resolved until the run), so building it here costs nothing and repeats no value.
DEFAULTS = Settings()

_F = TypeVar("_F", bound=Callable[..., Any])

# Stopped lanes said one line each on stderr; past these, a count (hundreds of lanes of one
# refused account would bury the summary).
_STOPPED_SHOWN = 10


def _setting(option: str, text: str) -> Callable[[_F], _F]:
    """An option for the ``Settings`` field of its name, with that field's type and default."""
    default = getattr(DEFAULTS, option.removeprefix("--").replace("-", "_"))
    return click.option(option, type=type(default), default=default, show_default=True, help=text)


def _fail(message: str, code: int) -> None:
    click.echo(f"bulk: error: {safe(message)}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bulk")
def main() -> None:
    """Provision email configuration sets (Pinpoint Email, SES v2) at the service's limit."""


def _target_options(*, regions: bool = False) -> Callable[[_F], _F]:
    """Where calls go and how fast, as every command that calls the service takes them.

    ``regions``: ``--region`` may be given several times (export).
    """
    region_help = (
        "AWS Region to read (repeat for several: the file gets a Region column). "
        "Default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region."
        if regions
        else "AWS Region of rows with no Region cell and no Profile whose profile sets one. "
        "Default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region; never guessed."
    )
    decorators = [
        click.option(
            "--service", type=click.Choice(SERVICES), default=DEFAULTS.service, show_default=True
        ),
        click.option(
            "--region", "regions" if regions else "region", multiple=regions, help=region_help
        ),
        click.option("--profile", default=None, help="AWS profile (rows without a Profile cell)."),
        click.option(
            "--role-arn",
            default=None,
            help="IAM role (rows without a RoleArn cell), assumed from the profile's "
            "credentials (once per role, refreshed before it expires).",
        ),
        click.option("--endpoint-url", default=None, help="Send to this endpoint instead of AWS."),
        click.option("--emulator", is_flag=True, help=f"Run against {EMULATOR_HINT}."),
        _setting(
            "--emulator-rate",
            "With --emulator: the emulator's CreateConfigurationSet limit (requests/s).",
        ),
        _setting("--emulator-burst", "With --emulator: its burst."),
        _setting(
            "--rate",
            "Most requests/s per lane and operation (a lane is one service, account (profile "
            "or role) and Region: each has its own limit); the engine adapts below it on "
            "429s. 0 turns it off.",
        ),
        _setting("--burst", "Token bucket size."),
        _setting("--concurrency", "Calls in flight."),
        _setting("--max-attempts", "Attempts per call."),
        _setting("--timeout", "Seconds per call."),
    ]

    def apply(f: _F) -> _F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


_LEDGER_OPTION = click.option(
    "--ledger", type=click.Path(path_type=Path), help="Ledger file [INPUT.ledger.jsonl]."
)
_DESTINATIONS_OPTION = click.option(
    "--event-destinations",
    type=click.Path(path_type=Path),
    default=None,
    help="A JSON array of event destinations (each as GetConfigurationSetEventDestinations "
    "returns one) for rows whose EventDestinations cell is empty.",
)
_DEBUG_OPTION = click.option("--debug", is_flag=True, help="Show tracebacks.")


def _settings(options: dict[str, Any]) -> Settings:
    """The command's ``Settings``; raises :class:`UsageError` for options that clash."""
    if options["emulator"] and options["endpoint_url"]:
        raise UsageError("--emulator and --endpoint-url cannot be used together")
    return Settings(**options)


@main.command("provision", short_help="Create a configuration set per row of INPUT.")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@_LEDGER_OPTION
@_target_options()
@_DESTINATIONS_OPTION
@click.option(
    "--dry-run", is_flag=True, help="Read, validate and plan against the ledger; send nothing."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the run's summary (totals, each lane's counts and rates, stopped lanes, "
    "exit_code) as one JSON object on stdout, instead of the text summary. Progress and "
    "errors still go to stderr; the exit code is the same.",
)
@_DEBUG_OPTION
def provision_command(input_path: Path, debug: bool, as_json: bool, **options: Any) -> None:
    """Create one configuration set per row of INPUT (CSV or Parquet).

    Every row's result goes to the ledger; running the same command again resumes.
    While it runs, stderr shows its progress: a line per lane when there are few, the
    slowest lanes when there are many. Exit codes: 0 all created or existing, 1 some rows
    invalid or failed (or a quota stop), 2 usage or input-file error, 3 aborted on a
    systemic error (or a lane stopped on one), 130 interrupted.
    """
    command = shlex.join(["bulk", *sys.argv[1:]])
    summary: Summary = _guarded(
        lambda: anyio.run(_provision, input_path, _settings(options)),
        debug,
        interrupted="interrupted before any row was sent",
    )
    if as_json:
        # ASCII JSON: whatever the input's cells hold, escaped, cannot drive a terminal.
        click.echo(json.dumps(summary.as_record()))
    else:
        click.echo(render_summary(summary, command=command))
    if summary.aborted:
        click.echo(f"bulk: error: {safe(summary.aborted)}", err=True)
    reasons = list(summary.stopped_lanes.values())
    for reason in reasons[:_STOPPED_SHOWN]:
        click.echo(f"bulk: error: {safe(reason)}", err=True)
    if len(reasons) > _STOPPED_SHOWN:
        click.echo(
            f"bulk: error: {len(reasons) - _STOPPED_SHOWN} more lanes stopped "
            "(every one with its reason: --json, or the ledger's end record)",
            err=True,
        )
    sys.exit(summary.exit_code)


async def _provision(input_path: Path, settings: Settings) -> Summary:
    display = Display()
    async with anyio.create_task_group() as tg:

        def on_start(stats: RunStats) -> None:
            # Said once the run has started, so a bad input file still gets one line only.
            line = stats.where
            if settings.emulator and not settings.dry_run:
                line += (
                    f" (CreateConfigurationSet {settings.emulator_rate:g}/s, "
                    f"burst {settings.emulator_burst})"
                )
            click.echo(f"bulk: {safe(line)}", err=True)
            for note in stats.notes:  # what the ledger worked around: a line each, once
                click.echo(f"bulk: note: {safe(note)}", err=True)
            tg.start_soon(display.run, stats)

        summary = await provision(
            input_path,
            settings,
            on_start=on_start,
            on_interrupt=display.interrupted,
            handle_signals=True,
        )
        tg.cancel_scope.cancel()
    return summary


@main.command("plan", short_help="Compare INPUT with live state; change nothing.")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@_LEDGER_OPTION
@_target_options()
@_DESTINATIONS_OPTION
@click.option("--diff", is_flag=True, help="Read each live set the input names; show drift.")
@click.option(
    "--quota",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="Configuration sets allowed per account and Region.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object.")
@_DEBUG_OPTION
def plan_command(
    input_path: Path, diff: bool, quota: int, as_json: bool, debug: bool, **options: Any
) -> None:
    """Say what `bulk provision INPUT` would do, from live state, without changing anything.

    Per lane: the live names (one ListConfigurationSets call per 1,000 sets), then rows that
    would be created, names already live, rows settled in the ledger, invalid rows, and
    live + to-create against --quota. --diff also reads each live set the input names and
    shows where its options differ. Exit codes: 0 · 1 rows invalid or a lane would run out
    of quota · 2 usage or input-file error · 3 a lane could not be read.
    """
    from bulk.commands.plan import plan, plan_lines

    def go() -> Any:
        return anyio.run(lambda: plan(input_path, _settings(options), diff=diff, quota=quota))

    result = _guarded(go, debug)
    if as_json:
        click.echo(json.dumps(result.as_record()))
    else:
        click.echo("\n".join(safe(line) for line in plan_lines(result)))
    for lane in result.lanes:
        if lane.live is None and lane.problem:
            click.echo(f"bulk: error: {safe(lane.problem)}", err=True)
    sys.exit(result.exit_code)


@main.command("export", short_help="Write an account's configuration sets to OUTPUT.")
@click.argument("output", metavar="OUTPUT", type=click.Path(path_type=Path))
@_target_options(regions=True)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@_DEBUG_OPTION
def export_command(
    output: Path,
    regions: tuple[str, ...],
    force: bool,
    as_json: bool,
    debug: bool,
    **options: Any,
) -> None:
    """Write every configuration set of the Region(s) to OUTPUT (.csv or .parquet), in the
    columns `bulk provision` reads: every field, tags, event destinations, tenants.

    OUTPUT appears whole or not at all; an interrupted export, run again with the same
    arguments, reads only the sets it lacks. Exit codes: 0 written · 1 some sets could not
    be read (run again to resume) · 2 usage error · 3 a Region could not be read ·
    130 interrupted.
    """
    from bulk.commands.export import ExportProgress, export, show_progress

    control = RunControl()

    async def work(tg: TaskGroup) -> Any:
        def on_start(progress: ExportProgress) -> None:
            tg.start_soon(functools.partial(show_progress, progress, sys.stderr, interval=5))

        return await export(
            output, _settings(options), regions=regions, force=force, control=control,
            on_start=on_start,
        )  # fmt: skip

    result = _guarded(lambda: _with_signals(control, work), debug)
    if as_json:
        click.echo(json.dumps(result.as_record()))
    else:
        click.echo(safe(_export_line(result)))
    for note in result.notes:
        click.echo(f"bulk: note: {safe(note)}", err=True)
    for problem in result.problems.values():
        click.echo(f"bulk: error: {safe(problem)}", err=True)
    sys.exit(result.exit_code)


def _export_line(result: Any) -> str:
    """An export's summary line."""
    read = f"{result.read} sets read now, {result.resumed} by an earlier run"
    speed = f"{result.calls} calls, {result.throttled} 429s, {result.elapsed_s:.1f}s"
    if result.rows is None:
        why = "interrupted" if result.interrupted else "some sets could not be read"
        return (
            f"export: {read}; {result.output} not written ({why}): "
            "run the same command again to read only the rest · " + speed
        )
    gone = f"; {result.gone} deleted while listed" if result.gone else ""
    return f"export: {result.rows} sets written to {result.output}: {read}{gone} · {speed}"


def _with_signals(control: RunControl, work: Callable[[TaskGroup], Awaitable[Any]]) -> Any:
    """Run ``work`` with the first SIGINT/SIGTERM stopping it through ``control`` (no new
    call starts, calls sent finish) and the second exiting at once; ``work`` gets the task
    group, to start a display in."""

    async def go() -> Any:
        async with anyio.create_task_group() as tg:
            tg.start_soon(control.handle_signals, None)
            try:
                return await work(tg)
            finally:
                tg.cancel_scope.cancel()

    return anyio.run(go)


def _guarded(go: Callable[[], Any], debug: bool, *, interrupted: str = "interrupted") -> Any:
    """``go()``, a single error from inside task groups raised as itself, and a user's
    error (or Ctrl-C before the command took over signals) turned into one line and its
    exit code."""
    try:
        try:
            return go()
        except BaseExceptionGroup as group:
            leaf = sole_exception(group)
            if leaf is group:
                raise
            raise leaf from None
    except BulkError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        click.echo(f"bulk: {interrupted}", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", 1)


@main.command("report", short_help="What a ledger says: counts, runs, rows to fix.")
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path(path_type=Path))
@click.option("--ledger", type=click.Path(path_type=Path), help="Ledger file [INPUT.ledger.jsonl].")
@click.option(
    "--status",
    "statuses",
    default="failed,invalid",
    show_default=True,
    help="With -o: the latest statuses whose rows are written (comma-separated).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write those rows of INPUT (.csv or .parquet) with bulk_status, bulk_code, "
    "bulk_message columns: fix them, then provision the file as it is.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@_DEBUG_OPTION
def report_command(
    input_path: Path | None,
    ledger: Path | None,
    statuses: str,
    output: Path | None,
    as_json: bool,
    debug: bool,
) -> None:
    """Report what a ledger says happened: rows by lane, status and error code, the runs and
    their learned rates, and what to do next. It reads a ledger a running provision is
    writing without holding it up. Exit codes: 0 · 2 no ledger, a bad option or output path.
    """
    from bulk.commands.report import report, report_lines

    wanted = tuple(part.strip() for part in statuses.split(",") if part.strip())
    found = _guarded(
        lambda: report(input_path, ledger=ledger, statuses=wanted, output=output), debug
    )
    if as_json:
        click.echo(json.dumps(found.as_record()))
    else:
        click.echo("\n".join(safe(line) for line in report_lines(found)))


@main.command("rollback", short_help="Delete exactly what a ledger created.")
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path(path_type=Path))
@click.option("--ledger", type=click.Path(path_type=Path), help="Ledger file [INPUT.ledger.jsonl].")
@click.option("--service", type=click.Choice(SERVICES), default=None, help="[the ledger's]")
@click.option("--region", default=None, help="[the ledger's]")
@click.option("--profile", default=None, help="[the ledger's]")
@click.option("--role-arn", default=None, help="[the ledger's]")
@click.option("--endpoint-url", default=None, help="[the ledger's]")
@_setting("--rate", "Most requests/s per lane and operation (0: no limit).")
@_setting("--burst", "Token bucket size.")
@_setting("--concurrency", "Calls in flight.")
@_setting("--max-attempts", "Attempts per call.")
@_setting("--timeout", "Seconds per call.")
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@_DEBUG_OPTION
def rollback_command(
    input_path: Path | None,
    ledger: Path | None,
    yes: bool,
    dry_run: bool,
    as_json: bool,
    debug: bool,
    **options: Any,
) -> None:
    """Delete exactly what the ledger records as created by bulk: its sets (with their event
    destinations), the tenant associations it made, and the tenants it created once nothing
    is associated with them. Never a set recorded exists, never a name the ledger does not
    hold. The target is the ledger's. On a terminal it shows what it will delete and asks;
    without one it needs --yes. Each delete is recorded in the ledger; running it again
    resumes. Exit codes: 0 · 1 some deletes could not be made (run again) · 2 no ledger, a
    ledger of another target, no terminal and no --yes · 3 a lane could not be used ·
    130 interrupted.
    """
    from bulk.commands.rollback import ledger_settings, plan_rollback, rollback

    plan, history = _guarded(lambda: plan_rollback(input_path, ledger), debug)
    settings = _guarded(lambda: ledger_settings(history, **options), debug)
    lines = [f"rollback of {plan.ledger}:", *plan.lines()]
    if dry_run or plan.empty:
        if not as_json:
            click.echo("\n".join(safe(line) for line in lines))
            click.echo("dry run: nothing deleted" if dry_run else "nothing to delete")
        else:
            click.echo(json.dumps({"sets": plan.sets, "kept": dict(plan.kept), "dry_run": True}))
        sys.exit(0)
    if not yes:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            _fail(
                f"rollback would delete {plan.sets} sets and asks first, but there is no "
                "terminal to ask on: pass --yes (see --dry-run for what it deletes)",
                2,
            )
        click.echo("\n".join(safe(line) for line in lines))
        if not click.confirm(f"Delete these {plan.sets} sets?", default=False):
            click.echo("nothing deleted")
            sys.exit(0)
    control = RunControl()

    async def work(tg: TaskGroup) -> Any:
        return await rollback(plan, settings, control=control)

    summary = _guarded(lambda: _with_signals(control, work), debug)
    if as_json:
        click.echo(json.dumps(summary.as_record()))
    else:
        gone = f" ({summary.gone} already gone)" if summary.gone else ""
        left = f"; {summary.left} left: run the same command again" if summary.left else ""
        click.echo(
            safe(
                f"rollback: {summary.deleted} sets deleted{gone}, {summary.associations} "
                f"tenant associations, {summary.tenants} tenants{left} · {summary.calls} "
                f"calls, {summary.elapsed_s:.1f}s"
            )
        )
    for reason in summary.stopped_lanes.values():
        click.echo(f"bulk: error: {safe(reason)}", err=True)
    sys.exit(summary.exit_code)


@main.command("emulate", short_help="Run a local Pinpoint Email / SES v2 emulator.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=4566, show_default=True, help="Port (0: any free).")
@click.option(
    "--rate",
    type=float,
    default=1.0,
    show_default=True,
    help="CreateConfigurationSet requests/s per account and Region (0: unthrottled).",
)
@click.option("--burst", type=int, default=1, show_default=True, help="Token bucket size.")
@click.option("--latency-ms", type=float, default=0.0, show_default=True, help="Added latency.")
@click.option(
    "--fault-rate", type=float, default=0.0, show_default=True, help="Share of creates failing 500."
)
@click.option(
    "--ambiguous-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of creates stored, then answered 500 or dropped.",
)
@click.option("--max-sets", type=int, default=None, help="Quota: LimitExceeded past this count.")
@click.option("--seed", type=int, default=None, help="Seed for repeatable faults.")
@click.option(
    "--limit",
    "operation_limits",
    multiple=True,
    metavar="OPERATION=RATE[/BURST]",
    help="Another operation's requests/s per account and Region, e.g. "
    "ListConfigurationSets=5/10 (repeatable; printed at start).",
)
@click.option(
    "--account",
    "default_account",
    default=None,
    help="Account of access keys that AssumeRole did not issue (printed at start).",
)
@click.option(
    "--key-account",
    "key_accounts",
    multiple=True,
    metavar="KEY=ACCOUNT",
    help="Put access key id KEY in ACCOUNT instead (repeatable).",
)
@click.option(
    "--deny-role",
    "denied_roles",
    multiple=True,
    metavar="ARN|ACCOUNT",
    help="A role ARN, or an account's every role, that AssumeRole refuses (repeatable).",
)
@click.option(
    "--credential-lifetime",
    type=int,
    default=None,
    help="Most seconds that credentials issued by AssumeRole last.",
)
def emulate_command(
    host: str,
    port: int,
    operation_limits: tuple[str, ...],
    key_accounts: tuple[str, ...],
    **options: Any,
) -> None:
    """Run a local Pinpoint Email / SES v2 emulator, with STS on the same port.

    It throttles and fails like AWS, and accepts any SigV4 signature without checking it.
    Point clients at the printed URL. Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 a bad
    option or an address it cannot listen on.
    """
    from bulk.emulator import ConfigError, EmulatorConfig, serve_forever
    from bulk.emulator.config import parse_key_account, parse_limit

    if options["default_account"] is None:
        del options["default_account"]
    try:
        config = EmulatorConfig(
            operation_limits=dict(map(parse_limit, operation_limits)),
            key_accounts=dict(map(parse_key_account, key_accounts)),
            **options,
        )
        serve_forever(config, host=host, port=port)
    except ConfigError as exc:
        _fail(_with_option_names(exc), exc.exit_code)
    except BulkError as exc:
        _fail(str(exc), exc.exit_code)


# `bulk emulate` options whose names are not their settings' (``--fault-rate``: fault_rate).
_EMULATE_OPTIONS = {
    "default_account": "--account",
    "key_accounts": "--key-account",
    "denied_roles": "--deny-role",
    "operation_limits": "--limit",
}


def _with_option_names(exc: ConfigError) -> str:
    """``exc``'s message, naming settings as ``bulk emulate`` options (``--fault-rate``)."""
    message = str(exc)
    for setting in exc.settings:
        option = _EMULATE_OPTIONS.get(setting, "--" + setting.replace("_", "-"))
        message = re.sub(rf"\b{re.escape(setting)}\b", option, message)
    return message


if __name__ == "__main__":
    main()
