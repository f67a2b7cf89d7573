"""Inbox files end to end: encodings, delimiters, XLSX title rows, header variants, reruns."""

from __future__ import annotations

import io
import json
import os
import time
from datetime import date, datetime

import openpyxl
import pytest

from assets.ingest import HttpSettings, IngestError, ingest_day, read_file, read_staged
from ingest_helpers import DAY, drop, landing_files, manifest, permit_row, permits_csv_text

NO_HTTP = HttpSettings(enabled=False)


def run(data_dir, contracts, registry, day=DAY):
    return ingest_day(data_dir, day, contracts, registry, http=NO_HTTP, env={})


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings(data_dir, contracts, registry, encoding):
    c = contracts["permits"]
    rows = [permit_row(1), permit_row(2, subject_name="𠀀测试（GB18030 四字节）" if encoding == "gb18030" else "测试二")]
    drop(data_dir, "scjgj", "permits", "许可.csv", permits_csv_text(c, rows).encode(encoding))
    s = run(data_dir, contracts, registry)
    assert not s.rejected, [str(r) for r in s.rejected]
    df = read_staged(data_dir, "permits", DAY)
    assert list(df["subject_name"]) == [rows[0]["subject_name"], rows[1]["subject_name"]]
    assert list(df["_row_no"]) == [2, 3]
    assert list(df["decision_date"]) == ["2026-03-02", "2026-03-02"]
    assert list(df["status"]) == ["有效", "有效"]
    m = manifest(data_dir)
    assert m[0]["encoding"] == encoding and m[0]["status"] == "parsed" and m[0]["rows_parsed"] == 2


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_csv_delimiters_and_title_rows(data_dir, contracts, registry, delim):
    c = contracts["permits"]
    text = permits_csv_text(c, [permit_row(1), permit_row(2)], delimiter=delim,
                            title_rows=["巫山县行政许可信息报送表", "报送单位：巫山县市场监督管理局"])
    drop(data_dir, "scjgj", "permits", "p.csv", text.encode("utf-8"))
    run(data_dir, contracts, registry)
    df = read_staged(data_dir, "permits", DAY)
    assert list(df["_row_no"]) == [4, 5]  # two title rows, the header on row 3
    assert df["decision_no"].tolist() == ["巫市监许〔2026〕0001号", "巫市监许〔2026〕0002号"]
    assert manifest(data_dir)[0]["header_row"] == 3


@pytest.mark.parametrize("style", ["code", "v1"])
def test_header_codes_and_v1_labels(data_dir, contracts, registry, style):
    c = contracts["permits"]
    drop(data_dir, "jtysj", "permits", "p.csv", permits_csv_text(c, [permit_row(1)], style=style).encode("gbk"))
    s = run(data_dir, contracts, registry)
    assert not s.rejected, [str(r) for r in s.rejected]
    df = read_staged(data_dir, "permits", DAY)
    assert df.loc[0, "decision_doc_name"] == "食品经营许可决定书"
    assert df.loc[0, "valid_to"] == "2031-03-01"
    assert df.loc[0, "_extra"] is None or df["_extra"].isna().all()


def test_header_aliases_spaces_fullwidth_and_line_breaks(data_dir, contracts, registry):
    c = contracts["penalties"]
    text = (
        "当事人名称,相对人类别,处罚决定书文号,处罚名称,处罚事由,处罚依据,处罚种类,处罚结果,罚款金额（万元）,"
        "\"处罚决定\n日期\",处 罚 有 效 期,公示截止期,处罚实施机关,处罚机关代码,数据来源单位,ＣＦ＿ＳＪＬＹＤＭ,案件程序类别\n"
        "某某餐饮店,个体户,巫市监罚〔2026〕1号,未按规定公示,事实,依据,罚款、警告,罚款5000元,\"0.5万元\","
        "2026年3月1日,2027/3/1,20270301,巫山县市场监督管理局,11500237743131669T,巫山县市场监督管理局,11500237743131669t,01\n"
    )
    drop(data_dir, "scjgj", "penalties", "cf.csv", text.encode("utf-8"))
    s = run(data_dir, contracts, registry)
    assert not s.rejected, [str(r) for r in s.rejected]
    row = read_staged(data_dir, "penalties", DAY).iloc[0]
    assert row["subject_name"] == "某某餐饮店"
    assert row["subject_kind"] == "个体工商户"
    assert row["penalty_category"] == "罚款;警告"
    assert row["fine_amount"] == "0.5"
    assert row["decision_date"] == "2026-03-01"
    assert row["penalty_valid_until"] == "2027-03-01"
    assert row["display_end"] == "2027-03-01"
    assert row["source_unit_uscc"] == "11500237743131669T"
    assert row["procedure_kind"] == "简易程序"
    assert row["_row_no"] == 2


