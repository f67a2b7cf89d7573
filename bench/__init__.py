"""The floor-relative benchmark: ``python -m bench`` / ``credit-etl bench`` (see BENCHMARKS.md).

- :mod:`bench.dataset`  data sets of N rows: the sample generator's files, scaled up cheaply;
- :mod:`bench.pipeline` the pipeline's stage functions, day by day, in a child process;
- :mod:`bench.floor`    DuckDB's CSV → Parquet over the same files, in another child process;
- :mod:`bench.run`      the scenarios (night, backfill, incremental), the table and the JSON.
"""
