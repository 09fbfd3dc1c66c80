"""STS on the emulator's port: ``AssumeRole`` and ``GetCallerIdentity``, in the query protocol.

botocore's ``sts`` model uses the ``query`` protocol: a ``POST /`` with a form body
(``Action=AssumeRole&Version=2011-06-15&RoleArn=...``), answered with XML shaped by the
operation's output model (``<AssumeRoleResponse><AssumeRoleResult>...``), and errors as
``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.
Inputs are validated against the model (``ValidationError``) and outputs written from it.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import botocore.session
from aiohttp import web

from bulk.emulator.accounts import Accounts, Caller, Role
from bulk.emulator.config import STS_OPERATIONS, EmulatorConfig
from bulk.emulator.protocol import ServiceError, from_text, validate

# What AssumeRole grants when DurationSeconds is not given (AWS's default).
DEFAULT_LIFETIME = 3600

# The shared checks (authentication, throttle, faults) raise rest-json errors; STS says the
# same things with its own codes. Codes not listed here are the same in both.
_QUERY_ERRORS = {
    "TooManyRequestsException": ("Throttling", 400, "Rate exceeded"),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403, None),
    "IncompleteSignatureException": ("IncompleteSignature", 403, None),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403, None),
    "ExpiredTokenException": ("ExpiredToken", 400, None),
    "ConcurrentModificationException": ("InternalFailure", 500, None),
}


@functools.cache
def _model() -> Any:
    return botocore.session.get_session().get_service_model("sts")


def read_form(raw_body: bytes, query: Mapping[str, str]) -> dict[str, str]:
    """The request's parameters: the query string's, then the form body's over them."""
    form = dict(query)
    try:
        form.update(parse_qsl(raw_body.decode(), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise ServiceError(400, "MalformedQueryString", "The request body is not a form.") from None
    return form


def operation_of(form: Mapping[str, str]) -> str:
    """The ``Action`` of a request, if the emulator answers it (else ``InvalidAction``)."""
    action = form.get("Action", "")
    if action not in STS_OPERATIONS:
        raise ServiceError(
            400,
            "InvalidAction",
            f"Could not find operation {action!r} for version "
            f"{_model().metadata['apiVersion']}; the emulator answers {', '.join(STS_OPERATIONS)}.",
        )
    return action


def params_of(operation: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The operation's scalar input members from the form, checked against the model.

    List members (``Tags``, ``PolicyArns``) are accepted and ignored: nothing here uses them.
    """
    shape = _model().operation_model(operation).input_shape
    if shape is None:
        return {}
    params = {
        member: from_text(form[member], member_shape)
        for member, member_shape in shape.members.items()
        if member in form and member_shape.type_name not in ("structure", "list", "map")
    }
    problems = validate(params, shape)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise validation_error(f"{count} validation {noun} detected: " + "; ".join(problems))
    return params


def assume_role(
    caller: Caller,
    params: Mapping[str, Any],
    accounts: Accounts,
    config: EmulatorConfig,
    now: float,
) -> dict[str, Any]:
    """Issue credentials of the role ``RoleArn`` names, unless ``denied_roles`` refuses it."""
    role_arn = params["RoleArn"]
    role = Role.parse(role_arn)
    if role is None:
        raise validation_error(
            f"{role_arn!r} is not a role ARN: expected arn:aws:iam::ACCOUNT:role/NAME"
        )
    if role.arn in config.denied_roles or role.account in config.denied_roles:
        raise ServiceError(
            403,
            "AccessDenied",
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
            f"{role_arn}",
        )
    lifetime = params.get("DurationSeconds", DEFAULT_LIFETIME)
    if config.credential_lifetime is not None:
        lifetime = min(lifetime, config.credential_lifetime)
    session = accounts.issue(role, params["RoleSessionName"], lifetime, now)
    return {
        "Credentials": {
            "AccessKeyId": session.caller.access_key,
            "SecretAccessKey": session.secret_key,
            "SessionToken": session.token,
            "Expiration": session.expiration,
        },
        "AssumedRoleUser": {"AssumedRoleId": session.caller.user_id, "Arn": session.caller.arn},
    }


def get_caller_identity(caller: Caller) -> dict[str, Any]:
    """Who signed the request."""
    return {"UserId": caller.user_id, "Account": caller.account, "Arn": caller.arn}


def validation_error(message: str) -> ServiceError:
    return ServiceError(400, "ValidationError", message)


def response(operation: str, output: Mapping[str, Any]) -> web.Response:
    """``output`` as the XML answer botocore's model expects of ``operation``."""
    model = _model().operation_model(operation)
    shape = model.output_shape
    wrapper = shape.serialization.get("resultWrapper", f"{operation}Result")
    request_id = str(uuid.uuid4())
    body = (
        f'<{operation}Response xmlns="{_model().metadata["xmlNamespace"]}">'
        f"{_element(wrapper, output, shape)}"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{operation}Response>"
    )
    return _xml_response(body, 200, request_id)


def error_response(error: ServiceError) -> tuple[web.Response, str]:
    """The query protocol's XML error for ``error``, and the code it carries."""
    code, status, message = _QUERY_ERRORS.get(error.code, (error.code, error.status, None))
    request_id = str(uuid.uuid4())
    fault = "Sender" if status < 500 else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{_model().metadata["xmlNamespace"]}">'
        f"<Error><Type>{fault}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message or error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return _xml_response(body, status, request_id), code


def _element(name: str, value: Any, shape: Any) -> str:
    """``value`` as the XML element ``name`` of ``shape``; absent members are left out."""
    kind = shape.type_name
    if kind == "structure":
        inner = "".join(
            _element(member, value[member], member_shape)
            for member, member_shape in shape.members.items()
            if value.get(member) is not None
        )
    elif kind == "list":
        inner = "".join(_element("member", item, shape.member) for item in value)
    elif kind == "timestamp":
        inner = _iso8601(value)
    elif kind == "boolean":
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


def _iso8601(moment: datetime.datetime) -> str:
    """UTC with milliseconds, as ``2024-05-01T12:00:00.000Z``."""
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _xml_response(body: str, status: int, request_id: str) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/xml")
    response.headers["x-amzn-RequestId"] = request_id
    return response
