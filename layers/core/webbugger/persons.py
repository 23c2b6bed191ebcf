"""Person-days: who counted as unique on a day, and which beacons an entity had that day.

A *person* is the beacon's entity when it has one (a recipient is one person, whichever proxy
fetched for them), else its visitor (the keyed, daily-salted hash of address and user agent,
:func:`webbugger.counters.visitor_key`); a beacon with neither has no person and counts in no
unique figure.

One item per person and UTC day in the counters table (pk ``p#e#TYPE:ID`` or ``p#v#KEY``,
sk the day) holds every claim of that person-day, each an attribute whose value is a beacon id:

- ``u<k>#REF`` (k: the kind's letter): the person's first beacon for REF that day, the one that
  added 1 to REF's ``unique``. First come, never given up.
- ``h<m><k>#REF`` (m: ``o`` open, ``c`` click): the person's human hit that added 1 to REF's
  unique human opens or clicks. Given up, or handed to another human hit of the same
  person-day, when that hit is relabelled machine (:mod:`webbugger.labelling`).
- ``hits``: the ids of the person's beacons that day. For an entity this is the index of its
  beacons (classification's settling, listing, erasure) and lives as long as the beacons; for a
  visitor it holds at most :data:`VISITOR_HITS` ids and the item expires after
  :data:`MARK_RETENTION_DAYS`.
- ``clicks`` (an entity's only): the ids, of those, of its clicks (redirects): with ``hits``,
  what an entity's figures are folded from (:mod:`webbugger.entity_figures`).
- ``b#ID``: the label of the entity's beacon ID (its class, reasons, counting claim: a map,
  :class:`DayLabel`), while the item stays within :data:`DAY_ITEM_BYTES`
  (:mod:`webbugger.day_labels`); later ones, and visitors' beacons, keep their label on the beacon.

A visitor's beacon (and an entity's on a full day item) registers with one UpdateItem:
``ADD hits`` (and ``clicks``), each claim as ``if_not_exists(claim, :id)``, conditional on the id
not being in ``hits`` yet, returning the item: one write unit whatever the number of references,
and the answer says which claims are the beacon's. A redelivered beacon finds its id in ``hits``
and claims nothing again. An entity's beacon with its label here registers, claims and is
labelled in one conditional UpdateItem (:func:`webbugger.day_labels.register_labelled`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DeleteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.expressions.operand import Path, Value
from pynamodb.models import Model

from webbugger.counters import KIND_CODES, counted_refs, day_of, visitor_key
from webbugger.ids import beacon_id_time
from webbugger.models import Beacon, expiry
from webbugger.modes import Mode

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pynamodb.expressions.condition import Condition

    from webbugger.registry import Kind
    from webbugger.settings import Settings

# Days after the start of its day that a visitor's item lives: its day, then the stream's retries.
MARK_RETENTION_DAYS = 3
# A visitor's beacons listed on its day item: enough to know a redelivered beacon; a visitor
# with more hits in a day is a machine whose item must not grow with every hit.
VISITOR_HITS = 16
# An entity's day item takes beacons' labels while it stays within 1 KB: a write costs a write
# unit per KB of the item, so a busier entity's later beacons are labelled on the beacon instead.
DAY_ITEM_BYTES = 1024
LABEL_PREFIX = "b#"


def item_bytes(attributes: dict[str, Any]) -> int:
    """The size DynamoDB bills of raw ``attributes`` (names and values; a number counted at its
    longest, a map or list 3 bytes and 1 an element: the rules of the developer guide's "Item
    sizes and formats")."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in attributes.items())


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind in ("S", "B"):
        return len(content.encode()) if kind == "S" else len(content)
    if kind == "N":
        return 21
    if kind in ("SS", "NS"):
        return sum(len(element.encode()) if kind == "SS" else 21 for element in content)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_bytes(element) for name, element in content.items())
    return 1  # BOOL, NULL


_MODE_CODES = {"pixel": "o", "redirect": "c"}


class PersonDay(Model):
    """One person's claims of one UTC day (the claims are attributes named at run time)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    hits = UnicodeSetAttribute(null=True)
    clicks = UnicodeSetAttribute(null=True)
    expires = NumberAttribute(null=True)


def entity_person(entity: str) -> str:
    """The partition key of an entity's day items."""
    return f"p#e#{entity}"


def person_of(beacon: Beacon, salt: bytes) -> str | None:
    """The partition key of the beacon's person, or None when it has no person."""
    if beacon.entity:
        return entity_person(beacon.entity)
    visitor = visitor_key(beacon, salt)
    return None if visitor is None else f"p#v#{visitor}"


def unique_claim(kind: Kind, ref: str) -> str:
    """The attribute naming the person-day's first beacon for ``ref``."""
    return f"u{KIND_CODES[kind]}#{ref}"


