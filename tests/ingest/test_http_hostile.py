"""Hostile department servers on 127.0.0.1: a trickling server is cut off by the deadlines, a
redirect to another host is refused and recorded, a truncated JSON is called truncated, and a
dropped connection is explained in Chinese without a Python class name."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from assets.ingest import HttpSettings, ingest_day
from ingest_helpers import DAY, manifest, page_body

ENV = {"CREDIT_ETL_TOKEN_ZFCXJW": "t"}


class RawServer:
    """A TCP server on 127.0.0.1 answering every connection with ``handler(conn)``."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.handler = handler
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hits = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            conn.recv(65536)
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw_server():
    servers = []

    def make(handler):
        s = RawServer(handler)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def pull(data_dir, contracts, registry, server, **kw):
    base = dict(base_url=server.base_url, timeout=10.0, max_attempts=1, backoff=0.01)
    base.update(kw)
    ingest_day(data_dir, DAY, contracts, registry, http=HttpSettings(**base), env=ENV, depts=["zfcxjw"])
    rows = [r for r in manifest(data_dir) if r["source"] == "http" and r["feed"] == "permits"]
    assert len(rows) == 1, rows
    return rows[0]


def no_class_names(text: str) -> None:
    assert not re.search(r"[A-Z][a-z]+(Error|Exception|Timeout|Read)\b", text), text


def test_a_server_trickling_one_byte_every_5_seconds_is_cut_off(data_dir, contracts, registry, raw_server):
    def trickle(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b" ")
            time.sleep(5)

    server = raw_server(trickle)
    row = pull(data_dir, contracts, registry, server, request_deadline=6.0, source_deadline=60.0)
    # cut off by the 6 s deadline for the request (the 10 s read timeout alone would never fire)
    assert row["status"] == "rejected" and "在 6 秒内未传完" in row["error_message"] and "服务器发送过慢" in row["error_message"]
    no_class_names(row["error_message"])


def test_the_source_deadline_caps_all_attempts(data_dir, contracts, registry, raw_server):
    def slow(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(20):
            conn.sendall(b" ")
            time.sleep(1)

    server = raw_server(slow)
    row = pull(data_dir, contracts, registry, server, request_deadline=3.0, source_deadline=7.0, max_attempts=10,
               backoff=0.5)
    assert "总时限 7 秒" in row["error_message"] and server.hits < 10


def test_redirect_to_another_host_is_refused_and_recorded(data_dir, contracts, registry, raw_server):
    evil = raw_server(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"))

    def redirect(conn):
        # "localhost" is another host name than 127.0.0.1: refused even though it is loopback
        target = evil.base_url.replace("127.0.0.1", "localhost") + "/api/permits"
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())

    server = raw_server(redirect)
    row = pull(data_dir, contracts, registry, server)
    assert row["status"] == "rejected" and "重定向到另一主机" in row["error_message"] and "localhost" in row["error_message"]
    assert evil.hits == 0


def test_same_host_redirect_is_followed(data_dir, contracts, registry, raw_server):
    def redirect(conn):
        conn.sendall(f"HTTP/1.1 301 Moved\r\nLocation: /v2/api/permits?date={DAY}&page=1\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())

    server = raw_server(redirect)
    # same scheme, host and port: follow (the redirect goes back to the same server, which then
    # redirects again: the hop limit stops it with a clear reason)
    row = pull(data_dir, contracts, registry, server, max_redirects=2)
    assert "重定向次数过多" in row["error_message"]


def test_truncated_json_is_called_truncated(data_dir, contracts, registry, raw_server):
    full = page_body([{"行政相对人名称": "甲公司"}] * 50, 1, 1)
    cut = full[: len(full) // 2]

    def handler(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(cut)).encode() + b"\r\n\r\n" + cut)

    row = pull(data_dir, contracts, registry, raw_server(handler))
    assert "不完整" in row["error_message"] and "截断" in row["error_message"]
    assert "UTF-8" not in row["error_message"]


def test_truncated_in_a_chinese_character_is_still_truncated(data_dir, contracts, registry, raw_server):
    full = page_body([{"行政相对人名称": "甲公司"}] * 50, 1, 1)
    cut = full[: full.index("甲".encode()) + 1]  # ends inside a 3-byte UTF-8 character

    def handler(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(cut)).encode() + b"\r\n\r\n" + cut)

    row = pull(data_dir, contracts, registry, raw_server(handler))
    assert "不完整" in row["error_message"] and "UTF-8" not in row["error_message"]


def test_dropped_connection_reason_in_plain_chinese(data_dir, contracts, registry, raw_server):
    def drop_mid_body(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b'{"data": [' + b" " * 100)

    row = pull(data_dir, contracts, registry, raw_server(drop_mid_body))
    assert "未传完" in row["error_message"] or "连接中断" in row["error_message"], row["error_message"]
    no_class_names(row["error_message"])

    def drop_at_once(conn):
        pass  # closes without a byte

    data_dir2 = data_dir.__class__(data_dir.root.parent / "data2")
    row = pull(data_dir2, contracts, registry, raw_server(drop_at_once))
    assert "未返回任何内容就断开" in row["error_message"], row["error_message"]
    no_class_names(row["error_message"])
