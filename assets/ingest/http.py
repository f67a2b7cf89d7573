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

Memory stays bounded by the page size only through Arrow strings: each page's body is streamed
to a spool file beside the landing zone (hashed as it arrives, never held whole), then parsed
incrementally (ijson) into :class:`RecordColumns` batches. The spool files are renamed into the
landing zone by the caller once every page has arrived (a failure on page 3 of 5 still lands
nothing); they carry the writer's pid, so a crash's leftovers are removed at the next start.
Standard JSON only: ``NaN``/``Infinity`` (which Python's ``json`` accepted) are refused with a
reason. Pages up to :data:`EXACT_REASON_BYTES` that fail to parse are parsed once more with
``json`` to name the line and column of the fault; bigger ones get the streaming parser's reason.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO, Mapping
from urllib.parse import urlsplit

import requests
import urllib3

from contracts.model import Delivery
from assets.ingest.errors import IngestError
from assets.ingest.readers import RecordColumns, check_rows

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
    # one page at most (a page over it is refused, nothing kept: the department still has it); same
    # bound as readers.MAX_CSV_BYTES, so one page at the limit keeps the night below 1 GiB (issue 12)
    max_page_bytes: int = 48 * 1024 * 1024
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


EXACT_REASON_BYTES = 32 * 1024 * 1024  # a broken page up to this size is re-parsed for line/column


@dataclass
class HttpPage:
    path: Path  # spool file holding the body exactly as received (renamed into the landing zone)
    size: int
    sha256: str
    records: int


@dataclass
class HttpDelivery:
    file_id: str
    url: str
    pages: list[HttpPage]
    columns: RecordColumns  # every page's records, in order (judged by ``columns.finish``)

    @property
    def page_records(self) -> list[int]:
        return [p.records for p in self.pages]

    def discard(self) -> None:
        """Remove spool files the caller did not land."""
        for p in self.pages:
            p.path.unlink(missing_ok=True)


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


def _read_body(resp: requests.Response, limit: int, where: str, deadline: float, s: "HttpSettings",
               out: BinaryIO) -> tuple[int, str]:
    """Stream the body into ``out``: at most ``limit`` bytes, by the request's wall-clock
    ``deadline`` (monotonic). Returns (size, SHA-256 hex); the body is never held whole.

    ``read1`` returns whatever one socket read brings, so a trickling server is checked against
    the deadline after every few bytes instead of after 64 KiB."""
    size = 0
    sha = hashlib.sha256()
    declared = resp.headers.get("Content-Length")
    out.seek(0)
    out.truncate()
    while True:
        if time.monotonic() > deadline:
            raise _Deadline(f"接口{where}在 {s.request_deadline:g} 秒内未传完（已收到 {size} 字节，服务器发送过慢），已中止")
        chunk = resp.raw.read1(1 << 16, decode_content=True)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise IngestError(f"接口返回数据过大（{where}超过 {limit // (1024 * 1024)} MB），整批未接收", code="http_size")
        out.write(chunk)
        sha.update(chunk)
    if declared and declared.isdigit() and "Content-Encoding" not in resp.headers and size < int(declared):
        raise _Truncated(f"接口{where}的数据未传完就断开了连接（收到 {size} 字节，应为 {declared} 字节）")
    out.flush()
    return size, sha.hexdigest()


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
              source_deadline: float | None, out: BinaryIO) -> tuple[int, str]:
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
                        return _read_body(resp, s.max_page_bytes, where, deadline, s, out)
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
        log.warning("http %s page %s attempt %d/%d failed: %s%s", url, params["page"], attempt, attempts, problem,
                    f"; next attempt in {wait:g} s" if attempt < attempts else "")
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


class _Shape(Exception):
    """The page is valid JSON of the wrong shape (reported once the whole page has parsed)."""


class _Overflow(Exception):
    """A number beyond 64 bits: the C parser (yajl) cannot hold it; the pure-Python one can."""


