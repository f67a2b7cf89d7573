"""Validate stage: staged rows → passed / quarantined rows + failures, feedback, Data Docs.

Public API (ARCHITECTURE.md, "Validated rows"):

- ``validate_frame(contract, df) -> ValidationResult(passed, quarantined, failures)``
- ``validate_day(data_dir, received, contracts) -> ValidateSummary``
- ``write_feedback(data_dir, received, contracts, registry, calendar=None) -> list[Path]``
- ``build_data_docs(data_dir, contracts, *results, received=None) -> Path``
- ``compile_rules(contract)``, ``build_suite(contract)``, ``run_suite(contract, df)``
- ``precheck.run_check(path, feed, fmt, received)`` (the ``credit-etl check`` command)

Design: GE vs. the masks. Every rule is compiled once from the contract into a vectorised
failure mask (``rules.py``). The row-level quarantine comes from those masks directly; Great
Expectations runs the generated suite (``suites.py``) over the same frame for stored results and
Data Docs, and its custom expectations evaluate the very same mask functions, so the two cannot
disagree (a test compares them row for row).

Measured (2 cores, machine shared with other jobs), 200,000 penalty rows built from 2,000 varied
rows, all 76 rules, 66% of rows quarantined, 228,000 failure rows:
- ``validate_frame`` (masks + passed/quarantined/failures frames): 1.25–1.7 s;
- the same frame through GE (generated suite, result_format COMPLETE, unexpected_index_list):
  4.0–4.8 s, plus 1.7–3.4 s to import GE and start a context; GE and the masks flagged exactly
  the same rows for every rule.
GE as the engine would roughly triple validation time for the same answer, so the nightly run
takes the quarantine from the masks and runs GE (SUMMARY format) only to feed Data Docs
(``build_data_docs(..., received=day)``).

Data Docs are built incrementally (``suites.build_data_docs``, ``docs_state.py``): per night only
the day's validation result pages (and the pages of suites whose compiled JSON changed) are
rendered, the index is rebuilt from a cached row per result, and validation results are kept for
``docs_state.RETENTION_DAYS`` (62) received days. ``docs_site.py`` makes the site readable
offline and in Chinese (shipped scripts and styles, rule ids with the contracts' messages) and
masks personal values in every stored result before it is written or rendered. 31 nights of sample feeds, 25 rows a day: the
step went from 5 s (night 1) / 18 s (night 15) / 16 s (night 31), growing with history, to a flat
cost set by the night's feeds (GE validating each received feed is most of it). ``gx_fast.py``
removes GE overheads that do not change a result (whole-frame filters per metric, expectation
configurations rebuilt on every read, the same row condition parsed per expectation); a test
compares every expectation's result with GE's own (BENCHMARKS.md, round 3). ``gx_chunks.py``
validates a feed in row chunks merged into one result per feed and night, so the step's memory
follows the chunk size (a test compares the merged result with one whole-frame GE run).
"""

from assets.validate.engine import (
    FeedSummary,
    ValidateSummary,
    ValidationResult,
    mask_value,
    validate_day,
    validate_frame,
)
from assets.validate.feedback import write_feedback
from assets.validate.rules import CompiledRule, compile_rules


def build_suite(contract):
    from assets.validate.suites import build_suite as _build

    return _build(contract)


def run_suite(contract, df, data_dir=None):
    from assets.validate.suites import run_suite as _run

    return _run(contract, df, data_dir)


def build_data_docs(data_dir, contracts, *results, received=None):
    """Great Expectations Data Docs under DATA_DIR/reports/data_docs/ (imports GE lazily).

    Incremental (``suites.build_data_docs``); a night with nothing received and unchanged suites
    returns the existing index without importing GE at all (``docs_state.unchanged_index``).
    """
    if received is not None and not results:
        from datetime import date as _date

        from assets.validate.docs_state import unchanged_index

        day = received if isinstance(received, _date) else _date.fromisoformat(received)
        index = unchanged_index(data_dir, contracts, day)
        if index is not None:
            return index
    from assets.validate.suites import build_data_docs as _build

    return _build(data_dir, contracts, *results, received=received)


__all__ = [
    "CompiledRule",
    "FeedSummary",
    "ValidateSummary",
    "ValidationResult",
    "build_data_docs",
    "build_suite",
    "compile_rules",
    "mask_value",
    "run_suite",
    "validate_day",
    "validate_frame",
    "write_feedback",
]
