"""Beacons read back (a page at a time, or every one of a range), exported as CSV or JSON lines
a page at a time, and erased for one entity.

A range is clamped to what the table can hold (not the future, not past the retention), and at
most one target, entity or source narrows it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from webbugger.beacon_queries import beacons_between
from webbugger.csv_cells import csv_row
from webbugger.erase import erase_entity
from webbugger.errors import InvalidCursorError, InvalidReferenceError, InvalidTimeError, WebbuggerError
from webbugger.models import BEACON_RECORD_FIELDS
from webbugger.refs import Ref

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from webbugger.erase import Erased
    from webbugger.models import Beacon
    from webbugger.registry import Kind, Registry

DEFAULT_DAYS = 30
BEACON_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}\Z")
# A response answers at most 6 MB (Lambda's limit): an export page stops short of that.
EXPORT_MAX_BYTES = 5 * 1024 * 1024
ExportFormat = Literal["csv", "jsonl"]
# RFC 4180: CSV is US-ASCII unless its charset says otherwise; its records end with CRLF.
CONTENT_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


@dataclass(frozen=True, slots=True)
class BeaconQuery:
    """Which beacons: a time range, optionally one reference's only, older than ``before_id``."""

    since: datetime
    until: datetime
    kind: Kind | None = None
    ref: Ref | None = None
    before_id: str | None = None


def _parse_time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidTimeError(f"{name} must be an ISO 8601 date or time") from exc


def _only_ref(registry: Registry, refs: Mapping[Kind, str | None]) -> tuple[Kind | None, Ref | None]:
    given = [(kind, text) for kind, text in refs.items() if text]
    if len(given) > 1:
        raise WebbuggerError("give at most one of target, entity, source")
    if not given:
        return None, None
    kind, text = given[0]
    ref = Ref.parse(text)
    registry.get(kind, ref.type)  # UnknownTypeError for a type nobody registered
    return kind, ref


def beacon_query(
    registry: Registry,
    *,
    refs: Mapping[Kind, str | None],
    since: str | None,
    until: str | None,
    cursor: str | None,
    retention_days: int,
    now: datetime | None = None,
) -> BeaconQuery:
    """The query that API parameters describe: at most one ``TYPE:ID`` of ``refs`` (by kind, of
    a registered type), a range from ``since`` to ``until`` (ISO 8601; default: the 30 days up to
    now) within what the table holds, and the ``cursor`` of a page to resume after."""
    kind, ref = _only_ref(registry, refs)
    moment = now or datetime.now(UTC)
    floor = _retention_floor(moment, retention_days)
    high = max(min(_parse_time(until, "to") or moment, moment), floor)
    low = max(_parse_time(since, "from") or max(high - timedelta(days=DEFAULT_DAYS), floor), floor)
    if low > high:
        raise InvalidTimeError("from must not be after to")
    if cursor and not BEACON_ID.match(cursor):
        raise InvalidCursorError("cursor is not one this API gave")
    return BeaconQuery(low, high, kind, ref, cursor or None)


def _retention_floor(moment: datetime, retention_days: int) -> datetime:
    # Older beacons have expired (TTL); a day's margin for TTL's lag.
    return moment - timedelta(days=retention_days + 1)


def within_retention(query: BeaconQuery, retention_days: int, now: datetime | None = None) -> BeaconQuery:
    """``query`` with its range clamped as :func:`beacon_query` clamps the API's: not past now,
    not before the retention (a ``--from 1900-01-01`` reads what the table holds, not a century
    of empty day partitions). ``query.since`` must not be after ``query.until``."""
    moment = now or datetime.now(UTC)
    floor = _retention_floor(moment, retention_days)
    high = max(min(query.until, moment), floor)
    return replace(query, since=min(max(query.since, floor), high), until=high)


def find_beacons(query: BeaconQuery) -> Iterator[Beacon]:
    """The query's beacons, newest first, read lazily."""
    return beacons_between(
        query.since, query.until, kind=query.kind, ref=query.ref, before_id=query.before_id
    )


def beacon_records(query: BeaconQuery) -> Iterator[dict[str, Any]]:
    """The query's beacons as JSON-ready records (:meth:`Beacon.to_record`), newest first."""
    return (beacon.to_record() for beacon in find_beacons(query))


@dataclass(frozen=True, slots=True)
class BeaconPage:
    """Up to a page of beacon records, and the cursor of the next page (None after the last)."""

    beacons: list[dict[str, Any]]
    next_cursor: str | None


def beacon_page(query: BeaconQuery, limit: int) -> BeaconPage:
    """The first ``limit`` beacons of the query."""
    found = find_beacons(query)
    page: list[Beacon] = []
    for beacon in found:
        page.append(beacon)
        if len(page) >= limit:
            break
    more = len(page) >= limit and next(found, None) is not None
    return BeaconPage([beacon.to_record() for beacon in page], page[-1].id if more else None)


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One page of an export: its text, its media type, and the cursor of the next page."""

    body: str
    content_type: str
    next_cursor: str | None


def export_page(query: BeaconQuery, fmt: ExportFormat, limit: int) -> ExportPage:
    """Up to ``limit`` beacons (or about 5 MB) of the query as CSV (with a header row on the
    first page only, so that pages concatenate) or JSON lines."""
    found = find_beacons(query)
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=BEACON_RECORD_FIELDS, extrasaction="ignore", lineterminator="\r\n"
    )
    if fmt == "csv" and not query.before_id:
        writer.writeheader()
    count, last_id, size = 0, None, 0
    for beacon in found:
        record = beacon.to_record()
        if fmt == "csv":
            writer.writerow(csv_row(record))
        else:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
        count, last_id, size = count + 1, beacon.id, out.tell()
        if count >= limit or size >= EXPORT_MAX_BYTES:
            break
    full = count >= limit or size >= EXPORT_MAX_BYTES
    more = last_id is not None and full and next(found, None) is not None
    return ExportPage(out.getvalue(), CONTENT_TYPES[fmt], last_id if more else None)


def erase(registry: Registry, entity: Ref, salt_secret: bytes, since: datetime | None = None) -> Erased:
    """Delete every beacon of ``entity``, its counters and visitor marks, and its own record, and
    leave its tombstone, keyed with ``salt_secret`` (the visitor-salt secret; ``since``: see
    :func:`webbugger.erase.erase_entity`)."""
    if entity.id is None:
        raise InvalidReferenceError("give the entity's id: TYPE:ID")
    return erase_entity(entity, registry, salt_secret, since=since)
