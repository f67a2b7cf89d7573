"""Validation tests run Great Expectations; its usage telemetry stays off (an intranet has no internet)."""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
