"""The input stage: an input file becomes rows to send (source → columns → validate).

Nothing is imported here: importing ``bulk`` must not load polars (see :mod:`bulk.cli`).
"""