def _stream_page(fh: BinaryIO, cols: RecordColumns, backend=None) -> dict:
    """Parse one page from ``fh`` event by event: each record of ``data`` is built alone and
    handed to ``cols``; the top-level ``page``/``total_pages``/``total`` are returned (the last
    occurrence wins, as with ``json``). Syntax errors raise ijson's errors; a wrong shape raises
    :class:`_Shape` after the whole page has parsed (a truncated page is reported as truncated)."""
    import ijson

    meta: dict = {"records": 0}
    top = key = None
    data = None  # None: not seen; "list"; "other"
    shape = ""
    builder, depth, target = None, 0, None
    for prefix, event, value in (backend or ijson).parse(fh, use_float=True):
        if builder is not None:
            builder.event(event, value)
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
            if depth == 0:
                target(builder.value)
                builder = None
            continue
        if prefix == "":
            if top is None:
                top = "map" if event == "start_map" else "other"
            elif event == "map_key" and top == "map":
                key = value
            continue
        if top != "map":
            continue
        if key == "data":
            if prefix == "data":
                if event == "start_array":
                    if data is not None:
                        shape = shape or "data 出现了多次"
                    data = "list"
                elif event != "end_array" and data != "list":
                    data = "other"
                continue
            if data != "list" or shape:
                continue
            target = _add_record(cols, meta)
        elif key in ("page", "total_pages", "total") and prefix == key:
            target = _set_meta(meta, key)
        else:
            continue
        if event in ("start_map", "start_array"):
            builder, depth = ijson.ObjectBuilder(), 1
            builder.event(event, value)
        else:
            target(value)
    if top != "map" or data != "list" or shape:
        raise _Shape(shape)
    return meta


def _add_record(cols: RecordColumns, meta: dict):
    def add(value):
        meta["records"] += 1
        cols.add(value)
    return add


def _set_meta(meta: dict, key: str):
    def put(value):
        meta[key] = value
    return put


def _utf8_fault(path: Path) -> str | None:
    """'truncated' when the file ends inside a UTF-8 character, 'invalid' for other bad bytes."""
    dec = codecs.getincrementaldecoder("utf-8-sig")()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                dec.decode(chunk)
            except UnicodeDecodeError:
                return "invalid"
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return "truncated"
    return None


def _parse_page_file(path: Path, size: int, page: int, cols: RecordColumns, backend=None) -> dict:
    """Check and parse one spooled page, feeding its records to ``cols``; same reasons as
    :func:`_parse_page` (which still judges small broken pages, for their line and column)."""
    import ijson

    where = f"第{page}页"
    with open(path, "rb") as fh:
        head = fh.read(256)
        if head.lstrip()[:200].lower().startswith(b"<"):
            return _parse_page(head, page)  # raises the HTML reason
        fh.seek(3 if head.startswith(codecs.BOM_UTF8) else 0)
        try:
            payload = _stream_page(fh, cols, backend)
        except _Shape as exc:
            if str(exc):
                raise IngestError(f"接口{where}返回格式不符：{exc}，整批未接收", code="http_json") from None
            raise IngestError(f"接口{where}返回格式不符：应为含 data 列表的 JSON 对象，整批未接收", code="http_json") from None
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            if backend is None and "integer overflow" in str(exc):
                raise _Overflow from None
            if size <= EXACT_REASON_BYTES:
                fh.seek(0)
                _parse_page(fh.read(), page)  # raises the exact reason (line, column, truncation)
                raise IngestError(f"接口{where}返回的 JSON 含有标准 JSON 不允许的内容（如 NaN、Infinity），整批未接收",
                                  code="http_json") from None
            fault = _utf8_fault(path)
            text = str(exc).lower()
            if fault == "truncated" or (fault is None and ("premature eof" in text or "incomplete" in text)):
                raise IngestError(f"接口{where}返回的 JSON 不完整（在第 {size} 字节处中断，数据被截断），整批未接收",
                                  code="http_truncated") from None
            if fault == "invalid":
                raise IngestError(f"接口{where}返回的内容不是 UTF-8 编码的 JSON，整批未接收", code="http_json") from None
            raise IngestError(f"接口{where}返回的 JSON 无法解析（格式错误或含有 NaN 等非标准内容），整批未接收",
                              code="http_json") from None
    _check_meta(payload, page)
    return payload


