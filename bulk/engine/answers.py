"""What an answer means: every outcome of one call, classified into a :class:`CallKind`.

The retry policy and the engine decide from the kind alone, never from exception types; the
same classification holds for every operation of both APIs (and for STS when a role is
assumed).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)

__all__ = [
    "MAYBE_DONE",
    "CallKind",
    "CallResult",
    "classify_client_error",
    "classify_exception",
    "foreign_answer",
]


class CallKind(enum.Enum):
    """What one attempt's answer means for the row and for the run."""

    OK = "ok"  # 200: created by this attempt
    EXISTS = "exists"  # AlreadyExistsException
    BAD_REQUEST = "bad_request"  # BadRequestException and other 4xx the row caused
    NOT_FOUND = "not_found"  # NotFoundException: permanent
    QUOTA = "quota"  # LimitExceededException: the account's quota of sets is used up
    THROTTLED = "throttled"  # 429: not processed, retry after slowing down
    UNSENT = "unsent"  # connection refused / connect timeout: the request never left
    AMBIGUOUS = "ambiguous"  # 5xx, read timeout, dropped connection: may have been created
    AUTH = "auth"  # credentials or permission: systemic, no row can succeed
    # An answer that is not the service's (no request id, not JSON, not the operation's
    # output): a proxy, a captive portal, the wrong port. It may have reached the service.
    FOREIGN = "foreign"

    @property
    def retryable(self) -> bool:
        """True when another attempt at the same row can succeed."""
        return self in _RETRYABLE


_RETRYABLE = frozenset({CallKind.THROTTLED, CallKind.UNSENT, CallKind.AMBIGUOUS, CallKind.FOREIGN})

# The kinds after which the service may hold what the call asked for.
MAYBE_DONE = frozenset({CallKind.AMBIGUOUS, CallKind.FOREIGN})

# Error codes that say the caller, not the row, is wrong. 403 answers carry several codes.
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "IncompleteSignature",
        "AuthFailure",
    }
)


@dataclass(frozen=True)
class CallResult:
    """The classified answer to one attempt."""

    kind: CallKind
    code: str | None = None
    message: str = ""
    http_status: int | None = None
    request_id: str | None = None
    latency_ms: float = 0.0
    # For OK: the operation's output as botocore parsed it, without ResponseMetadata.
    data: Mapping[str, Any] = field(default_factory=dict)


def foreign_answer(meta: Mapping[str, Any]) -> str | None:
    """Why an HTTP answer is not the service's own, or None when it is.

    Every answer of both APIs, success or error, carries an ``x-amzn-RequestId`` header
    (botocore's ``RequestId``) and a JSON body; a proxy's or a portal's page has neither.
    """
    status = meta.get("HTTPStatusCode")
    headers = meta.get("HTTPHeaders") or {}
    content_type = str(headers.get("content-type") or "no content type").split(";")[0]
    if not meta.get("RequestId"):
        return f"HTTP {status} ({content_type}) without a request id is not the service's answer"
    if "json" not in content_type:
        return f"HTTP {status} ({content_type}) is not the service's JSON answer"
    return None


def classify_client_error(error: ClientError) -> CallResult:
    """Map a modeled or unmodeled service error to a :class:`CallKind`."""
    err = error.response.get("Error", {})
    meta = error.response.get("ResponseMetadata", {})
    code = str(err.get("Code") or "Unknown")
    message = str(err.get("Message") or "")
    status = meta.get("HTTPStatusCode")
    request_id = meta.get("RequestId")
    foreign = foreign_answer(meta)
    if foreign is not None and status != 429:
        # A 429 means "slow down" whoever says it; anything else not from the service
        # says nothing about the row, and the request may have reached the service.
        return CallResult(CallKind.FOREIGN, f"HTTP{status}", foreign, status)
    if code == "AlreadyExistsException":
        kind = CallKind.EXISTS
    elif code == "LimitExceededException":
        # botocore calls this a throttling error; for this API it is the quota of sets.
        kind = CallKind.QUOTA
    elif code in ("TooManyRequestsException", "ThrottlingException") or status == 429:
        kind = CallKind.THROTTLED
    elif code == "NotFoundException":
        kind = CallKind.NOT_FOUND
    elif code in _AUTH_CODES or status in (401, 403):
        kind = CallKind.AUTH
    elif status is not None and status >= 500:
        # Includes ConcurrentModificationException (500) and InternalFailure: the service
        # may or may not have stored the set before failing.
        kind = CallKind.AMBIGUOUS
    else:
        kind = CallKind.BAD_REQUEST
    return CallResult(kind, code, message, status, request_id)


def classify_exception(error: BaseException) -> CallResult | None:
    """Map a transport-level failure to a :class:`CallKind`; ``None`` if it is not one."""
    if isinstance(error, ClientError):
        return classify_client_error(error)
    if isinstance(error, SSLError):
        # The TLS handshake failed: the request was never sent.
        return CallResult(
            CallKind.UNSENT,
            "SSLError",
            f"TLS handshake failed ({error}); if the endpoint speaks plain HTTP, use http://",
        )
    if isinstance(error, ConnectTimeoutError):
        return CallResult(CallKind.UNSENT, "ConnectTimeout", str(error))
    if isinstance(error, EndpointConnectionError):
        # A refused connect never carried the request; anything else (a reset after
        # sending) might have.
        inner = getattr(error, "kwargs", {}).get("error")
        unsent = inner is None or isinstance(inner, aiohttp.ClientConnectorError)
        kind = CallKind.UNSENT if unsent else CallKind.AMBIGUOUS
        return CallResult(kind, "EndpointConnectionError", str(error))
    if isinstance(error, ReadTimeoutError):
        return CallResult(CallKind.AMBIGUOUS, "ReadTimeout", str(error))
    if isinstance(error, ConnectionClosedError | HTTPClientError):
        return CallResult(CallKind.AMBIGUOUS, "ConnectionClosed", str(error))
    if isinstance(error, TimeoutError):
        return CallResult(CallKind.AMBIGUOUS, "Timeout", "the call timed out")
    return None
