"""What polars raises, named once for every module that reads or writes with it.

A Rust panic inside polars comes out as pyo3's ``PanicException``, which derives from
``BaseException``, not ``Exception``: an ``except Exception`` lets it through.
"""

from __future__ import annotations

from typing import Final

import polars as pl

#: A polars operation that failed: its own errors and a panic.
POLARS_ERRORS: Final[tuple[type[BaseException], ...]] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
)

#: Anything a polars read of bytes we do not trust can raise (a cache file that may be
#: damaged): any exception, and a panic.
ANY_POLARS_ERROR: Final[tuple[type[BaseException], ...]] = (Exception, pl.exceptions.PanicException)
