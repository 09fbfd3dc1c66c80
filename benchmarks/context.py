"""Sizes of a run (full or ``--quick``) and the workspace every scenario draws its files from."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.harness import Workspace


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; the defaults are the issue's, ``QUICK`` is for development."""

    limited_rows: int = 2_000  # scenarios 1 and 2, against a 100/s server
    overhead_rows: int = 20_000
    overhead_rounds: int = 3
    memory_rows: tuple[int, int] = (10_000, 1_000_000)  # dry runs
    live_rows: tuple[int, int] = (5_000, 25_000)  # real runs against an unthrottled server
    resume_rows: tuple[int, int] = (10_000, 1_000_000)
    operating_rows: int = 120  # scenario 6, against a 1/s server: two minutes per contender
    operating_fast_rows: int = 600  # and against a 10/s server: one minute
    lane_rows: int = 60  # scenario 7: rows per lane, 6 lanes at 10/s: six seconds per order
    many_roles: int = 250  # scenario 8: roles (accounts), each in 2 Regions
    many_rows: int = 20  # and rows per lane: 10,000 rows at 500/s
    sorted_rows: tuple[int, int] = (10_000, 1_000_000)  # scenario 9: dry runs, 100 lanes
    sorted_live_rows: int = 25_000  # and a real run of each order
    # scenario 10: (read limit per second, sets): a minute at AWS's 1/s, half a minute at 20/s
    export_points: tuple[tuple[float, int], ...] = ((1.0, 60), (20.0, 600))
    plan_sets: int = 10_000  # scenario 11: rows and live sets


QUICK = Sizes(
    limited_rows=500,
    overhead_rows=3_000,
    overhead_rounds=2,
    memory_rows=(10_000, 100_000),
    live_rows=(1_000, 5_000),
    resume_rows=(10_000, 100_000),
    operating_rows=30,
    operating_fast_rows=150,
    lane_rows=20,
    many_roles=50,
    many_rows=10,
    sorted_rows=(10_000, 100_000),
    sorted_live_rows=5_000,
    export_points=((1.0, 10), (20.0, 100)),
    plan_sets=2_000,
)


@dataclass(frozen=True)
class Context:
    workspace: Workspace
    sizes: Sizes
    quick: bool
