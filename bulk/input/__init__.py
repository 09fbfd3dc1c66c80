"""The input stage: an input file becomes rows to send (source → columns → convert → validate).

`source` reads the file, `header` checks its column names (and Parquet types), and
`csv_check` says exactly what is wrong with a CSV file it cannot read; `columns` is what a
service's columns are (from botocore's model) and `limits` the bounds on them; `convert`
turns a cell into its request value; `validate` turns a row into a request or an
``invalid`` outcome, with `names` (the name rule, the first row of each name), `routing`
(each row's lane, with `regions` finding its Region), `shapes` (botocore's ParamValidator),
`tenants` (the ``TenantName`` column) and `destinations` (``EventDestinations`` and
``--event-destinations``).

Nothing is imported here: importing ``bulk`` must not load polars (see :mod:`bulk.cli`).
"""
