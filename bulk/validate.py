"""Per-row validation: a `Record` becomes a ready-to-send `Row` or an ``invalid`` `Outcome`.

Input columns are the API's member names. Which columns a service has, their types, enum
values and numeric limits all come from botocore's model of ``CreateConfigurationSet``; this
module only says where each column goes in the request (`OPTION_COLUMNS`). After the
columns are converted, botocore's own `ParamValidator` checks the request against the
operation's input shape, so a row that passes here is one botocore would send.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from bulk.errors import UsageError
from bulk.models import SERVICES, Lane, Outcome, Record, Row, Status

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
_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
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

    def claim(self, keys: Sequence[int], rows: Sequence[int]) -> list[int]:
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
class _Plan:
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
    ``Profile`` cells are empty (or absent). `validate` never raises for bad row data: every
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
        region: str,
        profile: str | None = None,
        expected_rows: int = 0,
    ) -> None:
        self.service = service
        self.columns = columns_for(service)
        if not _REGION_RE.fullmatch(region):
            raise UsageError(f"region {show(region)} is not a Region name like 'us-east-1'")
        self.default_lane = Lane(service, region, profile or None)
        self._default = (self.default_lane, _lane_key(self.default_lane))
        self._lanes: dict[tuple[str, str | None], tuple[Lane, str]] = {
            (region, profile or None): self._default
        }
        self._shape = _input_shape(service)
        from botocore.validate import ParamValidator

        self._param_validator = ParamValidator()
        self._plans: dict[str, _Plan] = {}
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

        Mixed into every row fingerprint (see :func:`bulk.plan.row_fingerprints`), so that a
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
        if region is None and profile is None:
            lane_key = self._default[1]
        else:
            region_text = self.default_lane.region if region is None else _as_text(region)
            profile_text = self.default_lane.profile if profile is None else _as_text(profile)
            found = self._lanes.get((region_text or "", profile_text))
            if found is None:
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
        if regions is None and profiles is None and all(type(name) is str for name in names):
            lane_key = self._default[1]
            keys = [hash((lane_key, name)) for name in names]
            if self._seen.only_deferred and unique:
                self._seen.defer(keys, rows)
                return []
            return self._seen.claim(keys, rows)
        lost = []
        for i, (name, row) in enumerate(zip(names, rows, strict=True)):
            region = None if regions is None else regions[i]
            profile = None if profiles is None else profiles[i]
            if not self.claim(name, row, region, profile):
                lost.append(i)
        return lost

    def validate(self, record: Record) -> Row | Outcome:
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

    def _plan(self, column: str) -> _Plan:
        """Work out (once) how to handle ``column``."""
        spec = self.columns.get(column)
        plan: _Plan
        if column in _ROUTING:
            plan = _Plan()
        elif spec is not None and spec.structure is not None:
            plan = _Plan(
                functools.partial(_CONVERTERS[spec.kind], spec),
                spec.structure,
                spec.member or column,
                # botocore checks "min" by value: such values belong in the memo key.
                memo_value=spec.minimum is not None,
            )
        elif column.startswith(TAG_PREFIX) and "Tags" in self._shape.members:
            key = column[len(TAG_PREFIX) :]
            problem = tag_key_problem(key)
            plan = _Plan(
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
            plan = _Plan(
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
        if region is None and profile is None:
            return name, self._default
        region_text = self.default_lane.region if region is None else _as_text(region)
        profile_text = self.default_lane.profile if profile is None else _as_text(profile)
        found = self._lanes.get((region_text or "", profile_text))
        if found is not None:
            return name, found
        if region_text is None or not _REGION_RE.fullmatch(region_text):
            problems.append(
                _Invalid(
                    "InvalidRegion",
                    f"column {REGION_COLUMN}: {show(region)} is not a Region name like 'us-east-1'",
                )
            )
            return name, None
        if profile is not None and profile_text is None:
            problems.append(
                _Invalid("InvalidProfile", f"column {PROFILE_COLUMN}: {show(profile)} is not text")
            )
            return name, None
        lane = Lane(self.service, region_text, profile_text)
        found = (lane, _lane_key(lane))
        if len(self._lanes) < _LANE_CACHE_MAX:
            self._lanes[(region_text, profile_text)] = found
        return name, found

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
