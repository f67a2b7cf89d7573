"""Nothing in the inbox is lost without a word: every file and folder found ends in the manifest,
and hostile files (hidden sheets, several sheets, unclosed quotes, passwords, CR-only lines, NUL
bytes) are read correctly or rejected with a Chinese reason naming the problem."""

from __future__ import annotations

import io
import os
import struct

import openpyxl
import pytest

from assets.ingest import HttpSettings, ingest_day
from ingest_helpers import DAY, drop, manifest, permit_row, permits_csv_text

NO_HTTP = HttpSettings(enabled=False)


def run(data_dir, contracts, registry):
    return ingest_day(data_dir, DAY, contracts, registry, http=NO_HTTP, env={})


def csv_bytes(contracts, n=1, **over) -> bytes:
    return permits_csv_text(contracts["permits"], [permit_row(i, **over) for i in range(1, n + 1)]).encode()


def by_name(data_dir) -> dict[str, dict]:
    return {r["original_name"]: r for r in manifest(data_dir)}


def test_every_file_and_folder_found_ends_in_the_manifest(tmp_path, data_dir, contracts, registry):
    good = drop(data_dir, "scjgj", "permits", "good.csv", csv_bytes(contracts))
    feed_dir = good.parent.parent
    for bad in ("20261006", "2026-10-6", "2026-13-45"):
        (feed_dir / bad).mkdir()
        (feed_dir / bad / f"in-{bad}.csv").write_bytes(csv_bytes(contracts))
    (good.parent / "行政许可.csv").mkdir()  # a folder named like a file inside the day folder
    (feed_dir / "penalties.xlsx").mkdir()  # ... and in the feed folder
    drop(data_dir, "nosuchdept", "permits", "stranger.csv", b"a,b\n1,2\n")
    drop(data_dir, "scjgj", "nosuchfeed", "odd.csv", b"a,b\n1,2\n")
    (data_dir.inbox / "loose.csv").write_bytes(b"x\n")
    outside = tmp_path / "secret.csv"
    outside.write_bytes(b"secret,data\n")
    os.symlink(outside, good.parent / "link.csv")
    os.mkfifo(good.parent / "pipe.csv")  # never opened: a blocking read would hang the night

    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed == {"permits": 1}
    rows = by_name(data_dir)
    for bad in ("20261006", "2026-10-6", "2026-13-45"):
        assert "不是有效的 YYYY-MM-DD 日期" in rows[bad]["error_message"], rows[bad]
        inner = rows[f"in-{bad}.csv"]
        assert inner["status"] == "rejected" and "不是有效的日期目录" in inner["error_message"]
        assert inner["landed_path"] and (data_dir.root / inner["landed_path"]).read_bytes() == csv_bytes(contracts)
    assert "是文件夹而不是文件" in rows["行政许可.csv"]["error_message"]
    assert "是文件夹而不是文件" in rows["penalties.xlsx"]["error_message"]
    assert "未在部门登记表" in rows["stranger.csv"]["error_message"] and rows["stranger.csv"]["landed_path"]
    assert "不存在或未启用" in rows["odd.csv"]["error_message"] and rows["odd.csv"]["landed_path"]
    assert "收件箱根目录" in rows["loose.csv"]["error_message"] and rows["loose.csv"]["landed_path"]
    assert "符号链接" in rows["link.csv"]["error_message"] and rows["link.csv"]["landed_path"] is None
    assert "不是普通文件" in rows["pipe.csv"]["error_message"] and rows["pipe.csv"]["landed_path"] is None
    assert not any(b"secret,data" == p.read_bytes() for p in data_dir.landing.rglob("*") if p.is_file())

    # the next night records nothing twice
    before = len(manifest(data_dir))
    run(data_dir, contracts, registry)
    assert len(manifest(data_dir)) == before


