"""The province's receiving endpoint for the counties' upward push (``assets/push/push.py``).

A county's ``send_pending`` POSTs one batch per request (JSON layout of ``render_payload``:
``batch_id``, ``region_code``, ``feed``, ``catalog_item``, ``records``, ``withdrawals``) with
``Authorization: Bearer <token>`` and ``Idempotency-Key: <batch_id>``, and counts the batch as
delivered only on 2xx with ``{"batch_id": <id>, "status": "accepted" | "duplicate"}``. This
server (the standard library's ``ThreadingHTTPServer``; no new dependency) answers exactly that:

- an accepted batch is written atomically (temporary file + rename, ``warehouse.files``) to
  ``<inbox>/<region_code>/<YYYY-MM-DD received day>/<batch_id>.json``, byte for byte as POSTed,
  and answered ``accepted``;
- a batch id already in the county's inbox (any day) is answered ``duplicate`` and not written
  again, so a resend after a lost answer never duplicates;
- everything else is refused with a 4xx and a Chinese reason in ``{"error": ...}``: wrong or
  missing token 401, a body over the size limit 413 (not read), not JSON 415, malformed JSON or
  a batch missing its fields 400, an unknown county 403, another path 404.

Every answer is one line of ``<receipts log>`` (JSON lines: time, HTTP status, outcome, reason,
county code, feed, batch id, counts, bytes) — never the token, a record's values or the client's
address. The received day is the province's calendar day (``today``, default the machine's local
date). Choices where the issue is silent: the endpoint path is ``/push`` (``PUSH_PATH``); CSV
batches are refused (the province's inbox holds the JSON layout: set ``format: json`` for the
province target); the duplicate check looks in the pushing county's own folder (batch ids are
hashes of one county's target, feed and items) and is serialised by a lock in this process (run
one receiver process per inbox).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import signal
import threading
from dataclasses import dataclass
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Mapping

from contracts.province_receiver import ReceiverSettings
from warehouse.files import write_bytes
from warehouse.masking import scrub_text

log = logging.getLogger(__name__)

PUSH_PATH = "/push"
RECEIPTS_FILE = "receipts.jsonl"
BATCH_ID = re.compile(r"[0-9A-Za-z_-]{8,128}")
REGION_CODE = re.compile(r"\d{6}")

__all__ = ["PUSH_PATH", "ProvinceReceiver", "ReceiverConfigError", "ReceiverSettings", "Refusal", "find_batch",
           "inbox_path", "serve"]


class ReceiverConfigError(ValueError):
    """The receiver cannot start as configured (e.g. its token variable is unset)."""


@dataclass
class Refusal(Exception):
    status: int
    reason: str  # Chinese, for the county's officer; never echoes a record's values
    info: dict | None = None  # county code and batch id for the receipts log, once they are known valid


def inbox_path(inbox: Path, region_code: str, day: date, batch_id: str) -> Path:
    """Where a batch lands (PROVINCE.md): ``<inbox>/<county>/<received day>/<batch_id>.json``."""
    return inbox / region_code / day.isoformat() / f"{batch_id}.json"


def find_batch(inbox: Path, region_code: str, batch_id: str) -> Path | None:
    """The county's earlier copy of ``batch_id`` on any day, if there is one."""
    folder = inbox / region_code
    if not folder.is_dir():
        return None
    return next(iter(sorted(folder.glob(f"*/{batch_id}.json"))), None)


def _reject_constant(name: str):
    raise ValueError(f"非法数值 {name}")


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("同一对象中有重复的键")
    return dict(pairs)


