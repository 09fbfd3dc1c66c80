"""bulk's benchmarks: ``make bench`` (``python -m benchmarks``), never part of ``make test``.

Every scenario starts the emulator (``bulk.emulator.serve_forever``) in its own process on a
free loopback port, resets it between contenders and reads what reached it from
``/_emulator/stats``. Contenders run side by side in one run and the figures are ratios
between them or to the server's limit, so a noisy or slow machine moves them less than it
moves absolute times.

1. ``known``: server 100/s burst 5, ~20 ms latency, 2,000 rows; engine ``--rate 100`` with
   burst 1 and 5. Throughput ÷ limit (goal ≥ 0.99) and share of calls throttled (≤ 0.5%).
2. ``unknown``: the same server; engine ``--rate 1000`` beside plain boto3 (32 threads) in
   botocore's ``adaptive`` and ``standard`` retry modes, and an aiobotocore client paced at the
   server's rate (burst 1 and 5) for reference. Goal: engine ≥ 0.95 of the limit, ≤ 2%
   throttled, ahead of both modes.
3. ``overhead``: unthrottled server, no latency, 20,000 rows; engine (in-process
   ``provision()``) ÷ a bare aiobotocore loop at the same concurrency, with a default client
   and with the engine's client configuration, in rotating order 3 times, median ratios.
   Goal ≤ 1.1 for both.
4. ``memory``: peak RSS of ``bulk provision`` (child process) for dry runs of 10,000 and
   1,000,000 rows (without and with a ledger that settles every row) and real runs of 5,000
   and 25,000 rows (100,000 would not fit the ~10 minute budget). Goal: ≤ 1.2×, < 250 MB.
5. ``resume``: a ledger where all 1,000,000 rows are settled; ``bulk provision`` from exec to
   exit, nothing sent. Goal ≤ 5 s.
6. ``operating``: the operating point, a server at 1/s with a bucket of 1 (SES's documented
   limit), ~20 ms latency, 120 rows: the engine with its defaults (``--rate 1 --burst 1``)
   beside a boto3 loop with ``time.sleep(1)`` after each call and a boto3 loop in ``adaptive``
   retry mode; then the engine at ``--rate 10 --burst 1`` against a 10/s server, burst 1, 600
   rows. Goal for the engine: ≥ 0.99 of the limit, ≤ 1% throttled, and the learned rate it
   saves for the next run within 2% of the limit. About six minutes.
7. ``lanes``: 6 lanes (6 Regions of one account), server and engine at 10/s burst 1 per lane,
   60 rows per lane, the same rows sorted by lane and interleaved; throughput ÷ the joint
   limit (60/s) from the server's own counters and clock (a timed emulator), goal ≥ 0.95 for
   both orders.
8. ``many-lanes``: 500 lanes, 250 roles (accounts) × 2 Regions, 1/s burst 1 on both sides,
   20 rows per lane; ``bulk provision`` as a child process with a concurrency from Little's
   law, roles assumed at the emulator's STS. Goal: ≥ 0.95 of the joint limit (500/s), peak
   RSS < 400 MB, one AssumeRole per role; CPU of both processes reported.
9. ``sorted-memory``: dry runs of 10,000 and 1,000,000 rows over 100 lanes (50 roles × 2
   Regions), sorted by lane and interleaved, beside the one-lane file of scenario 4; and real
   runs of 25,000 rows of each order against an unthrottled emulator. Goal: scenario 4's
   (< 250 MB, ≤ 1.2× growth), and sorted ≤ 1.2× interleaved.

Options: ``--only NAME`` (repeatable or comma-separated), ``--quick`` (smaller sizes), and
``--write``/``--no-write`` for ``benchmarks/RESULTS.md`` (written by default only by a full
run). A target not met is printed and recorded as measured; it does not fail the command.
"""
