"""The monthly bulletin (通报) as an A4 PDF, printed by headless Chromium.

Chromium is the system's (Debian ``chromium``), run with no network: the bulletin is static
HTML with inline styles and system fonts, and every host name resolves to nothing, so a
stray reference could not leave the machine. No header or footer is added by the browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from warehouse.files import atomic_path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ChromiumMissing(RuntimeError):
    pass


def find_chromium() -> str | None:
    """$CREDIT_ETL_CHROMIUM, else the first Chromium on PATH, else /usr/bin/chromium."""
    env = os.environ.get("CREDIT_ETL_CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def offline_chromium_args(profile: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
            f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND"]


def html_to_pdf(html: Path, pdf: Path, *, timeout: float = 120) -> Path:
    """Print ``html`` to ``pdf`` (A4 from the page's @page rule); raise with Chromium's stderr."""
    browser = find_chromium()
    if browser is None:
        raise ChromiumMissing("未找到 Chromium，无法生成 PDF（请安装 chromium）/ no chromium binary: install the chromium package")
    # the bulletin is for people (no personal field): the office's umask, like the HTML pages
    with atomic_path(pdf, private=False) as tmp_pdf:
        with tempfile.TemporaryDirectory(prefix="credit-etl-chromium-") as profile:
            cmd = [browser, *offline_chromium_args(Path(profile)), "--no-pdf-header-footer",
                   f"--print-to-pdf={tmp_pdf}", html.resolve().as_uri()]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not tmp_pdf.exists() or tmp_pdf.stat().st_size == 0:
            raise RuntimeError(f"Chromium 生成 PDF 失败 / chromium failed to print the PDF (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return pdf
