"""HTTP deliveries against real servers on 127.0.0.1 (scripted, and the sample server)."""

from __future__ import annotations

import json
import logging
from datetime import date

import duckdb
import pytest

from assets.ingest import HttpSettings, ingest_day, read_staged
from ingest_helpers import DAY, landing_files, manifest, page_body, paged_answer, permit_row
from pipelines.samples.http import start_sample_server

TOKEN = "s3cret-token-value"
ENV = {"CREDIT_ETL_TOKEN_ZFCXJW": TOKEN}
PERMITS = "/api/permits"
PENALTIES = "/api/penalties"
JSON = {"Content-Type": "application/json"}


def records(n: int, *, by="label", contracts=None) -> list[dict]:
    c = contracts["permits"]
    out = []
    for i in range(1, n + 1):
        row = permit_row(i)
        key = (lambda f: f.code) if by == "code" else (lambda f: f.label)
        out.append({key(c.field(k)): v for k, v in row.items()})
    return out


def settings(server, **kw) -> HttpSettings:
    base = dict(base_url=server.base_url, timeout=2.0, max_attempts=3, backoff=0.01, backoff_max=0.05)
    base.update(kw)
    return HttpSettings(**base)


def run(data_dir, contracts, registry, http, env=ENV, day=DAY):
    return ingest_day(data_dir, day, contracts, registry, http=http, env=env, depts=["zfcxjw"])


def permits_record(data_dir):
    rows = [r for r in manifest(data_dir) if r["feed"] == "permits" and r["source"] == "http"]
    assert len(rows) == 1, rows
    return rows[0]


def test_pagination_auth_and_row_numbers(data_dir, contracts, registry, scripted_server):
    recs = records(5, contracts=contracts)
    recs[3] = {contracts["permits"].field(k).code: v for k, v in permit_row(4).items()}  # keyed by code
    recs[4]["地方编码"] = "500237"
    scripted_server.on(PERMITS, paged_answer(recs, 2))
    s = run(data_dir, contracts, registry, settings(scripted_server, page_size=2))
    assert not s.rejected, [str(r) for r in s.rejected]
    assert s.rows_by_feed == {"permits": 5, "penalties": 0}
    reqs = [r for r in scripted_server.requests if r["path"] == PERMITS]
    assert [r["query"]["page"] for r in reqs] == ["1", "2", "3"]
    assert all(r["query"]["date"] == "2026-03-05" and r["query"]["page_size"] == "2" for r in reqs)
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in scripted_server.requests)
    df = read_staged(data_dir, "permits", DAY)
    assert df["_row_no"].tolist() == [1, 2, 3, 4, 5]
    assert df["decision_no"].tolist() == [f"巫市监许〔2026〕{i:04d}号" for i in range(1, 6)]
    assert df["decision_date"].tolist() == ["2026-03-02"] * 5
    assert json.loads(df["_extra"].iloc[4]) == {"地方编码": "500237"}
    m = permits_record(data_dir)
    assert m["pages"] == 3 and m["rows_parsed"] == 5 and m["status"] == "parsed"
    con = duckdb.connect(str(data_dir.db_path), read_only=True)
    pages = con.execute("SELECT page_no, records, landed_path FROM ingest_pages WHERE file_id = ? ORDER BY page_no",
                        [m["file_id"]]).fetchall()
    con.close()
    assert [(p[0], p[1]) for p in pages] == [(1, 2), (2, 2), (3, 1)]
    for _, _, path in pages:  # each page landed byte for byte
        body = (data_dir.root / path).read_bytes()
        assert json.loads(body)["data"]
    # token never stored
    dump = json.dumps(manifest(data_dir), default=str)
    assert TOKEN not in dump
    # the same answer again: nothing new
    s2 = run(data_dir, contracts, registry, settings(scripted_server, page_size=2))
    assert s2.new_files == 0 and s2.already_ingested == 2


