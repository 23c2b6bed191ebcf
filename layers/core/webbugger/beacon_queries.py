"""Reading beacons back, newest first: all of them, or those of one target, entity or source,
over a time range, resumable from a cursor (the last beacon id a page ended on)."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from webbugger.ids import beacon_id_floor
from webbugger.models import Beacon, day_partitions, hydrate
from webbugger.registry import Kind

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.refs import Ref

_MAX_ID = "~"  # sorts after every Crockford base32 character


def _ceiling(until: datetime) -> str:
    # Every id made before `until` sorts below this one.
    return beacon_id_floor(until + timedelta(milliseconds=1))


def _by_ref(kind: Kind, ref: Ref, low: str, high: str) -> Iterator[Beacon]:
    index = {Kind.TARGET: Beacon.by_target, Kind.ENTITY: Beacon.by_entity, Kind.SOURCE: Beacon.by_source}
    yield from hydrate(index[kind].query(str(ref), Beacon.id.between(low, high), scan_index_forward=False))


def _all(since: datetime, until: datetime, low: str, high: str) -> Iterator[Beacon]:
    day = until.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    while day >= since.astimezone(UTC) - timedelta(days=1):
        shards = [
            Beacon.query(pk, Beacon.id.between(low, high), scan_index_forward=False)
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
    found = (
        _by_ref(kind, ref, low, high)
        if kind is not None and ref is not None
        else _all(since, until, low, high)
    )
    return (beacon for beacon in found if beacon.id != before_id)


def latest_beacons(
    *, kind: Kind | None = None, ref: Ref | None = None, days: int = 30, now: datetime | None = None
) -> Iterator[Beacon]:
    """Beacons of the last ``days`` days, newest first; only those of ``ref`` (as ``kind``) if given."""
    until = now or datetime.now(UTC)
    return beacons_between(until - timedelta(days=days), until, kind=kind, ref=ref)
