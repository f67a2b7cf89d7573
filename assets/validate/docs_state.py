"""Bookkeeping of the incremental Data Docs build, without importing Great Expectations.

``DATA_DIR/reports/gx/uncommitted/credit_docs_state.json`` holds:

- ``fingerprint``: what the stored suites were compiled from (the contracts, the compiling
  modules' source, the GE version). A night with nothing received and an unchanged fingerprint
  returns the existing index without importing GE (import + context start: ~2.5–3 s).
- ``suites``: suite name → SHA-256 of the compiled suite JSON (ids left out). A suite is stored
  and its page rendered again only when this digest changes.
- ``results``: stored validation result key → what the index shows for it (success, asset name,
  batch spec), so the index is rebuilt from this file instead of loading every stored result.

Validation results are kept for ``RETENTION_DAYS`` received days (counted back from the newest
received day shown); older results and their pages are removed by the next build with new data.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from contracts import Contract
from warehouse.files import atomic_path
from warehouse.layout import DataDir

RETENTION_DAYS = 62
STATE_NAME = "credit_docs_state.json"
_COMPILERS = ("suites.py", "rules.py", "expectations.py", "identifiers.py", "docs_site.py")
_TEMPLATES = "datadocs_templates"  # page templates: a change re-renders every page


def state_path(gx_root: str | Path) -> Path:
    """The state file of the GE project rooted at ``gx_root`` (DATA_DIR/reports/gx)."""
    return Path(gx_root) / "uncommitted" / STATE_NAME


def gx_root(data_dir: str | Path) -> Path:
    return DataDir(data_dir).reports / "gx"


def load(gx_root_dir: str | Path) -> dict[str, Any]:
    path = state_path(gx_root_dir)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    if not isinstance(state, dict):
        state = {}
    state.setdefault("fingerprint", None)
    state.setdefault("suites", {})
    state.setdefault("results", {})
    return state


def save(gx_root_dir: str | Path, state: Mapping[str, Any]) -> None:
    path = state_path(gx_root_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state, ensure_ascii=False, sort_keys=True, default=str)
    with atomic_path(path, private=False) as tmp:  # fingerprints and names only
        tmp.write_text(text, encoding="utf-8")


def fingerprint(contracts: Mapping[str, Contract]) -> str:
    h = hashlib.sha256()
    try:
        h.update(metadata.version("great_expectations").encode())
    except metadata.PackageNotFoundError:  # pragma: no cover
        pass
    here = Path(__file__).resolve().parent
    for name in _COMPILERS:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    for path in sorted((here / _TEMPLATES).glob("*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    for feed in sorted(contracts):
        h.update(feed.encode())
        h.update(contracts[feed].model_dump_json().encode("utf-8"))
    return h.hexdigest()


def feed_staged(layout: DataDir, feed: str, received: date) -> bool:
    """Whether ``feed`` has staged files for ``received``."""
    folder = layout.staging_dir(feed, received)
    return folder.exists() and any(folder.glob("*.parquet"))


def anything_staged(data_dir: str | Path, contracts: Mapping[str, Contract], received: date) -> bool:
    layout = DataDir(data_dir)
    return any(feed_staged(layout, feed, received) for feed in contracts)


def unchanged_index(data_dir: str | Path, contracts: Mapping[str, Contract], received: date) -> Path | None:
    """The existing index.html when a build for ``received`` would change nothing (nothing staged
    that day, suites compiled from the same inputs); None when a build is needed."""
    index = DataDir(data_dir).data_docs / "index.html"
    if not index.exists() or anything_staged(data_dir, contracts, received):
        return None
    state = load(gx_root(data_dir))
    return index if state["fingerprint"] and state["fingerprint"] == fingerprint(contracts) else None
