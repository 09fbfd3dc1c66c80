"""The wire protocol, taken from botocore's service models: routes, inputs, outputs and errors.

Both APIs are ``rest-json``: members travel in the URI, the query string or a JSON body, as
each member's ``location`` says; errors are an HTTP status, an ``x-amzn-ErrorType`` header and a
JSON ``message``, which botocore turns into the operation's modeled exceptions. STS speaks the
``query`` protocol instead (``sts.py``); it shares the validation and ``ServiceError`` here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.session

from bulk.emulator.config import OPERATIONS
from bulk.models import SERVICES

# ConfigurationSetName, TenantName and EventDestinationName have no pattern in the models; the
# service documents this rule for each of them.
NAME_RULE = re.compile(r"[A-Za-z0-9_-]{1,64}")
NAME_RULE_TEXT = "1 to 64 characters of A-Z a-z 0-9 _ -"


class ServiceError(Exception):
    """An error reply: HTTP ``status``, error ``code`` (``x-amzn-ErrorType``) and ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str) -> ServiceError:
    return ServiceError(400, "BadRequestException", message)


def not_found(name: str, what: str = "Configuration set") -> ServiceError:
    return ServiceError(404, "NotFoundException", f"{what} <{name}> does not exist.")


def already_exists(name: str, what: str = "Configuration set") -> ServiceError:
    return ServiceError(400, "AlreadyExistsException", f"{what} <{name}> already exists.")


def limit_exceeded(max_sets: int) -> ServiceError:
    return ServiceError(
        400,
        "LimitExceededException",
        f"Maximum number of configuration sets ({max_sets}) reached for this account and Region.",
    )


def too_many_requests() -> ServiceError:
    return ServiceError(429, "TooManyRequestsException", "Too Many Requests")


def internal_failure() -> ServiceError:
    return ServiceError(500, "InternalFailure", "An internal failure occurred. Try again.")


def concurrent_modification() -> ServiceError:
    return ServiceError(
        500,
        "ConcurrentModificationException",
        "The resource is being modified by another operation or thread.",
    )


@dataclass(frozen=True)
class Route:
    """One operation of one service: its HTTP method, its path pattern and its botocore model."""

    service: str
    operation: str
    method: str
    pattern: re.Pattern[str]
    model: Any  # botocore.model.OperationModel
    body_in_query: bool = False  # body members travel in the query string (a legacy route)


# Older botocore releases (and the clients built on them) list SES v2 configuration sets with
# ``GET /v2/email/configuration-sets?NextToken=..&PageSize=..``; the service still answers it.
LEGACY_ROUTES = (("sesv2", "ListConfigurationSets", "GET", "/v2/email/configuration-sets"),)


@functools.cache
def routes() -> tuple[Route, ...]:
    """Every supported (service, operation), with the method and path of its model."""
    session = botocore.session.get_session()
    table = []
    for service in SERVICES:
        service_model = session.get_service_model(service)
        for operation in OPERATIONS:
            if operation not in service_model.operation_names:
                continue  # pinpoint-email has no tenants
            model = service_model.operation_model(operation)
            http = model.http
            table.append(
                Route(
                    service,
                    operation,
                    http["method"],
                    _path_pattern(http["requestUri"]),
                    model,
                )
            )
    for service, operation, method, path in LEGACY_ROUTES:
        model = session.get_service_model(service).operation_model(operation)
        table.append(Route(service, operation, method, _path_pattern(path), model, True))
    return tuple(table)


