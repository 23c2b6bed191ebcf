"""Erasing a data subject: every beacon of one entity, and what was counted under its name.

For a data-subject request ("delete what you hold about recipient:alice@example.com"). Removed:
- every beacon whose entity is the reference (found through the ``by_entity`` index);
- the entity's own per-day counters, and its unique-visitor marks on the days of those beacons;
- the entity's own record, when its type can load it and it is a stored item (has ``delete()``).
Counters of targets and sources keep their sums: they are aggregates that name nobody. The stream
function ignores deletions, so erasing triggers no hooks and no counting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from webbugger.counters import Counter, VisitorMark, counter_key, day_of, visitor_mark_key
from webbugger.ids import beacon_id_time
from webbugger.models import Beacon
from webbugger.registry import Kind

if TYPE_CHECKING:
    from webbugger.refs import Ref
    from webbugger.registry import Registry


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure removed."""

    entity: str
    beacons: int
    counters: int
    visitor_marks: int
    record: bool
    # Why the entity's own record could not be deleted (its table unreachable from here), if so.
    record_error: str | None = None

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


def erase_entity(ref: Ref, registry: Registry) -> Erased:
    """Erase everything held about entity ``ref``. Safe to repeat: a second run finds nothing."""
    entity_type = registry.entity(ref.type)  # UnknownTypeError for a type nobody registered
    days: set[str] = set()

    def beacons() -> Any:
        for beacon in Beacon.by_entity.query(str(ref)):  # keys only: enough to delete
            days.add(day_of(beacon_id_time(beacon.id)))
            yield beacon

    erased_beacons = _delete_all(Beacon, beacons())
    counters = _delete_all(Counter, Counter.query(counter_key(Kind.ENTITY, ref)))
    marks = sum(
        _delete_all(VisitorMark, VisitorMark.query(visitor_mark_key(Kind.ENTITY, ref, day)))
        for day in sorted(days)
    )
    try:
        record = None if entity_type.load is None or ref.id is None else entity_type.load(ref.id)
        delete = getattr(record, "delete", None)
        if callable(delete):
            delete()
    except Exception as exc:  # noqa: BLE001 - plugin code; the caller must hear of it
        return Erased(str(ref), erased_beacons, counters, marks, record=False, record_error=repr(exc))
    return Erased(str(ref), erased_beacons, counters, marks, record=callable(delete))
