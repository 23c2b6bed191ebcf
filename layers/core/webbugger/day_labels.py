"""Labels of an entity's beacons kept on its day item, so that a hit costs the stream one write.

An entity's beacon registers on its person-day (:mod:`webbugger.persons`) in any case; while the
day item stays within :data:`~webbugger.persons.DAY_ITEM_BYTES` (one write unit), the same
conditional UpdateItem also stores the beacon's label and its counting claim (class, reasons,
ledger, tally) under ``b#ID`` (:func:`register_labelled`), and the beacon item stays as the track
function wrote it. Later beacons of a busy day, and visitors' beacons, are labelled on the
beacon as before: the item would otherwise grow with every hit of the day (each write of it
costs a unit per KB).

Where a label is stored is what is read: a beacon's own class if it has one, else its day
item's entry (:func:`overlay`, one BatchGetItem of day items per page of beacons). A beacon read
so carries a mark (:func:`on_day`) that the writers of labels (:class:`Writes`) follow: the
same fields, conditions and version raises, on the entry instead of the beacon's attributes.
Browser, OS and device are parsed from the user agent when read, not stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.operand import Path, Value

from webbugger.counters import day_of
from webbugger.models import Beacon, pages
from webbugger.modes import Mode
from webbugger.persons import (
    DAY_ITEM_BYTES,
    Day,
    DayLabel,
    PersonDay,
    claims_of,
    day_expiry,
    entity_person,
    item_bytes,
    label_name,
    read,
    size_unchanged,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pynamodb.expressions.condition import Condition
    from pynamodb.transactions import TransactWrite

    from webbugger.labels import Device, Verdict
    from webbugger.settings import Settings

_MARK = "_label_on_day"
# Day items per BatchGetItem (DynamoDB's maximum).
_PAGE = 100


def on_day(beacon: Beacon) -> bool:
    """Whether the beacon's label is stored on its entity's day item."""
    return bool(getattr(beacon, _MARK, False))


def apply(beacon: Beacon, label: DayLabel) -> Beacon:
    """Make ``beacon`` hold ``label`` (as read from its day item), with its device parsed."""
    from webbugger.classify import parse_device  # the parsers: not every reader's

    setattr(beacon, _MARK, True)
    beacon.classification = label.classification
    beacon.reasons = cast("Any", list(label.reasons) or None)
    beacon.ledger = cast("Any", label.ledger)
    beacon.tally = cast("Any", set(label.tally) or None)
    beacon.version = cast("Any", label.version)
    device = parse_device(beacon.user_agent)
    beacon.browser, beacon.os, beacon.device = device.browser, device.os, device.device
    return beacon


def _day_key(beacon: Beacon) -> tuple[str, str] | None:
    entity: str | None = beacon.entity  # PynamoDB types it non-null
    stored: str | None = beacon.classification
    if entity is None or stored is not None:
        return None
    return entity_person(entity), day_of(beacon.created_at)


def from_days(beacons: Iterable[Beacon], days: Iterable[Day]) -> list[Beacon]:
    """``beacons`` with the labels that ``days`` (their day items, read) keep for them."""
    labels = {beacon_id: label for day in days for beacon_id, label in day.labels.items()}
    found = list(beacons)
    for beacon in found:
        label = labels.get(beacon.id)
        if label is not None and _day_key(beacon) is not None:
            apply(beacon, label)
    return found


def _read_days(keys: set[tuple[str, str]]) -> list[Day]:
    connection = PersonDay._get_connection()
    table = connection.table_name
    pending: list[Any] = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in sorted(keys)]
    days: list[Day] = []
    pause = 0.05
    while pending:
        page, pending = pending[:_PAGE], pending[_PAGE:]
        answer = connection.connection.dispatch("BatchGetItem", {"RequestItems": {table: {"Keys": page}}})
        days += [Day.of(item) for item in answer.get("Responses", {}).get(table, [])]
        unprocessed = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if unprocessed:  # keys the table left unprocessed (throttled): again, after a pause
            time.sleep(pause)
            pause = min(2 * pause, 1.0)
            pending += unprocessed
    return days


def overlay(beacons: Iterable[Beacon]) -> Iterator[Beacon]:
    """``beacons`` (lazily, a page at a time) with the labels their entities' day items keep
    (read eventually consistent: a listing's)."""
    for page in pages(beacons, _PAGE):
        yield from _overlay_page(page)


def _overlay_page(page: list[Beacon]) -> list[Beacon]:
    keys = {key for key in map(_day_key, page) if key is not None}
    return from_days(page, _read_days(keys)) if keys else page


def reload(beacon: Beacon) -> Beacon | None:
    """The beacon as stored, with its label wherever it is (strongly consistent); None if gone."""
    try:
        stored = Beacon.get(beacon.pk, beacon.id, consistent_read=True)
    except Beacon.DoesNotExist:
        return None
    key = _day_key(stored)
    if key is not None:
        day = read(*key)
        if day is not None:
            from_days([stored], [day])
    return stored


def take_mark(beacon: Beacon, stored: Beacon) -> None:
    """Carry the mark of where ``stored``'s label lives over to ``beacon``."""
    setattr(beacon, _MARK, on_day(stored))


def _is_click(beacon: Beacon) -> bool:
    return bool(beacon.mode == Mode.REDIRECT)


def fits(beacon: Beacon, day: Day, taken: list[str], label: DayLabel) -> bool:
    """Whether the day item stays within :data:`~webbugger.persons.DAY_ITEM_BYTES` with the
    beacon's registration, claims and label added."""
    own = {"S": beacon.id}
    added = {label_name(beacon.id): label.raw(), **dict.fromkeys(taken, own)}
    grown = item_bytes(added) + len(beacon.id)  # and its id in `hits`
    if not day.hits:  # a new item: its key, expiry and the set's name too
        grown += item_bytes(
            {"pk": {"S": day.person}, "sk": {"S": day.day}, "expires": {"N": "0"}, "hits": {"SS": []}}
        )
    if _is_click(beacon):  # and in `clicks`
        grown += len(beacon.id) + (0 if day.clicks else len("clicks"))
    return day.size + grown <= DAY_ITEM_BYTES


def register_labelled(
    beacon: Beacon, day: Day, taken: list[str], label: DayLabel, settings: Settings
) -> Day | None:
    """Register an entity's beacon on its day item ``day`` (as read) with the claims ``taken``
    and its label, in one update conditional on the day being as read (no beacon registered
    since, the beacon's claims held as read); the item as it now is. None if it changed
    meanwhile (read again)."""
    own = Value({"S": beacon.id})
    actions: list[Any] = [
        PersonDay.hits.add({beacon.id}),
        *([PersonDay.clicks.add({beacon.id})] if _is_click(beacon) else []),
        Path([label_name(beacon.id)]).set(Value(label.raw())),
        PersonDay.expires.set(day_expiry(beacon, day.person, settings)),
        *(Path([name]).set(own) for name in taken),
    ]
    condition = size_unchanged(day)
    if day.hits:
        condition &= ~PersonDay.hits.contains(beacon.id)
    for name in claims_of(beacon, True, settings):
        holder = day.claims.get(name)
        condition &= Path([name]).does_not_exist() if holder is None else Path([name]) == Value({"S": holder})
    try:
        answer = PersonDay(day.person, day.day).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        return None
    return Day.of(answer["Attributes"])


# --- writes of labels, wherever they live ---------------------------------------------------------


def label_actions(verdict: Verdict, device: Device | None) -> list[Any]:
    """Update actions storing a label on a beacon item (and the device, when parsed)."""
    actions: list[Any] = [Beacon.classification.set(verdict.classification)]
    actions.append(
        Beacon.reasons.set(cast("Any", list(verdict.reasons))) if verdict.reasons else Beacon.reasons.remove()
    )
    if device is not None:
        for attribute, value in (
            (Beacon.browser, device.browser),
            (Beacon.os, device.os),
            (Beacon.device, device.device),
        ):
            actions.append(attribute.set(value) if value else attribute.remove())
    return actions


def label_fields(beacon: Beacon, verdict: Verdict) -> list[Any]:
    """Actions storing ``verdict``'s class and reasons where the beacon's label lives."""
    if not on_day(beacon):
        return label_actions(verdict, None)
    base = label_name(beacon.id)
    actions: list[Any] = [Path([base, "c"]).set(Value({"S": verdict.classification}))]
    reasons = Path([base, "r"])
    if verdict.reasons:
        actions.append(reasons.set(Value({"L": [{"S": str(reason)} for reason in verdict.reasons]})))
    else:
        actions.append(reasons.remove())
    return actions


def version_is(version: float | None) -> Condition:
    """That no other beacon's processing wrote the beacon item since it was read at ``version``."""
    return Beacon.version.does_not_exist() if version is None else Beacon.version == version


def bump_version() -> Any:
    """The action every write of one beacon's processing to another beacon item carries."""
    return Beacon.version.set((Beacon.version | 0) + 1)


def bump(beacon: Beacon) -> Any:
    """The version raise every write of another beacon's processing to this one's label carries."""
    if not on_day(beacon):
        return bump_version()
    version = Path([label_name(beacon.id), "v"])
    return version.set((version | Value({"N": "0"})) + Value({"N": "1"}))


def _entry_is(beacon: Beacon, key: str, value: dict[str, str] | None) -> Condition:
    path = Path([label_name(beacon.id), key])
    condition: Condition = path.does_not_exist() if value is None else path == Value(value)
    return condition


def class_is(beacon: Beacon, classification: str | None) -> Condition:
    """That the beacon's stored class is ``classification`` (absent if None)."""
    if on_day(beacon):
        return _entry_is(beacon, "c", None if classification is None else {"S": classification})
    attribute = Beacon.classification
    found: Condition = attribute.does_not_exist() if classification is None else attribute == classification
    return found


def ledger_is(beacon: Beacon, ledger: str | None) -> Condition:
    """That the beacon's tally is claimed to ``ledger`` (to none if None)."""
    if on_day(beacon):
        return _entry_is(beacon, "lg", None if ledger is None else {"S": ledger})
    found: Condition = Beacon.ledger.does_not_exist() if ledger is None else Beacon.ledger == ledger
    return found


def version_was(beacon: Beacon, version: float | None) -> Condition:
    """That no other beacon's processing wrote the beacon's label since it was read at ``version``."""
    if on_day(beacon):
        return _entry_is(beacon, "v", None if version is None else {"N": str(int(version))})
    return version_is(version)


def set_ledger(beacon: Beacon, ledger_id: str) -> Any:
    """The action naming ``ledger_id`` as the ledger the beacon's tally is claimed to."""
    if not on_day(beacon):
        return Beacon.ledger.set(ledger_id)
    return Path([label_name(beacon.id), "lg"]).set(Value({"S": ledger_id}))


def item_of(beacon: Beacon) -> Any:
    """The item the beacon's label lives on: the beacon, or its entity's day item."""
    if not on_day(beacon):
        return beacon
    entity: str = beacon.entity
    return PersonDay(entity_person(entity), day_of(beacon.created_at))


class Writes:
    """Updates to several items, those to one item merged into one (a transaction may hold one
    operation per item; an entity's claims and the labels its day item keeps are one item)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], tuple[Any, list[Any], Any]] = {}

    def update(self, item: Any, actions: list[Any], condition: Any = None) -> None:
        """Add ``actions`` on ``item``, conditional on ``condition`` too."""
        hash_key, range_key = item._get_serialized_keys()
        key = (type(item).__name__, str(hash_key), str(range_key))
        if key in self._items:
            stored, before, held = self._items[key]
            merged = condition if held is None else held if condition is None else held & condition
            self._items[key] = (stored, before + actions, merged)
        else:
            self._items[key] = (item, list(actions), condition)

    def write(self, tx: TransactWrite) -> None:
        """Every merged update, in ``tx``."""
        for item, actions, condition in self._items.values():
            tx.update(item, actions=actions, condition=condition)
