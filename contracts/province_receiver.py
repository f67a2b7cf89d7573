"""Settings of the province's receiving endpoint (``credit-etl province receive``).

A small model on its own so that the ``province:`` section of the office settings
(``contracts/config.py``, owned by the lake side) can hold it as ``receiver: ReceiverSettings``
without importing the receiver's server code. Only names of secrets live here: the bearer token
is read from the environment variable ``token_env`` when the server starts, never from a file.

    province:
      receiver:
        host: 127.0.0.1          # listen address (a reverse proxy with TLS in front in production)
        port: 8780
        token_env: CREDIT_ETL_PROVINCE_TOKEN
        inbox: null              # default: <province data dir>/inbox
        max_body_mb: 64          # a county's batch is one feed's changes of one night
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field as PydField

from contracts.model import _Strict

DEFAULT_TOKEN_ENV = "CREDIT_ETL_PROVINCE_TOKEN"


class ReceiverSettings(_Strict):
    """Where and how the province accepts the counties' upward pushes (see module docstring)."""

    host: str = "127.0.0.1"
    port: Annotated[int, PydField(ge=0, le=65535)] = 8780
    token_env: str = DEFAULT_TOKEN_ENV
    inbox: Path | None = None
    max_body_mb: Annotated[float, PydField(gt=0)] = 64.0

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
