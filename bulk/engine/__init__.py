"""The engine: rows flow through per-lane limiters and retries to the service, outcomes to the
ledger.

Nothing is imported here: importing ``bulk`` must not load polars (see :mod:`bulk.cli`).
"""
