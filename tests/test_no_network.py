"""No request to any non-loopback host during a night (which also proves telemetry is off).

A whole ``credit-etl run`` (with its HTTP department on a real local server) runs under
``strace -f -e trace=connect``, which sees every connect() of the process tree, those made inside
C libraries included (DuckDB, pyarrow, libpq open their own sockets, unseen by Python): each must
go to a loopback address or a local (AF_UNIX) socket. A Python audit hook on ``socket.connect`` and
``socket.getaddrinfo`` also fails the run on the first Python-level attempt and on a lookup of a
non-local name (resolved through a local stub or nscd, that lookup would reach strace only as a
loopback or AF_UNIX connect)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.samples.feeds import generate

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 10, 5)

SCRIPT = r"""
import ipaddress, json, os, sys
seen = []

def loopback(host):
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False

def hook(event, args):
    if event == "socket.connect":
        addr = args[1]
        if isinstance(addr, tuple):
            seen.append(["connect", str(addr[0])])
            if not loopback(str(addr[0])):
                raise RuntimeError(f"non-loopback connection attempted: {addr!r}")
    elif event == "socket.getaddrinfo":
        seen.append(["resolve", str(args[0])])
        if not loopback(str(args[0])):
            raise RuntimeError(f"name lookup of a non-local host: {args[0]!r}")

sys.addaudithook(hook)
from contracts import load_contracts, load_registry
from pipelines.samples.http import start_sample_server
data = sys.argv[1]
tokens = {}
for dept in load_registry(contracts=load_contracts()).departments:
    for d in dept.delivery.values():
        if d.kind == "http":
            os.environ[d.token_env] = "t"
            tokens[dept.code] = "t"
server, base = start_sample_server(data, tokens=tokens)
os.environ["CREDIT_ETL_HTTP_BASE"] = base
from pipelines.cli import main
code = main(["--data-dir", data, "run", "--date", sys.argv[2]])
server.stop()
print("AUDIT " + json.dumps({"code": code, "seen": seen}))
"""


# a connect() as strace prints it: the pid, then the call up to its address (an unfinished call
# of one thread prints its address too; its "<... connect resumed>" line carries none)
CONNECT = re.compile(r"^\d+\s+connect\(\d+, \{sa_family=(AF_\w+)(.*?)\}, \d+")
INET = re.compile(r'inet_addr\("([^"]+)"\)')
INET6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')


def _loopback(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def traced_connects(log: str) -> list[tuple[str, str]]:
    """Every connect() of the traced process tree as (family, address); fails on a line it cannot read."""
    out = []
    for line in log.splitlines():
        if "connect(" not in line:
            continue
        m = CONNECT.match(line)
        assert m, f"a connect() the test cannot read: {line}"
        family, rest = m.groups()
        if family == "AF_INET":
            addr = INET.search(rest)
        elif family == "AF_INET6":
            addr = INET6.search(rest)
        else:  # AF_UNIX: a local socket; AF_UNSPEC: dissolves a datagram socket's peer, reaches none
            out.append((family, rest.lstrip(", ")))
            continue
        assert addr, f"a connect() without an address the test can read: {line}"
        out.append((family, addr.group(1)))
    return out


def _strace_filter() -> list[str]:
    """``--seccomp-bpf`` stops the traced processes only at connect() instead of at every system
    call; strace older than 5.3 (or a kernel without seccomp filters) lacks it."""
    probe = subprocess.run(["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "true"], capture_output=True)
    return ["--seccomp-bpf"] if probe.returncode == 0 else []


def test_a_night_connects_to_nothing_but_loopback(tmp_path):
    """The night under ``strace -f -e trace=connect``: the audit hook sees Python's own sockets
    (and name lookups, which a local resolver would otherwise hide behind a loopback connect),
    strace sees every connect() of every process and thread, including those made inside C
    libraries (DuckDB's httpfs and extension downloads, pyarrow's S3, libpq)."""
    data = tmp_path / "data"
    generate(data, start=DAY, days=1, rows_per_day=4, seed=3)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "GX_ANALYTICS_ENABLED", "CREDIT_ETL_HTTP_BASE")}
    strace = shutil.which("strace")
    log = tmp_path / "connect.trace"
    wrap = [strace, "-f", *_strace_filter(), "-qq", "-e", "trace=connect", "-e", "signal=none", "-o", str(log)] if strace else []
    proc = subprocess.run([*wrap, sys.executable, "-c", SCRIPT, str(data), DAY.isoformat()], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("AUDIT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    got = json.loads(line[-1][6:])
    assert "non-loopback" not in proc.stderr and "non-local host" not in proc.stderr, proc.stderr[-4000:]
    assert got["code"] == 0, proc.stdout[-2000:]
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the HTTP department was really pulled, over loopback only
    assert any(kind == "connect" for kind, _ in got["seen"])
    assert all(host in ("127.0.0.1", "localhost", "::1") for _, host in got["seen"]), got["seen"]
    if strace is None:
        pytest.skip("strace not installed (.ci/run installs it): connects made inside C libraries went unchecked")
    connects = traced_connects(log.read_text())
    inet = [(f, a) for f, a in connects if f in ("AF_INET", "AF_INET6")]
    # the trace saw the night: at least every connect the audit hook saw in Python
    assert len(inet) >= sum(kind == "connect" for kind, _ in got["seen"]) > 0, connects
    assert {f for f, _ in connects} <= {"AF_INET", "AF_INET6", "AF_UNIX", "AF_UNSPEC"}, sorted(set(connects))
    assert all(_loopback(a) for _, a in inet), sorted(set(inet))
