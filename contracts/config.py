"""An office's deployment folder: its own catalog, departments, calendars and settings.

An office that installs credit-etl must never edit files inside the installed package. It keeps
its configuration in a folder of its own (written by ``credit-etl init DIR``) and points every
command at it with ``--config DIR`` or ``$CREDIT_ETL_CONFIG``::

    DIR/settings.yaml        office settings (:class:`Settings`)
    DIR/departments.yaml     the reporting departments and the feeds each owes (same schema as
                             the packaged ``contracts/departments.yaml``)
    DIR/contracts/*.yaml     local supplementary catalog items (本地补充目录): full contracts of
                             feeds the national catalog does not have
    DIR/overlays/*.yaml      field extensions of packaged feeds (:class:`Overlay`)
    DIR/calendars/YYYY.yaml  holiday calendars (format in ``contracts/calendars/README.md``)

This module is the one place that decides where contracts, the registry and calendars come
from: the loader's defaults (``load_contracts()``, ``catalog()``, ``load_registry()``), the
working-day calendar and the partition start all ask :func:`active_config`, so no stage needs
its own switch. Without a configured folder the packaged sample county (巫山县) is used; that
is also what ``credit-etl demo`` always runs on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Mapping

from pydantic import Field as PydField, model_validator

from contracts.model import Contract, Field, Registry, Rule, _Strict

CONFIG_ENV = "CREDIT_ETL_CONFIG"
SETTINGS_FILE = "settings.yaml"
REGISTRY_FILE = "departments.yaml"
LOCAL_CONTRACTS = "contracts"
OVERLAYS = "overlays"
CALENDARS = "calendars"
PACKAGE_DIR = Path(__file__).resolve().parent


class PushTarget(_Strict):
    """The city/province platform endpoint the night's records are pushed to (逐级推送)."""

    name: str  # e.g. 重庆市社会信用信息平台
    url: str
    token_env: str | None = None  # environment variable holding the token (never the token itself)
    format: Literal["json", "csv"] = "json"
    feeds: list[str] = []  # empty: every feed of role "records"
    timeout_seconds: Annotated[float, PydField(gt=0)] = 30.0
    max_attempts: Annotated[int, PydField(ge=1)] = 4
    backoff_seconds: Annotated[float, PydField(ge=0)] = 2.0
    enabled: bool = True

    @model_validator(mode="after")
    def _url(self) -> "PushTarget":
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self


class Masking(_Strict):
    """Which fields go through the one masking policy (warehouse.masking) besides the
    contract's own ``privacy: personal`` fields, e.g. a local extension holding a phone number."""

    personal_fields: dict[str, list[str]] = {}  # feed -> field names treated as personal


class Retention(_Strict):
    """How long housekeeping keeps history (pipelines/housekeeping.py)."""

    run_history_days: Annotated[int, PydField(ge=1)] = 400  # Dagster runs and their event logs
    landing_days: Annotated[int, PydField(ge=1)] = 1830  # landed files no record points to


class County(_Strict):
    """A county whose pushes the province receives (its 6-digit 行政区划代码 and its name)."""

    code: Annotated[str, PydField(pattern=r"^\d{6}$")]
    name: str


