"""Per-row validation: an `InputRow` becomes a ready-to-send `Row` or an ``invalid`` `Outcome`.

Each cell is converted by its column's converter (:mod:`bulk.input.convert`); then every
``min``/``max`` of the model, and the few limits the service documents but its model lacks,
is checked on the request (:mod:`bulk.input.limits`); then botocore's own `ParamValidator`
checks it against the operation's input shape, so a row that passes here is one botocore
would send and the service would take. A row's lane comes from its Region and Profile cells
(:mod:`bulk.input.regions`); its tenants from its ``TenantName`` cell
(:mod:`bulk.input.tenants`), its event destinations from its ``EventDestinations`` cell or the
run's defaults (:mod:`bulk.input.destinations`). Columns named ``bulk_...`` are ignored.

A `Validator` is stateful: it remembers the first row of every name within a lane
(:mod:`bulk.input.names`), so it must see every record of a file in order, including rows a
resumed run will skip.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bulk.errors import UsageError
from bulk.input.columns import (
    DESTINATIONS_COLUMN,
    IGNORED_PREFIX,
    NAME_COLUMN,
    PROFILE_COLUMN,
    REGION_COLUMN,
    ROLE_COLUMN,
    TAG_PREFIX,
    TENANT_COLUMN,
    Problem,
    columns_for,
    input_shape,
    show,
    tag_key_problem,
)
from bulk.input.convert import as_text, converter, tag_value
from bulk.input.destinations import destination_reader
from bulk.input.limits import limit_problems, limits_for
from bulk.input.names import NAME_RE, NAME_RULE, FirstSeen, name_key, name_problem
from bulk.input.regions import NO_REGION
from bulk.input.routing import Router
from bulk.input.shapes import ShapeCheck, memo_of, same
from bulk.input.tenants import no_tenants, tenant_rule
from bulk.models import InputRow, Lane, Outcome, Row, Status

__all__ = ["Validator"]


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


@dataclass(frozen=True, slots=True)
class _ColumnRule:
    """How `Validator.validate` handles a column, worked out once per column name.

    No ``convert``: a column read elsewhere (name, routing, TenantName, EventDestinations),
    ignored (``bulk_...``), or one with a ``problem``. ``tag``: a ``tag:KEY`` column,
    ``member`` its key. Else the value goes to ``member`` of the structure at ``parents``
    (created as needed; ``structure``: the only parent, the fast path); for a ``union``
    column ``member`` is the union and the value names its choice. ``memo``: what of the
    value goes into the ParamValidator memo key (see :meth:`ShapeCheck.check`), None for
    nothing. ``problem``: a column-level one, reported for every non-empty cell of the column.
    """

    convert: Callable[[Any], Any] | None = None
    parents: tuple[str, ...] = ()
    member: str = ""
    structure: str | None = None  # parents[0] when it is the only one, and not a union
    tag: bool = False
    union: bool = False
    memo: Callable[[Any], object] | None = None
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
    ``default_destinations`` (from :func:`~bulk.input.destinations.load_event_destinations`)
    go to rows whose ``EventDestinations`` cell is empty or absent.
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
        default_destinations: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.service = service
        self.columns = columns_for(service)
        self._default_destinations = tuple(default_destinations)
        self._tenants = tenant_rule(service)
        no_routing = columns is not None and not {REGION_COLUMN, PROFILE_COLUMN} & set(columns)
        if region is None and no_routing:
            raise UsageError(NO_REGION)
        self._router = Router(service, region, profile, role_arn, known_only=known_only)
        # Without a run Region the default lane is only where invalid rows are recorded.
        self.default_lane = self._router.default_lane
        self._default = self._router.default
        self._region = region
        self._shape = ShapeCheck(self.columns, input_shape(service))
        self._plans: dict[str, _ColumnRule] = {}
        self._seen = FirstSeen(expected_rows)

    def fingerprint_salt(self, columns: Sequence[str]) -> str:
        """What, beside its cells, decides a row: the default lane, the header, the default
        event destinations.

        Mixed into every row fingerprint (see :func:`~bulk.engine.intake.row_fingerprints`), so
        that a run with another ``--region``/``--profile``/``--role-arn``, or a file whose
        columns were renamed or moved, never matches an earlier run's fingerprints.
        """
        salt = ("bulk-row-1", self._default[1], *columns)
        if self._default_destinations:  # what an empty EventDestinations cell stands for
            salt = (*salt, _canonical(self._default_destinations))
        return "\x1f".join(salt)

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
            found = self._router.met(region, profile, role)
            if found is None:
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
        form: list[object] = [name] if self._shape.name_checked else []
        plans = self._plans
        for column, value in values.items():
            if value is None:
                continue
            plan = plans.get(column) or self._plan(column)
            convert = plan.convert
            if convert is None:  # read by _name_and_lane or below, ignored, or a problem
                if plan.problem is not None:
                    problems.append(plan.problem)
                continue
            try:
                converted = convert(value)
            except Problem as problem:
                problems.append(problem)
                continue
            structure = plan.structure
            if structure is not None:  # the common case: a member of a top-level structure
                node = request.get(structure)
                if node is None:
                    request[structure] = {plan.member: converted}
                else:
                    node[plan.member] = converted
            elif plan.tag:
                tags.append({"Key": plan.member, "Value": converted})
            else:
                self._place(request, plan, converted)
            form.append(column if plan.memo is None else (column, plan.memo(converted)))
        if tags:
            request["Tags"] = tags
        tenants: tuple[str, ...] = ()
        destinations = self._default_destinations
        if TENANT_COLUMN in values or DESTINATIONS_COLUMN in values:
            tenants, destinations = self._tenants_and_destinations(values, problems)
        # Lengths and ranges (the model's and the documented ones), then botocore's checks:
        # ParamValidator's own "min" check can then only agree with ours.
        problems.extend(limit_problems(request, limits_for(self.service)))
        if not problems:
            problems.extend(self._shape.check(request, form))
        if problems:
            return Outcome(
                row=record.number,
                name=name if name is not None else _raw_name(values),
                status=Status.INVALID,
                lane=lane,
                digest=_digest(_canonical(_content(values))),
                code=problems[0].code,
                message="; ".join(problem.message for problem in problems),
                fingerprint=record.fingerprint,
            )
        assert name is not None
        text = f"{lane_key}\n{_canonical(request)}"
        if tenants or destinations:
            # Only then: a plain row's digest stays what earlier runs' ledgers hold.
            text += f"\n{_canonical({'tenants': tenants, 'destinations': destinations})}"
        return Row(
            number=record.number,
            name=name,
            lane=lane,
            request=request,
            digest=_digest(text),
            fingerprint=record.fingerprint,
            tenants=tenants,
            destinations=destinations,
        )

    @staticmethod
    def _place(request: dict[str, Any], plan: _ColumnRule, value: Any) -> None:
        """Put ``value`` where ``plan`` says, creating the structures on the way."""
        node = request
        for step in plan.parents:
            child = node.get(step)
            if child is None:
                child = node[step] = {}
            node = child
        if plan.union:  # the value names the choice; its own columns may have filled it
            node.setdefault(plan.member, {}).setdefault(value, {})
        else:
            node[plan.member] = value

    def _tenants_and_destinations(
        self, values: Mapping[str, Any], problems: list[Problem]
    ) -> tuple[tuple[str, ...], tuple[Mapping[str, Any], ...]]:
        """The row's tenants (its TenantName cell) and event destinations (its
        EventDestinations cell, else the run's defaults)."""
        tenants: tuple[str, ...] = ()
        cell = values.get(TENANT_COLUMN)
        if cell is not None and self._tenants is not None:  # else the column's plan problem
            try:
                tenants = self._tenants.names(cell)
            except Problem as problem:
                problems.append(problem)
        destinations = self._default_destinations
        cell = values.get(DESTINATIONS_COLUMN)
        if cell is not None:
            try:
                destinations = destination_reader(self.service).cell(cell)
            except Problem as problem:
                problems.append(problem)
        return tenants, destinations

    def _plan(self, column: str) -> _ColumnRule:
        """Work out (once) how to handle ``column``."""
        spec = self.columns.get(column)
        plan: _ColumnRule
        if spec is not None and spec.path and spec.kind != "name":
            union = spec.kind == "union"
            plan = _ColumnRule(
                converter(spec),
                spec.path[:-1],
                spec.path[-1],
                spec.path[0] if len(spec.path) == 2 and not union else None,
                union=union,
                memo=memo_of(spec),
            )
        elif spec is not None or column.startswith(IGNORED_PREFIX):
            plan = _ColumnRule()  # name, routing, tenants, destinations: read by validate
        elif column.startswith(TAG_PREFIX) and self._shape.has_tags:
            key = column[len(TAG_PREFIX) :]
            problem = tag_key_problem(key)
            if problem is None:
                plan = _ColumnRule(
                    functools.partial(tag_value, column),
                    member=key,
                    tag=True,
                    memo=same if self._shape.tags_checked else None,
                )
            else:
                plan = _ColumnRule(
                    problem=Problem("InvalidTag", f"column {show(column)}: {problem}")
                )
        elif column == TENANT_COLUMN:
            plan = _ColumnRule(problem=Problem("UnsupportedColumn", no_tenants(self.service)))
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
                    f"column {NAME_COLUMN} is empty; every row needs a name ({NAME_RULE})",
                )
            )
        else:
            text = as_text(raw)
            if text is None or not NAME_RE.fullmatch(text):
                problems.append(
                    Problem("InvalidName", name_problem(f"column {NAME_COLUMN}", raw, text))
                )
            else:
                name = text
        region = values.get(REGION_COLUMN)
        profile = values.get(PROFILE_COLUMN)
        role = values.get(ROLE_COLUMN)
        if region is None and profile is None and role is None and self._region is not None:
            return name, self._default
        found = self._router.route(region, profile, role)
        if isinstance(found, Problem):
            problems.append(found)
            return name, None
        return name, found

    def lane_of(self, region: object, profile: object, role: object = None) -> Lane | None:
        """The lane of a row with these Region, Profile and RoleArn cells (None: the row is
        invalid)."""
        found = self._router.route(region, profile, role)
        return None if isinstance(found, Problem) else found[0]


def _raw_name(values: Mapping[str, Any]) -> str:
    raw = values.get(NAME_COLUMN)
    return "" if raw is None else str(raw)


def _content(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """A row's cells but the ignored ``bulk_...`` ones: what an invalid row's digest covers."""
    if any(column.startswith(IGNORED_PREFIX) for column in values):
        return {k: v for k, v in values.items() if not k.startswith(IGNORED_PREFIX)}
    return values
