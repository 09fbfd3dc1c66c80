"""The ledger: one JSONL file per input file, what happened to every row, and the resume index.

One module per thing, each calling only those below it: :mod:`~bulk.ledger.writer` (the open
file: ``Ledger``) reads with :mod:`~bulk.ledger.reader`, which loads the index saved beside the
ledger (:mod:`~bulk.ledger.index_file`) and folds records into the
:mod:`~bulk.ledger.index` (its sorted tables in :mod:`~bulk.ledger.index_keys`); the writer
saves the index through ``index_file`` too. :mod:`~bulk.ledger.records` is the line format
all of them share, and :mod:`~bulk.ledger.rules` the resume rules the engine applies to what
the index answers.

Nothing is imported here: importing ``bulk`` must not load polars (see :mod:`bulk.cli`).
"""
