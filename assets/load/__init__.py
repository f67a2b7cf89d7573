"""Load stage: validated rows → versions/current tables, quarantine items, Parquet month files."""

from assets.load.load import FeedLoad, LoadSummary, load_day, rebuild_parquet

__all__ = ["FeedLoad", "LoadSummary", "load_day", "rebuild_parquet"]