def resolve(method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """The route of a request and its decoded URI labels, or ``None`` for an unknown request."""
    for route in routes():
        if route.method != method:
            continue
        match = route.pattern.fullmatch(raw_path)
        if match is not None:
            return route, {key: unquote(value) for key, value in match.groupdict().items()}
    return None


def _path_pattern(request_uri: str) -> re.Pattern[str]:
    """``/v2/email/configuration-sets/{ConfigurationSetName}`` as a regex on the raw path."""
    path = request_uri.split("?", 1)[0]
    parts = re.split(r"(\{[^}]+\})", path)
    regex = []
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            label = part[1:-1]
            greedy = label.endswith("+")
            label = label.rstrip("+")
            regex.append(f"(?P<{label}>{'.+' if greedy else '[^/]+'})")
        else:
            regex.append(re.escape(part))
    return re.compile("".join(regex))


def gather_input(
    route: Route,
    labels: Mapping[str, str],
    query: Mapping[str, str],
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """The operation's input members, each read from where its model says it travels.

    A list member in the query string is the key repeated (``TagKeys=a&TagKeys=b``), when
    ``query`` is a multi-mapping (aiohttp's ``request.query``).
    """
    shape = route.model.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire_name = member_shape.serialization.get("name", member)
        if location == "uri":
            if wire_name in labels:
                params[member] = labels[wire_name]
        elif location == "querystring" or (location is None and route.body_in_query):
            if wire_name not in query:
                continue
            if member_shape.type_name == "list":
                # aiohttp's query is a multidict: a repeated key (TagKeys=a&TagKeys=b) is a list.
                getall = getattr(query, "getall", None)
                values = getall(wire_name) if getall is not None else [query[wire_name]]
                params[member] = [from_text(value, member_shape.member) for value in values]
            else:
                params[member] = from_text(query[wire_name], member_shape)
        elif location is None and body.get(member) is not None:
            params[member] = body[member]
    return params


def from_text(text: str, shape: Any) -> Any:
    """A query-string value as its modeled type; left as text when it does not parse."""
    if shape.type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if shape.type_name == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def validate(value: Any, shape: Any, path: str = "") -> list[str]:
    """Every way ``value`` (decoded JSON) breaks ``shape``, as AWS words validation errors."""
    if value is None:
        return []
    kind = shape.type_name
    at = path or shape.name
    if kind == "structure":
        if not isinstance(value, dict):
            return [_constraint(value, at, "Member must be a structure")]
        problems = []
        for member in shape.required_members:
            if value.get(member) is None:
                problems.append(_constraint(None, _join(path, member), "Member must not be null"))
        for member, member_shape in shape.members.items():
            problems += validate(value.get(member), member_shape, _join(path, member))
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [_constraint(value, at, "Member must be a list")]
        problems = _length(value, shape, at)
        for index, item in enumerate(value):
            problems += validate(item, shape.member, f"{at}.{index + 1}.member")
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [_constraint(value, at, "Member must be a map")]
        problems = _length(value, shape, at)
        for key, item in value.items():
            problems += validate(key, shape.key, f"{at}.key")
            problems += validate(item, shape.value, f"{at}.{key}")
        return problems
    return _scalar(value, shape, at)


def _scalar(value: Any, shape: Any, at: str) -> list[str]:
    kind = shape.type_name
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        if not isinstance(value, str):
            return [_constraint(value, at, "Member must be a string")]
        enum = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            allowed = ", ".join(enum)
            return [_constraint(value, at, f"Member must satisfy enum value set: [{allowed}]")]
        problems = _length(value, shape, at)
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            rule = f"Member must satisfy regular expression pattern: {pattern}"
            problems.append(_constraint(value, at, rule))
        return problems
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [_constraint(value, at, "Member must be an integer")]
        return _range(value, shape, at)
    if kind in ("float", "double"):
        return [] if number else [_constraint(value, at, "Member must be a number")]
    if kind == "boolean":
        return (
            [] if isinstance(value, bool) else [_constraint(value, at, "Member must be a boolean")]
        )
    if kind == "timestamp":
        ok = number or isinstance(value, str)
        return [] if ok else [_constraint(value, at, "Member must be a timestamp")]
    return [] if isinstance(value, str) else [_constraint(value, at, f"Member must be a {kind}")]


def _length(value: Any, shape: Any, at: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    size = len(value)
    if low is not None and size < low:
        return [_constraint(value, at, f"Member must have length greater than or equal to {low}")]
    if high is not None and size > high:
        return [_constraint(value, at, f"Member must have length less than or equal to {high}")]
    return []


def _range(value: int, shape: Any, at: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        return [_constraint(value, at, f"Member must have value greater than or equal to {low}")]
    if high is not None and value > high:
        return [_constraint(value, at, f"Member must have value less than or equal to {high}")]
    return []


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: the emulator does not enforce that pattern
        return None


def _matches(pattern: str, value: str) -> bool:
    regex = _compiled(pattern)
    return regex is None or regex.search(value) is not None


def _constraint(value: Any, at: str, rule: str) -> str:
    return f"Value {value!r} at '{at}' failed to satisfy constraint: {rule}"


def _join(path: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{path}.{name}" if path else name


def validation_error(problems: list[str]) -> ServiceError:
    """One ``BadRequestException`` for all the problems found, as AWS reports them."""
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return bad_request(f"{count} validation {noun} detected: " + "; ".join(problems))


def check_name(name: Any, what: str = "configuration set") -> str:
    """``name`` if it follows the service's naming rule, else a ``BadRequestException``."""
    if not isinstance(name, str) or NAME_RULE.fullmatch(name) is None:
        raise bad_request(f"Invalid {what} name {name!r}: use {NAME_RULE_TEXT}.")
    return name


def project(value: Any, shape: Any) -> Any:
    """``value`` cut down to the members ``shape`` has, recursively (the modeled output)."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for member, member_shape in shape.members.items():
            projected = project(value.get(member), member_shape)
            if projected is not None:
                out[member] = projected
        return out
    if kind == "list" and isinstance(value, list):
        return [project(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: project(item, shape.value) for key, item in value.items()}
    return value