def human_claim(mode: str, kind: Kind, ref: str) -> str:
    """The attribute naming the person-day's counted human open or click for ``ref``."""
    return f"h{_MODE_CODES.get(mode, 'c')}{KIND_CODES[kind]}#{ref}"


@dataclass(frozen=True, slots=True)
class DayLabel:
    """A beacon's label as its day item keeps it (``b#ID``: c class, r reasons, lg ledger,
    t tally, v version; the same meaning as the beacon's attributes of those names)."""

    classification: str
    reasons: tuple[str, ...] = ()
    ledger: str | None = None
    tally: frozenset[str] = frozenset()
    version: int | None = None

    @classmethod
    def of(cls, value: dict[str, Any]) -> DayLabel:
        """From a raw map attribute."""
        entry = value["M"]
        return cls(
            entry["c"]["S"],
            tuple(reason["S"] for reason in entry.get("r", {}).get("L", ())),
            entry["lg"]["S"] if "lg" in entry else None,
            frozenset(entry.get("t", {}).get("SS", ())),
            int(entry["v"]["N"]) if "v" in entry else None,
        )

    def raw(self) -> dict[str, Any]:
        """As a raw map attribute."""
        entry: dict[str, Any] = {"c": {"S": self.classification}}
        if self.reasons:
            entry["r"] = {"L": [{"S": reason} for reason in self.reasons]}
        if self.ledger is not None:
            entry["lg"] = {"S": self.ledger}
        if self.tally:
            entry["t"] = {"SS": sorted(self.tally)}
        if self.version is not None:
            entry["v"] = {"N": str(self.version)}
        return {"M": entry}


def label_name(beacon_id: str) -> str:
    """The day item's attribute holding the label of beacon ``beacon_id``."""
    return f"{LABEL_PREFIX}{beacon_id}"


@dataclass(frozen=True, slots=True)
class Day:
    """A person-day item as read: its beacons, its claims (attribute → beacon id), of its
    beacons the clicks (an entity's day only), and the labels it keeps (beacon id → label)."""

    person: str
    day: str
    hits: frozenset[str] = frozenset()
    claims: dict[str, str] = field(default_factory=dict)
    clicks: frozenset[str] = frozenset()
    labels: dict[str, DayLabel] = field(default_factory=dict)
    size: int = 0  # bytes, as DynamoDB bills them (item_bytes)

    @classmethod
    def of(cls, item: dict[str, Any]) -> Day:
        """From a raw item (a GetItem, Query or UpdateItem answer)."""
        claims = {name: value["S"] for name, value in item.items() if name[:1] in "uh" and "#" in name}
        labels = {
            name.removeprefix(LABEL_PREFIX): DayLabel.of(value)
            for name, value in item.items()
            if name.startswith(LABEL_PREFIX)
        }
        hits = frozenset(item.get("hits", {}).get("SS", ()))
        clicks = frozenset(item.get("clicks", {}).get("SS", ()))
        return cls(item["pk"]["S"], item["sk"]["S"], hits, claims, clicks, labels, item_bytes(item))

    def holds(self, name: str, beacon_id: str) -> bool:
        """Whether claim ``name`` is the beacon's."""
        return self.claims.get(name) == beacon_id


def day_expiry(beacon: Beacon, person: str, settings: Settings) -> int:
    """The TTL of the beacon's day item: an entity's lives as long as its beacons (the index of
    them, and their labels): as long as the day's last possible one, whichever registers last."""
    start = datetime.fromisoformat(day_of(beacon.created_at)).replace(tzinfo=UTC)
    if person.startswith("p#e#"):
        return expiry(start + timedelta(days=1), settings.retention_days)
    return expiry(start, MARK_RETENTION_DAYS)


def _first_time(beacon_id: str, person: str) -> Condition:
    hits = PersonDay.hits
    first: Condition = hits.does_not_exist() | ~hits.contains(beacon_id)
    if person.startswith("p#e#"):
        return first
    room = cast("Condition", size(hits) < VISITOR_HITS)  # type: ignore[no-untyped-call]
    listed: Condition = hits.does_not_exist() | (~hits.contains(beacon_id) & room)
    return listed


def claims_of(beacon: Beacon, human: bool, settings: Settings) -> list[str]:
    """The claims a beacon makes when registered: first for each counted reference, and the
    human open or click of each when it is human."""
    refs = counted_refs(beacon, settings)
    names = [unique_claim(kind, ref) for kind, ref in refs]
    if human:
        names += [human_claim(beacon.mode, kind, ref) for kind, ref in refs]
    return names


