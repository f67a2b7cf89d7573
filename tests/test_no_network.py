"""No request to any non-loopback host during a night (which also proves telemetry is off):
a Python audit hook on ``socket.connect`` and ``socket.getaddrinfo`` watches a whole
``credit-etl run`` (with its HTTP department on a real local server) and fails on anything else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

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


def test_a_night_connects_to_nothing_but_loopback(tmp_path):
    data = tmp_path / "data"
    generate(data, start=DAY, days=1, rows_per_day=4, seed=3)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "GX_ANALYTICS_ENABLED", "CREDIT_ETL_HTTP_BASE")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(data), DAY.isoformat()], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("AUDIT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    got = json.loads(line[-1][6:])
    assert "non-loopback" not in proc.stderr and "non-local host" not in proc.stderr, proc.stderr[-4000:]
    assert got["code"] == 0, proc.stdout[-2000:]
    # the HTTP department was really pulled, over loopback only
    assert any(kind == "connect" for kind, _ in got["seen"])
    assert all(host in ("127.0.0.1", "localhost", "::1") for _, host in got["seen"]), got["seen"]
