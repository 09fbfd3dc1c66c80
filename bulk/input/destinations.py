"""The ``EventDestinations`` column and ``--event-destinations FILE.json``.

Both hold a JSON array of event destinations, each as ``GetConfigurationSetEventDestinations``
returns one: ``Name`` plus the destination's members (``Enabled``, ``MatchingEventTypes``,
``SnsDestination``, ``CloudWatchDestination``, ... whatever the service's model has). Each item
becomes the ``CreateConfigurationSetEventDestination`` keyword arguments but the set's name,
``{"EventDestinationName": Name, "EventDestination": {...the rest...}}``, checked against that
operation's input shape by botocore's ParamValidator (with a placeholder set name), plus what
ParamValidator leaves out: enum values (any case, as in enum columns: ``bounce`` is
``BOUNCE``), the model's ``max``, the name rule, names unique within the array, and at most
`MAX_DESTINATIONS`. ``[]`` is none; an empty cell takes the file's destinations (see
:class:`~bulk.input.validate.Validator`), so ``[]`` in a cell is how a row opts out of them.

Every message names where (the column or the file), the destination (its Name, else its
position, counting from 1) and the member.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from bulk.errors import UsageError
from bulk.input.columns import DESTINATIONS_COLUMN, Problem, operation_shape, show
from bulk.input.convert import as_text
from bulk.input.names import NAME_RE, name_problem

__all__ = ["MAX_DESTINATIONS", "DestinationReader", "destination_reader", "load_event_destinations"]

# SES quota: 10 event destinations per configuration set (not adjustable).
MAX_DESTINATIONS: Final = 10
CODE: Final = "InvalidEventDestinations"
# The name rule of event destinations (SES API reference, EventDestination: "Contain only
# ASCII letters (a-z, A-Z), numbers (0-9), underscores (_), or dashes (-)", "64 characters or
# fewer"); the models give EventDestinationName no limits.
_NAME_RULE: Final = "an event destination name is 1-64 characters of A-Z a-z 0-9 _ -"
_PLACEHOLDER_SET: Final = "placeholder"
_NAME: Final = "Name"  # the item's member that is EventDestinationName in the create call
_CACHE_MAX: Final = 1024  # distinct cells remembered: files repeat a few arrays many times
_SHOWN_PROBLEMS: Final = 5
_JSON_TYPES: Final = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    type(None): "null",
}
# ParamValidator's valid_types, as str(type): the JSON that gives each.
_EXPECTED: Final = {
    str(str): "a string",
    str(bool): "true or false",
    str(int): "a whole number",
    str(float): "a number",
    str(dict): "an object",
    str(list): "an array",
}
_EXAMPLE: Final = '[{"Name": "to-sns", "MatchingEventTypes": ["BOUNCE"], "SnsDestination": {...}}]'


class DestinationReader:
    """Reads event destination arrays for one service (cells or the file).

    Results are remembered by text (bounded): the dictionaries in them are shared between
    the rows whose cells are alike, and must not be changed.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        create = operation_shape(service, "CreateConfigurationSetEventDestination")
        listed = operation_shape(service, "GetConfigurationSetEventDestinations", output=True)
        self._create = create
        self._definition = create.members["EventDestination"]
        item = listed.members["EventDestinations"].member
        self._members = tuple(item.members)
        self._required = tuple(item.required_members)
        from botocore.validate import ParamValidator

        self._param_validator = ParamValidator()
        # By cell text: its destinations, or the message of its problem (not the exception:
        # one raised again would keep the frames of every row it was raised for).
        self._cache: dict[str, tuple[dict[str, Any], ...] | str] = {}

    def cell(self, value: Any) -> tuple[dict[str, Any], ...]:
        """The destinations of an ``EventDestinations`` cell; raises `Problem`."""
        text = as_text(value)
        if text is None:
            raise Problem(CODE, f"column {DESTINATIONS_COLUMN}: {show(value)} is not JSON text")
        found = self._cache.get(text)
        if found is None:
            try:
                found = self.parse(text, f"column {DESTINATIONS_COLUMN}")
            except Problem as problem:
                found = problem.message
            if len(self._cache) < _CACHE_MAX:
                self._cache[text] = found
        if isinstance(found, str):
            raise Problem(CODE, found)
        return found

    def parse(self, text: str, where: str) -> tuple[dict[str, Any], ...]:
        """The destinations of a JSON array; raises `Problem`, each message after ``where``."""
        if not text.strip():
            raise Problem(CODE, f"{where}: empty; write a JSON array like {_EXAMPLE}, or []")
        try:
            items = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise Problem(
                CODE, f"{where}: not valid JSON: {exc}; write an array like {_EXAMPLE}"
            ) from None
        if not isinstance(items, list):
            raise Problem(
                CODE,
                f"{where}: {show(text)} is {_json_type(items)}, not an array; put the "
                "destinations in [ ]",
            )
        if len(items) > MAX_DESTINATIONS:
            raise Problem(
                CODE,
                f"{where}: {len(items)} destinations; a configuration set has at most "
                f"{MAX_DESTINATIONS}; remove {len(items) - MAX_DESTINATIONS}",
            )
        problems: list[str] = []
        seen: dict[str, int] = {}
        destinations: list[dict[str, Any]] = []
        for position, item in enumerate(items, 1):
            found = self._item(item, position, seen, problems)
            if found is not None:
                destinations.append(found)
        if problems:
            more = len(problems) - _SHOWN_PROBLEMS
            shown = problems[:_SHOWN_PROBLEMS] + ([f"and {more} more"] if more > 0 else [])
            raise Problem(CODE, f"{where}: {'; '.join(shown)}")
        return tuple(destinations)

    def _item(
        self, item: Any, position: int, seen: dict[str, int], problems: list[str]
    ) -> dict[str, Any] | None:
        """One array item as create arguments, or None with its problems added."""
        if not isinstance(item, dict):
            problems.append(
                f'item {position} is {_json_type(item)}, not an object like {{"Name": ...}}'
            )
            return None
        label = f"destination {position}"
        before = len(problems)
        name = item.get(_NAME)
        if isinstance(name, str) and NAME_RE.fullmatch(name):
            label = f"destination {show(name)}"
            if name in seen:
                problems.append(
                    f"{label} appears twice (items {seen[name]} and {position}); "
                    "names are unique within a configuration set: rename one"
                )
            seen.setdefault(name, position)
        elif name is not None:
            text = name if isinstance(name, str) else None
            problems.append(name_problem(f"{label}: {_NAME}", name, text, _NAME_RULE))
        for required in self._required:
            if item.get(required) is None:
                problems.append(f"{label} has no {required}; give every destination one")
        for member in item:
            if member not in self._members:
                problems.append(
                    f"{label}: unknown member {show(member)}{_suggest(member, self._members)}; "
                    f"members are {', '.join(self._members)}"
                )
        if len(problems) > before:
            return None
        rest = {key: value for key, value in item.items() if key != _NAME}
        rest = _normalised(rest, self._definition, (), label, problems)
        arguments = {"EventDestinationName": name, "EventDestination": rest}
        report = self._param_validator.validate(
            {"ConfigurationSetName": _PLACEHOLDER_SET, **arguments}, self._create
        )
        if report.has_errors():
            # See Validator._check_shape: the report's (kind, path, details) tuples, pinned
            # by tests/test_dependencies.py.
            for kind, path, details in report._errors:
                problems.append(f"{label}: {_param_problem(kind, path, details)}")
        return None if len(problems) > before else arguments


