"""The ledger's line format: what each kind of line says, written out and read back.

A ledger is JSONL, one object per line (DESIGN.md, "Ledger")::

    {"kind":"run","run_id":"…","time":"…","bulk":"0.1.0","pid":…,"input":"tenants.csv",
     "target":{"service":"sesv2","region":"eu-west-1","profile":null,"endpoint":null},
     "fingerprints":"xxhash64-v1","settings":{…}}
    {"row":1,"name":"acme","status":"created","code":null,"message":"","attempts":1,
     "lane":"sesv2/default/eu-west-1","latency_ms":41.2,"request_id":"…","time":"…",
     "digest":"…","cells":"…"}
    {"row":2,"name":"globex","status":"created",…,"steps":{"tenants":{"globex":"created"},
     "set":"created","destinations":["bounces"],"associations":["globex"]}}
    {"kind":"rate","lane":"sesv2/default/eu-west-1","rate":0.97,"time":"…"}
    {"kind":"end","run_id":"…","time":"…",…summary…}

This module owns the shape of those lines and nothing about files: a row record
(:func:`record_to_json`; it has a ``status`` and no ``kind``), a run header
(:func:`header_to_json`, its settings cleaned by :func:`redact_settings`; read back by
:func:`parse_run_header` into the :class:`RunHeader` a ledger is bound to), the rate and end
records, the constants of the format (:data:`ROW_LIMIT`, :data:`STATUS_VALUES`,
:data:`FINGERPRINTS`), and :class:`Prior`, a row record as the resume index gives it back.

A row with tenants or event destinations has ``steps`` in its record: what each step of its
chain did (the format is :mod:`bulk.engine.chain`'s).

A row record's ``cells`` is the fingerprint of the input row it was made from (16 hex
digits; see :func:`bulk.engine.intake.row_fingerprints`), made with the scheme its run header
names in ``fingerprints``. A resume trusts only fingerprints of the scheme it makes itself
(:data:`FINGERPRINTS`): a run header without the field was written before schemes were
recorded, when fingerprints were polars' own hash, which polars does not keep stable across
its versions. A record with ``"restated": true`` says again what an earlier record said of
its row, with the row's fingerprint in this scheme; no call was made for it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bulk.models import Destination, Lane, Outcome, Row, Status, bulk_version, redact_url

__all__ = [
    "FINGERPRINTS",
    "INTENT_CODE",
    "ROW_LIMIT",
    "STATUS_VALUES",
    "Prior",
    "RunHeader",
    "end_to_json",
    "header_to_json",
    "intent_to_json",
    "parse_run_header",
    "rate_key",
    "rate_to_json",
    "record_to_json",
    "redact_settings",
    "timestamp",
]

#: Row numbers are in ``[0, ROW_LIMIT)``: the resume index keeps each as a ``uint32``.
ROW_LIMIT: Final = 1 << 32
#: The ``status`` values a row record may have.
STATUS_VALUES: Final = tuple(status.value for status in Status)
#: The scheme of the row fingerprints (``cells``) this version makes, named in each run
#: header: xxHash64, seed 0x62756C6B, of the row's canonical text (defined, and computed, by
#: :func:`bulk.engine.intake.row_fingerprints`). Another algorithm or text is another name.
FINGERPRINTS: Final = "xxhash64-v1"

# Keys an Outcome's ``extra`` cannot override: a row record is recognised by having a status
# and no kind.
_ROW_KEYS = frozenset(
    {"row", "name", "status", "code", "message", "attempts", "lane", "latency_ms"}
    | {"request_id", "time", "digest", "cells", "kind", "restated"}
)
_SECRET_KEY = re.compile(
    r"secret|token|passw|pwd|credential|access.?key|api.?key|private.?key|session|auth",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


@dataclass(frozen=True)
class RunHeader:
    """The identity a run header binds its ledger to: input file name and target."""

    input: str
    target: Destination


@dataclass(frozen=True, slots=True)
class Prior:
    """What an earlier run recorded for one (lane, name): a row record, as the resume index
    answers it (:meth:`~bulk.ledger.index.ResumeIndex.get`) and the resume rules judge it.

    ``ambiguous`` is true on a ``failed`` record when an attempt may have created the
    configuration set without the run learning it (timeout, 5xx, dropped connection): an
    ``AlreadyExists`` answer on a resumed run then means ``created``, not ``exists``.
    ``fingerprinted`` is true when the record carries a fingerprint of the current scheme
    (:data:`FINGERPRINTS`); a settled row whose record does not is restated with one when a
    resume finds it unchanged, so that the next resume skips it unread.
    """

    row: int
    status: Status
    digest: str
    code: str | None = None
    ambiguous: bool = False
    fingerprinted: bool = False


def record_to_json(outcome: Outcome, time: str | None = None) -> str:
    """The ledger line for ``outcome``, without its newline; ``time`` defaults to now.

    ``extra`` is merged in after the standard fields, which it cannot override. Raises
    ``TypeError``/``ValueError`` for an outcome the ledger could not read back.
    """
    if not isinstance(outcome.name, str) or not isinstance(outcome.digest, str):
        raise TypeError(f"an outcome's name and digest must be strings: {outcome!r}")
    if not 0 <= outcome.row < ROW_LIMIT:
        raise ValueError(f"an outcome's row must be in [0, {ROW_LIMIT}): {outcome!r}")
    latency = outcome.latency_ms
    record: dict[str, Any] = {
        "row": outcome.row,
        "name": outcome.name,
        "status": Status(outcome.status).value,
        "code": outcome.code,
        "message": outcome.message,
        "attempts": outcome.attempts,
        "lane": str(outcome.lane),
        "latency_ms": None if latency is None else round(latency, 2),
        "request_id": outcome.request_id,
        "time": time or timestamp(),
        "digest": outcome.digest,
    }
    if outcome.fingerprint is not None:
        record["cells"] = f"{outcome.fingerprint:016x}"
    if outcome.restated:
        record["restated"] = True
    for key, value in outcome.extra.items():
        if key not in _ROW_KEYS:
            record[key] = value
    return _dumps(record)


# The code a resume gives a row whose intent line has no record after it: the process ended
# (a crash, kill -9) with the row's call in flight, so the service may have done it.
INTENT_CODE = "Interrupted"


def intent_to_json(row: Row, time: str | None = None, op: str | None = None) -> str:
    """The intent line written before ``row``'s first call whose outcome the ledger does not
    hold yet; ``time`` defaults to now.

    Until a record of the row follows it, a resume reads it as an ambiguous ``failed``
    record (code :data:`INTENT_CODE`): the call may have gone through, so ``AlreadyExists``
    is then the row's own doing. ``op`` names a call that is not the row's create
    (``delete``: a rollback's), for the history (:mod:`bulk.ledger.history`); a resume reads
    it the same way.
    """
    if not 0 <= row.number < ROW_LIMIT:
        raise ValueError(f"a row's number must be in [0, {ROW_LIMIT}): {row.number}")
    record = {
        "kind": "intent",
        "row": row.number,
        "name": row.name,
        "lane": str(row.lane),
        "digest": row.digest,
        "time": time or timestamp(),
    }
    if op is not None:
        record["op"] = op
    return _dumps(record)


def header_to_json(
    run_id: str, input_name: str, target: Destination, settings: Mapping[str, Any]
) -> str:
    """The run header line: this process, the input file's name (not its directory), the
    target (endpoint credentials removed), the scheme of the run's row fingerprints
    (:data:`FINGERPRINTS`) and ``settings`` (see :func:`redact_settings`)."""
    return _dumps(
        {
            "kind": "run",
            "run_id": run_id,
            "time": timestamp(),
            "bulk": bulk_version(),
            "pid": os.getpid(),
            "input": os.path.basename(input_name),
            "target": {
                "service": target.service,
                "region": target.region,
                "profile": target.profile,
                "endpoint": redact_url(target.endpoint),
                "role_arn": target.role_arn,
            },
            "fingerprints": FINGERPRINTS,
            "settings": redact_settings(settings),
        }
    )


def parse_run_header(record: Mapping[str, Any]) -> RunHeader | str:
    """The :class:`RunHeader` of a ``kind: "run"`` record, or why it is not a valid one."""
    source, target = record.get("input"), record.get("target")
    if not isinstance(source, str):
        return "run header without 'input'"
    if not isinstance(target, dict):
        return "run header without 'target'"
    # role_arn: absent from the headers of runs before --role-arn existed.
    keys = ("service", "region", "profile", "endpoint", "role_arn")
    fields = {key: target.get(key) for key in keys}
    if not all(isinstance(value, str) or value is None for value in fields.values()):
        return "run header with a malformed 'target'"
    service, region = fields.pop("service"), fields.pop("region")
    if service is None or region is None:
        return "run header without a target service and region"
    return RunHeader(input=source, target=Destination(service, region, **fields))


def rate_to_json(lane: Lane, rate: float, operation: str | None = None) -> str:
    """The line recording the adaptive limiter's learned ``rate`` for ``lane``'s ``operation``
    (None: ``CreateConfigurationSet``, whose records name no operation).

    Raises ``ValueError`` unless ``rate`` is a finite number >= 0.
    """
    rate = float(rate)
    if not rate >= 0 or rate == float("inf"):
        raise ValueError(f"learned rate must be a finite number >= 0, not {rate!r}")
    record: dict[str, Any] = {"kind": "rate", "lane": str(lane), "rate": rate}
    if operation is not None:
        record["operation"] = operation
    record["time"] = timestamp()
    return _dumps(record)


def rate_key(lane: str, operation: str | None) -> str:
    """Where the resume index keeps a learned rate: the lane, and the operation unless it is
    ``CreateConfigurationSet`` (see :func:`rate_to_json`)."""
    return lane if operation is None else f"{lane}#{operation}"


def end_to_json(run_id: str, summary: Mapping[str, Any]) -> str:
    """The line closing run ``run_id`` with its summary (which cannot override the kind,
    run id or time)."""
    record: dict[str, Any] = {"kind": "end", "run_id": run_id, "time": timestamp()}
    for key, value in summary.items():
        record.setdefault(str(key), value)
    return _dumps(record)


def redact_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` without keys that look secret (keys, tokens, passwords), at any depth.

    Values that look like AWS access key ids are dropped too: the engine never passes secrets,
    and this makes sure none reaches a file users share.
    """
    clean: dict[str, Any] = {}
    for key, value in settings.items():
        if _SECRET_KEY.search(str(key)):
            continue
        kept = _redact_value(value)
        if kept is not _DROP:
            clean[str(key)] = kept
    return clean


def timestamp() -> str:
    """Now, as a record's ``time``: UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DROP = object()


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_settings(value)
    if isinstance(value, list | tuple):
        kept = [_redact_value(item) for item in value]
        return [item for item in kept if item is not _DROP]
    if isinstance(value, str) and _SECRET_VALUE.search(value):
        return _DROP
    return value


# ensure_ascii: the line is pure ASCII, so no string (not even a lone surrogate) can make
# encoding fail halfway through a run; default=str: an odd value in extra is not fatal. One
# encoder for every line: json.dumps with options builds a new one per call.
_dumps: Callable[[Mapping[str, Any]], str] = json.JSONEncoder(
    separators=(",", ":"), default=str
).encode