def parse_batch(body: bytes, counties: Mapping[str, str], idempotency_key: str | None) -> dict:
    """The batch as the county's push builds it, or a :class:`Refusal` with the reason."""
    try:
        doc = json.loads(body.decode("utf-8-sig"), parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError:
        raise Refusal(400, "批次不是 UTF-8 编码的 JSON") from None
    except json.JSONDecodeError as exc:
        raise Refusal(400, f"批次不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列附近）") from None
    except RecursionError:
        raise Refusal(400, "批次不是有效的 JSON（嵌套过深）") from None
    except ValueError as exc:  # NaN/Infinity, a key twice, an integer of thousands of digits
        detail = str(exc) if str(exc).startswith(("非法数值", "同一对象")) else "数值过长"
        raise Refusal(400, f"批次不是有效的 JSON（{detail}）") from None
    if not isinstance(doc, dict):
        raise Refusal(400, "批次应为 JSON 对象")
    for name, kind, label in (("batch_id", str, "文本"), ("region_code", str, "文本"), ("feed", str, "文本"),
                              ("records", list, "列表"), ("withdrawals", list, "列表")):
        if name not in doc:
            raise Refusal(400, f"批次缺少字段 {name}")
        if not isinstance(doc[name], kind):
            raise Refusal(400, f"批次字段 {name} 应为{label}")
    if not BATCH_ID.fullmatch(doc["batch_id"]):
        raise Refusal(400, "批次编号 batch_id 格式不正确（应为 8–128 位字母、数字、- 或 _）")
    if idempotency_key is not None and idempotency_key != doc["batch_id"]:
        raise Refusal(400, "请求头 Idempotency-Key 与批次编号 batch_id 不一致")
    if not all(isinstance(r, dict) for r in doc["records"] + doc["withdrawals"]):
        raise Refusal(400, "records 与 withdrawals 的每一项应为 JSON 对象")
    if not REGION_CODE.fullmatch(doc["region_code"]):
        raise Refusal(400, "区县代码 region_code 应为 6 位数字")
    if doc["region_code"] not in counties:
        raise Refusal(403, f"区县代码 {doc['region_code']} 未在省级平台登记，不予接收；请联系省信用办登记后重发",
                      {"region_code": doc["region_code"], "batch_id": doc["batch_id"]})
    return doc


class ProvinceReceiver:
    """The endpoint and its state: inbox, counties, token, size limit, receipts log, lock."""

    def __init__(self, inbox: str | Path, counties: Mapping[str, str], token: str, *,
                 max_body_bytes: int = ReceiverSettings().max_body_bytes, receipts: str | Path | None = None,
                 today: Callable[[], date] = date.today):
        if not token:
            raise ReceiverConfigError("省级收件端的令牌为空，拒绝启动")
        self.inbox = Path(inbox)
        self.counties = dict(counties)
        self._token = token
        self.max_body_bytes = max_body_bytes
        self.receipts = Path(receipts) if receipts else self.inbox.parent / "receiver" / RECEIPTS_FILE
        self.today = today
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: ReceiverSettings, data_dir: str | Path, counties: Mapping[str, str],
                      env: Mapping[str, str], **kw) -> "ProvinceReceiver":
        """Token from the environment variable the settings name (exit 3 territory when unset)."""
        token = env.get(settings.token_env, "")
        if not token:
            raise ReceiverConfigError(f"未设置省级收件令牌环境变量 {settings.token_env}，收件端未启动")
        inbox = settings.inbox or Path(data_dir) / "inbox"
        return cls(inbox, counties, token, max_body_bytes=settings.max_body_bytes,
                   receipts=Path(data_dir) / "receiver" / RECEIPTS_FILE, **kw)

    # -- the decision, independent of HTTP -------------------------------------------------
    def authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self._token.encode())

    def accept(self, body: bytes, idempotency_key: str | None = None) -> tuple[int, dict, dict]:
        """(HTTP status, answer, receipt fields) for one authorised, size-checked body."""
        doc = parse_batch(body, self.counties, idempotency_key)
        bid, county = doc["batch_id"], doc["region_code"]
        info = {"region_code": county, "feed": scrub_text(doc["feed"])[:64], "batch_id": bid,
                "records": len(doc["records"]), "withdrawals": len(doc["withdrawals"])}
        with self._lock:
            earlier = find_batch(self.inbox, county, bid)
            if earlier is not None:
                info["received_day"] = earlier.parent.name
                return 200, {"batch_id": bid, "status": "duplicate"}, info
            day = self.today()
            write_bytes(body, inbox_path(self.inbox, county, day, bid), private=True)  # full identifiers
        info["received_day"] = day.isoformat()
        return 200, {"batch_id": bid, "status": "accepted"}, info

    def record(self, status: int, outcome: str, reason: str | None, info: dict, size: int | None) -> None:
        """One line of the receipts log: no token, no record values, no client address."""
        line = {"time": datetime.now().isoformat(timespec="seconds"), "status": status, "outcome": outcome,
                "reason": scrub_text(reason) if reason else None, **info, "bytes": size}
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        with self._log_lock:
            self.receipts.parent.mkdir(parents=True, exist_ok=True)
            with open(self.receipts, "ab") as fh:
                fh.write(data)

    # -- HTTP ------------------------------------------------------------------------------
    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "credit-etl-province"
            sys_version = ""
            timeout = 60  # a client that stops sending mid-body does not hold a thread for ever

            def log_message(self, *args):  # the receipts log is the record; no client addresses
                pass

            def _answer(self, status: int, doc: dict, *, close: bool = False) -> None:
                data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, status: int, reason: str, size: int | None, info: dict | None = None, close=False):
                receiver.record(status, "refused", reason, info or {}, size)
                self._answer(status, {"error": reason, "status": "refused"}, close=close)

            def do_GET(self):
                self._refuse(405, f"请使用 POST 向 {PUSH_PATH} 推送批次", None)

            def do_POST(self):
                path = self.path.split("?", 1)[0]
                if path != PUSH_PATH:
                    return self._refuse(404, f"地址不存在，请推送到 {PUSH_PATH}", None, close=True)
                if not receiver.authorised(self.headers.get("Authorization")):
                    return self._refuse(401, "推送令牌缺失或不正确，不予接收", None, close=True)
                raw_len = self.headers.get("Content-Length")
                if raw_len is None or not raw_len.strip().isdigit():
                    return self._refuse(411, "请求缺少有效的 Content-Length", None, close=True)
                size = int(raw_len)
                if size > receiver.max_body_bytes:
                    limit = receiver.max_body_bytes / 1024 / 1024
                    return self._refuse(413, f"批次大小 {size} 字节超过上限 {limit:g} MB，请拆分后重发", size, close=True)
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype not in ("application/json", ""):
                    # the body is not read: close the connection instead of draining it
                    return self._refuse(415, "省级平台只接收 JSON 格式的批次（推送设置 format: json）", size, close=True)
                body = self.rfile.read(size)
                if len(body) != size:
                    return self._refuse(400, "批次未完整送达", len(body), close=True)
                try:
                    status, answer, info = receiver.accept(body, self.headers.get("Idempotency-Key"))
                except Refusal as exc:
                    return self._refuse(exc.status, exc.reason, size, exc.info)
                except OSError:
                    log.exception("province inbox write failed")
                    receiver.record(503, "failed", "省级收件目录写入失败，请稍后重发", {}, size)
                    return self._answer(503, {"error": "省级收件目录写入失败，请稍后重发", "status": "failed"})
                receiver.record(status, answer["status"], None, info, size)
                self._answer(status, answer)

        return Handler

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "ProvinceReceiver":
        """Serve in a background thread (tests, the Dagster-free CLI); ``port`` 0 picks a free one.

        A county that hangs up before its answer is written must not end the process: SIGPIPE
        is ignored (``credit-etl`` sets it to the default so that ``… | head`` ends quietly), so
        such a write fails with BrokenPipeError in the handler's thread only."""
        if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.server = ThreadingHTTPServer((host, port), self.handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="province-receiver", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None, "not started"
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        return f"http://{host}:{self.port}{PUSH_PATH}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve(receiver: ProvinceReceiver, host: str, port: int, out: Callable[[str], None] = print) -> None:
    """Serve in the foreground until Ctrl+C / SIGTERM (``credit-etl province receive``)."""
    receiver.start(host, port)
    out(f"省级收件端已启动 / receiving: {receiver.url}（收件目录 {receiver.inbox}，回执日志 {receiver.receipts}）")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        receiver.stop()
        out("省级收件端已停止 / stopped")
