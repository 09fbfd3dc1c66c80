"""Per-row validation: a `InputRow` becomes a ready-to-send `Row` or an ``invalid`` `Outcome`.

Input columns are the API's member names. Which columns a service has, their types, enum
values and numeric limits all come from botocore's model of ``CreateConfigurationSet``; this
module only says where each column goes in the request (`OPTION_COLUMNS`). After the
columns are converted, every ``min``/``max`` of the model is checked on the request (with the
few limits the service documents but its model lacks, `_DOCUMENTED_LIMITS`), then botocore's
own `ParamValidator` checks it against the operation's input shape, so a row that passes
here is one botocore would send and the service would take.

A `Validator` is stateful: it remembers the first row of every name within a lane, so it
must see every record of a file in order, including rows a resumed run will skip.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from bulk.errors import UsageError
from bulk.input.regions import NO_REGION, profile_regions, region_problem
from bulk.models import SERVICES, InputRow, Lane, Outcome, Row, Status

__all__ = [
    "NAME_COLUMN",
    "OPTION_COLUMNS",
    "PROFILE_COLUMN",
    "REGION_COLUMN",
    "TAG_PREFIX",
    "Column",
    "Validator",
    "columns_for",
    "show",
    "tag_key_problem",
]

NAME_COLUMN: Final = "ConfigurationSetName"
REGION_COLUMN: Final = "Region"
PROFILE_COLUMN: Final = "Profile"
TAG_PREFIX: Final = "tag:"

# Where each option column goes in the request: (structure, member). The column exists for a
# service only if the service's input shape has that member (HttpsPolicy and
# MaxDeliverySeconds are SES v2 only).
OPTION_COLUMNS: Final[Mapping[str, tuple[str, str]]] = {
    "SendingPoolName": ("DeliveryOptions", "SendingPoolName"),
    "TlsPolicy": ("DeliveryOptions", "TlsPolicy"),
    "MaxDeliverySeconds": ("DeliveryOptions", "MaxDeliverySeconds"),
    "ReputationMetricsEnabled": ("ReputationOptions", "ReputationMetricsEnabled"),
    "LastFreshStart": ("ReputationOptions", "LastFreshStart"),
    "SendingEnabled": ("SendingOptions", "SendingEnabled"),
    "CustomRedirectDomain": ("TrackingOptions", "CustomRedirectDomain"),
    "HttpsPolicy": ("TrackingOptions", "HttpsPolicy"),
}

_OPERATION = "CreateConfigurationSet"
_NAME_RULE = "a name is 1-64 characters of A-Z a-z 0-9 _ -"
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EPOCH_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_BOOLEAN_HINT = "use true/false, 1/0, yes/no"
# AWS tag rules (SES API reference, "Tag"): key 1-128, value 0-256 characters of Unicode
# letters, digits, white space and _ . : / = + - @; the aws: prefix is reserved.
_TAG_KEY_MAX = 128
_TAG_VALUE_MAX = 256
# \w is letters, digits and _; the rest are the Unicode space separators (category Z).
_TAG_CHARS_RULE = "tags allow letters, digits, spaces and _ . : / = + - @"
_TAG_RE = re.compile(r"[\w.:/=+\-@ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*")
_SHOW_LIMIT = 80
# Bounds on memo tables keyed by file content, so a hostile file cannot grow them forever.
_LANE_CACHE_MAX = 1024
_SHAPE_CACHE_MAX = 4096


@dataclass(frozen=True)
class Column:
    """One input column of a service: where it goes in the request and what it holds.

    ``kind`` is ``text``, ``enum``, ``boolean``, ``timestamp`` or ``integer`` for option
    columns (from the member's shape), ``name``, ``region`` or ``profile`` for the others.
    """

    name: str
    kind: str
    structure: str | None = None
    member: str | None = None
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None


def show(value: object, limit: int = _SHOW_LIMIT) -> str:
    """Quote a value for a one-line message: repr-escaped (terminal-safe), long ones cut."""
    if isinstance(value, bool | int | float):
        return repr(value)
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return f"{text[:limit]!r}... ({len(text)} characters)"
    return repr(text)


def tag_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a tag key (AWS tag rules), or None if it can."""
    if not key:
        return "a tag key is 1-128 characters"
    if len(key) > _TAG_KEY_MAX:
        return f"tag key {show(key)} is {len(key)} characters; a tag key is at most 128"
    if key[:4].lower() == "aws:":
        return f"tag key {show(key)} starts with 'aws:', which AWS reserves"
    bad = _bad_tag_characters(key)
    if bad:
        return f"tag key {show(key)} contains {bad}; {_TAG_CHARS_RULE}"
    return None


def _bad_tag_characters(text: str) -> str:
    """The characters of ``text`` that AWS tags do not allow, quoted, or ''."""
    if _TAG_RE.fullmatch(text):
        return ""
    bad: list[str] = []
    for ch in text:
        if not _TAG_RE.fullmatch(ch) and ch not in bad:
            bad.append(ch)
    return ", ".join(repr(ch) for ch in bad[:5])


@functools.cache
def _input_shape(service: str) -> Any:
    """The botocore input shape of CreateConfigurationSet for ``service`` (loaded once)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(_OPERATION).input_shape


# -- limits: the model's min/max on every member, and the documented ones it lacks ----------

_Path = tuple[str, ...]  # member names from the request's root; "[]" steps into each list item

# Limits the service documents but its model does not carry (no "max" trait in either
# pinpoint-email or sesv2), by request path. Used only where the model has no limit of its own.
_DOCUMENTED_LIMITS: Final[Mapping[_Path, tuple[int, str]]] = {
    # SES v2 API reference, "Tag": "A resource can have as many as 50 tags." (tags whose key
    # starts with aws: do not count, but such keys are refused anyway).
    ("Tags",): (50, "a configuration set can have at most 50 tags (SES API reference, Tag)"),
    # Dedicated IP pool names: the API references (CreateDedicatedIpPool, DedicatedIpPool) give
    # no length; CloudFormation documents AWS::SES::DedicatedIpPool PoolName as
    # ^[a-z0-9_-]{0,64}$ (the CDK: "must not exceed 64 characters"). Only the length is checked
    # here: the character rule is CloudFormation's, and the API itself does not state it.
    ("DeliveryOptions", "SendingPoolName"): (64, "a dedicated IP pool name is at most 64"),
    # A domain name: at most 253 characters (RFC 1035's 255 octets on the wire).
    ("TrackingOptions", "CustomRedirectDomain"): (253, "a domain name is at most 253"),
}
_LENGTH_TYPES: Final = frozenset({"string", "list", "map", "blob"})
_NUMBER_TYPES: Final = frozenset({"integer", "long", "float", "double"})


@dataclass(frozen=True, slots=True)
class _Limit:
    """A bound on one member of the request: its length (text, list) or its value (number).

    ``rule`` says the documented limit in words (from `_DOCUMENTED_LIMITS`); '' for the model's.
    """

    path: _Path
    length: bool
    minimum: float | None
    maximum: float | None
    rule: str = ""


@functools.cache
def _limits(service: str) -> tuple[_Limit, ...]:
    """Every min/max the model of ``service`` gives, plus the documented ones it lacks.

    botocore's ParamValidator checks ``min`` only; this covers both, so a limit a newer model
    adds is checked without a code change.
    """
    found: dict[_Path, _Limit] = {}

    def walk(shape: Any, path: _Path, seen: frozenset[str]) -> None:
        if shape.name in seen:  # a recursive shape: its members were walked further up
            return
        seen = seen | {shape.name}
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        kind = shape.type_name
        bounded = low is not None or high is not None
        if path and bounded and (kind in _LENGTH_TYPES or kind in _NUMBER_TYPES):
            found[path] = _Limit(path, kind in _LENGTH_TYPES, low, high)
        documented = _DOCUMENTED_LIMITS.get(path)
        if documented is not None and kind in _LENGTH_TYPES and high is None:
            found[path] = _Limit(path, True, low, documented[0], documented[1])
        if kind == "structure":
            for name, member in shape.members.items():
                walk(member, (*path, name), seen)
        elif kind == "list":
            walk(shape.member, (*path, "[]"), seen)

    walk(_input_shape(service), (), frozenset())
    return tuple(found.values())


def _limit_problems(request: Mapping[str, Any], limits: Sequence[_Limit]) -> list[_Invalid]:
    """A problem for each value of ``request`` outside one of ``limits``."""
    problems: list[_Invalid] = []
    for limit in limits:
        if "[]" in limit.path:
            found: Iterable[tuple[Any, Any]] = _values_at(request, limit.path, None)
        else:  # the common case, without a generator
            value: Any = request
            for step in limit.path:
                value = value.get(step) if isinstance(value, dict) else None
                if value is None:
                    break
            if value is None:
                continue
            found = ((None, value),)
        for item, value in found:
            if isinstance(value, bool):
                continue
            if limit.length:
                if not isinstance(value, str | bytes | list | dict):
                    continue  # a wrong type: ParamValidator's to report
                size: float = len(value)
            elif isinstance(value, int | float):
                size = value
            else:
                continue
            if (limit.minimum is None or size >= limit.minimum) and (
                limit.maximum is None or size <= limit.maximum
            ):
                continue
            problems.append(_limit_problem(limit, item, value, size))
    return problems


def _values_at(node: Any, path: _Path, item: Any) -> Iterator[tuple[Any, Any]]:
    """The values at ``path`` below ``node``, each with the list item it is in (or None)."""
    if not path:
        yield item, node
        return
    step, rest = path[0], path[1:]
    if step == "[]":
        if isinstance(node, list):
            for each in node:
                yield from _values_at(each, rest, each)
    elif isinstance(node, dict) and node.get(step) is not None:
        yield from _values_at(node[step], rest, item)


def _limit_problem(limit: _Limit, item: Any, value: Any, size: float) -> _Invalid:
    """The message for ``value`` outside ``limit``, in the input's terms."""
    low, high = limit.minimum, limit.maximum
    too_long = high is not None and size > high
    if limit.path == ("Tags",) and high is not None and size > high:
        return _Invalid(
            "TooManyTags",
            f"{_figure(size)} tag: columns are set in this row; {limit.rule}; "
            f"empty {_figure(size - high)} of them",
        )
    if limit.path[0] == "Tags" and isinstance(item, dict) and "Key" in item:
        where = f"column {show(TAG_PREFIX + str(item['Key']))}"
    else:
        # Columns are named by their leaf member (the names are unique in both models).
        where = f"column {[step for step in limit.path if step != '[]'][-1]}"
    if not limit.length:
        return _Invalid(
            "InvalidNumber", f"{where}: {_figure(value)} is out of range ({_bounds(low, high)})"
        )
    unit = "characters" if isinstance(value, str | bytes) else "items"
    rule = (limit.rule or f"at most {_figure(high)}") if too_long else f"at least {_figure(low)}"
    shown = show(value)
    # show() cuts a long value and gives its length itself.
    size_text = "is too long" if shown.endswith(" characters)") else f"is {_figure(size)} {unit}"
    return _Invalid(
        "ValueTooLong" if too_long else "ValueTooShort",
        f"{where}: {shown} {size_text}; {rule} {unit}; {'shorten' if too_long else 'lengthen'} it",
    )


def _figure(number: float | None) -> str:
    """A number as a person writes it: 1000000, not 1e+06 or 1000000.0."""
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return str(number)


def _bounds(low: float | None, high: float | None) -> str:
    return f"{'' if low is None else _figure(low)}-{'' if high is None else _figure(high)}"


@functools.cache
def columns_for(service: str) -> Mapping[str, Column]:
    """The columns ``service`` accepts, by name, in a stable order (tags: any ``tag:KEY``)."""
    if service not in SERVICES:
        raise UsageError(f"unknown service {show(service)}; use one of: {', '.join(SERVICES)}")
    shape = _input_shape(service)
    columns: dict[str, Column] = {NAME_COLUMN: Column(NAME_COLUMN, "name")}
    for name, (structure, member) in OPTION_COLUMNS.items():
        if structure not in shape.members:
            continue
        parent = shape.members[structure]
        if member not in parent.members:
            continue
        leaf = parent.members[member]
        kind = {
            "boolean": "boolean",
            "timestamp": "timestamp",
            "integer": "integer",
            "long": "integer",
            "string": "enum" if leaf.metadata.get("enum") else "text",
        }[leaf.type_name]
        columns[name] = Column(
            name,
            kind,
            structure,
            member,
            tuple(leaf.metadata.get("enum", ())),
            leaf.metadata.get("min"),
            leaf.metadata.get("max"),
        )
    columns[REGION_COLUMN] = Column(REGION_COLUMN, "region")
    columns[PROFILE_COLUMN] = Column(PROFILE_COLUMN, "profile")
    return columns


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
    return _canonical([lane.service, lane.region, lane.profile])


class _FirstSeen:
    """The first row number of each 64-bit key, in two flat arrays: 12 bytes a slot.

    Open addressing with linear probing; key 0 marks a free slot, so a key of 0 is stored
    as 1. Load stays at most 3/4 (the table grows by half past it). A million names cost
    16 MB in a presized table; grown from empty, 18 MB (30 MB while growing); a dict of
    ints would cost ~100 MB.
    """

    _MAX_LOAD = 0.75

    def __init__(self, expected: int = 0) -> None:
        # Allocated at the first lookup: a resume that skips every row never needs it.
        self._keys, self._rows = array("Q"), array("I")
        self._capacity = max(1024, int(expected / self._MAX_LOAD) + 1)
        self._limit = 0
        self._count = 0
        # Keys known to be new and distinct, not inserted yet (see defer).
        self._pending: list[tuple[array[int], array[int]]] = []
        self.only_deferred = True  # nothing but deferred keys ever entered

    def _allocate(self, capacity: int) -> None:
        self._keys = array("Q", [0]) * capacity
        self._rows = array("I", [0]) * capacity
        self._capacity = capacity
        self._limit = int(capacity * self._MAX_LOAD)

    def __len__(self) -> int:
        return self._count

    def defer(self, keys: Sequence[int], rows: Sequence[int]) -> None:
        """Note keys that are distinct and new to the table, inserting them only when needed.

        For the names of rows a resumed run skips unread: while nothing else enters the
        table they cannot collide, and a run where every row is skipped never pays for the
        inserts. Any lookup inserts them first, in order.
        """
        self._pending.append((array("q", keys), array("I", rows)))

    def first(self, key: int, row: int) -> int:
        """The first row recorded for ``key``; records ``row`` if the key is new."""
        for _, earlier in self._lookup((key,), (row,)):
            return earlier
        return row

    def first_rows(self, keys: Sequence[int], rows: Sequence[int]) -> list[int]:
        """:meth:`first` for each (key, row) in turn; the indexes where it was not ``row``.

        One loop for a batch: a resume claims a million unchanged names.
        """
        return [i for i, _ in self._lookup(keys, rows)]

    def _lookup(self, keys: Sequence[int], rows: Sequence[int]) -> list[tuple[int, int]]:
        """Deferred keys first, then :meth:`_insert`."""
        self.only_deferred = False
        if not self._keys:
            self._allocate(self._capacity)
        if self._pending:
            pending, self._pending = self._pending, []
            for deferred_keys, deferred_rows in pending:
                self._insert(deferred_keys, deferred_rows)  # distinct and new: none is lost
        return self._insert(keys, rows)

    def _insert(self, keys: Sequence[int], rows: Sequence[int]) -> list[tuple[int, int]]:
        """Record each (key, row) whose key is new; (index, first row) of those whose key
        was recorded with another row."""
        lost: list[tuple[int, int]] = []
        table, firsts, capacity = self._keys, self._rows, self._capacity
        count, limit = self._count, self._limit
        for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
            key = (key & _MASK64) or 1
            slot = key % capacity
            while True:
                found = table[slot]
                if found == 0:
                    table[slot] = key
                    firsts[slot] = row
                    count += 1
                    break
                if found == key:
                    if firsts[slot] != row:
                        lost.append((i, firsts[slot]))
                    break
                slot += 1
                if slot == capacity:
                    slot = 0
            if count > limit:
                self._count = count
                self._grow()
                table, firsts, capacity = self._keys, self._rows, self._capacity
                limit = self._limit
        self._count = count
        return lost

    def _grow(self) -> None:
        old_keys, old_rows = self._keys, self._rows
        self._allocate(self._capacity * 3 // 2)
        keys, rows, capacity = self._keys, self._rows, self._capacity
        for key, row in zip(old_keys, old_rows, strict=True):
            if key:
                i = key % capacity
                while keys[i]:
                    i = i + 1 if i + 1 < capacity else 0
                keys[i] = key
                rows[i] = row


class _Invalid(Exception):
    """One problem with one cell: an error code and a message naming column and value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class _ColumnRule:
    """How `Validator.validate` handles a column, worked out once per column name.

    No ``convert``: a routing column (name, Region, Profile), read elsewhere. ``structure``
    None with a ``convert``: a tag, ``member`` its key. ``problem``: a column-level one,
    reported for every non-empty cell of the column.
    """

    convert: Callable[[Any], Any] | None = None
    structure: str | None = None
    member: str = ""
    memo_value: bool = False
    problem: _Invalid | None = None


class Validator:
    """Turns records into requests for one service, or into ``invalid`` outcomes.

    ``region`` and ``profile`` make the default lane, used by rows whose ``Region`` and
    ``Profile`` cells are empty (or absent). A row with a ``Profile`` cell and no ``Region``
    goes to that profile's Region when its config names one (see :mod:`bulk.input.regions`).
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
        self.default_lane = Lane(service, region or "", profile or None)
        self._default = (self.default_lane, _lane_key(self.default_lane))
        # A row's lane, or why it has none, by its (Region, Profile) cells as text. The lanes
        # in it are the ones met so far (see claim).
        self._lanes: dict[tuple[str | None, str | None], tuple[Lane, str] | _Invalid] = {}
        if region is not None:
            self._lanes[(region, None)] = self._default
        self._profile_regions: Mapping[str, str] | None = None  # read at the first need
        self._shape = _input_shape(service)
        from botocore.validate import ParamValidator

        self._param_validator = ParamValidator()
        self._plans: dict[str, _ColumnRule] = {}
        self._seen = _FirstSeen(expected_rows)
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
        that a
        run with another ``--region``/``--profile``, or a file whose columns were renamed or
        moved, never matches an earlier run's fingerprints.
        """
        return "\x1f".join(("bulk-row-1", self._default[1], *columns))

    def claim(self, name: object, row: int, region: object = None, profile: object = None) -> bool:
        """Note an unchanged, earlier-created row's name as :meth:`validate` would.

        For a row a resumed run skips without validating (its fingerprint matches a created
        record): ``True`` if ``row`` is the first with ``name`` in its lane, so that later
        rows still see the name as taken. ``False`` (nothing noted) if an earlier row has the
        name, or the lane is not one already met: then :meth:`validate` must decide the row.
        """
        if region is None and profile is None and self._region is not None:
            lane_key = self._default[1]
        else:
            key = _routing_key(region, profile)
            found = None if key is None else self._lanes.get(key)
            if not isinstance(found, tuple):
                return False
            lane_key = found[1]
        text = _as_text(name)
        if text is None:
            return False
        return self._seen.first(_key64(lane_key, text), row) == row

    def claim_many(
        self,
        names: Sequence[object],
        rows: Sequence[int],
        regions: Sequence[object] | None = None,
        profiles: Sequence[object] | None = None,
        *,
        unique: bool = False,
    ) -> list[int]:
        """:meth:`claim` for each row in turn; the indexes of the rows it returned False for.

        ``regions``/``profiles``: the rows' cells, or None for a file without the column.
        ``unique``: the caller knows that no two rows it ever passes with this flag share a
        name and lane (rows skipped as unchanged: each matches its name's latest record).
        Until a row is validated or claimed without it, such names are then only noted, and
        entered in the duplicate table when a later row needs it.
        """
        if (
            regions is None
            and profiles is None
            and self._region is not None
            and all(type(name) is str for name in names)
        ):
            lane_key = self._default[1]
            keys = [hash((lane_key, name)) for name in names]
            if self._seen.only_deferred and unique:
                self._seen.defer(keys, rows)
                return []
            return self._seen.first_rows(keys, rows)
        lost = []
        for i, (name, row) in enumerate(zip(names, rows, strict=True)):
            region = None if regions is None else regions[i]
            profile = None if profiles is None else profiles[i]
            if not self.claim(name, row, region, profile):
                lost.append(i)
        return lost

    def validate(self, record: InputRow) -> Row | Outcome:
        """Validate one record: a `Row` ready to send, or an ``invalid`` `Outcome`."""
        values = record.values
        problems: list[_Invalid] = []
        name, lane_found = self._name_and_lane(values, problems)
        lane, lane_key = lane_found or self._default
        if name is not None and lane_found is not None:
            first = self._seen.first(_key64(lane_key, name), record.number)
            if first != record.number:
                where = "" if lane == self.default_lane else f" in {lane}"
                problems.append(
                    _Invalid(
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
            if plan.convert is None:  # Region, Profile: read by _name_and_lane
                continue
            try:
                converted = plan.convert(value)
            except _Invalid as problem:
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
        problems.extend(_limit_problems(request, _limits(self.service)))
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
                functools.partial(_CONVERTERS[spec.kind], spec),
                spec.structure,
                spec.member or column,
                # botocore checks "min" by value: such values belong in the memo key.
                memo_value=spec.minimum is not None,
            )
        elif column.startswith(TAG_PREFIX) and "Tags" in self._shape.members:
            key = column[len(TAG_PREFIX) :]
            problem = tag_key_problem(key)
            plan = _ColumnRule(
                functools.partial(_tag_value, column),
                None,
                key,
                memo_value=self._tags_checked,
                problem=None
                if problem is None
                else _Invalid("InvalidTag", f"column {show(column)}: {problem}"),
            )
        else:
            hint = " or use --service sesv2" if column in columns_for("sesv2") else ""
            plan = _ColumnRule(
                problem=_Invalid(
                    "UnsupportedColumn",
                    f"column {show(column)}: {self.service} has no such field; "
                    f"remove the column{hint}",
                )
            )
        self._plans[column] = plan
        return plan

    # -- name and lane ------------------------------------------------------------------

    def _name_and_lane(
        self, values: Mapping[str, Any], problems: list[_Invalid]
    ) -> tuple[str | None, tuple[Lane, str] | None]:
        """The row's valid name (or None) and its lane (or None if its Region is bad)."""
        name: str | None = None
        raw = values.get(NAME_COLUMN)
        if raw is None:
            problems.append(
                _Invalid(
                    "MissingName",
                    f"column {NAME_COLUMN} is empty; every row needs a name ({_NAME_RULE})",
                )
            )
        else:
            text = _as_text(raw)
            if text is None or not _NAME_RE.fullmatch(text):
                problems.append(_Invalid("InvalidName", _name_problem(raw, text)))
            else:
                name = text
        region = values.get(REGION_COLUMN)
        profile = values.get(PROFILE_COLUMN)
        if region is None and profile is None and self._region is not None:
            return name, self._default
        found = self._route(region, profile)
        if isinstance(found, _Invalid):
            problems.append(found)
            return name, None
        return name, found

    def _route(self, region: object, profile: object) -> tuple[Lane, str] | _Invalid:
        """The lane of a row's Region and Profile cells (either may be None), or why none."""
        key = _routing_key(region, profile)
        found = None if key is None else self._lanes.get(key)
        if found is None:
            found = self._resolve(region, profile)
            if key is not None and len(self._lanes) < _LANE_CACHE_MAX - 1:
                self._lanes[key] = found
                if key[0] is None and isinstance(found, tuple):
                    # The same lane, named by its Region cell: met too.
                    self._lanes.setdefault((found[0].region, key[1]), found)
        return found

    def _resolve(self, region: object, profile: object) -> tuple[Lane, str] | _Invalid:
        """Its Region cell, else its profile's Region, else the run's (see bulk.input.regions)."""
        region_text = None if region is None else _as_text(region)
        profile_text = None if profile is None else _as_text(profile)
        if region is not None:
            problem = region_problem(region_text or "", known_only=self._known_only)
            if problem is not None:
                return _Invalid(
                    "InvalidRegion", f"column {REGION_COLUMN}: {show(region)} {problem}"
                )
        if profile is not None and profile_text is None:
            return _Invalid(
                "InvalidProfile", f"column {PROFILE_COLUMN}: {show(profile)} is not text"
            )
        lane_profile = self.default_lane.profile if profile_text is None else profile_text
        lane_region = region_text if region is not None else self._region
        if region is None and profile_text is not None:
            named = self._profile_region(profile_text)
            if named is not None:
                problem = region_problem(named, known_only=self._known_only)
                if problem is not None:
                    return _Invalid(
                        "InvalidRegion",
                        f"column {PROFILE_COLUMN}: profile {show(profile_text)} has region "
                        f"{show(named)}, which {problem}",
                    )
                lane_region = named
        if lane_region is None:
            return _Invalid(
                "NoRegion",
                f"no AWS Region for this row: fill the {REGION_COLUMN} cell, pass --region, "
                f"set AWS_REGION, or set region in profile {show(lane_profile or 'default')}",
            )
        lane = Lane(self.service, lane_region, lane_profile)
        return lane, _lane_key(lane)

    def _profile_region(self, profile: str) -> str | None:
        """The Region ``profile``'s config names; the config is read once per run."""
        if self._profile_regions is None:
            self._profile_regions = profile_regions()
        return self._profile_regions.get(profile)

    def _check_shape(self, request: dict[str, Any], form: list[object]) -> Iterator[_Invalid]:
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
        for kind, path, details in report._errors:
            yield _Invalid("ParamValidation", _param_problem(kind, path, details))


_ROUTING: Final = frozenset({NAME_COLUMN, REGION_COLUMN, PROFILE_COLUMN})


def _routing_key(region: object, profile: object) -> tuple[str | None, str | None] | None:
    """A row's Region and Profile cells as a lane-cache key; None if a cell is not text."""
    region_text = None if region is None else _as_text(region)
    profile_text = None if profile is None else _as_text(profile)
    if (region is not None and region_text is None) or (
        profile is not None and profile_text is None
    ):
        return None
    return region_text, profile_text


def _key64(lane_key: str, name: str) -> int:
    """The duplicate-table key of a name in a lane: Python's 64-bit hash of the pair.

    The table lives for one run, in one process, so the per-process hash seed does no harm;
    it costs a tenth of a cryptographic hash, which counts when a resume notes a million
    unchanged names.
    """
    return hash((lane_key, name)) & _MASK64


_MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF


def _raw_name(values: Mapping[str, Any]) -> str:
    raw = values.get(NAME_COLUMN)
    return "" if raw is None else str(raw)


def _as_text(value: object) -> str | None:
    """Text cells as they are; integers (a Parquet int column) as digits; others None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


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


def _tag_value(column: str, value: Any) -> str:
    text = _as_text(value)
    if text is None:
        raise _Invalid("InvalidTag", f"column {show(column)}: {show(value)} is not text")
    if len(text) > _TAG_VALUE_MAX:
        raise _Invalid(
            "InvalidTag",
            f"column {show(column)}: {show(text)} is {len(text)} characters; "
            "a tag value is at most 256",
        )
    if text[:4].lower() == "aws:":
        raise _Invalid(
            "InvalidTag",
            f"column {show(column)}: {show(text)} starts with 'aws:', which AWS reserves",
        )
    bad = _bad_tag_characters(text)
    if bad:
        raise _Invalid(
            "InvalidTag", f"column {show(column)}: {show(text)} contains {bad}; {_TAG_CHARS_RULE}"
        )
    return text


# -- converters: one per column kind; each returns the request value or raises _Invalid --


def _text(column: Column, value: Any) -> str:
    text = _as_text(value)
    if text is None:
        raise _Invalid("InvalidValue", f"column {column.name}: {show(value)} is not text")
    return text


def _enum(column: Column, value: Any) -> str:
    text = _as_text(value)
    if text is not None:
        if text in column.enum:
            return text
        # Case-insensitive: 'require' can only mean REQUIRE.
        for allowed in column.enum:
            if allowed.lower() == text.lower():
                return allowed
    raise _Invalid(
        "InvalidEnum",
        f"column {column.name}: {show(value)} is not one of {', '.join(column.enum)}",
    )


def _boolean(column: Column, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = value.lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Invalid(
        "InvalidBoolean",
        f"column {column.name}: {show(value)} is not a boolean ({_BOOLEAN_HINT})",
    )


def _timestamp(column: Column, value: Any) -> datetime:
    """ISO-8601 (a zone-less one is UTC) or epoch seconds, as an aware UTC datetime."""
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = _from_epoch(value)
        elif isinstance(value, str) and _EPOCH_RE.fullmatch(value):
            moment = _from_epoch(float(value) if "." in value else int(value))
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value)
        else:
            raise ValueError(value)
    except (ValueError, OverflowError, OSError):
        hint = "ISO-8601 like 2024-05-01T12:00:00Z, or epoch seconds"
        if isinstance(value, str | int | float) and _looks_like_milliseconds(value):
            hint = "epoch seconds, not milliseconds"
        raise _Invalid(
            "InvalidTimestamp", f"column {column.name}: {show(value)} is not a timestamp ({hint})"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(seconds)
    return datetime.fromtimestamp(seconds, UTC)


def _looks_like_milliseconds(value: str | float) -> bool:
    try:
        return abs(float(value)) >= 1e11
    except ValueError:
        return False


def _integer(column: Column, value: Any) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _INTEGER_RE.fullmatch(value)
    ):
        number = int(value)
    low = column.minimum
    high = column.maximum
    limits = f"{'' if low is None else low}-{'' if high is None else high}"
    if number is None:
        raise _Invalid(
            "InvalidNumber", f"column {column.name}: {show(value)} is not a whole number ({limits})"
        )
    if (low is not None and number < low) or (high is not None and number > high):
        raise _Invalid(
            "InvalidNumber", f"column {column.name}: {number} is out of range ({limits})"
        )
    return number


_CONVERTERS: Final = {
    "text": _text,
    "enum": _enum,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "integer": _integer,
}


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
