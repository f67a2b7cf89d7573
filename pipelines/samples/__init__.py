"""Sample department submissions for a sample county, with their ground truth (``truth.csv``).

Its own package, apart from the orchestration modules: ``credit-etl generate`` and ``credit-etl
demo`` use it, and so do the tests and the benchmark; the nightly job never imports it.

- ``feeds``: the generator (``generate``): every format departments use (CSV in UTF-8, GBK,
  GB18030; XLSX with title rows; HTTP JSON; 2016 and code headers), one month of nights
- ``records``: realistic valid records per contract; ``defects``: the deliberate errors
- ``oracle``: what each row should become (valid, rule ids, late) — the truth
- ``ids``: valid and invalid identifiers; ``writers``: the file writers
- ``http``: the sample HTTP department server on 127.0.0.1; ``credit``: objections, lists,
  commitments and repairs for the credit-profile feeds
"""
