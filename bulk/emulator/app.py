"""The aiohttp application: AWS routes of both APIs, STS, and the ``/_emulator`` admin endpoints.

One call of an AWS operation goes through these steps, in order:

1. route: method and path from botocore's models; ``POST /`` is STS (query protocol);
2. counters: calls per operation, create attempts per configuration set name;
3. caller: the SigV4 credential scope's access key id and Region; the key's account (an
   expired or mismatched STS session is refused here);
4. throttle: a token bucket per (operation, account, Region); a throttled call gets a 429 and
   goes no further: no latency, no fault, nothing stored;
5. latency, then a fault roll (only for ``fault_operations``);
6. validation (model shapes, name rule): ``BadRequestException`` (STS: ``ValidationError``);
7. a plain fault answers 500 here, before anything is stored;
8. the operation itself (``operations``: one module per resource);
9. an ambiguous fault answers 500 or drops the connection after the operation took effect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bulk.emulator import sts
from bulk.emulator.accounts import Caller
from bulk.emulator.config import ASSUME_ROLE, CREATE, ConfigError, EmulatorConfig
from bulk.emulator.faults import Fault, FaultInjector
from bulk.emulator.operations import Call, run
from bulk.emulator.protocol import (
    Route,
    ServiceError,
    bad_request,
    concurrent_modification,
    gather_input,
    internal_failure,
    resolve,
    too_many_requests,
    validate,
    validation_error,
)
from bulk.emulator.state import EmulatorState, Scope
from bulk.emulator.throttle import Clock, Throttle

logger = logging.getLogger(__name__)

# Credential=KEY/DATE/REGION/SERVICE/aws4_request
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/,\s]*/([^/,\s]+)/[^/,\s]+/aws4_request")


class EmulatorRuntime:
    """Everything a running app shares: current config, state, throttle and fault generators.

    Thread-safe: ``configure``, ``reset`` and ``stats`` may be called from a test thread while
    the app serves on another thread's loop.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        *,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
    ) -> None:
        self._config = config
        self.state = state
        self._lock = threading.Lock()
        self.throttle = Throttle(*config.limits(), clock=clock or time.monotonic)
        self.faults = FaultInjector(config.seed)
        # Credentials expire by the wall clock: their Expiration is a date the client reads.
        self.wall_clock = wall_clock or time.time
        state.accounts.configure(config.default_account, config.key_accounts)

    @property
    def config(self) -> EmulatorConfig:
        """The settings in force now."""
        return self._config

    def configure(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Apply ``changes`` (field names of ``EmulatorConfig``) from now on; returns the result.

        Buckets keep their tokens (capped at a smaller burst); a new ``seed`` restarts the fault
        generators. Raises ``ConfigError`` and changes nothing when a value is bad.
        """
        with self._lock:
            config = self._config.replace(changes)
            self._config = config
            self.throttle.reconfigure(*config.limits())
            self.state.accounts.configure(config.default_account, config.key_accounts)
            if "seed" in changes:
                self.faults.reseed(config.seed)
            return config

    def caller(self, request: web.Request) -> tuple[Caller, str]:
        """Who signed ``request`` (by its access key id), and the Region it is signed for."""
        access_key, region, token = _signature(request)
        return self.state.accounts.identify(access_key, token, self.wall_clock()), region

    def reset(self) -> None:
        """Forget all sets and counters, refill every bucket, restart the fault generators.

        Credentials STS issued stay valid: a client holding them keeps its account.
        """
        with self._lock:
            self.state.reset()
            self.throttle.reset()
            self.faults.reseed(self._config.seed)

    def stats(self) -> dict[str, Any]:
        """Counters and settings; the body of ``GET /_emulator/stats``."""
        stats = self.state.stats()
        stats["config"] = self._config.as_dict()
        return stats


RUNTIME = web.AppKey("runtime", EmulatorRuntime)


def make_app(config: EmulatorConfig, state: EmulatorState | None = None) -> web.Application:
    """The emulator as an aiohttp application.

    Pass ``state`` from an earlier app to keep its configuration sets and counters (a restart).
    """
    return app_for(EmulatorRuntime(config, state if state is not None else EmulatorState()))


def app_for(runtime: EmulatorRuntime) -> web.Application:
    """The application serving ``runtime`` (``running_emulator`` keeps the runtime for itself)."""
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_post("/_emulator/reset", _reset)
    app.router.add_get("/_emulator/config", _get_config)
    app.router.add_post("/_emulator/config", _set_config)
    app.router.add_route("*", "/{tail:.*}", _aws)
    return app


# -- admin endpoints ---------------------------------------------------------------------------


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[RUNTIME].stats())


async def _reset(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    runtime.reset()
    return web.json_response(runtime.stats())


async def _get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[RUNTIME].config.as_dict())


async def _set_config(request: web.Request) -> web.Response:
    try:
        changes = json.loads(await request.read() or b"{}")
        if not isinstance(changes, dict):
            raise ConfigError(f"expected a JSON object of settings, got {changes!r}")
        config = request.app[RUNTIME].configure(changes)
    except (ValueError, TypeError) as exc:  # ConfigError and bad JSON are ValueErrors
        return web.json_response({"message": str(exc)}, status=400)
    return web.json_response(config.as_dict())


# -- AWS operations ----------------------------------------------------------------------------


async def _aws(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    if request.path == "/":  # no email API route is "/"; STS's query protocol posts there
        return await _sts(request, runtime)
    resolved = resolve(request.method, request.rel_url.raw_path)
    if resolved is None:
        error = ServiceError(
            404, "UnknownOperationException", f"No operation at {request.method} {request.path}"
        )
        return _error_response(runtime, error)
    route, labels = resolved
    raw_body = await request.read()
    try:
        return await _call(request, runtime, route, labels, raw_body)
    except ServiceError as error:
        return _error_response(runtime, error)
    except Exception:  # a bug here must still look like AWS to the client
        logger.exception("emulator failed on %s %s", request.method, request.path)
        return _error_response(runtime, internal_failure())


async def _call(
    request: web.Request,
    runtime: EmulatorRuntime,
    route: Route,
    labels: dict[str, str],
    raw_body: bytes,
) -> web.StreamResponse:
    state = runtime.state
    state.count_call(route.service, route.operation)
    body = _json_body(raw_body)
    caller, region = runtime.caller(request)
    scope = (caller.account, region)
    config = runtime.config
    admitted = _admit(runtime, route.operation, scope)
    if route.operation == CREATE:
        name = body.get("ConfigurationSetName") if isinstance(body, dict) else None
        state.count_create_attempt(name if isinstance(name, str) else "", accepted=admitted)
    if not admitted:
        raise too_many_requests()

    fault = await _roll(runtime, route.operation)
    if not isinstance(body, dict):
        raise bad_request("The request body is not a JSON object.")
    params = _params(route, labels, request, body)
    _fail_before(runtime, fault)

    output = run(Call(route, params, scope, state, config, now=runtime.wall_clock()))

    dropped = _fail_after(runtime, request, fault)
    return dropped or _json_response(output, 200)


async def _sts(request: web.Request, runtime: EmulatorRuntime) -> web.StreamResponse:
    try:
        form = sts.read_form(await request.read(), request.query)
        operation = sts.operation_of(form)
        runtime.state.count_call("sts", operation)
        return await _sts_call(request, runtime, operation, form)
    except ServiceError as error:
        return _sts_error_response(runtime, error)
    except Exception:  # a bug here must still look like AWS to the client
        logger.exception("emulator failed on STS %s %s", request.method, request.path)
        return _sts_error_response(runtime, internal_failure())


async def _sts_call(
    request: web.Request, runtime: EmulatorRuntime, operation: str, form: dict[str, str]
) -> web.StreamResponse:
    caller, region = runtime.caller(request)
    if operation == ASSUME_ROLE:
        runtime.state.count_assume_role(form.get("RoleArn", ""))
    # STS calls spend the caller's account's budget, in their own buckets.
    if not _admit(runtime, operation, (caller.account, region)):
        raise too_many_requests()
    fault = await _roll(runtime, operation)
    params = sts.params_of(operation, form)
    _fail_before(runtime, fault)
    if operation == ASSUME_ROLE:
        accounts = runtime.state.accounts
        now = runtime.wall_clock()
        output = sts.assume_role(caller, params, accounts, runtime.config, now)
    else:
        output = sts.get_caller_identity(caller)
    dropped = _fail_after(runtime, request, fault)
    return dropped or sts.response(operation, output)


def _admit(runtime: EmulatorRuntime, operation: str, scope: Scope) -> bool:
    """Whether the call gets past its bucket; counted per scope either way."""
    admitted = runtime.throttle.admit(operation, *scope)
    runtime.state.count_scoped(scope, operation, admitted=admitted)
    if not admitted:
        runtime.state.count_event("throttled")
    return admitted


async def _roll(runtime: EmulatorRuntime, operation: str) -> Fault:
    """Wait the latency and draw the fault of one call (none unless in ``fault_operations``)."""
    config = runtime.config
    if operation not in config.fault_operations:
        return Fault.NONE
    delay = runtime.faults.latency(config)
    if delay > 0:
        await asyncio.sleep(delay)
    return runtime.faults.roll(config)


def _fail_before(runtime: EmulatorRuntime, fault: Fault) -> None:
    """Raise a plain fault's 500: the operation is not run."""
    if fault.plain:
        runtime.state.count_event("faults")
        raise internal_failure() if fault is Fault.INTERNAL_FAILURE else concurrent_modification()


def _fail_after(
    runtime: EmulatorRuntime, request: web.Request, fault: Fault
) -> web.StreamResponse | None:
    """After the operation took effect: an ambiguous fault's 500 or dropped connection."""
    if not fault.ambiguous:
        return None
    runtime.state.count_event("ambiguous")
    if fault is Fault.AMBIGUOUS_DROP:
        runtime.state.count_event("dropped")
        return _drop(request)
    raise internal_failure()


def _params(
    route: Route, labels: dict[str, str], request: web.Request, body: dict[str, Any]
) -> dict[str, Any]:
    params = gather_input(route, labels, request.query, body)
    shape = route.model.input_shape
    problems = validate(params, shape) if shape is not None else []
    if problems:
        raise validation_error(problems)
    return params


def _json_body(raw: bytes) -> Any:
    """The decoded body; an empty body is ``{}``, undecodable JSON is ``None``."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _signature(request: web.Request) -> tuple[str, str, str | None]:
    """(access key id, Region, session token) of the SigV4 signature; it is not verified."""
    authorization = request.headers.get("Authorization", "")
    token = request.headers.get("X-Amz-Security-Token")
    credential = request.query.get("X-Amz-Credential")
    if credential is not None:  # a presigned URL
        authorization = f"Credential={credential}"
        token = request.query.get("X-Amz-Security-Token", token)
    if not authorization:
        raise ServiceError(
            403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        )
    match = _CREDENTIAL.search(authorization)
    if match is None:
        raise ServiceError(
            403,
            "IncompleteSignatureException",
            "Authorization header requires Credential=KEY/DATE/REGION/SERVICE/aws4_request.",
        )
    return match.group(1), match.group(2), token


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a reply: the client sees the server disconnect.

    aiohttp then fails to write the returned response to the closed transport and treats that
    as a client that went away (logged at debug level only).
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)


def _json_response(body: Mapping[str, Any], status: int) -> web.Response:
    response = web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )
    response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    return response


def _error_response(runtime: EmulatorRuntime, error: ServiceError) -> web.Response:
    runtime.state.count_error(error.code)
    response = _json_response({"message": error.message}, error.status)
    response.headers["x-amzn-ErrorType"] = error.code
    return response


def _sts_error_response(runtime: EmulatorRuntime, error: ServiceError) -> web.Response:
    response, code = sts.error_response(error)
    runtime.state.count_error(code)
    return response
