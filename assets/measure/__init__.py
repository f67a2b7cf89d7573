"""Measure stage: working-day calendar, timeliness per record, metrics per feed × department."""

from assets.measure.calendar import WorkCalendar
from assets.measure.metrics import FeedMeasure, MeasureSummary, measure_day

__all__ = ["FeedMeasure", "MeasureSummary", "WorkCalendar", "measure_day"]
