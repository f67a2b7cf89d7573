"""Great Expectations' file stores, made crash- and full-disk-safe.

GE writes suites, validation results and Data Docs pages with a plain ``open(path, "wb")``: a
full disk or a kill in the middle leaves a 0-byte or half JSON suite that makes every later
night's ``data_docs`` fail. :func:`install` routes GE's filesystem store writes through
:func:`warehouse.files.atomic_path` (temporary file, then rename), and :func:`repair` removes
0-byte or unreadable JSON files a writer of an earlier version left, so they are rebuilt (suites
come from the contracts; a lost result page only drops out of the Data Docs index).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from warehouse.files import atomic_path

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from great_expectations.data_context.store.tuple_store_backend import TupleFilesystemStoreBackend

    def _set(self, key, value, **kwargs):
        if not isinstance(key, tuple):
            key = key.to_tuple()
        filepath = os.path.join(self.full_base_directory, self._convert_key_to_filepath(key))
        with atomic_path(filepath, private=False) as tmp:  # suites, masked results, Data Docs pages
            tmp.write_bytes(value.encode("utf-8") if isinstance(value, str) else value)
        return filepath

    TupleFilesystemStoreBackend._set = _set
    _installed = True


def repair(gx_root: Path) -> list[Path]:
    """Remove empty or unparseable JSON files under GE's store folders; returns them."""
    removed = []
    for sub in ("expectations", "validation_definitions", "uncommitted/validations"):
        folder = Path(gx_root) / sub
        if not folder.is_dir():
            continue
        for path in folder.rglob("*.json"):
            try:
                text = path.read_bytes()
                json.loads(text)
                if text.strip():
                    continue
            except (OSError, ValueError):
                pass
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
