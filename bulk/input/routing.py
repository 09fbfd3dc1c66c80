"""A row's lane from its routing cells (``Region``, ``Profile``, ``RoleArn``), remembered.

The `Router` of a run knows its default lane (``--region``, ``--profile``, ``--role-arn``) and
resolves each combination of routing cells once: its Region cell, else its profile's Region
(:mod:`bulk.input.regions`), else the run's; its RoleArn cell, else the run's role. A lane is
keyed by `lane_key`, the text the duplicate table and row digests use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from bulk.errors import UsageError
from bulk.input.columns import (
    PROFILE_COLUMN,
    REGION_COLUMN,
    ROLE_COLUMN,
    Problem,
    role_arn_problem,
    show,
)
from bulk.input.convert import as_text
from bulk.input.regions import profile_regions, region_problem
from bulk.models import Lane

__all__ = ["Router", "lane_key"]

# A bound on the lane memo, keyed by file content, so a hostile file cannot grow it forever.
_LANE_CACHE_MAX: Final = 1024

_RouteKey = tuple[str | None, str | None, str | None]


def lane_key(lane: Lane) -> str:
    """A lane as text: compact JSON of its parts (row digests hold it: it must not change)."""
    # Not str(lane): that prints profile None and profile "default" alike.
    key = [lane.service, lane.region, lane.profile]
    parts = key if lane.role_arn is None else [*key, lane.role_arn]
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


class Router:
    """The lanes of one run's rows, by their routing cells.

    ``region`` None: the run has none, and a row that needs it is ``NoRegion``. A ``region``
    given must exist (``known_only``: one botocore's endpoint data knows), else `UsageError`.
    """

    def __init__(
        self,
        service: str,
        region: str | None,
        profile: str | None,
        role_arn: str | None,
        *,
        known_only: bool,
    ) -> None:
        if region is not None:
            problem = region_problem(region, known_only=known_only)
            if problem is not None:
                raise UsageError(f"region {show(region)} {problem}")
        self.service = service
        self._region = region
        self._known_only = known_only
        self.default_lane = Lane(service, region or "", profile or None, role_arn or None)
        self.default = (self.default_lane, lane_key(self.default_lane))
        # A row's lane, or why it has none, by its (Region, Profile, RoleArn) cells as text.
        # The lanes in it are the ones met so far (see met).
        self._lanes: dict[_RouteKey, tuple[Lane, str] | Problem] = {}
        if region is not None:
            self._lanes[(region, None, None)] = self.default
        self._profile_regions: Mapping[str, str] | None = None  # read at the first need

    def met(self, region: object, profile: object, role: object) -> tuple[Lane, str] | None:
        """The lane of these routing cells if `route` has met it already, else None."""
        key = _routing_key(region, profile, role)
        found = None if key is None else self._lanes.get(key)
        return found if isinstance(found, tuple) else None

    def route(self, region: object, profile: object, role: object) -> tuple[Lane, str] | Problem:
        """The lane of a row's routing cells (any may be None), or why it has none."""
        if region is None and profile is None and role is None and self._region is not None:
            return self.default
        key = _routing_key(region, profile, role)
        found = None if key is None else self._lanes.get(key)
        if found is None:
            found = self._resolve(region, profile, role)
            if key is not None and len(self._lanes) < _LANE_CACHE_MAX - 1:
                self._lanes[key] = found
                if key[0] is None and isinstance(found, tuple):
                    # The same lane, named by its Region cell: met too.
                    self._lanes.setdefault((found[0].region, key[1], key[2]), found)
        return found

    def _resolve(self, region: object, profile: object, role: object) -> tuple[Lane, str] | Problem:
        """Its Region cell, else its profile's Region, else the run's (see bulk.input.regions);
        its RoleArn cell, else the run's role."""
        region_text = None if region is None else as_text(region)
        profile_text = None if profile is None else as_text(profile)
        role_text = None if role is None else as_text(role)
        if region is not None:
            problem = region_problem(region_text or "", known_only=self._known_only)
            if problem is not None:
                return Problem("InvalidRegion", f"column {REGION_COLUMN}: {show(region)} {problem}")
        if profile is not None and profile_text is None:
            return Problem(
                "InvalidProfile", f"column {PROFILE_COLUMN}: {show(profile)} is not text"
            )
        if role is not None:
            problem = "is not text" if role_text is None else role_arn_problem(role_text)
            if problem is not None:
                return Problem("InvalidRoleArn", f"column {ROLE_COLUMN}: {show(role)} {problem}")
        lane_profile = self.default_lane.profile if profile_text is None else profile_text
        lane_region = region_text if region is not None else self._region
        if region is None and profile_text is not None:
            named = self._profile_region(profile_text)
            if named is not None:
                problem = region_problem(named, known_only=self._known_only)
                if problem is not None:
                    return Problem(
                        "InvalidRegion",
                        f"column {PROFILE_COLUMN}: profile {show(profile_text)} has region "
                        f"{show(named)}, which {problem}",
                    )
                lane_region = named
        if lane_region is None:
            return Problem(
                "NoRegion",
                f"no AWS Region for this row: fill the {REGION_COLUMN} cell, pass --region, "
                f"set AWS_REGION, or set region in profile {show(lane_profile or 'default')}",
            )
        lane_role = self.default_lane.role_arn if role_text is None else role_text
        lane = Lane(self.service, lane_region, lane_profile, lane_role)
        return lane, lane_key(lane)

    def _profile_region(self, profile: str) -> str | None:
        """The Region ``profile``'s config names; the config is read once per run."""
        if self._profile_regions is None:
            self._profile_regions = profile_regions()
        return self._profile_regions.get(profile)


def _routing_key(region: object, profile: object, role: object) -> _RouteKey | None:
    """A row's Region, Profile and RoleArn cells as a lane-cache key; None if a cell is not
    text."""
    cells = (region, profile, role)
    texts = tuple(None if cell is None else as_text(cell) for cell in cells)
    if any(cell is not None and text is None for cell, text in zip(cells, texts, strict=True)):
        return None
    return texts  # type: ignore[return-value]