def _workbook(sheets: list[tuple[str, str, list[list]]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, state, rows in sheets:
        ws = wb.create_sheet(title)
        ws.sheet_state = state
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rows(contracts, start, n):
    c = contracts["permits"]
    return [[f.label for f in c.fields]] + [[permit_row(i).get(f.name) for f in c.fields] for i in range(start, start + n)]


def test_hidden_sheet_is_never_read_in_place_of_the_visible_one(data_dir, contracts, registry):
    data = _workbook([("行政许可", "visible", _rows(contracts, 1, 3)), ("行政处罚（作废）", "hidden", _rows(contracts, 100, 5))])
    drop(data_dir, "scjgj", "permits", "hidden.xlsx", data)
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed == {"permits": 3}
    row = by_name(data_dir)["hidden.xlsx"]
    assert "隐藏的工作表未读取：行政处罚（作废）" in row["notes"]


def test_only_hidden_data_rejects_naming_the_sheet(data_dir, contracts, registry):
    data = _workbook([("说明", "visible", [["本表为报送说明"]]), ("数据", "hidden", _rows(contracts, 1, 2))])
    drop(data_dir, "scjgj", "permits", "onlyhidden.xlsx", data)
    run(data_dir, contracts, registry)
    msg = by_name(data_dir)["onlyhidden.xlsx"]["error_message"]
    assert "隐藏的工作表（数据）" in msg


def test_two_visible_sheets_with_data_reject_the_workbook_naming_both(data_dir, contracts, registry):
    data = _workbook([("一月", "visible", _rows(contracts, 1, 2)), ("二月", "visible", _rows(contracts, 10, 2))])
    drop(data_dir, "scjgj", "permits", "two.xlsx", data)
    run(data_dir, contracts, registry)
    msg = by_name(data_dir)["two.xlsx"]["error_message"]
    assert "“一月”" in msg and "“二月”" in msg and "2 个工作表含有数据" in msg


def test_unclosed_quote_in_row_3_of_10_is_reported_with_its_line(data_dir, contracts, registry):
    c = contracts["permits"]
    rows = [permit_row(i) for i in range(1, 11)]
    text = permits_csv_text(c, rows)
    lines = text.split("\r\n")
    lines[3] = lines[3].replace("食品销售", '"食品销售', 1)  # data row 3 (line 4 with the header)
    drop(data_dir, "scjgj", "permits", "quote.csv", "\r\n".join(lines).encode())
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed.get("permits", 0) == 0
    msg = by_name(data_dir)["quote.csv"]["error_message"]
    assert "第4行的引号" in msg and "没有闭合" in msg


def test_stray_quotes_closing_each_other_do_not_swallow_rows(data_dir, contracts, registry):
    c = contracts["permits"]
    lines = permits_csv_text(c, [permit_row(i) for i in range(1, 11)]).split("\r\n")
    lines[3] = lines[3].replace("食品销售", '"食品销售', 1)
    lines[7] = lines[7].replace("食品销售", '食品销售"', 1)
    drop(data_dir, "scjgj", "permits", "quote2.csv", "\r\n".join(lines).encode())
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed.get("permits", 0) == 0
    assert "引号未正确闭合" in by_name(data_dir)["quote2.csv"]["error_message"]


def _cfb_with_streams(names: list[str]) -> bytes:
    """A minimal OLE2 compound file holding empty streams with these names: the container Excel
    uses for a password-protected workbook (streams EncryptionInfo and EncryptedPackage)."""
    sector = 512
    header = bytearray(sector)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIII", header, 40, 0, 1, 1, 0, 0x1000, 0xFFFFFFFE, 0)
    struct.pack_into("<II", header, 68, 0xFFFFFFFE, 0)
    difat = [0] + [0xFFFFFFFF] * 108
    struct.pack_into("<109I", header, 76, *difat)
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [0xFFFFFFFF] * 126
    fat_sector = struct.pack("<128I", *fat)
    entries = []
    for i, name in enumerate(["Root Entry"] + names):
        e = bytearray(128)
        raw = name.encode("utf-16-le") + b"\x00\x00"
        e[0:len(raw)] = raw
        struct.pack_into("<HBB", e, 64, len(raw), 5 if i == 0 else 2, 1)
        left = right = child = 0xFFFFFFFF
        if i == 0:
            child = 1
        elif i < len(names):
            right = i + 1
        struct.pack_into("<III", e, 68, left, right, child)
        struct.pack_into("<II", e, 116, 0xFFFFFFFE, 0)
        entries.append(bytes(e))
    directory = b"".join(entries).ljust(sector, b"\x00")
    return bytes(header) + fat_sector + directory


def test_password_protected_xlsx_is_named_as_such(data_dir, contracts, registry):
    drop(data_dir, "scjgj", "permits", "locked.xlsx", _cfb_with_streams(["EncryptionInfo", "EncryptedPackage"]))
    drop(data_dir, "scjgj", "permits", "old.xls", _cfb_with_streams(["Workbook"]))
    run(data_dir, contracts, registry)
    rows = by_name(data_dir)
    assert "设有打开密码" in rows["locked.xlsx"]["error_message"]
    assert "旧版" not in rows["locked.xlsx"]["error_message"]
    assert "旧版 Excel" in rows["old.xls"]["error_message"]


def test_cr_only_line_ends_are_read(data_dir, contracts, registry):
    data = csv_bytes(contracts, 3).replace(b"\r\n", b"\r")
    drop(data_dir, "scjgj", "permits", "mac.csv", data)
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed == {"permits": 3}


@pytest.mark.parametrize("where", [10, 70_000, -5])
def test_nul_bytes_anywhere_reject_the_file_with_its_line(data_dir, contracts, registry, where):
    rows = 2000 if where > 0 and where > 1000 else 3
    data = bytearray(csv_bytes(contracts, rows))
    pos = where if where >= 0 else len(data) + where
    data[pos:pos] = b"\x00"
    drop(data_dir, "scjgj", "permits", "nul.csv", bytes(data))
    s = run(data_dir, contracts, registry)
    assert s.rows_by_feed.get("permits", 0) == 0
    msg = by_name(data_dir)["nul.csv"]["error_message"]
    line = bytes(data[:pos]).count(b"\n") + 1
    assert f"第{line}行含有空字符" in msg


def test_a_file_name_carrying_an_id_and_phone_is_masked_where_it_is_shown(data_dir, contracts, registry):
    """The manifest keeps the name as received (evidence); what logs, the run's output and a
    clerk's pre-check show of it goes through the one masking policy."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    name = "行政许可_512227197502034564_13812345678.csv"
    path = drop(data_dir, "scjgj", "permits", name, b"\xef\xbb\xbf\xe5\xa4\x87\xe6\xb3\xa8\n1\n")  # no contract column
    summary = run(data_dir, contracts, registry)
    [rejected] = summary.rejected
    assert by_name(data_dir)[name]["status"] == "rejected"  # kept as received
    shown = str(rejected)
    assert "512227********4564" in shown and "138****5678" in shown
    assert "512227197502034564" not in shown and "13812345678" not in shown
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "check", str(path), "--feed", "permits", "--format", "json"],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 2, out.stderr
    report = json.loads(out.stdout)
    assert report["file"] == "行政许可_512227********4564_138****5678.csv"
    assert "512227197502034564" not in out.stdout + out.stderr and "13812345678" not in out.stdout + out.stderr


def test_a_rerun_reports_the_rejections_the_first_run_recorded(data_dir, contracts, registry):
    drop(data_dir, "scjgj", "penalties", "空文件.csv", b"")
    drop(data_dir, "scjgj", "permits", "good.csv", csv_bytes(contracts))
    first = run(data_dir, contracts, registry)
    assert [r.original_name for r in first.rejected] == ["空文件.csv"]
    second = run(data_dir, contracts, registry)
    assert second.new_files == 0 and not second.rejected  # nothing recorded twice ...
    # ... but the day's rejections are still the day's: the night reports them again
    assert [(r.original_name, r.error_message) for r in second.day_rejected] == [
        (r.original_name, r.error_message) for r in first.day_rejected] == [("空文件.csv", first.rejected[0].error_message)]
