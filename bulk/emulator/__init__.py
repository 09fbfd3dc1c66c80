"""A local Pinpoint Email / SES v2 endpoint, with STS, that throttles and fails like AWS.

It speaks the wire protocol of botocore's service models on both ``/v1/email/...``
(``pinpoint-email``) and ``/v2/email/...`` (``sesv2``) for configuration sets (create, get,
list, delete), their event destinations (create, get, update, delete) and tags (list, tag,
untag), ``GetAccount``, and, on SES v2 only, tenants (create, get, list, delete) and their
resource associations (create, delete, list both ways); and for STS ``AssumeRole`` and
``GetCallerIdentity`` (query protocol, ``POST /``) on the same port. State and throttling are
per account and Region, each operation with its own token bucket: keys issued by
``AssumeRole`` belong to the role's account, any other access key to a default account (or the
one ``key_accounts`` names). It injects seeded latency, faults and ambiguous replies.
Signatures are not verified. ``bulk emulate``, ``bulk provision --emulator`` and the tests run
it; the engine never imports it.
"""

from __future__ import annotations

from bulk.emulator.app import EmulatorRuntime, make_app
from bulk.emulator.config import ConfigError, EmulatorConfig
from bulk.emulator.faults import Fault
from bulk.emulator.server import Emulator, running_emulator, serve_forever, threaded_emulator
from bulk.emulator.state import EmulatorState, Kind
from bulk.emulator.throttle import TokenBucket

__all__ = [
    "ConfigError",
    "Emulator",
    "EmulatorConfig",
    "EmulatorRuntime",
    "EmulatorState",
    "Fault",
    "Kind",
    "TokenBucket",
    "make_app",
    "running_emulator",
    "serve_forever",
    "threaded_emulator",
]