def test_500_then_success(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, (500, JSON, b"{}"), (503, JSON, b"{}"), paged_answer(records(3, contracts=contracts), 500))
    s = run(data_dir, contracts, registry, settings(scripted_server))
    assert not s.rejected and s.rows_by_feed["permits"] == 3
    assert len([r for r in scripted_server.requests if r["path"] == PERMITS]) == 3


def test_429_honours_retry_after(data_dir, contracts, registry, scripted_server, caplog):
    scripted_server.on(PERMITS, (429, {"Retry-After": "2", **JSON}, b"{}"), paged_answer(records(2, contracts=contracts), 500))
    with caplog.at_level(logging.WARNING, logger="assets.ingest.http"):
        s = run(data_dir, contracts, registry, settings(scripted_server))
    waits = [r.getMessage() for r in caplog.records if "HTTP 429" in r.getMessage()]
    assert len(waits) == 1 and waits[0].endswith("next attempt in 2 s"), waits  # backoff alone would be 0.01 s
    assert not s.rejected and s.rows_by_feed["permits"] == 2


def test_retries_are_bounded(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, (502, JSON, b"bad gateway"))
    s = run(data_dir, contracts, registry, settings(scripted_server, max_attempts=3))
    assert len([r for r in scripted_server.requests if r["path"] == PERMITS]) == 3
    m = permits_record(data_dir)
    assert m["status"] == "rejected" and "HTTP 502" in m["error_message"] and "3 次" in m["error_message"]
    assert s.rows_by_feed == {"penalties": 0}


def test_timeout(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, ("sleep", 1.5))
    s = run(data_dir, contracts, registry, settings(scripted_server, timeout=0.3, max_attempts=2))
    m = permits_record(data_dir)
    assert m["status"] == "rejected" and "超时" in m["error_message"]
    assert m["landed_path"] is None and not read_staged(data_dir, "permits", DAY).shape[0]
    assert any(r.feed == "permits" for r in s.rejected)


def test_connection_refused(data_dir, contracts, registry):
    http = HttpSettings(base_url="http://127.0.0.1:9", timeout=0.5, max_attempts=2, backoff=0.01)
    s = run(data_dir, contracts, registry, http)
    assert len(s.rejected) == 2 and all("无法连接" in r.error_message for r in s.rejected)


def test_html_response(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, (200, {"Content-Type": "text/html"}, "<!DOCTYPE html><html><body>维护中</body></html>".encode()))
    run(data_dir, contracts, registry, settings(scripted_server))
    m = permits_record(data_dir)
    assert m["status"] == "rejected" and "HTML" in m["error_message"]


def test_invalid_json(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, (200, JSON, b'{"data": [{"a": 1}}, "page": 1}'))
    run(data_dir, contracts, registry, settings(scripted_server))
    m = permits_record(data_dir)
    assert m["status"] == "rejected" and "JSON 无法解析" in m["error_message"]


def test_wrong_shape(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, (200, JSON, b'[1, 2, 3]'))
    run(data_dir, contracts, registry, settings(scripted_server))
    assert "data 列表" in permits_record(data_dir)["error_message"]


def test_failure_on_later_page_commits_nothing_then_rerun_succeeds(data_dir, contracts, registry, scripted_server):
    recs = records(5, contracts=contracts)
    good = paged_answer(recs, 2)
    scripted_server.on(PERMITS, good, (500, JSON, b"{}"))
    s = run(data_dir, contracts, registry, settings(scripted_server, page_size=2, max_attempts=2))
    assert [r.feed for r in s.rejected] == ["permits"]
    assert "第2页" in s.rejected[0].error_message
    # nothing of the half-read permits delivery landed: only penalties' empty day is there
    assert [json.loads(p.read_bytes())["total"] for p in landing_files(data_dir)] == [0]
    assert read_staged(data_dir, "permits", DAY).shape[0] == 0
    scripted_server.on(PERMITS, good)
    s2 = run(data_dir, contracts, registry, settings(scripted_server, page_size=2))
    assert not s2.rejected and s2.rows_by_feed == {"permits": 5}
    assert read_staged(data_dir, "permits", DAY)["_row_no"].tolist() == [1, 2, 3, 4, 5]
    # the failed pull stays in the manifest (what happened), but the day's data is in: the night
    # no longer reports it as a rejected delivery
    rows = [r for r in manifest(data_dir) if r["feed"] == "permits"]
    assert sorted(r["status"] for r in rows) == ["parsed", "rejected"]
    assert s.day_rejected and not s2.day_rejected


