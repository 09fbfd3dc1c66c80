"""The HTTP side of every client: one TLS context for the whole process, and the moment each
call leaves.

aiobotocore's :class:`~aiobotocore.httpsession.AIOHTTPSession` builds a TLS context for each
client, loading the CA bundle into it: some 40 ms of CPU and about a megabyte each. A run
has several clients (one per service, Region and profile, one for STS per profile and
Region), and with a client per lane 500 lanes once paid 20 s of CPU and 500 MB before their
first create. A TLS context is meant to be shared by many connections:
:class:`SharedTLSSession` builds one per way of verifying (``verify`` true, false or a CA
bundle's path) and hands the same one to every client. A client certificate or a proxy
keeps aiobotocore's own context per client (neither is shared by every client).

:func:`watch_departures` tells, as each call leaves (botocore's ``before-send``, the last
step before the request is written), whoever the calling task named in :data:`LEAVING`: the
lane's limiter counts the call's token from then (see
:meth:`~bulk.engine.limiter.AdaptiveLimiter.on_wire`).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from aiobotocore.httpsession import AIOHTTPSession

__all__ = ["LEAVING", "SharedTLSSession", "watch_departures"]

#: What to call as the current task's next request leaves (None: nothing).
LEAVING: ContextVar[Callable[[], None] | None] = ContextVar("bulk_leaving", default=None)

_lock = threading.Lock()  # aiobotocore builds contexts in worker threads
_contexts: dict[Any, ssl.SSLContext] = {}


class SharedTLSSession(AIOHTTPSession):  # type: ignore[misc]  # untyped library
    """aiobotocore's HTTP session, its TLS context shared (see the module's doc)."""

    def _build_ssl_contexts(self, proxy_url: str | None) -> tuple[Any, Any]:
        if proxy_url or self._cert_file:
            contexts: tuple[Any, Any] = super()._build_ssl_contexts(proxy_url)
            return contexts
        key = self._verify
        with _lock:
            context = _contexts.get(key)
            if context is None:
                context, _ = super()._build_ssl_contexts(None)
                _contexts[key] = context
        return context, None


def watch_departures(client: Any) -> None:
    """Call :data:`LEAVING`'s callable as each of ``client``'s requests leaves."""
    client.meta.events.register("before-send", _leaving)


def _leaving(**_: Any) -> None:
    """A ``before-send`` handler: returns None, so the request is sent as usual."""
    leaving = LEAVING.get()
    if leaving is not None:
        leaving()