def _check_meta(payload: dict, page: int) -> None:
    tp = payload.get("total_pages")
    if tp is not None and (not isinstance(tp, int) or isinstance(tp, bool) or tp < 0):
        raise IngestError(f"接口第{page}页返回的 total_pages 无效（{tp!r}），整批未接收", code="http_json")
    got = payload.get("page")
    if got is not None and got != page and not (page == 1 and tp == 0):
        raise IngestError(f"接口请求第{page}页却返回第{got}页，整批未接收", code="http_json")


def pull(
    dept: str,
    feed: str,
    delivery: Delivery,
    day: date,
    settings: HttpSettings,
    env: Mapping[str, str],
    *,
    session: requests.Session | None = None,
    spool_dir: Path | None = None,
) -> HttpDelivery:
    """Pull every page of one day. Page bodies are spooled to files in ``spool_dir`` (put it
    on the landing zone's file system so landing is a rename); on failure none is left behind,
    on success the caller lands them (or calls :meth:`HttpDelivery.discard`)."""
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
    spool = Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir())
    spool.mkdir(parents=True, exist_ok=True)
    got = HttpDelivery("", url, [], RecordColumns())
    try:
        page, total_pages, total, backend = 1, 1, None, None
        source_deadline = time.monotonic() + settings.source_deadline
        while page <= total_pages:
            if page > settings.max_pages:
                raise IngestError(f"接口页数超过上限（{settings.max_pages} 页），整批未接收", code="http_json")
            params = {"date": day.isoformat(), "page": page, "page_size": page_size}
            # the writer's pid in the name: warehouse.tempfiles removes a crashed run's spool files
            fd, tmp = tempfile.mkstemp(prefix=f".http-page.{os.getpid()}-", suffix=".tmp", dir=spool)
            path = Path(tmp)
            got.pages.append(HttpPage(path, 0, "", 0))
            with os.fdopen(fd, "w+b") as fh:
                size, sha = _get_page(session, url, params, headers, settings, source_deadline, fh)
            try:
                payload = _parse_page_file(path, size, page, got.columns, backend)
            except _Overflow:
                # rare (a 20-digit number): parse this delivery's pages again with ijson's
                # pure-Python backend, slower but exact for any integer, as json is
                import ijson

                backend = ijson.get_backend("python")
                got.columns = RecordColumns()
                for i, done in enumerate(got.pages[:-1], start=1):
                    _parse_page_file(done.path, done.size, i, got.columns, backend)
                payload = _parse_page_file(path, size, page, got.columns, backend)
            got.pages[-1] = HttpPage(path, size, sha, payload["records"])
            check_rows(payload["records"], f"接口第{page}页", "整批", "请部门减小每页条数（page_size）")
            if page == 1:
                total_pages = payload.get("total_pages")
                if total_pages is None:
                    total_pages = 1
                total = payload.get("total")
            elif payload.get("total_pages") not in (None, total_pages):
                raise IngestError("读取过程中接口总页数发生变化（数据在变动），整批未接收，下次运行将重新拉取", code="http_json")
            page += 1
        n = sum(p.records for p in got.pages)
        if isinstance(total, int) and not isinstance(total, bool) and total != n:
            raise IngestError(f"接口声明共 {total} 条记录，实际读到 {n} 条，整批未接收，下次运行将重新拉取", code="http_json")
    except BaseException:
        got.discard()
        raise
    finally:
        if own:
            session.close()
    got.file_id = delivery_id(dept, feed, day, [p.sha256 for p in got.pages])
    return got


def http_env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env