def _normalised(
    value: Any, shape: Any, path: tuple[str, ...], label: str, problems: list[str]
) -> Any:
    """``value`` with enum values in the model's case; enum and ``max`` problems added.

    Types are ParamValidator's to check: a value of the wrong type is returned as it is.
    """
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {
            key: _normalised(each, shape.members[key], (*path, key), label, problems)
            if key in shape.members
            else each
            for key, each in value.items()
        }
    at = _member_path(path)
    high = shape.metadata.get("max")
    if kind == "list" and isinstance(value, list):
        if high is not None and len(value) > high:
            problems.append(f"{label}: {at} has {len(value)} items; at most {high}")
        return [
            _normalised(each, shape.member, (*path, f"[{i}]"), label, problems)
            for i, each in enumerate(value, 1)
        ]
    if kind == "string" and isinstance(value, str):
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            for allowed in enum:
                if allowed.lower() == value.lower():
                    return allowed
            problems.append(f"{label}: {at}: {show(value)} is not one of {', '.join(enum)}")
        elif high is not None and len(value) > high:
            problems.append(f"{label}: {at}: {show(value)} is longer than {high} characters")
    elif (
        kind in ("integer", "long", "float", "double")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and high is not None
        and value > high
    ):
        problems.append(f"{label}: {at}: {value} is above {high}")
    return value


