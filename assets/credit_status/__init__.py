"""Record status over time: the nightly status history and the records shared with other platforms."""

from assets.credit_status.status import StatusSummary, log_statuses, record_night, status_rows, write_share_export

__all__ = ["StatusSummary", "log_statuses", "record_night", "status_rows", "write_share_export"]
