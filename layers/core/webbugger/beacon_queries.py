"""Reading beacons back, newest first: all of them, or those of one target, entity or source."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from webbugger.ids import beacon_id_floor
from webbugger.models import Beacon, day_partitions
from webbugger.registry import Kind

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.refs import Ref


def _by_ref(kind: Kind, ref: Ref, since: datetime) -> Iterator[Beacon]:
    index = {Kind.TARGET: Beacon.by_target, Kind.ENTITY: Beacon.by_entity, Kind.SOURCE: Beacon.by_source}[
        kind
    ]
    yield from index.query(str(ref), Beacon.id >= beacon_id_floor(since), scan_index_forward=False)


def _all(since: datetime, until: datetime) -> Iterator[Beacon]:
    day = until.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    floor = beacon_id_floor(since)
    while day >= since - timedelta(days=1):
        shards = [
            Beacon.query(pk, Beacon.id >= floor, scan_index_forward=False) for pk in day_partitions(day)
        ]
        # Each shard is newest first; merging keeps the whole day newest first.
        yield from heapq.merge(*shards, key=lambda beacon: beacon.id, reverse=True)
        day -= timedelta(days=1)


def latest_beacons(
    *, kind: Kind | None = None, ref: Ref | None = None, days: int = 30, now: datetime | None = None
) -> Iterator[Beacon]:
    """Beacons of the last ``days`` days, newest first; only those of ``ref`` (as ``kind``) if given."""
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    if kind is not None and ref is not None:
        return _by_ref(kind, ref, since)
    return _all(since, until)
