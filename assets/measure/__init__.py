"""Measure stage: working-day calendar, timeliness per record, metrics per feed × department."""

from assets.measure.calendar import WorkCalendar
from assets.measure.metrics import FeedMeasure, MeasureSummary, latest_received, measure_day, report_counts

__all__ = ["FeedMeasure", "MeasureSummary", "WorkCalendar", "latest_received", "measure_day", "report_counts"]
