"""Per-row validation: an `InputRow` becomes a ready-to-send `Row` or an ``invalid`` `Outcome`.

Each cell is converted by its column's converter (:mod:`bulk.input.convert`); then every
``min``/``max`` of the model, and the few limits the service documents but its model lacks,
is checked on the request (:mod:`bulk.input.columns`); then botocore's own `ParamValidator`
checks it against the operation's input shape, so a row that passes here is one botocore
would send and the service would take. A row's lane comes from its Region and Profile cells
(:mod:`bulk.input.regions`).

A `Validator` is stateful: it remembers the first row of every name within a lane
(:mod:`bulk.input.names`), so it must see every record of a file in order, including rows a
resumed run will skip.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from bulk.errors import UsageError
from bulk.input.columns import (
    NAME_COLUMN,
    OPTION_COLUMNS,
    PROFILE_COLUMN,
    REGION_COLUMN,
    ROLE_COLUMN,
    ROUTING_COLUMNS,
    TAG_PREFIX,
    Problem,
    columns_for,
    input_shape,
    limit_problems,
    limits_for,
    role_arn_problem,
    show,
    tag_key_problem,
)
from bulk.input.convert import as_text, converter, tag_value
from bulk.input.names import FirstSeen, name_key
from bulk.input.regions import NO_REGION, profile_regions, region_problem
from bulk.models import InputRow, Lane, Outcome, Row, Status

__all__ = ["Validator"]

_NAME_RULE = "a name is 1-64 characters of A-Z a-z 0-9 _ -"
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Bounds on memo tables keyed by file content, so a hostile file cannot grow them forever.
_LANE_CACHE_MAX = 1024
_SHAPE_CACHE_MAX = 4096


def _digest(text: str) -> str:
    """16 hex characters of blake2b: short, stable across runs and machines."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _json_default(value: object) -> str:
    """Canonical JSON for the non-JSON values a record or request can hold."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


# Canonical JSON: sorted keys, no spaces, datetimes as ISO-8601. Built once: json.dumps
# with options builds a new encoder per call.
_canonical = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
).encode


def _lane_key(lane: Lane) -> str:
    # Not str(lane): that prints profile None and profile "default" alike.
    key = [lane.service, lane.region, lane.profile]
    return _canonical(key if lane.role_arn is None else [*key, lane.role_arn])


@dataclass(frozen=True, slots=True)
class _ColumnRule:
    """How `Validator.validate` handles a column, worked out once per column name.

    No ``convert``: a routing column (name, Region, Profile, RoleArn), read elsewhere. ``structure``
    None with a ``convert``: a tag, ``member`` its key. ``problem``: a column-level one,
    reported for every non-empty cell of the column.
    """

    convert: Callable[[Any], Any] | None = None
    structure: str | None = None
    member: str = ""
    memo_value: bool = False
    problem: Problem | None = None


class Validator:
    """Turns records into requests for one service, or into ``invalid`` outcomes.

    ``region``, ``profile`` and ``role_arn`` make the default lane, used by rows whose
    ``Region``, ``Profile`` and ``RoleArn`` cells are empty (or absent); each cell a row has
    replaces its part of the lane. A row with a ``Profile`` cell and no ``Region`` goes to
    that profile's Region when its config names one (see :mod:`bulk.input.regions`).
    ``region`` None: the run has none, and a row that needs it is ``NoRegion``; with
    ``columns`` (the file's header) and neither a Region nor a Profile column, no row could
    have one: a :class:`UsageError`. ``known_only``: a Region must be one botocore's endpoint
    data knows (off when ``--endpoint-url`` points elsewhere: then only its shape counts).
    `validate` never raises for bad row data: every
    problem in a row is reported in one `Outcome` (``code`` of the first problem, all
    messages joined with ``"; "``). Names must be unique within a lane; the first row with
    a name wins, later ones are ``DuplicateName`` (also when the first row is invalid for
    another reason: fixing it must not turn the later row into a second create).
    ``expected_rows`` (e.g. from `Source.count`) presizes the duplicate table.
    """

    def __init__(
        self,
        service: str,
        *,
        region: str | None,
        profile: str | None = None,
        role_arn: str | None = None,
        expected_rows: int = 0,
        known_only: bool = True,
        columns: Iterable[str] | None = None,
    ) -> None:
        self.service = service
        self.columns = columns_for(service)
        if region is not None:
            problem = region_problem(region, known_only=known_only)
            if problem is not None:
                raise UsageError(f"region {show(region)} {problem}")
        elif columns is not None and not {REGION_COLUMN, PROFILE_COLUMN} & set(columns):
            raise UsageError(NO_REGION)
        self._region = region
        self._known_only = known_only
        # Without a run Region the default lane is only where invalid rows are recorded.
        self.default_lane = Lane(service, region or "", profile or None, role_arn or None)
        self._default = (self.default_lane, _lane_key(self.default_lane))
        # A row's lane, or why it has none, by its (Region, Profile, RoleArn) cells as text.
        # The lanes in it are the ones met so far (see claim).
        self._lanes: dict[_RouteKey, tuple[Lane, str] | Problem] = {}
        if region is not None:
            self._lanes[(region, None, None)] = self._default
        self._profile_regions: Mapping[str, str] | None = None  # read at the first need
        self._shape = input_shape(service)
        from botocore.validate import ParamValidator

        self._param_validator = ParamValidator()
        self._plans: dict[str, _ColumnRule] = {}
        self._seen = FirstSeen(expected_rows)
        self._passed: set[tuple[object, ...]] = set()
        # Whether botocore checks the name's or the tags' values ("min"): then those values
        # go into the memo key too (no model has it today; a future one might).
        self._name_checked = "min" in self._shape.members[NAME_COLUMN].metadata
        tags = self._shape.members.get("Tags")
        self._tags_checked = tags is not None and any(
            "min" in shape.metadata for shape in (tags, *tags.member.members.values())
        )

    def fingerprint_salt(self, columns: Sequence[str]) -> str:
        """What, beside its cells, decides a row's request: the default lane and the header.

        Mixed into every row fingerprint (see :func:`~bulk.engine.intake.row_fingerprints`), so
        that a run with another ``--region``/``--profile``/``--role-arn``, or a file whose
        columns were renamed or moved, never matches an earlier run's fingerprints.
        """
        return "\x1f".join(("bulk-row-1", self._default[1], *columns))

    def claim(
        self,
        name: object,
        row: int,
        region: object = None,
        profile: object = None,
        role: object = None,
    ) -> bool:
        """Note an unchanged, earlier-created row's name as :meth:`validate` would.

        For a row a resumed run skips without validating (its fingerprint matches a created
        record): ``True`` if ``row`` is the first with ``name`` in its lane, so that later
        rows still see the name as taken. ``False`` (nothing noted) if an earlier row has the
        name, or the lane is not one already met: then :meth:`validate` must decide the row.
        """
        if region is None and profile is None and role is None and self._region is not None:
            lane_key = self._default[1]
        else:
            key = _routing_key(region, profile, role)
            found = None if key is None else self._lanes.get(key)
            if not isinstance(found, tuple):
                return False
            lane_key = found[1]
        text = as_text(name)
        if text is None:
            return False
        return self._seen.first_row(name_key(lane_key, text), row) == row

    def claim_many(
        self,
        names: Sequence[object],
        rows: Sequence[int],
        regions: Sequence[object] | None = None,
        profiles: Sequence[object] | None = None,
        roles: Sequence[object] | None = None,
        *,
        unique: bool = False,
    ) -> list[int]:
        """:meth:`claim` for each row in turn; the indexes of the rows it returned False for.

        ``regions``/``profiles``/``roles``: the rows' cells, or None for a file without the
        column.
        ``unique``: the caller knows that no two rows it ever passes with this flag share a
        name and lane (rows skipped as unchanged: each matches its name's latest record).
        Until a row is validated or claimed without it, such names are then only noted, and
        entered in the duplicate table when a later row needs it.
        """
        if (
            regions is None
            and profiles is None
            and roles is None
            and self._region is not None
            and all(type(name) is str for name in names)
        ):
            lane_key = self._default[1]
            # name_key's hash without its mask: the table masks every key itself, and keeps
            # deferred keys in a signed array.
            keys = [hash((lane_key, name)) for name in names]
            if self._seen.only_deferred and unique:
                self._seen.defer_new(keys, rows)
                return []
            return self._seen.taken(keys, rows)
        lost = []
        for i, (name, row) in enumerate(zip(names, rows, strict=True)):
            region = None if regions is None else regions[i]
            profile = None if profiles is None else profiles[i]
            role = None if roles is None else roles[i]
            if not self.claim(name, row, region, profile, role):
                lost.append(i)
        return lost

    def validate(self, record: InputRow) -> Row | Outcome:
        """Validate one record: a `Row` ready to send, or an ``invalid`` `Outcome`."""
        values = record.values
        problems: list[Problem] = []
        name, lane_found = self._name_and_lane(values, problems)
        lane, lane_key = lane_found or self._default
        if name is not None and lane_found is not None:
            first = self._seen.first_row(name_key(lane_key, name), record.number)
            if first != record.number:
                where = "" if lane == self.default_lane else f" in {lane}"
                problems.append(
                    Problem(
                        "DuplicateName",
                        f"column {NAME_COLUMN}: {show(name)} duplicates row {first}{where} "
                        "(the first row with a name wins); rename or remove this row",
                    )
                )
        request: dict[str, Any] = {NAME_COLUMN: name}
        tags: list[dict[str, str]] = []
        # The request's form, the ParamValidator memo key: see _check_shape.
        form: list[object] = [name] if self._name_checked else []
        plans = self._plans
        for column, value in values.items():
            if value is None:
                continue
            plan = plans.get(column) or self._plan(column)
            if plan.problem is not None:
                problems.append(plan.problem)
                continue
            if plan.convert is None:  # Region, Profile, RoleArn: read by _name_and_lane
                continue
            try:
                converted = plan.convert(value)
            except Problem as problem:
                problems.append(problem)
                continue
            if plan.structure is None:
                tags.append({"Key": plan.member, "Value": converted})
            elif plan.structure in request:
                request[plan.structure][plan.member] = converted
            else:
                request[plan.structure] = {plan.member: converted}
            form.append((column, converted) if plan.memo_value else column)
        if tags:
            request["Tags"] = tags
        # Lengths and ranges (the model's and the documented ones), then botocore's checks:
        # ParamValidator's own "min" check can then only agree with ours.
        problems.extend(limit_problems(request, limits_for(self.service)))
        if not problems:
            problems.extend(self._check_shape(request, form))
        if problems:
            return Outcome(
                row=record.number,
                name=name if name is not None else _raw_name(values),
                status=Status.INVALID,
                lane=lane,
                digest=_digest(_canonical(dict(values))),
                code=problems[0].code,
                message="; ".join(problem.message for problem in problems),
                fingerprint=record.fingerprint,
            )
        assert name is not None
        return Row(
            number=record.number,
            name=name,
            lane=lane,
            request=request,
            digest=_digest(f"{lane_key}\n{_canonical(request)}"),
            fingerprint=record.fingerprint,
        )

    def _plan(self, column: str) -> _ColumnRule:
        """Work out (once) how to handle ``column``."""
        spec = self.columns.get(column)
        plan: _ColumnRule
        if column in _ROUTING:
            plan = _ColumnRule()
        elif spec is not None and spec.structure is not None:
            plan = _ColumnRule(
                converter(spec),
                spec.structure,
                spec.member or column,
                # botocore checks "min" by value: such values belong in the memo key.
                memo_value=spec.minimum is not None,
            )
        elif column.startswith(TAG_PREFIX) and "Tags" in self._shape.members:
            key = column[len(TAG_PREFIX) :]
            problem = tag_key_problem(key)
            plan = _ColumnRule(
                functools.partial(tag_value, column),
                None,
                key,
                memo_value=self._tags_checked,
                problem=None
                if problem is None
                else Problem("InvalidTag", f"column {show(column)}: {problem}"),
            )
        else:
            hint = " or use --service sesv2" if column in columns_for("sesv2") else ""
            plan = _ColumnRule(
                problem=Problem(
                    "UnsupportedColumn",
                    f"column {show(column)}: {self.service} has no such field; "
                    f"remove the column{hint}",
                )
            )
        self._plans[column] = plan
        return plan

    # -- name and lane ------------------------------------------------------------------

    def _name_and_lane(
        self, values: Mapping[str, Any], problems: list[Problem]
    ) -> tuple[str | None, tuple[Lane, str] | None]:
        """The row's valid name (or None) and its lane (or None if its Region is bad)."""
        name: str | None = None
        raw = values.get(NAME_COLUMN)
        if raw is None:
            problems.append(
                Problem(
                    "MissingName",
                    f"column {NAME_COLUMN} is empty; every row needs a name ({_NAME_RULE})",
                )
            )
        else:
            text = as_text(raw)
            if text is None or not _NAME_RE.fullmatch(text):
                problems.append(Problem("InvalidName", _name_problem(raw, text)))
            else:
                name = text
        region = values.get(REGION_COLUMN)
        profile = values.get(PROFILE_COLUMN)
        role = values.get(ROLE_COLUMN)
        if region is None and profile is None and role is None and self._region is not None:
            return name, self._default
        found = self._route(region, profile, role)
        if isinstance(found, Problem):
            problems.append(found)
            return name, None
        return name, found

    def lane_of(self, region: object, profile: object, role: object = None) -> Lane | None:
        """The lane of a row with these Region, Profile and RoleArn cells (None: the row is
        invalid)."""
        if region is None and profile is None and role is None and self._region is not None:
            return self._default[0]
        found = self._route(region, profile, role)
        return None if isinstance(found, Problem) else found[0]

    def _route(self, region: object, profile: object, role: object) -> tuple[Lane, str] | Problem:
        """The lane of a row's routing cells (any may be None), or why it has none."""
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
        return lane, _lane_key(lane)

    def _profile_region(self, profile: str) -> str | None:
        """The Region ``profile``'s config names; the config is read once per run."""
        if self._profile_regions is None:
            self._profile_regions = profile_regions()
        return self._profile_regions.get(profile)

    def _check_shape(self, request: dict[str, Any], form: list[object]) -> Iterator[Problem]:
        """Botocore's ParamValidator on the request, memoised by the request's form.

        ParamValidator's verdict depends on which members are present, their Python types
        and, for members with a ``min`` trait, their values (beyond types botocore checks
        only ``required``, ``min``, ``document`` and ``union``). Each column's converter
        fixes its type, so the columns present plus the values of ``min``-checked columns
        determine the verdict: a form that passed once passes again. Saves ~25 us a row.
        """
        key = tuple(form)
        if key in self._passed:
            return
        report = self._param_validator.validate(request, self._shape)
        if not report.has_errors():
            if len(self._passed) < _SHAPE_CACHE_MAX:
                self._passed.add(key)
            return
        # botocore has no public list of a report's errors, only its text: ``_errors`` holds
        # (kind, path, details) tuples in every botocore pyproject allows; a release that
        # changes that fails tests/test_dependencies.py.
        for kind, path, details in report._errors:
            yield Problem("ParamValidation", _param_problem(kind, path, details))


_ROUTING: Final = frozenset({NAME_COLUMN, *ROUTING_COLUMNS})

_RouteKey = tuple[str | None, str | None, str | None]


def _routing_key(region: object, profile: object, role: object) -> _RouteKey | None:
    """A row's Region, Profile and RoleArn cells as a lane-cache key; None if a cell is not
    text."""
    cells = (region, profile, role)
    texts = tuple(None if cell is None else as_text(cell) for cell in cells)
    if any(cell is not None and text is None for cell, text in zip(cells, texts, strict=True)):
        return None
    return texts  # type: ignore[return-value]


def _raw_name(values: Mapping[str, Any]) -> str:
    raw = values.get(NAME_COLUMN)
    return "" if raw is None else str(raw)


def _name_problem(raw: object, text: str | None) -> str:
    prefix = f"column {NAME_COLUMN}: {show(raw)}"
    if text is None:
        return f"{prefix} is not text; {_NAME_RULE}"
    if len(text) > 64:
        return f"{prefix} is {len(text)} characters long; {_NAME_RULE}"
    bad: list[str] = []
    for ch in text:
        if not _NAME_RE.fullmatch(ch) and ch not in bad:
            bad.append(ch)
    return f"{prefix} contains {', '.join(repr(ch) for ch in bad[:5])}; {_NAME_RULE}"


def _param_problem(kind: str, path: str, details: Mapping[str, Any]) -> str:
    """One ParamValidator error in the input's terms: columns rather than request paths."""
    members = [part for part in path.split(".") if part]
    column = _column_of(members)
    if kind == "missing required field":
        required = _column_of([*members, str(details.get("required_name"))])
        given = ", ".join(str(key) for key in details.get("user_params", {}))
        return f"column {required} is required when {given or 'its group'} is set"
    where = f"column {column}" if column else (".".join(members) or "request")
    if kind == "invalid length":
        return (
            f"{where}: {show(details.get('param'))} is too short "
            f"(at least {details.get('min_allowed')})"
        )
    if kind == "invalid range":
        return f"{where}: {show(details.get('param'))} is below {details.get('min_allowed')}"
    if kind == "invalid type":
        return f"{where}: {show(details.get('param'))} has the wrong type"
    return f"{where}: {kind}"


def _column_of(members: list[str]) -> str:
    """The input column behind a request path like ['DeliveryOptions', 'TlsPolicy']."""
    if len(members) >= 2:
        for name, place in OPTION_COLUMNS.items():
            if place == (members[0], members[1]):
                return name
    return ".".join(members)
