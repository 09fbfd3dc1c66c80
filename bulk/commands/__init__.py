"""The commands as library functions; the command line (:mod:`bulk.cli`) only parses options.

Nothing is imported here: importing ``bulk`` must not load polars (see :mod:`bulk.cli`).
"""
