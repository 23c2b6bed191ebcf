"""The daily counters of one reference over a range of UTC days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from webbugger.counters import daily_stats
from webbugger.errors import InvalidTimeError

if TYPE_CHECKING:
    from webbugger.counters import Stats
    from webbugger.refs import Ref
    from webbugger.registry import Kind

DEFAULT_DAYS = 30
MAX_DAYS = 366


def parse_day(text: str | None, name: str) -> date | None:
    """A day, ``YYYY-MM-DD``, or None for none."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidTimeError(f"{name} must be a day, YYYY-MM-DD") from exc


def read_stats(
    kind: Kind, ref: Ref, first: date | None = None, last: date | None = None, *, today: date | None = None
) -> Stats:
    """Counts of ``ref`` (as ``kind``) per UTC day from ``first`` to ``last`` (default: the 30
    days up to today), at most 366 days."""
    end = last or today or datetime.now(UTC).date()
    start = first or (end - timedelta(days=DEFAULT_DAYS - 1) if end.year > 1 else end)
    if start > end:
        raise InvalidTimeError("from must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise InvalidTimeError(f"at most {MAX_DAYS} days at once")
    return daily_stats(kind, ref, start, end)
