"""A local Pinpoint Email / SES v2 endpoint that throttles and fails like the real service.

It speaks the wire protocol of botocore's service models for ``CreateConfigurationSet``,
``GetConfigurationSet``, ``ListConfigurationSets``, ``DeleteConfigurationSet`` and ``GetAccount``
on both ``/v1/email/...`` (``pinpoint-email``) and ``/v2/email/...`` (``sesv2``), throttles each
operation per account and Region with a token bucket, and injects seeded latency, faults and
ambiguous replies. Signatures are not verified: any SigV4-signed request is accepted, the access
key id naming the account. ``bulk emulate``, ``bulk provision --emulator`` and the tests run it;
the engine never imports it.
"""

from __future__ import annotations

from bulk.emulator.app import EmulatorRuntime, make_app
from bulk.emulator.config import ConfigError, EmulatorConfig
from bulk.emulator.faults import Fault
from bulk.emulator.server import Emulator, running_emulator, serve_forever, threaded_emulator
from bulk.emulator.state import EmulatorState
from bulk.emulator.throttle import TokenBucket

__all__ = [
    "ConfigError",
    "Emulator",
    "EmulatorConfig",
    "EmulatorRuntime",
    "EmulatorState",
    "Fault",
    "TokenBucket",
    "make_app",
    "running_emulator",
    "serve_forever",
    "threaded_emulator",
]
