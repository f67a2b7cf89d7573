"""``credit-etl dashboard --serve``: the reports folder over HTTP on the loopback interface only.

The server's root is ``DATA_DIR/reports`` so the dashboard's relative links to feedback
workbooks, Data Docs and exports work served as well as from disk. It binds 127.0.0.1 and
nothing else: the figures stay on the officer's machine (put a reverse proxy with access control
in front for colleagues). Port 0 picks a free port.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = "127.0.0.1"


class _Quiet(SimpleHTTPRequestHandler):
    # say the charset: browsers and clients must not guess the encoding of Chinese pages
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".html": "text/html; charset=utf-8",
                      ".js": "text/javascript; charset=utf-8", ".json": "application/json; charset=utf-8",
                      ".css": "text/css; charset=utf-8", ".csv": "text/csv; charset=utf-8"}

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def make_server(reports: Path, port: int = 0) -> ThreadingHTTPServer:
    handler = functools.partial(_Quiet, directory=str(reports))
    return ThreadingHTTPServer((HOST, port), handler)


def start_server(reports: Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve in a background thread; returns the server and the dashboard's URL."""
    server = make_server(reports, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}/dashboard/index.html"
