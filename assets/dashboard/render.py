"""Render the dashboard and the monthly bulletin (通报) as static HTML under reports/dashboard/.

``write_dashboard(data_dir, ...)`` reads the warehouse (``data.dashboard_data``), then writes

    reports/dashboard/index.html               the latest state (nightly; ``credit-etl dashboard``)
    reports/dashboard/<YYYY-MM>.html           the same page kept per month
    reports/dashboard/bulletin_<YYYY-MM>.html  the printable A4 通报 of the month
    reports/dashboard/vendor/echarts/          Apache ECharts and its licence, shipped in the repo

The pages are self-contained: styles and the page's own script are inline, ECharts is linked
relatively, fonts are the system's (Noto Sans CJK on the office's Linux machines); opened from
disk or served, they request nothing from another host. Links to feedback workbooks, Data
Docs and the export are relative (``../feedback/...``), so they work both from disk and served.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import jinja2

from assets.dashboard.data import DEFAULT_SILENCE_DAYS, dashboard_data, latest_day, month_bounds
from contracts.model import Contract, Registry
from warehouse.db import connect
from warehouse.files import write_bytes
from warehouse.layout import DataDir
from warehouse.obligations import refresh_obligations

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
VENDOR = HERE / "vendor"
SILENCE_ENV = "CREDIT_ETL_SILENCE_DAYS"


def silence_days_setting(value: int | None = None) -> int:
    """N of the silence banner: the argument, else $CREDIT_ETL_SILENCE_DAYS, else the office's
    ``silence_days`` (settings.yaml of the deployment folder, default 7)."""
    if value is None:
        raw = os.environ.get(SILENCE_ENV, "").strip()
        if raw:
            value = int(raw)
        else:
            from contracts.config import active_config

            try:
                value = active_config().settings.silence_days
            except Exception:  # noqa: BLE001 - an invalid folder is reported by the command itself
                value = DEFAULT_SILENCE_DAYS
    if value < 0:
        raise ValueError(f"未报送提醒天数不能为负 / silence days must be >= 0: {value}")
    return value


def _pct(v) -> str:
    return "—" if v is None else f"{v}%"


def _grade(v) -> str:
    if v is None:
        return "na"
    v = Decimal(v)
    return "ok" if v >= 100 else "warn" if v >= 90 else "bad"


def _grade_late(v) -> str:
    if v is None:
        return "na"
    v = Decimal(v)
    return "ok" if v <= 0 else "warn" if v <= 10 else "bad"


def page_env(*extra_dirs: Path) -> jinja2.Environment:
    """The pages' Jinja environment (filters pct, grade, grade_late); ``extra_dirs`` are searched
    first (the province's page lives in ``assets/province/templates``).

    One environment per process and directories: it keeps the compiled templates, so a night
    in a long-lived process (demo, backfill, bench) does not compile the dashboard's and the
    bulletin's templates again (≈ 0.1 CPU s); Jinja still recompiles a template whose file
    changed (``auto_reload``). Callers only read it."""
    return _page_env(tuple(str(d) for d in extra_dirs))


@functools.lru_cache(maxsize=8)
def _page_env(extra_dirs: tuple[str, ...]) -> jinja2.Environment:
    dirs = list(extra_dirs) + [str(TEMPLATES)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(dirs), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, grade=_grade, grade_late=_grade_late)
    return env


def page_assets(own_script: Path | None = None) -> dict:
    """The shared inline style and scripts of every page: ``css`` (dashboard.css) and ``js``
    (common.js — sortable tables, chart font — then the page's own script)."""
    js = (TEMPLATES / "common.js").read_text(encoding="utf-8")
    if own_script is not None:
        js += "\n" + own_script.read_text(encoding="utf-8")
    return {"css": (TEMPLATES / "dashboard.css").read_text(encoding="utf-8"),
            "js": jinja2.utils.markupsafe.Markup(js)}


def script_json(obj) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' that could end the element."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_dashboard(d: dict) -> str:
    env = page_env()
    return env.get_template("index.html.j2").render(
        d=d,
        **page_assets(TEMPLATES / "dashboard.js"),
        data_json=jinja2.utils.markupsafe.Markup(script_json({"trends": d["trends"], "month": d["month"]})),
        bulletin_href=f"bulletin_{d['month']}.html",
    )


def render_bulletin(d: dict) -> str:
    return page_env().get_template("bulletin.html.j2").render(d=d)


def copy_vendor(target_dir: Path) -> None:
    """Copy the shipped third-party files (ECharts and its licence) next to the pages."""
    for src in VENDOR.rglob("*"):
        if src.is_file():
            dst = target_dir / "vendor" / src.relative_to(VENDOR)
            if not dst.exists() or dst.stat().st_size != src.stat().st_size or dst.read_bytes() != src.read_bytes():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)


@dataclass
class DashboardOutput:
    month: str
    as_of: date
    index: Path | None
    month_page: Path
    bulletin: Path
    obligations: int
    banners: list[dict] = field(default_factory=list)
    headline: dict = field(default_factory=dict)


def dashboard_dir(data_dir: DataDir) -> Path:
    return data_dir.reports / "dashboard"


def write_dashboard(
    data_dir: DataDir | str | Path,
    *,
    month: str | None = None,
    contracts: dict[str, Contract] | None = None,
    registry: Registry | None = None,
    silence_days: int | None = None,
    today: date | None = None,
) -> DashboardOutput:
    """Refresh the obligations table, then write the pages (see the module docstring).

    Without ``month`` the page shows the month of the warehouse's latest received day, as seen
    on that day, and becomes ``index.html``. With ``month`` only ``<month>.html`` and the
    bulletin are written, as seen on the month's last day (or the latest received day, if
    earlier), so an old month can be looked at without replacing the current index.
    """
    from contracts.loader import load_contracts, load_registry

    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    contracts = contracts or load_contracts()
    registry = registry or load_registry(contracts=contracts)
    n = silence_days_setting(silence_days)
    with connect(data_dir, create=False) as con:  # never a new empty warehouse drawn as "no data"
        rows = refresh_obligations(con, contracts, registry)
        latest = latest_day(con)
        current = month is None or (latest is not None and month == latest.strftime("%Y-%m"))
        if month is None:
            as_of = latest or today or date.today()
            month = as_of.strftime("%Y-%m")
        else:
            month_bounds(month)  # validates YYYY-MM
            end = month_bounds(month)[1]
            as_of = min(end, latest) if latest else end
        d = dashboard_data(con, data_dir, month, as_of, contracts, registry, n)
    out_dir = dashboard_dir(data_dir)
    copy_vendor(out_dir)
    page = render_dashboard(d).encode("utf-8")
    month_page = write_bytes(page, out_dir / f"{month}.html", private=False)
    index = write_bytes(page, out_dir / "index.html", private=False) if current else None
    bulletin = write_bytes(render_bulletin(d).encode("utf-8"), out_dir / f"bulletin_{month}.html", private=False)
    return DashboardOutput(month=month, as_of=as_of, index=index, month_page=month_page, bulletin=bulletin,
                           obligations=rows, banners=d["banners"], headline=d["headline"])