def test_unknown_columns_kept_in_extra(data_dir, contracts, registry):
    c = contracts["permits"]
    text = permits_csv_text(c, [permit_row(1)], extra_cols=[("地方编码", "500237"), ("备忘\"录", "a\"b\\c")])
    drop(data_dir, "scjgj", "permits", "p.csv", text.encode("utf-8"))
    run(data_dir, contracts, registry)
    df = read_staged(data_dir, "permits", DAY)
    assert json.loads(df.loc[0, "_extra"]) == {"地方编码": "500237", "备忘\"录": "a\"b\\c"}
    m = manifest(data_dir)[0]
    assert json.loads(m["extra_columns"]) == ["地方编码", "备忘\"录"]


def test_missing_required_columns_rejected_with_chinese_names(data_dir, contracts, registry):
    c = contracts["permits"]
    names = [f.name for f in c.fields if f.name not in ("permit_content", "authority_uscc")]
    header = ",".join(c.field(n).label for n in names)
    drop(data_dir, "scjgj", "permits", "缺列.csv", (header + "\n" + ",".join("x" for _ in names) + "\n").encode())
    drop(data_dir, "scjgj", "permits", "ok.csv", permits_csv_text(c, [permit_row(1)]).encode())
    s = run(data_dir, contracts, registry)
    assert len(s.rejected) == 1
    msg = s.rejected[0].error_message
    assert "许可内容" in msg and "许可机关统一社会信用代码" in msg and "缺少必填列" in msg
    assert s.rows_by_feed == {"permits": 1}  # the other file went on
    with pytest.raises(IngestError) as err:
        read_file(data_dir.inbox / "scjgj/permits" / DAY.isoformat() / "缺列.csv", c)
    assert "许可内容" in err.value.message_zh


def _xlsx(rows: list[list], sheet_title="Sheet1", extra_sheets=()) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet_title
    for r in rows:
        ws.append(r)
    for title, srows in extra_sheets:
        s2 = wb.create_sheet(title)
        for r in srows:
            s2.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_title_rows_dates_and_serials(data_dir, contracts, registry):
    c = contracts["permits"]
    labels = [f.label for f in c.fields]
    r1 = permit_row(1)
    values = [r1.get(f.name) for f in c.fields]
    values[labels.index("许可决定日期")] = datetime(2026, 3, 2)
    values[labels.index("有效期自")] = 46083  # Excel serial number = 2026-03-02
    values[labels.index("有效期至")] = "2031/3/1"
    values[labels.index("统一社会信用代码")] = "0915002370001"  # text keeps leading zero
    values[labels.index("工商注册号")] = 500237000123  # a number cell
    rows = [["巫山县生态环境局行政许可信息"], ["报送日期：2026-03-05"], labels, values, [None] * len(labels),
            [r1.get(f.name) for f in c.fields]]
    drop(data_dir, "sthjj", "permits", "许可.xlsx", _xlsx(rows))
    s = run(data_dir, contracts, registry)
    assert not s.rejected, [str(r) for r in s.rejected]
    df = read_staged(data_dir, "permits", DAY)
    assert list(df["_row_no"]) == [4, 6]  # empty row 5 dropped, numbering kept
    assert df.loc[0, "decision_date"] == "2026-03-02"
    assert df.loc[0, "valid_from"] == "2026-03-02"
    assert df.loc[0, "valid_to"] == "2031-03-01"
    assert df.loc[0, "subject_uscc"] == "0915002370001"
    assert df.loc[0, "business_reg_no"] == "500237000123"
    m = manifest(data_dir)[0]
    assert m["format"] == "xlsx" and m["header_row"] == 3


def test_xlsx_sheet_named_like_feed(data_dir, contracts, registry):
    c = contracts["permits"]
    labels = [f.label for f in c.fields]
    wanted = [labels, [permit_row(7).get(f.name) for f in c.fields]]
    data = _xlsx([["说明：本表为填报说明"]], sheet_title="填报说明", extra_sheets=[("行政许可", wanted)])
    drop(data_dir, "sthjj", "permits", "p.xlsx", data)
    run(data_dir, contracts, registry)
    df = read_staged(data_dir, "permits", DAY)
    assert df["decision_no"].tolist() == ["巫市监许〔2026〕0007号"]


def test_header_only_is_parsed_with_zero_rows(data_dir, contracts, registry):
    c = contracts["permits"]
    drop(data_dir, "scjgj", "permits", "empty_day.csv", permits_csv_text(c, []).encode())
    s = run(data_dir, contracts, registry)
    m = manifest(data_dir)[0]
    assert m["status"] == "parsed" and m["rows_parsed"] == 0 and "仅有表头" in m["notes"]
    assert not s.rejected
    df = read_staged(data_dir, "permits", DAY)
    assert len(df) == 0 and list(df.columns)[:2] == ["subject_name", "subject_kind"]


