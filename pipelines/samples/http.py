"""A small department API for the demo and tests: serves the sample generator's HTTP outbox.

``DATA_DIR/http_outbox/<dept>/<feed>/<YYYY-MM-DD>.json`` holds a JSON list of records. The server
answers ``GET /api/<feed>?date=YYYY-MM-DD&page=N&page_size=M`` (also ``/<dept>/api/<feed>`` and
``/api/<dept>/<feed>``) with ``{"data": [...], "page": N, "total_pages": T, "total": n}``.

With ``tokens`` ({dept: token}) every request needs ``Authorization: Bearer <token>``; the token
also tells which department is asking when the path does not say. A day with no file is an empty
answer (``total`` 0, ``total_pages`` 0), as a real endpoint would give.

    server, base_url = start_sample_server(data_dir, tokens={"zfcxjw": "secret"})
    ...  # HttpSettings(base_url=base_url)
    server.shutdown(); server.server_close()    # or: with server: ...
"""

from __future__ import annotations

import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qs, urlsplit

from warehouse.layout import DataDir

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SampleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, outbox: Path, tokens: Mapping[str, str] | None):
        super().__init__(addr, _Handler)
        self.outbox = outbox
        self.tokens = dict(tokens or {})
        self.requests_seen: list[dict] = []  # path, query and whether auth was present (no token)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="sample-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server: SampleServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet; never log headers (tokens)
        pass

    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        segs = [s for s in parts.path.split("/") if s]
        auth = self.headers.get("Authorization", "")
        self.server.requests_seen.append({"path": parts.path, "query": query, "authorized": bool(auth)})
        dept = None
        if self.server.tokens:
            token = auth[7:] if auth.startswith("Bearer ") else None
            owners = [d for d, t in self.server.tokens.items() if token is not None and t == token]
            if not owners:
                self._send(401, {"error": "unauthorized"})
                return
            dept = owners[0]
        if len(segs) == 2 and segs[0] == "api":
            feed = segs[1]
        elif len(segs) == 3 and segs[1] == "api":
            dept_in_path, feed = segs[0], segs[2]
            if dept is not None and dept_in_path != dept:
                self._send(403, {"error": "forbidden"})
                return
            dept = dept_in_path
        elif len(segs) == 3 and segs[0] == "api":
            dept_in_path, feed = segs[1], segs[2]
            if dept is not None and dept_in_path != dept:
                self._send(403, {"error": "forbidden"})
                return
            dept = dept_in_path
        else:
            self._send(404, {"error": "not found"})
            return
        day = query.get("date", "")
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("page_size", "500"))
        except ValueError:
            self._send(400, {"error": "bad page or page_size"})
            return
        if not _NAME.match(feed) or not _DAY.match(day) or page < 1 or not 1 <= size <= 10000:
            self._send(400, {"error": "bad request"})
            return
        if dept is None:  # no auth configured: the one department that has this feed
            owners = sorted(p.name for p in self.server.outbox.glob("*") if (p / feed).is_dir())
            dept = owners[0] if owners else None
        records: list = []
        if dept is not None and _NAME.match(dept):
            path = self.server.outbox / dept / feed / f"{day}.json"
            if path.is_file():
                records = json.loads(path.read_text(encoding="utf-8"))
        total = len(records)
        total_pages = math.ceil(total / size)
        chunk = records[(page - 1) * size : page * size]
        self._send(200, {"data": chunk, "page": page, "total_pages": total_pages, "total": total})


def start_sample_server(
    data_dir: DataDir | str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    tokens: Mapping[str, str] | None = None,
) -> tuple[SampleServer, str]:
    """Start the sample API in a background thread; returns (server, base_url).

    Stop it with ``server.stop()`` (or use the server as a context manager)."""
    root = data_dir.root if isinstance(data_dir, DataDir) else Path(data_dir)
    server = SampleServer((host, port), root / "http_outbox", tokens)
    server.start()
    h, p = server.server_address[:2]
    return server, f"http://{h}:{p}"
