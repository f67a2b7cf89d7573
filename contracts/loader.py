"""Load contracts and the department registry from YAML, with errors that name the place.

A broken contract must stop the pipeline before it touches data, with a message a data
officer can act on: the file, the field (by name, not list index) and what is wrong.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contracts.model import Contract, Registry

CONTRACTS_DIR = Path(__file__).resolve().parent
REGISTRY_FILE = "departments.yaml"
NON_FEED_FILES = {REGISTRY_FILE}


# libyaml's safe loader when PyYAML was built with it (same documents, ~6× faster than the pure
# Python one: 0.08 vs 0.5 s for the catalog, paid by every asset of every night before caching)
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ContractError(ValueError):
    """A contract or registry file that cannot be used; the message says where and why."""

    def __init__(self, path: Path, location: str, problem: str):
        self.path, self.location, self.problem = Path(path), location, problem
        super().__init__(f"{Path(path).name}: {location}: {problem}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise ContractError(path, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ContractError(path, "top level", "must be a mapping")
    return data


# list keys whose items are named by their name/id/code in messages (overlays: add_*)
_NOUNS = {"fields": "field", "rules": "rule", "departments": "department", "add_fields": "field",
          "add_rules": "rule", "push": "push target"}


def _describe(loc: tuple, data: dict[str, Any]) -> str:
    """Turn pydantic's ('fields', 3, 'type') into 'field "fine_amount" (#4): type'."""
    parts: list[str] = []
    node: Any = data
    i = 0
    while i < len(loc):
        key = loc[i]
        if isinstance(node, dict) and key in _NOUNS and i + 1 < len(loc):
            idx = loc[i + 1]
            items = node.get(key) or []
            item = items[idx] if isinstance(idx, int) and idx < len(items) else {}
            ident = (item.get("name") or item.get("id") or item.get("code")) if isinstance(item, dict) else None
            noun = _NOUNS[key]
            parts.append(f'{noun} "{ident}" (#{idx + 1})' if ident else f"{noun} #{idx + 1}")
            node = item
            i += 2
            continue
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
        i += 1
    return ".".join(parts) if parts else "top level"


def _validate(model, path: Path, data: dict[str, Any]):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        location = _describe(tuple(err["loc"]), data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ContractError(path, location, msg + more) from None


def load_contract(path: str | Path) -> Contract:
    path = Path(path)
    data = _read_yaml(path)
    contract = _validate(Contract, path, data)
    if contract.feed != path.stem:
        raise ContractError(path, "feed", f"feed id {contract.feed!r} must match the file name {path.stem!r}")
    return contract


def load_contracts(directory: str | Path | None = None, *, include_disabled: bool = False) -> dict[str, Contract]:
    """Every feed contract in ``directory``, keyed by feed id. Default: the deployment in force
    (contracts/config.py: the office's folder with its local items and overlays, else the
    shipped catalog)."""
    if directory is None:
        from contracts.config import active_config

        return active_config().contracts(include_disabled=include_disabled)
    directory = Path(directory)
    out: dict[str, Contract] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name in NON_FEED_FILES:
            continue
        contract = load_contract(path)
        if contract.enabled or include_disabled:
            out[contract.feed] = contract
    if not out:
        raise ContractError(directory, "directory", "no feed contracts found")
    return out


def load_registry(path: str | Path | None = None, contracts: dict[str, Contract] | None = None) -> Registry:
    if path is None:  # the deployment's departments.yaml (contracts/config.py)
        from contracts.config import active_config

        path = active_config().registry_path
    path = Path(path)
    data = _read_yaml(path)
    registry = _validate(Registry, path, data)
    if contracts is not None:
        for i, dept in enumerate(registry.departments):
            for feed in list(dept.feeds) + list(dept.delivery):
                if feed not in contracts:
                    raise ContractError(path, f'department "{dept.code}" (#{i + 1}).feeds', f"unknown feed {feed!r}")
    return registry


@lru_cache(maxsize=8)
def _cached(directory: str | None, config: str | None = None) -> dict[str, Contract]:
    return load_contracts(directory)


def catalog(directory: str | Path | None = None) -> dict[str, Contract]:
    """Cached view of the catalog for hot paths; contracts are immutable. Default: the
    deployment in force (cached per configuration folder)."""
    if directory is None:
        from contracts.config import config_root

        root = config_root()
        return _cached(None, str(root) if root else None)
    return _cached(str(Path(directory)))


def find_feed(contracts: dict[str, Contract], name: str) -> Contract | None:
    """The contract a person means by ``name``: its id (``penalties``), its Chinese name
    (``行政处罚``, also ``行政处罚信息``), or the label the commands list (``行政处罚（penalties）``);
    compared half-width, without spaces, case-folded. None when nothing matches."""
    from contracts.model import normalise_header

    key = normalise_header(name)
    for c in contracts.values():
        names = {c.feed, c.title, c.title + "信息", f"{c.title}（{c.feed}）", f"{c.title}({c.feed})"}
        if c.catalog_item:
            names.add(c.catalog_item.split("：")[-1])
        if key in {normalise_header(n) for n in names}:
            return c
    return None


def feed_labels(contracts: dict[str, Contract]) -> str:
    """``行政处罚（penalties）、行政许可（permits）…`` for messages that list the choices."""
    return "、".join(f"{c.title}（{c.feed}）" for c in contracts.values())


# ---------------------------------------------------------------------------------------------
# the catalog for a long-lived process (Dagster assets, the demo's 31 nights)

_STAMPED: dict[tuple, object] = {}


def _stamp(*directories: Path) -> tuple:
    """Name, size and mtime of every YAML file in ``directories``: changes when a contract does."""
    out = []
    for d in directories:
        for p in sorted(d.glob("*.yaml")):
            st = p.stat()
            out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _deployment_dirs() -> tuple[str, list[Path]]:
    """The folders the deployment in force reads YAML from (contracts/config.py): the shipped
    catalog, and the office's configuration folder with its local items and overlays."""
    from contracts.config import config_root

    root = config_root()
    dirs = [CONTRACTS_DIR]
    if root:
        root = Path(root)
        dirs += [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return str(root or ""), dirs


def current_contracts(directory: str | Path | None = None) -> dict[str, Contract]:
    """``load_contracts(directory)``, parsed once per process and again only when a YAML file of
    the catalog changes (size or mtime). Each asset of a night asks for the catalog; reading
    and validating it every time cost ≈ 0.5 s a call, several seconds a small night. Default:
    the deployment in force, like ``load_contracts()``."""
    if directory is None:
        root, dirs = _deployment_dirs()
        key = ("contracts", root, _stamp(*dirs))
    else:
        directory = Path(directory)
        key = ("contracts", str(directory), _stamp(directory))
    if key not in _STAMPED:
        if len(_STAMPED) > 16:  # edited catalogs in a long-lived process (tests, the UI)
            _STAMPED.clear()
        _STAMPED[key] = load_contracts(directory)
    return dict(_STAMPED[key])


def current_registry(contracts_dir: str | Path | None = None) -> Registry:
    """``load_registry(contracts=current_contracts(contracts_dir))``, cached like it (default: the
    deployment's departments.yaml)."""
    if contracts_dir is None:
        root, dirs = _deployment_dirs()
        key = ("registry", root, _stamp(*dirs))
    else:
        directory = Path(contracts_dir)
        root, dirs = _deployment_dirs()  # the departments come from the deployment either way
        key = ("registry", str(directory), root, _stamp(directory, *dirs))
    if key not in _STAMPED:
        _STAMPED[key] = load_registry(contracts=current_contracts(contracts_dir))
    return _STAMPED[key]