def test_undated_file_received_on_mtime(data_dir, contracts, registry):
    c = contracts["permits"]
    p = drop(data_dir, "scjgj", "permits", "loose.csv", permits_csv_text(c, [permit_row(1)]).encode(), day=None)
    other = drop(data_dir, "scjgj", "permits", "old.csv", permits_csv_text(c, [permit_row(2)]).encode(), day=None)
    t = time.mktime(datetime(2026, 3, 5, 10, 0).timetuple())
    os.utime(p, (t, t))
    t2 = time.mktime(datetime(2026, 3, 4, 10, 0).timetuple())
    os.utime(other, (t2, t2))
    s = run(data_dir, contracts, registry)
    assert [r.original_name for r in s.new_records] == ["loose.csv"]
    s2 = run(data_dir, contracts, registry, day=date(2026, 3, 4))
    assert [r.original_name for r in s2.new_records] == ["old.csv"]


def test_rerun_adds_nothing(data_dir, contracts, registry):
    c = contracts["permits"]
    drop(data_dir, "scjgj", "permits", "a.csv", permits_csv_text(c, [permit_row(1), permit_row(2)]).encode())
    drop(data_dir, "jtysj", "permits", "b.csv", permits_csv_text(c, [permit_row(3)], style="v1").encode("gbk"))
    drop(data_dir, "scjgj", "permits", "bad.csv", b"\x00\x01\x02binary")
    s1 = run(data_dir, contracts, registry)
    assert s1.new_files == 3 and s1.rows_by_feed == {"permits": 3} and len(s1.rejected) == 1
    landed, rows = landing_files(data_dir), manifest(data_dir)
    staged = sorted(data_dir.staging.rglob("*.parquet"))
    s2 = run(data_dir, contracts, registry)
    assert s2.new_files == 0 and s2.rows_total == 0 and s2.already_ingested == 3 and not s2.skipped_duplicates
    assert landing_files(data_dir) == landed
    assert len(manifest(data_dir)) == len(rows) == 3
    assert sorted(data_dir.staging.rglob("*.parquet")) == staged
    assert len(read_staged(data_dir, "permits", DAY)) == 3


def test_same_content_resent_is_recorded_once(data_dir, contracts, registry):
    c = contracts["permits"]
    body = permits_csv_text(c, [permit_row(1)]).encode()
    drop(data_dir, "scjgj", "permits", "a.csv", body)
    drop(data_dir, "scjgj", "permits", "a_copy.csv", body)
    s = run(data_dir, contracts, registry)
    assert s.new_files == 1 and s.duplicates == 1
    assert s.skipped_duplicates[0].original_name == "a_copy.csv"
    drop(data_dir, "scjgj", "permits", "a.csv", body, day=date(2026, 3, 6))
    s2 = run(data_dir, contracts, registry, day=date(2026, 3, 6))
    assert s2.new_files == 0 and s2.duplicates == 1
    assert len(manifest(data_dir)) == 1
    assert len(landing_files(data_dir)) == 1


def test_crash_before_manifest_row_reprocesses(data_dir, contracts, registry):
    """Staged file written but no manifest row (crash): the rerun processes the file again."""
    import duckdb

    c = contracts["permits"]
    drop(data_dir, "scjgj", "permits", "a.csv", permits_csv_text(c, [permit_row(1)]).encode())
    run(data_dir, contracts, registry)
    con = duckdb.connect(str(data_dir.db_path))
    con.execute("DELETE FROM ingest_manifest")
    con.close()
    s = run(data_dir, contracts, registry)
    assert s.new_files == 1 and s.rows_by_feed == {"permits": 1}
    assert len(read_staged(data_dir, "permits", DAY)) == 1


def test_read_file_offline(tmp_path, contracts):
    c = contracts["permits"]
    p = tmp_path / "check.csv"
    p.write_bytes(permits_csv_text(c, [permit_row(1)]).encode("gbk"))
    parsed = read_file(p, c)
    assert parsed.rows == 1 and parsed.encoding == "gbk" and parsed.format == "csv"
    df = parsed.frame
    assert df.loc[0, "_row_no"] == 2 and df.loc[0, "_feed"] == "permits"
    assert list(df.columns)[: len(c.fields)] == c.field_names
    with pytest.raises(IngestError):
        read_file(tmp_path / "nope.csv", c)


def test_read_staged_empty(data_dir, contracts):
    df = read_staged(data_dir, "penalties", DAY)
    assert len(df) == 0
    assert list(df.columns) == contracts["penalties"].field_names + [
        "_file_id", "_row_no", "_dept", "_feed", "_received_date", "_source_name", "_extra", "_notes"]
