"""Erasing a data subject: every beacon of one entity, and what was counted under its name.

For a data-subject request ("delete what you hold about recipient:alice@example.com"). Removed:
- every beacon whose entity is the reference: those listed on the entity's day items
  (:mod:`webbugger.persons`), and those of the last :data:`UNLISTED_HOURS` hours, which the
  stream function may not have listed yet (its records wait up to a day in the stream), read
  from the day partitions with a filter;
- the entity's day items (its beacon ids and unique claims), its send marks (which campaigns
  were sent to it, :mod:`webbugger.sends`) and its own per-day counters;
- the entity's own record, when its type can load it and it is a stored item (has ``delete()``).
Counters of targets and sources keep their sums, and campaigns their number sent: they are
aggregates that name nobody. The stream
function ignores deletions, so erasing triggers no hooks and no counting.

First of all it leaves the entity's tombstone (:mod:`webbugger.tombstones`, a keyed hash, not the
id), so that nothing made before the erasure comes back: a spilled beacon drained or replayed
later, a stream record delivered later (its beacon deleted then, its hooks and counts not run),
a beacon that ``webbugger recount`` finds uncounted.

A beacon the stream was processing while the erasure ran (its tombstone checked just before):
the erasure deletes the beacons first and reads the day items after, so a day item the stream
wrote until then goes too; whatever the stream writes later, its processing follows with the
beacon's own write, finds the beacon gone, and takes back (:func:`forget_late_work`).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from webbugger.beacon_queries import scanned_beacons
from webbugger.counters import Counter, counter_key, day_of
from webbugger.errors import UnknownTypeError
from webbugger.models import Beacon, beacon_key, utcnow
from webbugger.persons import PersonDay, all_entity_days, entity_person, forget
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.sends import Send, entity_marks
from webbugger.tombstones import bury

if TYPE_CHECKING:
    from webbugger.registry import EntityType, Registry
    from webbugger.tombstones import Tombstones

UNLISTED_HOURS = 26


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure removed."""

    entity: str
    beacons: int
    counters: int
    # The entity's day items (its unique claims and beacon list; the name is the API's, kept).
    visitor_marks: int
    record: bool
    # Why the entity's own record could not be deleted (its table unreachable from here), if so.
    record_error: str | None = None
    # Its send marks: the campaigns sent to it.
    sends: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _delete_all(model: type[Any], items: Any) -> int:
    """Delete every item of ``items`` (an iterator of ``model`` instances) in batches of 25."""
    count = 0
    with model.batch_write() as batch:
        for item in items:
            batch.delete(item)
            count += 1
    return count


def erase_entity(
    ref: Ref, registry: Registry, salt_secret: bytes, *, since: datetime | None = None
) -> Erased:
    """Erase everything held about entity ``ref``. Safe to repeat: a second run finds nothing.

    ``since``: the caller knows the entity has no beacon before then (the doctor's run), so the
    unlisted ones are looked for from then only, not over the last :data:`UNLISTED_HOURS` hours
    (that scan reads every beacon of its window). Listed beacons are erased whatever their time.
    """
    entity_type = registry.entity(ref.type)  # UnknownTypeError for a type nobody registered
    now = utcnow()
    bury(salt_secret, str(ref), now)  # before anything goes: what the stream does next is refused
    listed = {beacon_id for day in all_entity_days(str(ref)) for beacon_id in day.hits}
    start = now - timedelta(hours=UNLISTED_HOURS)
    start = max(start, since) if since is not None else start
    recent = {beacon.id for beacon in scanned_beacons(start, now, Kind.ENTITY, ref)}
    erased_beacons = _delete_all(Beacon, (beacon_key(beacon_id) for beacon_id in sorted(listed | recent)))
    counters = _delete_all(Counter, Counter.query(counter_key(Kind.ENTITY, ref)))
    # Read again: the stream may have registered a beacon on a new day item meanwhile.
    marks = _delete_all(PersonDay, (PersonDay(day.person, day.day) for day in all_entity_days(str(ref))))
    sends = _delete_all(Send, entity_marks(ref))
    try:
        deleted = _delete_record(ref, entity_type)
    except Exception as exc:  # noqa: BLE001 - plugin code; the caller must hear of it
        return Erased(str(ref), erased_beacons, counters, marks, False, repr(exc), sends)
    return Erased(str(ref), erased_beacons, counters, marks, record=deleted, sends=sends)


def _delete_record(ref: Ref, entity_type: EntityType) -> bool:
    """Delete the entity's own record, when its type can load it and it is a stored item."""
    record = None if entity_type.load is None or ref.id is None else entity_type.load(ref.id)
    delete = getattr(record, "delete", None)
    if callable(delete):
        delete()
    return callable(delete)


def forget_late_work(beacon: Beacon, registry: Registry, tombstones: Tombstones) -> bool:
    """Take back what the stream wrote for a beacon that vanished while it was processed, if an
    erasure of its entity deleted it (the tombstone read again): its registration on its person-day
    (and its label there), the entity's record its deferred hook made again, and the beacon if the
    erasure did not find it (it was listed nowhere when the erasure read). True if taken back.

    The record goes whole: hits made after the erasure that updated it in the meantime lose their
    part of it (their beacons and day items stay)."""
    entity: str | None = beacon.entity  # PynamoDB types it non-null
    if not entity or not tombstones.buried(beacon, fresh=True):
        return False
    ref = Ref.parse(entity, allow_new=True)
    forget(entity_person(entity), day_of(beacon.created_at), beacon.id)
    beacon_key(beacon.id).delete()
    with contextlib.suppress(UnknownTypeError):
        _delete_record(ref, registry.entity(ref.type))
    return True
