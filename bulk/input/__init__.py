"""The input stage: an input file becomes rows to send (source → columns → convert → validate).

`source` reads the file, and `csv_check` says exactly what is wrong with a CSV file it cannot
read; `columns` is what a service's columns are and the limits on them; `convert` turns a
cell into its request value; `validate` turns a row into a request or an ``invalid`` outcome,
with `names` remembering the first row of each name and `regions` finding each row's Region.

Nothing is imported here: importing ``bulk`` must not load polars (see :mod:`bulk.cli`).
"""