def register(beacon: Beacon, person: str, human: bool, settings: Settings) -> Day | None:
    """Register the beacon on its person-day with its claims (on an entity's, a click in
    ``clicks`` too); the item as it now is. None if it was registered before (a redelivery:
    nothing is claimed again)."""
    item = PersonDay(person, day_of(beacon.created_at))
    own = Value({"S": beacon.id})
    actions: list[Any] = [PersonDay.hits.add({beacon.id})]
    if beacon.mode == Mode.REDIRECT and person.startswith("p#e#"):
        actions.append(PersonDay.clicks.add({beacon.id}))
    actions += [Path([name]).set(Path([name]) | own) for name in claims_of(beacon, human, settings)]
    actions.append(PersonDay.expires.set(day_expiry(beacon, person, settings)))
    try:
        answer = item.update(actions=actions, condition=_first_time(beacon.id, person))
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        stored = read(person, item.sk)
        if stored is not None and beacon.id in stored.hits:
            return None
        return _claim_unlisted(beacon, person, human, settings)  # a visitor with a full list
    return Day.of(answer["Attributes"])


def _claim_unlisted(beacon: Beacon, person: str, human: bool, settings: Settings) -> Day | None:
    """A visitor whose day list is full: claims without registering, unless the stored beacon
    says it was counted before (then a redelivery, as with a listed id)."""
    try:
        if Beacon.get(beacon.pk, beacon.id, consistent_read=True).ledger is not None:
            return None
    except Beacon.DoesNotExist:
        return None
    own = Value({"S": beacon.id})
    actions: list[Any] = [Path([name]).set(Path([name]) | own) for name in claims_of(beacon, human, settings)]
    if not actions:
        return read(person, day_of(beacon.created_at))
    answer = PersonDay(person, day_of(beacon.created_at)).update(actions=actions)
    return Day.of(answer["Attributes"])


def forget(person: str, day: str, beacon_id: str) -> None:
    """Take a beacon off its person-day: its id and the claims it holds; the item goes when no
    beacon is left on it (an erased entity's beacon the stream registered after the erasure)."""
    stored = read(person, day)
    if stored is None:
        return
    held = [name for name, holder in stored.claims.items() if holder == beacon_id]
    if beacon_id in stored.labels:
        held.append(label_name(beacon_id))
    actions: list[Any] = [PersonDay.hits.delete({beacon_id}), *(Path([name]).remove() for name in held)]
    if beacon_id in stored.clicks:
        actions.append(PersonDay.clicks.delete({beacon_id}))
    item = PersonDay(person, day)
    answer = item.update(actions=actions)
    if "hits" in answer.get("Attributes", {}):
        return
    try:
        item.delete(condition=PersonDay.hits.does_not_exist())
    except DeleteError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise  # else a beacon registered meanwhile: the item stays, for it


def read(person: str, day: str, *, consistent: bool = True) -> Day | None:
    """The person-day as stored (strongly consistent unless told), or None."""
    answer = PersonDay._get_connection().get_item(person, day, consistent_read=consistent)
    item = answer.get("Item")
    return None if item is None else Day.of(item)


def entity_days(entity: str, first: str, last: str) -> Iterator[Day]:
    """The entity's day items from day ``first`` to ``last`` (strongly consistent)."""
    connection = PersonDay._get_connection()
    start: Any = None
    while True:
        page = connection.query(
            entity_person(entity),
            range_key_condition=PersonDay.sk.between(first, last),
            consistent_read=True,
            exclusive_start_key=start,
        )
        yield from (Day.of(item) for item in page.get("Items", []))
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def entity_beacon_ids(entity: str, low: datetime, high: datetime) -> list[str]:
    """Ids of the entity's beacons made from ``low`` to ``high``, newest first."""
    found = {
        beacon_id
        for day in entity_days(entity, day_of(low), day_of(high))
        for beacon_id in day.hits
        if low <= beacon_id_time(beacon_id) <= high
    }
    return sorted(found, reverse=True)


def all_entity_days(entity: str) -> list[Day]:
    """Every day item of an entity (erasure)."""
    return list(entity_days(entity, "0000-00-00", "9999-99-99"))


def size_unchanged(day: Day) -> Condition:
    """That no beacon was registered on the person-day since ``day`` was read (so the heirs
    looked for were all of them)."""
    if not day.hits:
        absent: Condition = PersonDay.hits.does_not_exist()
        return absent
    return cast("Condition", size(PersonDay.hits) == len(day.hits))  # type: ignore[no-untyped-call]


def claim_changes(
    day: Day, gained: Iterable[tuple[str, str]], lost: Iterable[tuple[str, str | None]]
) -> tuple[list[Any], Condition]:
    """Update actions and the condition for the claims of ``day`` that change hands: ``gained``
    (name, new holder) of claims free now, ``lost`` (name, heir or None) of claims held by the
    beacon whose id is the current holder."""
    actions: list[Any] = []
    condition = size_unchanged(day)
    for name, holder in gained:
        actions.append(Path([name]).set(Value({"S": holder})))
        condition &= Path([name]).does_not_exist()
    for name, heir in lost:
        actions.append(Path([name]).remove() if heir is None else Path([name]).set(Value({"S": heir})))
        condition &= Path([name]) == Value({"S": day.claims[name]})
    return actions, condition