class Lake(_Strict):
    """Where the province keeps its Iceberg lake (assets/province/lake.py).

    Only the NAMES of the environment variables holding the access key, the secret and the
    catalog URL live in the settings; the values come from the environment (secrets never sit
    in a file)."""

    warehouse: Annotated[str, PydField(pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")]  # s3://bucket/prefix
    endpoint: str | None = None  # S3-compatible endpoint (MinIO, moto); None: the provider's default
    region: str = "us-east-1"
    access_key_env: str = "CREDIT_ETL_S3_ACCESS_KEY"
    secret_key_env: str = "CREDIT_ETL_S3_SECRET_KEY"
    # SQLAlchemy URL of the Iceberg SQL catalog (postgresql+psycopg2://user@host:port/db)
    catalog_uri_env: str = "CREDIT_ETL_CATALOG_URI"
    catalog_name: str = "credit"
    namespace: str = "credit"
    commit_attempts: Annotated[int, PydField(ge=1)] = 8  # retries on conflicts with other counties' commits

    @model_validator(mode="after")
    def _endpoint(self) -> "Lake":
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError("endpoint must start with http:// or https://")
        return self

    @property
    def bucket(self) -> str:
        return self.warehouse[len("s3://"):].split("/", 1)[0]


class Province(_Strict):
    """Province mode (issue 16): the counties whose pushes arrive, and the lake they land in."""

    counties: list[County] = []
    lake: Lake | None = None

    @model_validator(mode="after")
    def _unique(self) -> "Province":
        codes = [c.code for c in self.counties]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"county codes listed twice: {dupes}")
        return self

    def county_name(self, code: str) -> str:
        return next((c.name for c in self.counties if c.code == code), code)


class Settings(_Strict):
    # earliest received day a night or backfill may target; unset: the first day of last month
    # (assets/partitions.py), so a fresh UI does not list years of empty partitions
    first_partition_day: date | None = None
    silence_days: Annotated[int, PydField(ge=1)] = 7  # a department silent this long is reported (dashboard banner, run)
    masking: Masking = Masking()
    push: list[PushTarget] = []
    retention: Retention = Retention()
    province: Province | None = None  # only at a province (or city) platform running province mode


class Overlay(_Strict):
    """Local changes to a packaged feed: extension fields (省/市/县 local columns, national
    false), extra rules, switching the feed off. Nothing of the national layout can be removed."""

    feed: str
    enabled: bool | None = None
    add_fields: list[Field] = []
    add_rules: list[Rule] = []
    description: str = ""


@dataclass(frozen=True)
class OfficeConfig:
    """A validated deployment folder (``root`` None: the packaged sample county)."""

    root: Path | None
    settings: Settings

    @property
    def registry_path(self) -> Path:
        return (self.root / REGISTRY_FILE) if self.root else PACKAGE_DIR / REGISTRY_FILE

    @property
    def calendar_dir(self) -> Path:
        return (self.root / CALENDARS) if self.root else PACKAGE_DIR / CALENDARS

    def contracts(self, *, include_disabled: bool = False) -> dict[str, Contract]:
        return _build_contracts(self.root, self.settings, include_disabled)

    def registry(self, contracts: dict[str, Contract] | None = None) -> Registry:
        from contracts.loader import load_registry

        return load_registry(self.registry_path, contracts=contracts if contracts is not None else self.contracts())

    def push_targets(self) -> list[PushTarget]:
        return [t for t in self.settings.push if t.enabled]


def _build_contracts(root: Path | None, settings: Settings, include_disabled: bool) -> dict[str, Contract]:
    from contracts.loader import ContractError, _read_yaml, _validate, load_contract, load_contracts

    packaged = load_contracts(PACKAGE_DIR, include_disabled=True)
    if root is None:
        return {k: c for k, c in packaged.items() if c.enabled or include_disabled}
    out = dict(packaged)
    local_dir = root / LOCAL_CONTRACTS
    for path in sorted(local_dir.glob("*.yaml")) if local_dir.is_dir() else []:
        contract = load_contract(path)
        if contract.feed in packaged:
            raise ContractError(path, "feed", f"{contract.feed!r} 是国家目录中的信息类别，不能整体替换；"
                                              f"请在 {OVERLAYS}/{contract.feed}.yaml 中扩展字段 / "
                                              "a national feed cannot be replaced: extend it with an overlay")
        out[contract.feed] = contract
    overlay_dir = root / OVERLAYS
    for path in sorted(overlay_dir.glob("*.yaml")) if overlay_dir.is_dir() else []:
        overlay = _validate(Overlay, path, _read_yaml(path))
        if overlay.feed != path.stem:
            raise ContractError(path, "feed", f"feed id {overlay.feed!r} must match the file name {path.stem!r}")
        if overlay.feed not in out:
            raise ContractError(path, "feed", f"未知信息类别 / unknown feed {overlay.feed!r}")
        base = out[overlay.feed].model_dump(by_alias=True, exclude_unset=True)
        added = []
        for i, f in enumerate(overlay.add_fields):
            if "national" in f.model_fields_set and f.national:
                raise ContractError(path, f'field "{f.name}" (#{i + 1}).national',
                                    "本地扩展字段不属于全国交换格式 / a local extension cannot be national")
            # an extension is local by definition: it never travels in the national layout
            added.append({**f.model_dump(by_alias=True, exclude_unset=True), "national": False})
        base["fields"] = base.get("fields", []) + added
        base["rules"] = base.get("rules", []) + [r.model_dump(by_alias=True, exclude_unset=True) for r in overlay.add_rules]
        if overlay.enabled is not None:
            base["enabled"] = overlay.enabled
        if overlay.description:
            base["description"] = (base.get("description", "") + "\n" + overlay.description).strip()
        out[overlay.feed] = _validate(Contract, path, base)
    settings_path = root / SETTINGS_FILE
    for feed, names in settings.masking.personal_fields.items():
        if feed not in out:
            raise ContractError(settings_path, f"masking.personal_fields.{feed}", f"未知信息类别 / unknown feed {feed!r}")
        contract = out[feed]
        for name in names:
            if name not in contract.field_names:
                raise ContractError(settings_path, f"masking.personal_fields.{feed}", f"未知字段 / unknown field {name!r}")
        fields = [f.model_copy(update={"privacy": "personal"}) if f.name in names else f for f in contract.fields]
        out[feed] = contract.model_copy(update={"fields": fields})
    for i, target in enumerate(settings.push):
        for feed in target.feeds:
            if feed not in out:
                raise ContractError(settings_path, f"push #{i + 1}.feeds", f"未知信息类别 / unknown feed {feed!r}")
    return {k: c for k, c in out.items() if c.enabled or include_disabled}


def load_office_config(root: str | Path | None) -> OfficeConfig:
    """Read and validate a deployment folder (settings, catalog with overlays, registry; the
    calendars are checked by ``pipelines.office.validate_deployment``); raises :class:`contracts.loader.ContractError` naming the file and the field."""
    from contracts.loader import ContractError, _read_yaml, _validate

    if root is None:
        return OfficeConfig(None, Settings())
    root = Path(root).resolve()
    if not root.is_dir():
        raise ContractError(root, "directory", "配置目录不存在 / configuration folder not found（可用 credit-etl init 创建）")
    path = root / SETTINGS_FILE
    if not path.exists():
        raise ContractError(path, "file", "缺少设置文件 / missing settings file")
    settings = _validate(Settings, path, _read_yaml(path))
    config = OfficeConfig(root, settings)
    if not config.registry_path.exists():
        raise ContractError(config.registry_path, "file", "缺少部门登记文件 / missing departments file")
    contracts = config.contracts()
    config.registry(contracts)
    return config


def config_root(env: Mapping[str, str] | None = None) -> Path | None:
    value = (os.environ if env is None else env).get(CONFIG_ENV)
    return Path(value).resolve() if value else None


@lru_cache(maxsize=8)
def _cached_config(root: str | None) -> OfficeConfig:
    return load_office_config(root)


def active_config() -> OfficeConfig:
    """The deployment in force for this process: ``$CREDIT_ETL_CONFIG`` or the packaged sample."""
    root = config_root()
    return _cached_config(str(root) if root else None)


def use_config(root: str | Path | None) -> OfficeConfig:
    """Validate ``root`` and make it the process's deployment (child processes inherit it)."""
    config = load_office_config(root)
    if root is None:
        os.environ.pop(CONFIG_ENV, None)
    else:
        os.environ[CONFIG_ENV] = str(config.root)
    reset_caches()
    return config


def reset_caches() -> None:
    from contracts.loader import _cached

    _cached_config.cache_clear()
    _cached.cache_clear()


def first_partition_day() -> str | None:
    """The office's start of the daily partitions (None: not set); read once when the Dagster
    definitions are imported. ``$CREDIT_ETL_FIRST_DAY`` overrides it (assets/partitions.py)."""
    try:
        day = active_config().settings.first_partition_day
    except Exception:  # noqa: BLE001 - an invalid folder is reported by the command, not at import
        return None
    return day.isoformat() if day else None


def config_problems(registry: Registry, env: Mapping[str, str] | None = None,
                    targets: list[PushTarget] = ()) -> list[str]:
    """Configuration problems a night cannot fix by itself, one line per department (or push
    target): an HTTP delivery whose token variable is not set. The night skips those pulls
    (nothing is sent without a token) and reports them here once, instead of a rejected delivery
    per feed; a push target without its token keeps its batches queued."""
    env = os.environ if env is None else env
    out: list[str] = []
    for t in targets:
        if t.token_env and not env.get(t.token_env):
            out.append(f"配置问题：推送目标 {t.name} 的令牌未设置，请设置环境变量 {t.token_env}；本次未推送，"
                       f"批次保留待发 / configuration: push token variable {t.token_env} not set")
    for dept in registry.departments:
        missing = sorted({d.token_env for f, d in dept.delivery.items()
                          if f in dept.feeds and d.kind == "http" and d.token_env and not env.get(d.token_env)})
        if missing:
            feeds = "、".join(f for f, d in dept.delivery.items() if d.kind == "http" and d.token_env in missing)
            out.append(f"配置问题：{dept.name}（{dept.code}）的接口令牌未设置，请设置环境变量 {'、'.join(missing)}；"
                       f"本次未拉取 {feeds} / configuration: token variable {', '.join(missing)} not set")
    return out
