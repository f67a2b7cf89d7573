"""A file put into an earlier day's inbox folder after that day's night is not lost: a later night
takes it in (received on that later night, the folder's day kept in ``late_from``), exactly once,
and reruns of either night change nothing."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import duckdb

from assets.ingest import HttpSettings, ingest_day, late_deliveries, read_staged
from ingest_helpers import DAY, drop, manifest, permit_row, permits_csv_text

NO_HTTP = HttpSettings(enabled=False)
LATER = DAY + timedelta(days=2)


def night(data_dir, contracts, registry, day):
    return ingest_day(data_dir, day, contracts, registry, http=NO_HTTP, env={})


def body(contracts, *numbers: int) -> bytes:
    return permits_csv_text(contracts["permits"], [permit_row(i) for i in numbers]).encode()


def tables(data_dir) -> dict[str, list]:
    con = duckdb.connect(str(data_dir.db_path), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall()))
                for t in ("ingest_manifest", "ingest_duplicates", "ingest_days")}
    finally:
        con.close()


def staged_files(data_dir) -> dict[str, bytes]:
    return {p.relative_to(data_dir.root).as_posix(): p.read_bytes() for p in sorted(data_dir.staging.rglob("*.parquet"))}


def test_a_file_put_into_an_earlier_days_folder_is_taken_in_by_the_next_night_once(data_dir, contracts, registry):
    drop(data_dir, "scjgj", "permits", "on_time.csv", body(contracts, 1))
    night(data_dir, contracts, registry, DAY)
    night(data_dir, contracts, registry, DAY + timedelta(days=1))
    # after both nights ran, a clerk puts another file into the first day's folder
    drop(data_dir, "scjgj", "permits", "补报.csv", body(contracts, 2, 3))

    s = night(data_dir, contracts, registry, LATER)
    assert s.new_files == 1 and s.rows_by_feed == {"permits": 2}
    (row,) = [r for r in manifest(data_dir) if r["original_name"] == "补报.csv"]
    # received on the night that took it in (the office did not have it earlier), found in DAY's folder
    assert row["status"] == "parsed" and row["received_date"] == LATER and row["late_from"] == DAY
    assert "迟到文件" in row["notes"] and f"放在 {DAY} 的日期目录中" in row["notes"] and f"接收日按 {LATER} 计" in row["notes"]
    staged = read_staged(data_dir, "permits", LATER)
    assert staged["_source_name"].tolist() == ["补报.csv"] * 2
    assert {str(d) for d in staged["_received_date"]} == {LATER.isoformat()}
    assert [r.original_name for r in s.late] == ["补报.csv"]
    assert [r.original_name for r in late_deliveries(data_dir, LATER)] == ["补报.csv"]
    text = s.late[0].late_text()
    assert "scjgj/permits/补报.csv" in text and f"在 {DAY} 的目录中发现" in text and "2 行" in text
    after = tables(data_dir), staged_files(data_dir)

    # rerunning the later night gives the same result and still names the late file
    again = night(data_dir, contracts, registry, LATER)
    assert again.new_files == 0 and not again.skipped_duplicates and again.already_ingested == 1
    assert [r.original_name for r in again.late] == ["补报.csv"]
    # rerunning the earlier night finds the file in the manifest: not taken twice, no resend noted
    earlier = night(data_dir, contracts, registry, DAY)
    assert earlier.new_files == 0 and not earlier.skipped_duplicates and earlier.already_ingested == 2
    assert read_staged(data_dir, "permits", DAY)["_source_name"].tolist() == ["on_time.csv"]
    # and the nights after it do not take it again either, nor mention it
    following = night(data_dir, contracts, registry, LATER + timedelta(days=1))
    assert following.new_files == 0 and following.already_ingested == 0 and not following.late
    assert (tables(data_dir)["ingest_manifest"], tables(data_dir)["ingest_duplicates"], staged_files(data_dir)) == (
        after[0]["ingest_manifest"], after[0]["ingest_duplicates"], after[1])


def test_content_replaced_after_its_night_is_a_new_late_delivery(data_dir, contracts, registry):
    drop(data_dir, "scjgj", "permits", "a.csv", body(contracts, 1))
    night(data_dir, contracts, registry, DAY)
    drop(data_dir, "scjgj", "permits", "a.csv", body(contracts, 1, 2))  # corrected in place
    s = night(data_dir, contracts, registry, LATER)
    assert s.rows_by_feed == {"permits": 2} and [r.late_from for r in s.late] == [DAY]
    assert sorted((r["received_date"], r["rows_parsed"]) for r in manifest(data_dir)) == [(DAY, 1), (LATER, 2)]


def test_a_day_whose_night_never_ran_keeps_its_files_for_that_night(data_dir, contracts, registry):
    before = DAY - timedelta(days=1)
    drop(data_dir, "scjgj", "permits", "a.csv", body(contracts, 1))
    drop(data_dir, "scjgj", "permits", "b.csv", body(contracts, 2), day=before)  # its night has not run
    night(data_dir, contracts, registry, DAY)
    assert [(r["original_name"], r["received_date"]) for r in manifest(data_dir)] == [("a.csv", DAY)]
    night(data_dir, contracts, registry, before)  # a backfill of that day takes its own file
    (b,) = [r for r in manifest(data_dir) if r["original_name"] == "b.csv"]
    assert b["received_date"] == before and b["late_from"] is None


def test_the_look_back_is_31_days(data_dir, contracts, registry):
    old = LATER - timedelta(days=32)
    edge = LATER - timedelta(days=31)
    for day in (old, edge):
        night(data_dir, contracts, registry, day)
    drop(data_dir, "scjgj", "permits", "old.csv", body(contracts, 1), day=old)
    drop(data_dir, "scjgj", "permits", "edge.csv", body(contracts, 2), day=edge)
    s = night(data_dir, contracts, registry, LATER)
    assert [(r.original_name, r.late_from) for r in s.late] == [("edge.csv", edge)]
    assert "old.csv" not in {r["original_name"] for r in manifest(data_dir)}


def test_a_late_resend_and_a_late_refused_file_are_recorded_once(tmp_path, data_dir, contracts, registry):
    drop(data_dir, "scjgj", "permits", "a.csv", body(contracts, 1))
    night(data_dir, contracts, registry, DAY)
    folder = data_dir.inbox / "scjgj" / "permits" / DAY.isoformat()
    (folder / "a_again.csv").write_bytes(body(contracts, 1))  # the same content under another name
    target = tmp_path / "elsewhere.csv"
    target.write_bytes(b"x\n")
    os.symlink(target, folder / "link.csv")
    s = night(data_dir, contracts, registry, LATER)
    assert [d.original_name for d in s.skipped_duplicates] == ["a_again.csv"]
    assert s.skipped_duplicates[0].received_date == DAY  # noted under the place it was found in
    (link,) = [r for r in manifest(data_dir) if r["original_name"] == "link.csv"]
    assert link["status"] == "rejected" and link["late_from"] == DAY and link["received_date"] == LATER
    assert [str(r).split(":")[0] for r in s.day_rejected] == ["scjgj/permits/link.csv"]
    recorded = tables(data_dir)
    for day in (LATER, LATER + timedelta(days=1)):  # the rerun and the next night add and repeat nothing
        s2 = night(data_dir, contracts, registry, day)
        assert s2.new_files == 0 and not s2.skipped_duplicates, day
    s3 = night(data_dir, contracts, registry, DAY)  # the earlier night's rerun: as for its own resends
    assert s3.new_files == 0 and [d.original_name for d in s3.skipped_duplicates] == ["a_again.csv"]
    now = tables(data_dir)
    assert (now["ingest_manifest"], now["ingest_duplicates"]) == (recorded["ingest_manifest"], recorded["ingest_duplicates"])


def test_an_undated_file_copied_in_with_an_earlier_modification_day(data_dir, contracts, registry):
    night(data_dir, contracts, registry, DAY)
    path = drop(data_dir, "scjgj", "permits", "kept_mtime.csv", body(contracts, 1), day=None)
    stamp = datetime.combine(DAY, datetime.min.time()).replace(hour=10).timestamp()
    os.utime(path, (stamp, stamp))  # cp -p: the day the department saved it, before it arrived
    s = night(data_dir, contracts, registry, LATER)
    assert [(r.original_name, r.late_from, r.received_date) for r in s.late] == [("kept_mtime.csv", DAY, LATER)]
    assert f"修改日期为 {DAY}" in s.late[0].notes


def test_days_ingested_before_ingest_days_existed_are_searched_too(data_dir, contracts, registry):
    drop(data_dir, "scjgj", "permits", "a.csv", body(contracts, 1))
    night(data_dir, contracts, registry, DAY)
    night(data_dir, contracts, registry, DAY + timedelta(days=1))
    con = duckdb.connect(str(data_dir.db_path))
    con.execute("DELETE FROM ingest_days WHERE received_date = ?", [DAY])  # as an older version left it
    con.close()
    drop(data_dir, "scjgj", "permits", "late.csv", body(contracts, 2))
    s = night(data_dir, contracts, registry, LATER)
    assert [(r.original_name, r.late_from) for r in s.late] == [("late.csv", DAY)]


def test_the_look_back_does_not_read_files_still_at_the_place_they_were_received_from(
        data_dir, contracts, registry, monkeypatch):
    """A month of earlier folders is looked at every night: a file still there with the size it
    was received with is known without reading it; only a new or resized file is hashed."""
    import assets.ingest.core as core

    for i in range(3):
        drop(data_dir, "scjgj", "permits", f"d{i}.csv", body(contracts, 10 + i))
    night(data_dir, contracts, registry, DAY)
    read: list[str] = []
    real = core.hash_no_follow
    monkeypatch.setattr(core, "hash_no_follow", lambda path: read.append(os.path.basename(path)) or real(path))
    night(data_dir, contracts, registry, DAY + timedelta(days=1))
    assert read == []
    drop(data_dir, "scjgj", "permits", "d1.csv", body(contracts, 11, 12))  # replaced by a longer file
    s = night(data_dir, contracts, registry, LATER)
    assert read == ["d1.csv"] and [r.original_name for r in s.late] == ["d1.csv"]
