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
import urllib3

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
    # Wall-clock caps: a server that trickles bytes never trips the read timeout, so each request
    # (all of its body) and each department feed's whole pull (all pages, retries and waits
    # included) has a total deadline; past it the delivery is rejected and pulled again next night.
    request_deadline: float = 300.0
    source_deadline: float = 1800.0
    max_redirects: int = 5  # same-host redirects followed; another host is refused (recorded)

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


def _read_body(resp: requests.Response, limit: int, where: str, deadline: float, s: "HttpSettings") -> bytes:
    """The body, at most ``limit`` bytes, by the request's wall-clock ``deadline`` (monotonic).

    ``read1`` returns whatever one socket read brings, so a trickling server is checked against
    the deadline after every few bytes instead of after 64 KiB."""
    chunks, size = [], 0
    declared = resp.headers.get("Content-Length")
    while True:
        if time.monotonic() > deadline:
            raise _Deadline(f"接口{where}在 {s.request_deadline:g} 秒内未传完（已收到 {size} 字节，服务器发送过慢），已中止")
        chunk = resp.raw.read1(1 << 16, decode_content=True)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise IngestError(f"接口返回数据过大（{where}超过 {limit // (1024 * 1024)} MB），整批未接收", code="http_size")
        chunks.append(chunk)
    if declared and declared.isdigit() and "Content-Encoding" not in resp.headers and size < int(declared):
        raise _Truncated(f"接口{where}的数据未传完就断开了连接（收到 {size} 字节，应为 {declared} 字节）")
    return b"".join(chunks)


class _Deadline(Exception):
    pass


class _Truncated(Exception):
    pass


def _plain_reason(exc: BaseException) -> str:
    """A network failure in words a clerk understands (never a Python class name)."""
    text = str(exc)
    low = text.lower()
    if "timed out" in low or "timeout" in low:
        return "接口响应超时"
    if "incompleteread" in low or "connection broken" in low or "chunked" in low:
        return "接口传输数据时连接中断（数据未传完）"
    if "remotedisconnected" in low or "without response" in low or "connection aborted" in low:
        return "接口服务器未返回任何内容就断开了连接"
    if "reset by peer" in low or "connection reset" in low:
        return "接口连接被对方重置（服务器中途断开）"
    if "refused" in low or "failed to establish" in low or "name or service" in low or "resolve" in low:
        return "无法连接接口（网络不通或服务未启动）"
    if "decode" in low:
        return "接口返回的压缩数据无法解压"
    return "接口连接异常中断"


def _same_host(a: str, b: str) -> bool:
    pa_, pb = urlsplit(a), urlsplit(b)
    return (pa_.scheme, pa_.hostname, pa_.port) == (pb.scheme, pb.hostname, pb.port)


def _get_page(session: requests.Session, url: str, params: dict, headers: dict, s: HttpSettings,
              source_deadline: float | None = None) -> bytes:
    from urllib.parse import urljoin

    where = f"第{params['page']}页"
    connect = s.connect_timeout if s.connect_timeout is not None else min(s.timeout, 10.0)
    problem = ""
    attempts = max(1, s.max_attempts)
    source_deadline = source_deadline if source_deadline is not None else time.monotonic() + s.source_deadline
    for attempt in range(1, attempts + 1):
        wait = min(s.backoff * (2 ** (attempt - 1)), s.backoff_max)
        deadline = min(time.monotonic() + s.request_deadline, source_deadline)
        try:
            target, query = url, params
            for _hop in range(s.max_redirects + 1):
                with session.get(target, params=query, headers=headers, timeout=(connect, s.timeout), stream=True,
                                 allow_redirects=False) as resp:
                    status = resp.status_code
                    if status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                        nxt = urljoin(resp.url, resp.headers["Location"])
                        if not _same_host(nxt, url):
                            host = urlsplit(nxt).netloc or nxt
                            raise IngestError(f"接口将请求重定向到另一主机（{host}），出于安全原因拒绝跟随，"
                                              "本次未接收任何数据；请联系部门核实接口地址", code="http_redirect")
                        target, query = nxt, None
                        continue
                    if status == 200:
                        return _read_body(resp, s.max_page_bytes, where, deadline, s)
                    break
            else:
                raise IngestError(f"接口重定向次数过多（超过 {s.max_redirects} 次），本次未接收任何数据", code="http_redirect")
            if status in (301, 302, 303, 307, 308):
                raise IngestError(f"接口返回重定向（HTTP {status}）但没有目标地址，本次未接收任何数据", code="http_redirect")
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
        except (_Deadline, _Truncated) as exc:
            problem = str(exc)
        except requests.Timeout:
            problem = f"接口响应超时（连接 {connect:g} 秒 / 读取 {s.timeout:g} 秒内无响应）"
        except requests.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                problem = f"接口响应超时（读取 {s.timeout:g} 秒内无响应）"
            else:
                problem = _plain_reason(exc)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            # urllib3 errors from read1 (ProtocolError, ReadTimeoutError ...) are not wrapped
            problem = _plain_reason(exc)
        log.warning("http %s page %s attempt %d/%d failed: %s", url, params["page"], attempt, attempts, problem)
        if time.monotonic() + (wait if attempt < attempts else 0) >= source_deadline:
            raise IngestError(f"{problem}；本接口本次拉取已超过总时限 {s.source_deadline:g} 秒，已停止，"
                              "本次未接收任何数据（下次运行将重新拉取）", code="http_deadline")
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
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.end >= len(body) - 1 and exc.reason == "unexpected end of data":
            raise IngestError(f"接口{where}返回的 JSON 不完整（在第 {len(body)} 字节处中断，数据被截断），整批未接收",
                              code="http_truncated") from None
        raise IngestError(f"接口{where}返回的内容不是 UTF-8 编码的 JSON，整批未接收", code="http_json") from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        if getattr(exc, "pos", 0) >= len(text.rstrip()) - 1:
            raise IngestError(f"接口{where}返回的 JSON 不完整（在第 {len(body)} 字节处中断，数据被截断），整批未接收",
                              code="http_truncated") from None
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
        source_deadline = time.monotonic() + settings.source_deadline
        while page <= total_pages:
            if page > settings.max_pages:
                raise IngestError(f"接口页数超过上限（{settings.max_pages} 页），整批未接收", code="http_json")
            params = {"date": day.isoformat(), "page": page, "page_size": page_size}
            body = _get_page(session, url, params, headers, settings, source_deadline)
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
