"""Which AWS Region a run and each of its rows go to, and whether a Region exists.

A row goes to its ``Region`` cell; else to the Region of the profile its ``Profile`` cell
names; else to the run's Region, which is, first found: ``--region``, ``AWS_REGION``,
``AWS_DEFAULT_REGION``, the run's profile (``--profile``, else ``AWS_PROFILE``, else
``default``). Nothing here ever guesses one: no Region anywhere is the caller's error to
report (see `NO_REGION`). The Regions that exist are botocore's endpoint data, all
partitions; a Region outside it is refused with the closest one, unless the calls go to
another endpoint (``--endpoint-url``), where only the name's shape is checked.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from bulk.errors import UsageError

__all__ = [
    "NO_REGION",
    "REGION_ENVIRONMENT",
    "RunRegion",
    "closest_region",
    "known_regions",
    "partition_of",
    "profile_region",
    "profile_regions",
    "region_problem",
    "run_region",
]

# In the order they are read: AWS_REGION is what the AWS SDKs and CLI v2 read first;
# botocore itself reads only AWS_DEFAULT_REGION.
REGION_ENVIRONMENT: Final = ("AWS_REGION", "AWS_DEFAULT_REGION")
NO_REGION: Final = (
    "no AWS Region: pass --region, set AWS_REGION, add a Region column, "
    "or set region in the profile"
)
# The shape of a Region name (us-east-1, us-gov-west-1, eusc-de-east-1): all that is checked
# when the calls go to another endpoint, which may name its Regions as it likes.
_SHAPE_RE: Final = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2}")
_EXAMPLE: Final = "us-east-1"
_SHAPE_RULE: Final = f"is not a Region name like {_EXAMPLE!r}"
_CLOSE_ENOUGH: Final = 0.6  # difflib's own default cutoff
_LONGEST_TYPO: Final = 64


class RunRegion(NamedTuple):
    """The run's Region and where it was found, e.g. ``eu-west-1`` from ``AWS_REGION``.

    ``region`` is None when none was found anywhere; ``source`` then says where it looked.
    ``str()`` gives the form a display shows: ``eu-west-1 (AWS_REGION)``.
    """

    region: str | None
    source: str

    def __str__(self) -> str:
        return f"{self.region or 'none'} ({self.source})"


@functools.cache
def known_regions() -> frozenset[str]:
    """Every Region of every partition in botocore's endpoint data (loaded once)."""
    import botocore.loaders

    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(
        region for partition in endpoints["partitions"] for region in partition["regions"]
    )


@functools.lru_cache(maxsize=256)
def partition_of(region: str) -> str:
    """The partition an ARN of ``region`` names: ``aws``, ``aws-cn`` (``cn-*``),
    ``aws-us-gov`` (``us-gov-*``), ... as botocore's endpoint data says (a Region it lists,
    else the partition whose pattern matches); ``aws`` for a name no partition claims (an
    emulator's own Region)."""
    import botocore.loaders

    partitions = botocore.loaders.create_loader().load_data("endpoints")["partitions"]
    for partition in partitions:
        if region in partition["regions"]:
            return str(partition["partition"])
    for partition in partitions:
        if re.fullmatch(partition.get("regionRegex", "$^"), region):
            return str(partition["partition"])
    return "aws"


@functools.lru_cache(maxsize=256)
def closest_region(name: str) -> str | None:
    """The known Region most like ``name`` (case ignored), or None if none is close.

    Ties go to the longer common prefix, then alphabetical order: ``us-est-1`` is
    ``us-east-1`` (not ``us-west-1``), ``eu-west-99`` is ``eu-west-1``.
    """
    folded = name.strip().lower()
    if len(folded) > _LONGEST_TYPO:  # not a mistyped Region, and difflib's work grows with it
        return None
    matcher = difflib.SequenceMatcher(b=folded)  # b is the side difflib indexes: set once
    best: tuple[float, int] | None = None
    found: str | None = None
    for region in sorted(known_regions()):
        matcher.set_seq1(region)
        score = matcher.ratio()
        if score < _CLOSE_ENOUGH:
            continue
        key = (score, _common_prefix(region, folded))
        if best is None or key > best:
            best, found = key, region
    return found


def _common_prefix(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def region_problem(name: str, *, known_only: bool = True) -> str | None:
    """Why ``name`` cannot be a Region, as the end of a sentence about it; None if it can.

    ``known_only``: the Region must be in botocore's endpoint data (off when the calls go to
    another endpoint: then only the name's shape is checked).
    """
    if name in known_regions():
        return None
    closest = closest_region(name)
    hint = f"; did you mean {closest!r}?" if closest else ""
    if not _SHAPE_RE.fullmatch(name):
        # "like 'us-east-1'; did you mean 'us-east-1'?" says it twice.
        return _SHAPE_RULE if closest == _EXAMPLE else f"{_SHAPE_RULE}{hint}"
    if known_only:
        return f"is not a known AWS Region{hint}"
    return None


def profile_region(profile: str | None) -> str | None:
    """The ``region`` of ``profile`` in the shared config (None: the run's default profile).

    None when it names none, or when the profile does not exist: that is reported when a
    client is opened with it, as for any use of a missing profile.
    """
    import botocore.session

    return _scoped_region(botocore.session.Session(profile=profile))


def _scoped_region(session: Any) -> str | None:
    """The ``region`` of a botocore session's profile, or None (also for a missing profile)."""
    import botocore.exceptions

    try:
        scoped = session.get_scoped_config()
    except botocore.exceptions.BotoCoreError:  # ProfileNotFound, a config file that won't parse
        return None
    region = scoped.get("region")
    return region if isinstance(region, str) and region else None


def profile_regions() -> Mapping[str, str]:
    """Each profile of the shared config that names a Region: profile → Region, read now.

    One read of the config file for a whole run's ``Profile`` cells.
    """
    import botocore.exceptions
    import botocore.session

    try:
        profiles = botocore.session.Session().full_config.get("profiles", {})
    except botocore.exceptions.BotoCoreError:
        return {}
    return {
        name: config["region"]
        for name, config in profiles.items()
        if isinstance(config, Mapping)
        and isinstance(config.get("region"), str)
        and config["region"]
    }


def run_region(region: str | None, profile: str | None, *, known_only: bool = True) -> RunRegion:
    """The run's Region: ``region`` (``--region``), ``AWS_REGION``, ``AWS_DEFAULT_REGION``,
    then the Region of ``profile`` (None: ``AWS_PROFILE``, else ``default``).

    Returns ``RunRegion(None, ...)`` when there is none anywhere: whether the run needs one
    depends on its rows. Raises :class:`UsageError` for a Region that does not exist (see
    :func:`region_problem`), naming where it came from and the closest known one.
    """
    found = _find_run_region(region, profile)
    if found.region is not None:
        problem = region_problem(found.region, known_only=known_only)
        if problem is not None:
            raise UsageError(f"Region {found.region!r} (from {found.source}) {problem}")
    return found


def _find_run_region(region: str | None, profile: str | None) -> RunRegion:
    if region:
        return RunRegion(region, "--region")
    for variable in REGION_ENVIRONMENT:
        value = os.environ.get(variable)
        if value:
            return RunRegion(value, variable)
    import botocore.session

    session = botocore.session.Session(profile=profile)
    name = session.profile or "default"
    found = _scoped_region(session)
    if found is not None:
        return RunRegion(found, f"profile {name!r}")
    return RunRegion(None, f"not in --region, {', '.join(REGION_ENVIRONMENT)} or profile {name!r}")
