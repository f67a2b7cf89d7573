"""Bad input: each ends as a manifest record with a Chinese message while the run goes on."""

from __future__ import annotations

import io
import os
import zipfile

import openpyxl
import pytest

from assets.ingest import HttpSettings, IngestError, ingest_day, read_file, read_staged
from assets.ingest import readers
from ingest_helpers import DAY, drop, landing_files, manifest, permit_row, permits_csv_text

NO_HTTP = HttpSettings(enabled=False)


def run(data_dir, contracts, registry):
    return ingest_day(data_dir, DAY, contracts, registry, http=NO_HTTP, env={})


def good(data_dir, contracts, name="good.csv"):
    """A good file beside every bad one: the run must go on."""
    drop(data_dir, "scjgj", "permits", name, permits_csv_text(contracts["permits"], [permit_row(1)]).encode())


def only_rejection(data_dir, contracts, registry, dept="scjgj", feed="permits"):
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed.get("permits") == 1, "the good file must still be parsed"
    assert len(s.rejected) == 1, [str(r) for r in s.rejected]
    rec = s.rejected[0]
    rows = {r["file_id"]: r for r in manifest(data_dir)}
    assert rows[rec.file_id]["status"] == "rejected"
    assert rows[rec.file_id]["error_message"] == rec.error_message
    return rec


def test_empty_file(data_dir, contracts, registry):
    good(data_dir, contracts)
    drop(data_dir, "scjgj", "permits", "empty.csv", b"")
    rec = only_rejection(data_dir, contracts, registry)
    assert "文件为空" in rec.error_message and rec.bytes == 0


def test_whitespace_only_file(data_dir, contracts, registry):
    good(data_dir, contracts)
    drop(data_dir, "scjgj", "permits", "blank.csv", b"\xef\xbb\xbf\r\n  \r\n")
    assert "文件为空" in only_rejection(data_dir, contracts, registry).error_message


def test_binary_junk_named_csv(data_dir, contracts, registry):
    good(data_dir, contracts)
    drop(data_dir, "scjgj", "permits", "junk.csv", os.urandom(4096))
    rec = only_rejection(data_dir, contracts, registry)
    assert "不是文本表格" in rec.error_message or "编码无法识别" in rec.error_message
    assert rec.landed_path  # the bytes are kept as evidence


def test_binary_junk_without_nul_bytes(data_dir, contracts, registry):
    good(data_dir, contracts)
    junk = bytes(b for b in os.urandom(20000) if b not in (0,))
    drop(data_dir, "scjgj", "permits", "junk2.csv", junk)
    rec = only_rejection(data_dir, contracts, registry)
    assert any(k in rec.error_message for k in ("不是文本表格", "编码无法识别", "未找到表头"))


