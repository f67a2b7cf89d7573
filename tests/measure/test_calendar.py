"""Working-day calendar: REFERENCE §5 examples, 2027 fallback, calendar files as data."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from assets.measure.calendar import CalendarFileError, WorkCalendar, load_calendar_file
from contracts.model import Deadline

WORKING7 = Deadline(days=7, kind="working", basis="国发〔2016〕33号")
CAL7 = Deadline(days=7, kind="calendar", basis="本县自定")
CAL7_STRICT = Deadline(days=7, kind="calendar", basis="本县自定", extend_over_holidays=False)


@pytest.fixture
def cal(tmp_path):
    return WorkCalendar(tmp_path / "calendars")  # empty dir: package + fallback only


def test_reference_examples_mid_autumn_national_day(cal):
    assert cal.deadline(date(2026, 9, 22), WORKING7) == (date(2026, 10, 9), False)
    due, prov = cal.deadline(date(2026, 9, 23), WORKING7)
    assert due == date(2026, 10, 10) and due.weekday() == 5 and not prov  # make-up Saturday
    assert cal.is_workday(date(2026, 10, 10)) and not cal.is_workday(date(2026, 9, 25))
    assert cal.deadline(date(2026, 9, 22), CAL7) == (date(2026, 9, 29), False)


def test_calendar_deadline_on_a_holiday_moves_to_the_day_after():
    """民法典 第二百零三条: 2026-09-30 + 7 calendar days = 7 Oct, a National Day holiday → 8 Oct."""
    cal = WorkCalendar()
    assert cal.deadline(date(2026, 9, 30), CAL7) == (date(2026, 10, 8), False)
    assert cal.deadline(date(2026, 9, 30), CAL7_STRICT) == (date(2026, 10, 7), False)
    # a deadline on 1 Oct (the holiday's first day) also ends after the whole holiday
    assert cal.deadline(date(2026, 9, 24), CAL7) == (date(2026, 10, 8), False)
    # a last day on an ordinary Sunday moves to Monday; a make-up working Saturday does not move
    assert cal.deadline(date(2026, 11, 1), CAL7) == (date(2026, 11, 9), False)
    assert cal.deadline(date(2026, 10, 3), CAL7) == (date(2026, 10, 10), False)  # Sat 10 Oct is a working day
    assert cal.working_days_between(date(2026, 9, 30), date(2026, 10, 12)) == 4  # 8, 9, 10 (Sat), 12


def test_holiday_csv_agrees_with_calendar(cal):
    import csv
    from pathlib import Path

    path = Path(__file__).parents[1] / "data" / "cn_holidays_workdays_2023_2026_from_chinese_calendar.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    # in_lieu_days (days off moved next to a holiday) are listed again as holidays
    assert {r["kind"] for r in rows} == {"workdays", "holidays", "in_lieu_days"} and len(rows) == 169
    for row in rows:
        d = date.fromisoformat(row["date"])
        assert cal.is_workday(d) is (row["kind"] == "workdays"), d


def test_2027_without_calendar_is_provisional_fallback(cal, caplog):
    with caplog.at_level(logging.WARNING):
        due, prov = cal.deadline(date(2027, 9, 22), WORKING7)
    assert prov is True
    assert any("2027" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert due == date(2027, 10, 1)  # Monday–Friday only: Wed 22 → Fri 1 Oct
    assert cal.is_provisional(2027) and not cal.is_provisional(2026)
    # a deadline that crosses from 2026 into 2027 is provisional as well
    assert cal.deadline(date(2026, 12, 28), WORKING7)[1] is True


def test_2027_calendar_file_in_tmp_is_used(tmp_path):
    d = tmp_path / "calendars"
    d.mkdir()
    (d / "2027.yaml").write_text(
        "year: 2027\nsource: 测试用节假日安排（非真实通知）\n"
        "holidays: [2027-10-01, 2027-10-04, 2027-10-05, 2027-10-06, 2027-10-07]\n"
        "workdays: [2027-09-26]\n",
        encoding="utf-8",
    )
    cal = WorkCalendar(d)
    due, prov = cal.deadline(date(2027, 9, 22), WORKING7)
    # 23, 24, 26 (Sun, make-up), 27, 28, 29, 30 → the 7th working day is 30 Sep
    assert (due, prov) == (date(2027, 9, 30), False)
    due, _ = cal.deadline(date(2027, 9, 28), WORKING7)
    assert due == date(2027, 10, 14)  # 29, 30, (Oct 1–7 off), 8, 11, 12, 13, 14
    assert not cal.is_provisional(2027)


def test_bad_calendar_file_is_refused(tmp_path):
    p = tmp_path / "2027.yaml"
    p.write_text("year: 2028\nsource: x\nholidays: [2028-01-01]\n", encoding="utf-8")
    with pytest.raises(CalendarFileError):
        load_calendar_file(p)
    p.write_text("year: 2027\nsource: x\nholidays: [2027-01-01]\nworkdays: [2027-01-01]\n", encoding="utf-8")
    with pytest.raises(CalendarFileError):
        load_calendar_file(p)


def test_a_year_loaded_ahead_is_not_announced_as_provisional(cal, caplog):
    """Every December the nightly measure loads next year ahead; only a figure that falls in a
    year without the State Council notice is provisional and said to be."""
    with caplog.at_level(logging.WARNING):
        days, work, prov = cal.day_rows(date(2026, 12, 1), date(2027, 2, 1))
        assert prov[-1] is True and prov[0] is False
        assert cal.deadline(date(2026, 12, 1), WORKING7) == (date(2026, 12, 10), False)
    assert not [r for r in caplog.records if "2027" in r.getMessage()]
