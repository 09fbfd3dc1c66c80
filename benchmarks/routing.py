"""Inputs spread over many lanes: the same rows sorted by lane, or interleaved.

A lane is (service, credentials, Region). Rows name theirs with a ``Region`` cell and, for
another account, a ``RoleArn`` cell: the engine assumes that role from the run's credentials,
and the emulator counts the role's calls against the role's account. Each generated file is
the tenants file of :func:`benchmarks.harness.write_csv` (same names and options, row ``n``
is ``cells(n)``) plus those routing columns: row ``n`` belongs to lane ``(n - 1) // per_lane``
in both orders, so the sorted and the interleaved file hold exactly the same rows.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.harness import COLUMNS, DEFAULT_ACCOUNT, cells

Order = Literal["sorted", "interleaved"]
ORDERS: tuple[Order, ...] = ("sorted", "interleaved")

# Real Region names only: a dry run (no --endpoint-url) refuses any botocore does not know.
SIX_REGIONS = (
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-south-1",
    "ap-southeast-2",
)
ROLE_REGIONS = ("us-east-1", "eu-west-1")
# Role accounts are numbered from here: twelve digits, none of them the run's own account.
_FIRST_ROLE_ACCOUNT = 210_000_000_000
ROLE_NAME = "BulkBenchmark"


@dataclass(frozen=True)
class LaneSpec:
    """Where a file's rows go: a Region, and a role to assume (None: the run's credentials)."""

    region: str
    role_arn: str | None = None

    @property
    def account(self) -> str:
        """The account the emulator counts this lane's calls against."""
        if self.role_arn is None:
            return DEFAULT_ACCOUNT
        return self.role_arn.split(":")[4]

    @property
    def scope(self) -> str:
        """The lane as the emulator's stats name it: ``ACCOUNT/REGION``."""
        return f"{self.account}/{self.region}"


def role_arn(index: int) -> str:
    """The ARN of role ``index`` (0-based), each in an account of its own."""
    return f"arn:aws:iam::{_FIRST_ROLE_ACCOUNT + index:012d}:role/{ROLE_NAME}"


def region_lanes(regions: Sequence[str]) -> list[LaneSpec]:
    """One lane per Region, all with the run's credentials."""
    return [LaneSpec(region) for region in regions]


def role_lanes(roles: int, regions: Sequence[str]) -> list[LaneSpec]:
    """``roles`` roles (accounts) × ``regions``: a role's Regions are next to each other."""
    return [LaneSpec(region, role_arn(i)) for i in range(roles) for region in regions]


def _numbers(lanes: int, per_lane: int, order: Order) -> Iterator[tuple[int, int]]:
    """(lane index, row number) in file order; row ``n`` is in lane ``(n - 1) // per_lane``."""
    pairs: Iterator[tuple[int, int]]
    if order == "sorted":
        pairs = itertools.product(range(lanes), range(per_lane))
    else:
        pairs = ((lane, i) for i, lane in itertools.product(range(per_lane), range(lanes)))
    for lane, i in pairs:
        yield lane, lane * per_lane + i + 1


def write_lane_csv(path: Path, lanes: Sequence[LaneSpec], per_lane: int, order: Order) -> Path:
    """``per_lane`` rows for each lane, in ``order``; a RoleArn column only if a lane has a role."""
    with_roles = any(lane.role_arn for lane in lanes)
    header = (*COLUMNS, "Region", *(("RoleArn",) if with_roles else ()))
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for index, number in _numbers(len(lanes), per_lane, order):
            lane = lanes[index]
            routing = (lane.region, *((lane.role_arn or "",) if with_roles else ()))
            writer.writerow((*cells(number), *routing))
    return path


def lane_file(root: Path, lanes: Sequence[LaneSpec], per_lane: int, order: Order) -> Path:
    """The file of these lanes, rows and order in ``root``, written the first time it is asked.

    Its name says what it holds, and the workspace is new for each benchmark run, so an
    existing file is the one wanted.
    """
    roles = len({lane.role_arn for lane in lanes if lane.role_arn})
    regions = len({lane.region for lane in lanes})
    path = root / f"lanes-{roles}roles-{regions}regions-{per_lane}each-{order}.csv"
    if not path.exists():
        write_lane_csv(path, lanes, per_lane, order)
    return path
