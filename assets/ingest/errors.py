"""The one exception the ingest stage raises for a file it cannot accept."""

from __future__ import annotations


class IngestError(Exception):
    """A file or HTTP delivery that cannot be accepted; ``message_zh`` is for a department clerk.

    Raised by :func:`assets.ingest.read_file` (the offline ``credit-etl check`` command catches it)
    and turned into a ``rejected`` manifest record by :func:`assets.ingest.ingest_day`.
    """

    def __init__(self, message_zh: str, *, code: str = "rejected"):
        self.message_zh = message_zh
        self.code = code  # short machine-readable reason: empty, binary, encoding, header, ...
        super().__init__(message_zh)
