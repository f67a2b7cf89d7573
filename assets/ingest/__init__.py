"""Ingest stage: department files and HTTP pages → landing (bytes + manifest) → staged rows.

Public API (the only names other stages and ``pipelines/`` may import):

- :func:`ingest_day` — land and parse everything received on one day; returns :class:`IngestSummary`.
- :func:`read_staged` — the staged rows of one feed and day as a pandas DataFrame.
- :func:`header_scores` — how many fields of each feed a file's header names (``credit-etl check``
  suggests the feed a file looks like).
- :func:`read_raw_values` — cells as received where normalisation changed them (feedback shows
  a rejected value as the clerk typed it).
- :func:`read_file` — read one file offline as ingest would (``credit-etl check``); raises
  :class:`IngestError` with a Chinese message for unreadable files or missing required columns.
- :class:`HttpSettings`, :class:`IngestSummary`, :class:`ParsedFile`, :class:`ManifestRecord`,
  :func:`read_manifest`, :func:`normalise_date`.
- :func:`rejected_deliveries` — every rejected delivery of a received day, as the manifest holds it
  (what a night and its reruns report); :func:`late_deliveries` — the late files a received day
  took in from earlier days' folders (assets/ingest/inbox.py).

Staged-rows layout: ARCHITECTURE.md; manifest schema: warehouse/sql/010_ingest.sql.
"""

from assets.ingest.core import (
    DuplicateRecord,
    IngestSummary,
    ManifestRecord,
    ParsedFile,
    header_scores,
    ingest_day,
    late_deliveries,
    read_file,
    read_manifest,
    read_raw_values,
    read_staged,
    rejected_deliveries,
)
from assets.ingest.errors import IngestError
from assets.ingest.http import HTTP_BASE_ENV, HttpSettings
from assets.ingest.mapping import staged_schema
from assets.ingest.normalise import normalise_date

__all__ = [
    "DuplicateRecord",
    "HTTP_BASE_ENV",
    "HttpSettings",
    "IngestError",
    "IngestSummary",
    "ManifestRecord",
    "ParsedFile",
    "header_scores",
    "ingest_day",
    "late_deliveries",
    "normalise_date",
    "read_file",
    "read_manifest",
    "read_raw_values",
    "read_staged",
    "rejected_deliveries",
    "staged_schema",
]
