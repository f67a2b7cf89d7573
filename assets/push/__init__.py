"""Upward push of the night's records to the city/province platform (see ``push.py``)."""

from assets.push.push import (
    SendResult,
    batch_id_for,
    build_items,
    pushable_feeds,
    push_night,
    queue_night,
    render_payload,
    send_pending,
)

__all__ = [
    "SendResult",
    "batch_id_for",
    "build_items",
    "push_night",
    "pushable_feeds",
    "queue_night",
    "render_payload",
    "send_pending",
]