def test_legacy_xls_rejected_with_hint(data_dir, contracts, registry):
    good(data_dir, contracts)
    drop(data_dir, "scjgj", "permits", "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    assert ".xls" in only_rejection(data_dir, contracts, registry).error_message


def _xlsx_bytes(contracts) -> bytes:
    c = contracts["permits"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([f.label for f in c.fields])
    for i in range(50):
        ws.append([permit_row(i).get(f.name) for f in c.fields])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_truncated_xlsx(data_dir, contracts, registry):
    good(data_dir, contracts)
    data = _xlsx_bytes(contracts)
    drop(data_dir, "sthjj", "permits", "cut.xlsx", data[: len(data) // 2])
    s = run(data_dir, contracts, registry)
    assert len(s.rejected) == 1 and s.rows_by_feed == {"permits": 1}
    assert "Excel 文件" in s.rejected[0].error_message and "损坏" in s.rejected[0].error_message


def test_corrupt_xlsx_member(data_dir, contracts, registry):
    good(data_dir, contracts)
    src = zipfile.ZipFile(io.BytesIO(_xlsx_bytes(contracts)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename.endswith("sheet1.xml"):
                body = body[: len(body) // 3] + b"<<garbage"
            dst.writestr(info.filename, body)
    drop(data_dir, "sthjj", "permits", "broken.xlsx", out.getvalue())
    s = run(data_dir, contracts, registry)
    assert len(s.rejected) == 1 and "损坏" in s.rejected[0].error_message


def test_xlsx_content_not_zip(data_dir, contracts, registry):
    good(data_dir, contracts)
    drop(data_dir, "sthjj", "permits", "fake.xlsx", "行政相对人名称\n".encode())
    s = run(data_dir, contracts, registry)
    assert len(s.rejected) == 1 and "不是有效的 Excel" in s.rejected[0].error_message


def _bomb(contracts, member_bytes: int) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(_xlsx_bytes(contracts)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        with dst.open("xl/media/padding.xml", "w") as fh:
            chunk = b"\x00" * (1 << 20)
            for _ in range(member_bytes >> 20):
                fh.write(chunk)
    return out.getvalue()


def test_zip_bomb_ratio_refused(data_dir, contracts, registry):
    good(data_dir, contracts)
    data = _bomb(contracts, 32 << 20)  # 32 MB of zeros, ~1000:1
    assert len(data) < 1 << 20
    drop(data_dir, "sthjj", "permits", "bomb.xlsx", data)
    s = run(data_dir, contracts, registry)
    assert len(s.rejected) == 1 and "压缩炸弹" in s.rejected[0].error_message


def test_zip_bomb_total_size_refused(data_dir, contracts, registry, monkeypatch):
    monkeypatch.setattr(readers, "MAX_XLSX_UNCOMPRESSED", 4 << 20)  # limit is configuration
    monkeypatch.setattr(readers, "MAX_XLSX_RATIO", 10**9)
    good(data_dir, contracts)
    drop(data_dir, "sthjj", "permits", "big.xlsx", _bomb(contracts, 8 << 20))
    s = run(data_dir, contracts, registry)
    assert len(s.rejected) == 1 and "解压后过大" in s.rejected[0].error_message


@pytest.mark.parametrize("name,limit", [("big.csv", "MAX_CSV_BYTES"), ("big.xlsx", "MAX_XLSX_BYTES"),
                                        ("big.json", "MAX_JSON_BYTES")])
def test_file_over_its_format_limit_is_rejected_and_landed(data_dir, contracts, registry, monkeypatch, name, limit):
    """Over the per-format limit: rejected with both sizes, bytes landed by streaming (the file is
    never read whole), and the same file next night is the same delivery."""
    monkeypatch.setattr(readers, limit, 64 << 10)  # the limits are module constants
    good(data_dir, contracts)
    rows = [permit_row(i) for i in range(1, 800)]
    data = permits_csv_text(contracts["permits"], rows).encode()
    if name.endswith(".xlsx"):
        wb = openpyxl.Workbook()
        for i, line in enumerate(data.decode().splitlines()):
            wb.active.append(line.split(","))
        buf = io.BytesIO()
        wb.save(buf)
        data = buf.getvalue() + os.urandom(80 << 10)  # junk after the zip keeps it a zip, over the limit
    assert len(data) > 64 << 10
    drop(data_dir, "scjgj", "permits", name, data)
    rec = only_rejection(data_dir, contracts, registry)
    label = {"csv": "CSV", "xlsx": "Excel", "json": "JSON"}[name.rsplit(".", 1)[1]]
    assert f"{label} 文件上限 0 MB" in rec.error_message and "拆分" in rec.error_message, rec.error_message
    assert rec.bytes == len(data) and rec.landed_path
    assert (data_dir.root / rec.landed_path).read_bytes() == data
    assert not list(data_dir.landing.rglob("*.tmp"))
    with pytest.raises(IngestError, match="文件过大"):
        read_file(data_dir.root / rec.landed_path, contracts["permits"])


def test_file_over_the_row_limit_is_rejected(data_dir, contracts, registry, monkeypatch):
    monkeypatch.setattr(readers, "MAX_ROWS", 5)
    good(data_dir, contracts)
    data = permits_csv_text(contracts["permits"], [permit_row(i) for i in range(1, 7)]).encode()
    drop(data_dir, "scjgj", "permits", "six.csv", data)
    rec = only_rejection(data_dir, contracts, registry)
    assert "行数过多（6 行，上限 5 行）" in rec.error_message and rec.landed_path, rec.error_message


def test_dotdot_file_name(data_dir, contracts, registry):
    good(data_dir, contracts)
    drop(data_dir, "scjgj", "permits", "..\\..\\..\\evil.csv", permits_csv_text(contracts["permits"], [permit_row(2)]).encode())
    rec = only_rejection(data_dir, contracts, registry)
    assert "路径穿越" in rec.error_message and rec.landed_path is None


def test_symlinks_out_of_inbox_not_followed(tmp_path, data_dir, contracts, registry):
    good(data_dir, contracts)
    outside = tmp_path / "outside"
    (outside / "day").mkdir(parents=True)
    secret = outside / "secret.csv"
    secret.write_bytes(permits_csv_text(contracts["permits"], [permit_row(9)]).encode())
    (outside / "day" / "x.csv").write_bytes(secret.read_bytes())
    folder = data_dir.inbox / "scjgj" / "permits" / DAY.isoformat()
    os.symlink(secret, folder / "link.csv")
    os.symlink(outside / "day", data_dir.inbox / "jtysj" / "permits" / DAY.isoformat()
               if (data_dir.inbox / "jtysj" / "permits").mkdir(parents=True) is None else None)
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed == {"permits": 1}
    msgs = sorted(r.error_message for r in s.rejected)
    assert len(msgs) == 2 and all("符号链接" in m for m in msgs)
    assert len(landing_files(data_dir)) == 1  # only the good file
    assert sorted(p.name for p in outside.rglob("*")) == ["day", "secret.csv", "x.csv"]  # nothing written there


def test_huge_cell_rejects_file(data_dir, contracts, registry):
    good(data_dir, contracts)
    c = contracts["permits"]
    text = permits_csv_text(c, [permit_row(1), permit_row(2, permit_content="内" * (10 * 1024 * 1024 // 3))])
    drop(data_dir, "scjgj", "permits", "bigcell.csv", text.encode())
    rec = only_rejection(data_dir, contracts, registry)
    assert "第3行" in rec.error_message and "许可内容" in rec.error_message and "过长" in rec.error_message


def test_unclosed_quote_swallowing_rows(data_dir, contracts, registry, monkeypatch):
    monkeypatch.setattr(readers, "MAX_CELL_CHARS", 5000)
    good(data_dir, contracts)
    c = contracts["permits"]
    rows = [permit_row(i) for i in range(1, 200)]
    rows[1]["permit_content"] = '"食品销售'
    text = permits_csv_text(c, rows).replace('"""食品销售"', '"食品销售')
    drop(data_dir, "scjgj", "permits", "quote.csv", text.encode())
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed == {"permits": 1} and len(s.rejected) == 1
    # the unclosed quote is named with its line (header line 1, row index 1 → line 3)
    assert "第3行的引号" in s.rejected[0].error_message and "没有闭合" in s.rejected[0].error_message


def test_mixed_encodings_decoded_per_line(data_dir, contracts, registry):
    c = contracts["permits"]
    head = permits_csv_text(c, [permit_row(1, subject_name="甲公司")]).encode("utf-8")
    tail = permits_csv_text(c, [permit_row(2, subject_name="乙公司")]).split("\r\n", 1)[1].encode("gbk")
    drop(data_dir, "scjgj", "permits", "mixed.csv", head + tail)
    s = run(data_dir, contracts, registry)
    assert not s.rejected
    df = read_staged(data_dir, "permits", DAY)
    assert df["subject_name"].tolist() == ["甲公司", "乙公司"] and df["_row_no"].tolist() == [2, 3]
    m = manifest(data_dir)[0]
    assert m["encoding"] == "mixed(utf-8+gb18030)" and "混用" in m["notes"]


def test_ragged_rows_and_blank_lines(data_dir, contracts, registry):
    c = contracts["permits"]
    text = permits_csv_text(c, [permit_row(1), permit_row(2)])
    lines = text.split("\r\n")
    lines.insert(2, "")  # a blank line between the two rows
    lines[3] += ",多出来的值"
    drop(data_dir, "scjgj", "permits", "ragged.csv", "\r\n".join(lines).encode())
    run(data_dir, contracts, registry)
    df = read_staged(data_dir, "permits", DAY)
    assert df["_row_no"].tolist() == [2, 4]
    assert df["_extra"].iloc[1] == '{"第29列":"多出来的值"}'


def test_unregistered_department_and_feed(data_dir, contracts, registry):
    good(data_dir, contracts)
    body = permits_csv_text(contracts["permits"], [permit_row(5)]).encode()
    drop(data_dir, "nobody", "permits", "x.csv", body)
    drop(data_dir, "water", "permits", "y.csv", body + b"\n")
    drop(data_dir, "scjgj", "lottery", "z.csv", body + b"\n\n")
    s = run(data_dir, contracts, registry)
    msgs = sorted(r.error_message for r in s.rejected)
    assert len(msgs) == 3
    assert any("未在部门登记表" in m for m in msgs)
    assert any("未登记报送" in m for m in msgs)
    assert any("不存在或未启用" in m for m in msgs)


def test_temp_and_lock_files_skipped(data_dir, contracts, registry):
    good(data_dir, contracts)
    drop(data_dir, "scjgj", "permits", "~$lock.xlsx", b"junk")
    drop(data_dir, "scjgj", "permits", "upload.csv.part", b"junk")
    s = run(data_dir, contracts, registry)
    assert s.new_files == 1 and not s.rejected


def test_read_file_raises_ingest_error(tmp_path, contracts):
    p = tmp_path / "junk.csv"
    p.write_bytes(b"\x00\xff" * 100)
    with pytest.raises(IngestError) as err:
        read_file(p, contracts["permits"])
    assert err.value.message_zh