def _failed_permits(data_dir) -> list[dict]:
    return [r for r in manifest(data_dir) if r["feed"] == "permits" and r["status"] == "rejected"]


def _dead_port() -> int:
    """A port on 127.0.0.1 nothing listens on: bound, then closed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rerun_with_the_endpoint_down_updates_its_failure_row(data_dir, contracts, registry):
    http = HttpSettings(base_url=f"http://127.0.0.1:{_dead_port()}", timeout=0.5, max_attempts=2, backoff=0.01)
    s1 = run(data_dir, contracts, registry, http)
    assert sorted(r.feed for r in s1.rejected) == ["penalties", "permits"] and s1.new_files == 2
    first = _failed_permits(data_dir)
    count = len(manifest(data_dir))
    s2 = run(data_dir, contracts, registry, http)
    # reported again by this run, but the same rows: one per department, feed, day and source
    assert sorted(r.feed for r in s2.rejected) == ["penalties", "permits"] and s2.new_files == 0
    assert len(manifest(data_dir)) == count == 2
    again = _failed_permits(data_dir)
    assert [r["file_id"] for r in again] == [r["file_id"] for r in first]
    assert again[0]["first_seen_at"] == first[0]["first_seen_at"]  # when it first failed
    assert "无法连接" in again[0]["error_message"]
    assert first[0]["notes"].startswith("接口拉取失败 1 次，最近一次 ")
    assert again[0]["notes"].startswith("接口拉取失败 2 次，最近一次 ")
    # another day's failure of the same endpoint is that day's own row
    run(data_dir, contracts, registry, http, day=date(2026, 3, 6))
    assert len(manifest(data_dir)) == 4


def test_rerun_against_a_server_answering_500_keeps_one_row_with_the_latest_reason(
        data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, (500, JSON, b"{}"))
    run(data_dir, contracts, registry, settings(scripted_server, max_attempts=2))
    count = len(manifest(data_dir))
    assert "HTTP 500" in _failed_permits(data_dir)[0]["error_message"]
    scripted_server.on(PERMITS, (503, JSON, b"{}"))
    s2 = run(data_dir, contracts, registry, settings(scripted_server, max_attempts=2))
    assert len(manifest(data_dir)) == count
    (row,) = _failed_permits(data_dir)
    assert "HTTP 503" in row["error_message"] and "HTTP 500" not in row["error_message"]
    assert [r.error_message for r in s2.day_rejected if r.feed == "permits"] == [row["error_message"]]


def test_failure_rows_an_older_version_stamped_with_the_time_are_merged(data_dir, contracts, registry, scripted_server):
    """Before the id was deterministic every failed pull added a row whose id held the time."""
    import hashlib

    scripted_server.on(PERMITS, (502, JSON, b"{}"))
    run(data_dir, contracts, registry, settings(scripted_server, max_attempts=1))
    (row,) = _failed_permits(data_dir)
    con = duckdb.connect(str(data_dir.db_path))
    legacy = []
    for stamp in ("2026-03-05T01:30:00", "2026-03-06T01:30:00"):
        fid = hashlib.sha256(f"http-failed\n{row['original_name']}\n{stamp}".encode()).hexdigest()
        legacy.append(fid)
        con.execute("INSERT INTO ingest_manifest SELECT * REPLACE (? AS file_id, NULL AS notes, ?::TIMESTAMP AS first_seen_at) "
                    "FROM ingest_manifest WHERE file_id = ?", [fid, stamp, row["file_id"]])
    con.execute("DELETE FROM ingest_manifest WHERE file_id = ?", [row["file_id"]])
    con.close()
    assert len(_failed_permits(data_dir)) == 2
    run(data_dir, contracts, registry, settings(scripted_server, max_attempts=1))
    (merged,) = _failed_permits(data_dir)
    assert merged["file_id"] == row["file_id"] and merged["file_id"] not in legacy
    assert merged["notes"].startswith("接口拉取失败 3 次") and str(merged["first_seen_at"]) == "2026-03-05 01:30:00"


def test_total_mismatch_rejected(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, (200, JSON, page_body(records(2, contracts=contracts), 1, 1, total=3)))
    run(data_dir, contracts, registry, settings(scripted_server))
    assert "声明共 3 条" in permits_record(data_dir)["error_message"]


def test_missing_token_and_401(data_dir, contracts, registry, scripted_server):
    s = run(data_dir, contracts, registry, settings(scripted_server), env={})
    # a missing token is a configuration problem, reported once for the department, not a
    # rejected delivery per feed
    assert not s.rejected and len(s.config_problems) == 1
    assert "CREDIT_ETL_TOKEN_ZFCXJW" in s.config_problems[0] and "zfcxjw" in s.config_problems[0]
    assert not scripted_server.requests  # nothing sent without a token
    scripted_server.on(PERMITS, (401, JSON, b"{}"))
    s = run(data_dir, contracts, registry, settings(scripted_server), env={"CREDIT_ETL_TOKEN_ZFCXJW": "wrong"})
    assert any("令牌无效" in r.error_message for r in s.rejected)
    assert "wrong" not in json.dumps(manifest(data_dir), default=str)


def test_base_url_from_environment(data_dir, contracts, registry, scripted_server):
    scripted_server.on(PERMITS, paged_answer(records(1, contracts=contracts), 10))
    env = dict(ENV, CREDIT_ETL_HTTP_BASE=scripted_server.base_url)
    s = run(data_dir, contracts, registry, HttpSettings(max_attempts=1), env=env)
    assert s.rows_by_feed["permits"] == 1


def test_sample_server_end_to_end(data_dir, contracts, registry):
    outbox = data_dir.root / "http_outbox" / "zfcxjw" / "permits"
    outbox.mkdir(parents=True)
    (outbox / "2026-03-05.json").write_text(json.dumps(records(450, contracts=contracts), ensure_ascii=False), encoding="utf-8")
    server, base = start_sample_server(data_dir, tokens={"zfcxjw": TOKEN})
    try:
        s = run(data_dir, contracts, registry, HttpSettings(base_url=base, max_attempts=1))
        assert not s.rejected and s.rows_by_feed == {"permits": 450, "penalties": 0}
        m = permits_record(data_dir)
        assert m["pages"] == 3  # page_size 200 from departments.yaml
        df = read_staged(data_dir, "permits", DAY)
        assert df["_row_no"].tolist() == list(range(1, 451))
        # an empty day is a parsed delivery of 0 rows; a wrong token is refused
        s2 = run(data_dir, contracts, registry, HttpSettings(base_url=base, max_attempts=1), day=date(2026, 3, 6))
        assert s2.rows_by_feed == {"permits": 0, "penalties": 0} and not s2.rejected
        s3 = run(data_dir, contracts, registry, HttpSettings(base_url=base, max_attempts=1),
                 env={"CREDIT_ETL_TOKEN_ZFCXJW": "nope"}, day=date(2026, 3, 7))
        assert len(s3.rejected) == 2 and "HTTP 401" in s3.rejected[0].error_message
        assert all(r["authorized"] for r in server.requests_seen)
    finally:
        server.stop()
