"""Shared fixtures for the ingest tests: real files on disk, real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingest_helpers import Scripted, page_body
from warehouse.layout import DataDir


@pytest.fixture
def data_dir(tmp_path) -> DataDir:
    return DataDir(tmp_path / "data")


@pytest.fixture
def scripted_server():
    from urllib.parse import parse_qs, urlsplit

    state = Scripted()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            state.requests.append({"path": parts.path, "query": query, "auth": self.headers.get("Authorization")})
            ans = state.next(parts.path)
            if callable(ans):
                ans = ans(query)
            if ans[0] == "sleep":
                time.sleep(ans[1])
                ans = ans[2] if len(ans) > 2 else (200, {}, page_body([], 1, 0))
            status, headers, body = ans
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)