def _member_path(path: tuple[str, ...]) -> str:
    """Member names joined as the item spells them: ``A.B[1].C`` (list positions from 1)."""
    return "".join(
        step if step.startswith("[") or not i else f".{step}" for i, step in enumerate(path)
    )


def _param_problem(kind: str, path: str, details: Mapping[str, Any]) -> str:
    """One ParamValidator error about a destination, in the item's terms."""
    steps = _item_path(path)
    at = _member_path(steps)
    if kind == "missing required field":
        inside = f"{at}." if at else ""
        return f"{inside}{details.get('required_name')} is missing; it is required"
    if kind == "unknown field":
        names = ", ".join(str(each) for each in details.get("valid_names", ()))
        unknown = str(details.get("unknown_param"))
        return (
            f"{at}: unknown member {show(unknown)}{_suggest(unknown, names.split(', '))}; "
            f"members are {names}"
        )
    if kind == "invalid type":
        expected = [_EXPECTED.get(each) for each in details.get("valid_types", ())]
        words = " or ".join(dict.fromkeys(each for each in expected if each)) or "another type"
        return f"{at}: {show(details.get('param'))} has the wrong type; give {words}"
    if kind == "invalid length":
        # ParamValidator's "param" here is the length, not the value.
        least = details.get("min_allowed")
        return f"{at} is too short: {details.get('param')} long, at least {least}"
    if kind == "invalid range":
        return f"{at}: {show(details.get('param'))} is below {details.get('min_allowed')}"
    return f"{at or 'the destination'}: {kind}"


def _item_path(path: str) -> tuple[str, ...]:
    """A ParamValidator path (``.EventDestination.X[0].Y``) as the item's member steps."""
    steps: list[str] = []
    for part in path.strip(".").split("."):
        name, bracket, rest = part.partition("[")
        if name:
            steps.append(name)
        while bracket:  # [0][1]... : positions from 1
            index, _, rest = rest.partition("]")
            steps.append(f"[{int(index) + 1}]")
            _, bracket, rest = rest.partition("[")
    if steps[:1] == ["EventDestinationName"]:
        return (_NAME, *steps[1:])
    return tuple(steps[1:]) if steps[:1] == ["EventDestination"] else tuple(steps)


def _json_type(value: Any) -> str:
    return f"{_JSON_TYPES.get(type(value), type(value).__name__)}"


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


@functools.cache
def destination_reader(service: str) -> DestinationReader:
    """The `DestinationReader` of ``service`` (one per process: its cache is by text)."""
    return DestinationReader(service)


def load_event_destinations(path: Path | None, service: str) -> tuple[dict[str, Any], ...]:
    """The destinations of ``--event-destinations FILE.json`` (none for None).

    Raises `UsageError` with one line naming the file and the problem: missing, unreadable,
    not UTF-8, not JSON, or a bad destination. For the engine to call before anything is
    sent, and to pass to :class:`~bulk.input.validate.Validator` as ``default_destinations``.
    """
    if path is None:
        return ()
    where = f"--event-destinations {path}"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{where}: no such file; check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory; give the path of a .json file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it: {exc.strerror}") from None
    try:
        return DestinationReader(service).parse(text, where)
    except Problem as problem:
        raise UsageError(problem.message) from None
