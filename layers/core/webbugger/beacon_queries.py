"""Reading beacons back, newest first: all of them, or those of one target, entity or source,
over a time range, resumable from a cursor (the last beacon id a page ended on).

The beacons table has no index (each entry would cost a write unit a hit): an entity's beacons
are listed on its day items (:mod:`webbugger.persons`, written by the stream function, so a
beacon appears there once the stream has processed it); a target's or a source's are read from
the day partitions with a filter, so their cost is that of reading every beacon of those days.
Where the deployment counts that kind (``COUNTED_KINDS``), only the days its counters show hits
on are read, and the last :data:`UNCOUNTED_DAYS` days always (the stream counts a beacon a batch
window or a few retries after it is written; one that is dead-lettered shows once ``webbugger
recount`` has counted it).

A beacon with no reference is not written by the stream function at all (nothing to count or
hook, and its class depends on itself alone): its class and device are computed as it is read.
An entity's beacon is mostly labelled on its entity's day item (:mod:`webbugger.day_labels`):
its label is read from there, a BatchGetItem of day items per page of beacons.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from webbugger.ids import beacon_id_floor
from webbugger.models import Beacon, beacon_key, day_partitions, hydrate
from webbugger.registry import Kind

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.refs import Ref

_MAX_ID = "~"  # sorts after every Crockford base32 character
# Days up to now read whatever the counters say: their beacons may not be counted yet.
UNCOUNTED_DAYS = 2


def _ceiling(until: datetime) -> str:
    # Every id made before `until` sorts below this one.
    return beacon_id_floor(until + timedelta(milliseconds=1))


def _of_entity(ref: Ref, since: datetime, until: datetime, low: str, high: str) -> Iterator[Beacon]:
    from webbugger.persons import entity_beacon_ids  # the counters table: not every caller's

    ids = entity_beacon_ids(str(ref), since - timedelta(seconds=1), until + timedelta(seconds=1))
    yield from hydrate(beacon_key(beacon_id) for beacon_id in ids if low <= beacon_id <= high)


def _ref_filter(kind: Kind, ref: Ref) -> Any:
    attribute = {Kind.TARGET: Beacon.target, Kind.ENTITY: Beacon.entity, Kind.SOURCE: Beacon.source}[kind]
    return attribute == str(ref)


def scanned_beacons(since: datetime, until: datetime, kind: Kind, ref: Ref) -> Iterator[Beacon]:
    """``ref``'s beacons (as ``kind``) from ``since`` to ``until``, newest first, read from the day
    partitions with a filter (whether the stream listed them yet or not)."""
    return _all(since, until, beacon_id_floor(since), _ceiling(until), _ref_filter(kind, ref))


def _counted_days(kind: Kind, ref: Ref, since: datetime, until: datetime) -> set[str] | None:
    """The days from ``since`` to ``until`` on which ``ref`` has counted hits, and the last
    :data:`UNCOUNTED_DAYS` days; None when the deployment does not count ``kind`` (read them all)."""
    from webbugger.counters import Counter, counter_key, day_of  # the counters table: not every caller's
    from webbugger.runtime import default_settings

    if str(kind) not in default_settings().counted_kinds:
        return None
    first, last = day_of(since - timedelta(days=1)), day_of(until)
    days = {
        item.sk
        for item in Counter.query(counter_key(kind, ref), Counter.sk.between(first, last))
        if item.total
    }
    recent = datetime.now(UTC)
    days.update(day_of(recent - timedelta(days=back)) for back in range(UNCOUNTED_DAYS))
    return days


def _all(
    since: datetime, until: datetime, low: str, high: str, only: Any = None, days: set[str] | None = None
) -> Iterator[Beacon]:
    day = until.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    while day >= since.astimezone(UTC) - timedelta(days=1):
        if days is not None and day.strftime("%Y-%m-%d") not in days:
            day -= timedelta(days=1)
            continue
        shards = [
            Beacon.query(pk, Beacon.id.between(low, high), filter_condition=only, scan_index_forward=False)
            for pk in day_partitions(day)
        ]
        # Each shard is newest first; merging keeps the whole day newest first.
        yield from heapq.merge(*shards, key=lambda beacon: beacon.id, reverse=True)
        day -= timedelta(days=1)


def beacons_between(
    since: datetime,
    until: datetime,
    *,
    kind: Kind | None = None,
    ref: Ref | None = None,
    before_id: str | None = None,
) -> Iterator[Beacon]:
    """Beacons made from ``since`` to ``until``, newest first; only ``ref``'s (as ``kind``) if given.

    ``before_id`` resumes after a page: only beacons older than that id come back. Reads are
    lazy, a query page at a time, so this works for millions of beacons in bounded memory.
    """
    low = beacon_id_floor(since)
    high = min(_ceiling(until), before_id or _MAX_ID)
    if kind is None or ref is None:
        found = _all(since, until, low, high)
    elif kind is Kind.ENTITY:
        found = _of_entity(ref, since, until, low, high)
    else:
        days = _counted_days(kind, ref, since, until)
        found = _all(since, until, low, high, _ref_filter(kind, ref), days)
    from webbugger.day_labels import overlay  # the counters table: not every caller's

    return (labelled(beacon) for beacon in overlay(found) if beacon.id != before_id)


def labelled(beacon: Beacon) -> Beacon:
    """The beacon with its class, reasons and device: as stored, or, for a beacon with no
    reference (which the stream function leaves alone), computed now (not stored)."""
    stored: str | None = beacon.classification  # PynamoDB types it non-null
    if stored is None and not (beacon.target or beacon.entity or beacon.source):
        from webbugger.classify import Hit, classify_hit, parse_device  # off the hot path

        verdict = classify_hit(Hit.of(beacon))
        device = parse_device(beacon.user_agent)
        beacon.classification = verdict.classification
        beacon.reasons = cast("Any", list(verdict.reasons) or None)
        beacon.browser, beacon.os, beacon.device = device.browser, device.os, device.device
    return beacon


def latest_beacons(
    *, kind: Kind | None = None, ref: Ref | None = None, days: int = 30, now: datetime | None = None
) -> Iterator[Beacon]:
    """Beacons of the last ``days`` days, newest first; only those of ``ref`` (as ``kind``) if given."""
    until = now or datetime.now(UTC)
    return beacons_between(until - timedelta(days=days), until, kind=kind, ref=ref)
