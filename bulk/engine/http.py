"""The HTTP session of every client: aiobotocore's, with one TLS context for the whole process.

aiobotocore's :class:`~aiobotocore.httpsession.AIOHTTPSession` builds a TLS context for each
client, loading the CA bundle into it: some 40 ms of CPU and about a megabyte each. A run
has a client per lane (and an STS client per role), so 500 lanes paid 20 s of CPU and
500 MB before their first create. A TLS context is meant to be shared by many connections:
:class:`SharedTLSSession` builds one per way of verifying (``verify`` true, false or a CA
bundle's path) and hands the same one to every client. A client certificate or a proxy
keeps aiobotocore's own context per client (neither is shared by every client).
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

from aiobotocore.httpsession import AIOHTTPSession

__all__ = ["SharedTLSSession"]

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
