"""A small county built by real nights, one department silent, and a real headless Chromium.

``county`` generates four received days (Tuesday 2026-10-13 to Friday 2026-10-16, a few rows per
department and feed), removes the gas company's submissions (it owes 水电气欠费 and never sends
anything), and runs every night through the ``nightly_collection`` Dagster job with the sample
HTTP server, so the dashboard under test is the one the nightly asset drew.

``browser`` (tests/conftest.py) is the session's one Debian Chromium driven by Playwright through
``executable_path`` (no browser download); ``open_page`` blocks every request that is not the page's own (file:// or the local
server's origin) and records blocked requests, console errors and page errors.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from dashboard_helpers import DAYS, SILENCE_DAYS, SILENT_DEPT, START, TOKEN
from warehouse.layout import DataDir


@pytest.fixture(scope="session")
def county(tmp_path_factory) -> DataDir:
    from contracts import load_contracts, load_registry
    from pipelines.instance import get_instance
    from pipelines.nightly import run_night
    from pipelines.samples.feeds import generate
    from pipelines.samples.http import start_sample_server

    root = tmp_path_factory.mktemp("county") / "data"
    generate(root, start=START, days=DAYS, rows_per_day=4, seed=7)
    shutil.rmtree(root / "inbox" / SILENT_DEPT)
    registry = load_registry(contracts=load_contracts())
    tokens = {}
    with pytest.MonkeyPatch.context() as mp:
        # the nightly asset reads N from the environment: 2 days, so four nights make the gas
        # company (silent since the first night) overdue
        mp.setenv("CREDIT_ETL_SILENCE_DAYS", str(SILENCE_DAYS))
        for dept in registry.departments:
            for delivery in dept.delivery.values():
                if delivery.kind == "http":
                    mp.setenv(delivery.token_env, TOKEN)
                    tokens[dept.code] = TOKEN
        server, base = start_sample_server(root, tokens=tokens)
        instance = get_instance(root)
        try:
            for i in range(DAYS):
                result = run_night(root, START + timedelta(days=i), http_base=base, instance=instance)
                assert result.success, result.describe()
        finally:
            server.stop()
            instance.dispose()
    return DataDir(root)


@dataclass
class Watched:
    page: object
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.blocked == [], f"requests to other hosts: {self.blocked}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
def open_page(browser):
    """open_page(url, own_origin=None) -> Watched; the page is loaded and its scripts ran."""
    contexts = []

    def _open(url: str, own_origin: str | None = None, viewport=(1400, 900)) -> Watched:
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block")
        contexts.append(ctx)
        page = ctx.new_page()
        w = Watched(page)

        def route(r):
            u = r.request.url
            if u.startswith("file://") or u.startswith("data:") or (own_origin and u.startswith(own_origin + "/")):
                r.continue_()
            else:
                w.blocked.append(u)
                r.abort()

        ctx.route("**/*", route)
        page.on("console", lambda m: w.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: w.errors.append(str(e)))
        page.goto(url, wait_until="load")
        page.wait_for_function("window.dashboardCharts !== undefined", timeout=15000)
        return w

    yield _open
    for ctx in contexts:
        ctx.close()
