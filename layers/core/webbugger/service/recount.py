"""Recounting: the stream's work for beacons it never finished (:mod:`webbugger.recount`), over a
time range (by default the last :data:`DEFAULT_HOURS` hours: a record leaves the stream 24 hours
after it was written, and is retried for at most an hour), a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from webbugger.recount import Recounted, recount
from webbugger.service.beacons import beacon_query

if TYPE_CHECKING:
    from webbugger.registry import Registry
    from webbugger.settings import Settings

DEFAULT_HOURS = 48


def recount_range(
    registry: Registry,
    settings: Settings,
    salt_secret: bytes,
    *,
    since: str | None,
    until: str | None,
    cursor: str | None,
    budget_s: float | None = None,
    now: datetime | None = None,
) -> Recounted:
    """Recount the beacons from ``since`` to ``until`` (ISO 8601; default: the last 48 hours),
    older than ``cursor`` when resuming; with ``budget_s``, a page of about that many seconds."""
    moment = now or datetime.now(UTC)
    query = beacon_query(
        registry,
        refs={},
        since=since or (moment - timedelta(hours=DEFAULT_HOURS)).isoformat(),
        until=until,
        cursor=cursor,
        retention_days=settings.retention_days,
        now=moment,
    )
    return recount(
        query.since,
        query.until,
        registry,
        salt_secret,
        settings,
        before_id=query.before_id,
        budget_s=budget_s,
    )
