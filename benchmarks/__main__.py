"""``python -m benchmarks [--only NAME ...] [--quick] [--write | --no-write]``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.context import QUICK, Context, Sizes
from benchmarks.footprint import memory, resume, sorted_memory
from benchmarks.harness import Workspace, offline_aws_environment
from benchmarks.lanes import lane_order, many_lanes
from benchmarks.live import export_limit, plan_scale
from benchmarks.operating_point import operating_point
from benchmarks.overhead import overhead
from benchmarks.report import (
    Section,
    environment,
    render_markdown,
    render_text,
    verdict,
    write_results,
)
from benchmarks.throughput import limit_known, limit_unknown

SCENARIOS: dict[str, Callable[[Context], Section]] = {
    "known": limit_known,
    "unknown": limit_unknown,
    "overhead": overhead,
    "memory": memory,
    "resume": resume,
    "operating": operating_point,
    "lanes": lane_order,
    "many-lanes": many_lanes,
    "sorted-memory": sorted_memory,
    "export": export_limit,
    "plan": plan_scale,
}
RESULTS = Path(__file__).with_name("RESULTS.md")


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run bulk's benchmarks side by side against a local emulator.",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these scenarios (repeat or comma-separate): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for development")
    write = parser.add_mutually_exclusive_group()
    write.add_argument(
        "--write",
        dest="write",
        action="store_true",
        default=None,
        help=f"write {RESULTS.name} (the default for a full run)",
    )
    write.add_argument(
        "--no-write",
        dest="write",
        action="store_false",
        help="only print (the default with --only or --quick)",
    )
    args = parser.parse_args(argv)
    names = [name for item in args.only or [] for name in item.split(",") if name]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    args.names = [name for name in SCENARIOS if not names or name in names]
    if args.write is None:
        args.write = not names and not args.quick
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    offline_aws_environment()
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    sizes = QUICK if args.quick else Sizes()
    machine = environment()
    print("\n".join(machine), flush=True)
    print(flush=True)
    sections: list[Section] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bulk-bench-") as root:
        ctx = Context(Workspace(Path(root)), sizes, args.quick)
        for name in args.names:
            section_started, load = time.perf_counter(), os.getloadavg()[0]
            section = SCENARIOS[name](ctx)
            section.seconds = time.perf_counter() - section_started
            section.load = (load, os.getloadavg()[0])
            sections.append(section)
            print(render_text(section), flush=True)
    total = time.perf_counter() - started
    checks = [check for section in sections for check in section.checks]
    print(f"== targets ({total:.0f} s in all)")
    for section in sections:
        for check in section.checks:
            print(f"   [{verdict(check.met):>7}] {section.key}: {check.what}: {check.measured} "
                  f"(goal {check.target})")  # fmt: skip
    if args.write:
        write_results(
            RESULTS, render_markdown(sections, machine=machine, command=command, total_s=total)
        )
        print(f"\nwrote {RESULTS}")
    missed = [check for check in checks if check.met is False]
    if missed:
        # A missed target is a finding, reported as measured; it does not fail `make bench`.
        print(f"\n{len(missed)} target(s) not met: see the table above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
