"""The ledger: one JSONL file per input file, what happened to every row, and the resume index.

Nothing is imported here: importing ``bulk`` must not load polars (see :mod:`bulk.cli`).
"""
