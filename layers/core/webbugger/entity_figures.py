"""An entity's figures folded from its day items: opens, clicks, the first and last of each.

The stream function lists each of an entity's beacons on its person-day (``hits``) and, of them,
its clicks (``clicks``), in the one write that registers the beacon (:func:`webbugger.persons.register`).
A beacon id is a ULID whose first 48 bits are the beacon's time to the millisecond, so the fold is
exact whatever order the beacons were processed in, and a beacon delivered twice, listed once,
counts once. Nothing is written for it beyond that registration.

The figures live as long as the day items, which expire with the entity's beacons
(``BEACON_RETENTION_DAYS``): they are the figures of the beacons still held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from webbugger.errors import ConfigurationError
from webbugger.ids import beacon_id_time
from webbugger.persons import all_entity_days
from webbugger.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from webbugger.persons import Day


@dataclass(frozen=True, slots=True)
class EntityFigures:
    """An entity's hits: opens (its beacons that are not clicks) and clicks, the time of the first
    and last of each, and of its first hit (``first_seen``)."""

    entity: str
    opens: int
    clicks: int
    first_seen: datetime
    first_open: datetime | None = None
    last_open: datetime | None = None
    first_click: datetime | None = None
    last_click: datetime | None = None


def fold_days(entity: str, days: Iterable[Day]) -> EntityFigures | None:
    """The figures of ``entity`` from its day items; None when they list no beacon."""
    hits: set[str] = set()
    clicks: set[str] = set()
    for day in days:
        hits |= day.hits
        clicks |= day.clicks & day.hits
    if not hits:
        return None
    opens = sorted(hits - clicks)  # ids sort as their times
    clicked = sorted(clicks)
    return EntityFigures(
        entity,
        len(opens),
        len(clicked),
        beacon_id_time(min(hits)),
        *(beacon_id_time(opens[at]) if opens else None for at in (0, -1)),
        *(beacon_id_time(clicked[at]) if clicked else None for at in (0, -1)),
    )


def entity_figures(entity: str) -> EntityFigures | None:
    """The figures of ``entity`` (``TYPE:ID``) from every day item it has (one strongly
    consistent Query, a page per 1 MB); None when it has none. Where the counters table is
    configured (not in the track function): :class:`ConfigurationError` elsewhere."""
    if not get_settings().counters_table:
        raise ConfigurationError(
            "an entity's figures are read from the counters table: COUNTERS_TABLE is not set"
        )
    return fold_days(entity, all_entity_days(entity))
