"""Pull one department feed for one day from its HTTP endpoint.

Protocol: ``GET <url>?date=YYYY-MM-DD&page=N&page_size=M`` with ``Authorization: Bearer <token>``
(token from the environment variable named by ``token_env`` in departments.yaml; never logged or
put in a message). Answer: ``{"data": [...], "page": N, "total_pages": T, "total": n}``.

Every page is read and checked before anything is kept: a failure on page 3 of 5 lands nothing
and yields an :class:`IngestError` whose Chinese message becomes the manifest record. Timeouts,
connection errors, 5xx and 429 are retried with exponential backoff (429 honours Retry-After
seconds, capped); other statuses fail at once.

The delivery's ``file_id`` is the SHA-256 of the text ``"http\\n<dept>\\n<feed>\\n<date>\\n"``
followed by the pages' SHA-256 hex digests joined by ``\\n`` (page order). Including the request
makes an empty day's answer (identical bytes every day) a delivery of its own day, while pulling
the same day again with the same answer gives the same id and is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Mapping
from urllib.parse import urlsplit

import requests

from contracts.model import Delivery
from assets.ingest.errors import IngestError

log = logging.getLogger(__name__)

HTTP_BASE_ENV = "CREDIT_ETL_HTTP_BASE"


@dataclass(frozen=True)
class HttpSettings:
    """How department endpoints are pulled.

    ``base_url`` (or ``$CREDIT_ETL_HTTP_BASE``) replaces scheme, host and port of every registry
    URL (a path in it is prefixed), e.g. ``http://127.0.0.1:43121`` for the local sample server.
    ``urls`` overrides single endpoints: ``{"zfcxjw/permits": "http://host/api/permits"}``.
    """

    timeout: float = 30.0  # read timeout, seconds
    connect_timeout: float | None = None  # default: min(timeout, 10)
    max_attempts: int = 5  # per page, first try included
    backoff: float = 1.0  # wait before the 2nd attempt; doubles each time
    backoff_max: float = 60.0
    max_retry_after: float = 120.0  # cap on a server's Retry-After
    base_url: str | None = None
    urls: Mapping[str, str] = field(default_factory=dict)
    page_size: int | None = None  # default: the registry's page_size
    max_pages: int = 10_000
    max_page_bytes: int = 200 * 1024 * 1024
    enabled: bool = True

    def endpoint(self, dept: str, feed: str, delivery: Delivery, env: Mapping[str, str]) -> str:
        if f"{dept}/{feed}" in self.urls:
            return self.urls[f"{dept}/{feed}"]
        base = self.base_url or env.get(HTTP_BASE_ENV)
        url = delivery.url or ""
        if base:
            parts = urlsplit(url)
            url = base.rstrip("/") + (parts.path or "/")
        return url


@dataclass
class HttpDelivery:
    file_id: str
    url: str
    pages: list[bytes]
    page_records: list[int]
    records: list


def delivery_id(dept: str, feed: str, day: date, page_hashes: list[str]) -> str:
    text = f"http\n{dept}\n{feed}\n{day.isoformat()}\n" + "\n".join(page_hashes)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _read_body(resp: requests.Response, limit: int, where: str) -> bytes:
    chunks, size = [], 0
    for chunk in resp.iter_content(chunk_size=1 << 16):
        size += len(chunk)
        if size > limit:
            raise IngestError(f"接口返回数据过大（{where}超过 {limit // (1024 * 1024)} MB），整批未接收", code="http_size")
        chunks.append(chunk)
    return b"".join(chunks)


def _get_page(session: requests.Session, url: str, params: dict, headers: dict, s: HttpSettings) -> bytes:
    where = f"第{params['page']}页"
    connect = s.connect_timeout if s.connect_timeout is not None else min(s.timeout, 10.0)
    problem = ""
    attempts = max(1, s.max_attempts)
    for attempt in range(1, attempts + 1):
        wait = min(s.backoff * (2 ** (attempt - 1)), s.backoff_max)
        try:
            with session.get(url, params=params, headers=headers, timeout=(connect, s.timeout), stream=True) as resp:
                status = resp.status_code
                if status == 200:
                    return _read_body(resp, s.max_page_bytes, where)
                if status == 429 or status >= 500:
                    problem = f"接口返回 HTTP {status}（{'请求过于频繁' if status == 429 else '服务器错误'}）"
                    ra = _retry_after(resp.headers.get("Retry-After"))
                    if ra is not None:
                        wait = min(ra, s.max_retry_after)
                elif status in (401, 403):
                    raise IngestError(f"接口拒绝访问（HTTP {status}）：访问令牌无效或无权限，请核对令牌配置", code="http_auth")
                elif status == 404:
                    raise IngestError(f"接口地址不存在（HTTP 404）：{url}", code="http_status")
                else:
                    raise IngestError(f"接口返回 HTTP {status}，{where}读取失败", code="http_status")
        except requests.Timeout:
            problem = f"接口响应超时（连接 {connect:g} 秒 / 读取 {s.timeout:g} 秒内无响应）"
        except requests.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                problem = f"接口响应超时（读取 {s.timeout:g} 秒内无响应）"
            else:
                problem = "无法连接接口（网络不通或服务未启动）"
        except requests.RequestException as exc:
            problem = f"接口请求失败（{type(exc).__name__}）"
        log.warning("http %s page %s attempt %d/%d failed: %s", url, params["page"], attempt, attempts, problem)
        if attempt < attempts:
            time.sleep(wait)
    raise IngestError(f"{problem}；{where}已尝试 {attempts} 次仍失败，本次未接收任何数据（下次运行将重新拉取）", code="http_retry")


def _parse_page(body: bytes, page: int) -> dict:
    where = f"第{page}页"
    head = body.lstrip()[:200].lower()
    if head.startswith(b"<"):
        kind = "网页（HTML）" if (b"<html" in head or b"<!doctype" in head) else "XML/HTML"
        raise IngestError(f"接口{where}返回的是{kind}而不是 JSON 数据，整批未接收（请联系部门检查接口）", code="http_json")
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise IngestError(f"接口{where}返回的内容不是 UTF-8 编码的 JSON，整批未接收", code="http_json") from None
    except ValueError as exc:
        raise IngestError(f"接口{where}返回的 JSON 无法解析（{exc.msg}，第{exc.lineno}行第{exc.colno}列），整批未接收", code="http_json") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise IngestError(f"接口{where}返回格式不符：应为含 data 列表的 JSON 对象，整批未接收", code="http_json")
    tp = payload.get("total_pages")
    if tp is not None and (not isinstance(tp, int) or isinstance(tp, bool) or tp < 0):
        raise IngestError(f"接口{where}返回的 total_pages 无效（{tp!r}），整批未接收", code="http_json")
    got = payload.get("page")
    if got is not None and got != page and not (page == 1 and tp == 0):
        raise IngestError(f"接口请求第{page}页却返回第{got}页，整批未接收", code="http_json")
    return payload


def pull(
    dept: str,
    feed: str,
    delivery: Delivery,
    day: date,
    settings: HttpSettings,
    env: Mapping[str, str],
    *,
    session: requests.Session | None = None,
) -> HttpDelivery:
    url = settings.endpoint(dept, feed, delivery, env)
    headers = {"Accept": "application/json"}
    if delivery.token_env:
        token = env.get(delivery.token_env)
        if not token:
            raise IngestError(f"未配置接口访问令牌：请设置环境变量 {delivery.token_env}", code="http_auth")
        headers["Authorization"] = f"Bearer {token}"
    page_size = settings.page_size or delivery.page_size
    own = session is None
    session = session or requests.Session()
    try:
        pages: list[bytes] = []
        counts: list[int] = []
        records: list = []
        page, total_pages, total = 1, 1, None
        while page <= total_pages:
            if page > settings.max_pages:
                raise IngestError(f"接口页数超过上限（{settings.max_pages} 页），整批未接收", code="http_json")
            params = {"date": day.isoformat(), "page": page, "page_size": page_size}
            body = _get_page(session, url, params, headers, settings)
            payload = _parse_page(body, page)
            if page == 1:
                total_pages = payload.get("total_pages")
                if total_pages is None:
                    total_pages = 1
                total = payload.get("total")
            elif payload.get("total_pages") not in (None, total_pages):
                raise IngestError("读取过程中接口总页数发生变化（数据在变动），整批未接收，下次运行将重新拉取", code="http_json")
            pages.append(body)
            counts.append(len(payload["data"]))
            records.extend(payload["data"])
            page += 1
        if isinstance(total, int) and not isinstance(total, bool) and total != len(records):
            raise IngestError(f"接口声明共 {total} 条记录，实际读到 {len(records)} 条，整批未接收，下次运行将重新拉取", code="http_json")
    finally:
        if own:
            session.close()
    hashes = [hashlib.sha256(p).hexdigest() for p in pages]
    return HttpDelivery(delivery_id(dept, feed, day, hashes), url, pages, counts, records)


def http_env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env
