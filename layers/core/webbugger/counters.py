"""Per-day counters of every target, entity and source, kept off the hot path by the stream.

For each reference of a new beacon, one counter item per UTC day holds ``total``, ``unique``
(distinct visitors that day: exact, see below), ``human``/``machine`` (by the class
:mod:`webbugger.classify` stored on the beacon) and the headline figures ``unique_human_opens`` /
``unique_human_clicks``: distinct people with a human open or click that day, a person being the
beacon's entity (one recipient, whichever proxy fetched for them) or, without one, the visitor.
A beacon whose class changes after it was counted (:func:`relabel`) moves between these counts
in one transaction, conditional on the class it had. Counting is idempotent per beacon: the
counter updates commit in one DynamoDB transaction with a "counted" mark on the beacon,
conditional on the mark being absent (and on the beacon's class being the one counted).

Unique visitors are exact. A visitor is the keyed hash of the beacon's anonymised address and
user agent with a salt that changes every UTC day (derived from the deployment's signing key),
so the key cannot be linked across days nor reversed; it is never stored in clear. The salt
derives from its own secret, not from the URL-signing keys, so rotating those keys mid-day does
not make returning visitors new. The first
beacon of a visitor for a reference and day claims a marker item (conditional put); a retried
beacon that finds its own id on the marker still counts as the first.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from webbugger.ids import beacon_id_floor
from webbugger.models import Beacon, expiry, hydrate, transaction_connection
from webbugger.observability import MetricUnit, metrics
from webbugger.registry import Kind

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.labels import Device, Verdict
    from webbugger.refs import Ref
    from webbugger.settings import Settings

COUNTED_MARK = "#counters"  # in Beacon.hooks_applied; no type name starts with '#'
# Conditional writes retried in place when a concurrent labelling or count got in between.
MAX_ATTEMPTS = 4
# Days after the start of its day that a visitor mark lives: its day, then the stream's retries.
MARK_RETENTION_DAYS = 3


class Counter(Model):
    """One reference's counts for one UTC day (``pk`` = ``c#KIND#TYPE:ID``, ``sk`` = day)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    total = NumberAttribute(default=0)
    unique = NumberAttribute(default=0)
    human = NumberAttribute(default=0)
    machine = NumberAttribute(default=0)
    # Distinct people with a human open / a human click that day (see human_visitor_key).
    unique_human_opens = NumberAttribute(default=0)
    unique_human_clicks = NumberAttribute(default=0)
    expires = NumberAttribute(null=True)


class VisitorMark(Model):
    """That a visitor was counted for a reference on a day (``pk`` = ``v#KIND#TYPE:ID#DAY``), or
    that a person's first human open or click of the day was (``h#MODE#KIND#TYPE:ID#DAY``)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # the visitor key
    beacon = UnicodeAttribute()
    expires = NumberAttribute(null=True)


def counter_key(kind: Kind, ref: Ref | str) -> str:
    """The partition key of a reference's counters."""
    return f"c#{kind}#{ref}"


def visitor_mark_key(kind: Kind, ref: Ref | str, day: str) -> str:
    """The partition key of a reference's visitor marks of one day."""
    return f"v#{kind}#{ref}#{day}"


def day_of(moment: datetime) -> str:
    """The UTC day label of a time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def daily_salt(secret: bytes, day: str) -> bytes:
    """The day's salt, derived from the deployment's visitor-salt secret: secret, new every day."""
    return hmac.new(secret, f"visitor-salt:{day}".encode(), hashlib.sha256).digest()


def visitor_key(beacon: Beacon, salt: bytes) -> str | None:
    """The beacon's visitor for the day, or None when it carries nothing to tell visitors apart."""
    if not beacon.ip and not beacon.user_agent:
        return None
    material = f"{beacon.ip or ''}\n{beacon.user_agent or ''}".encode()
    return hmac.new(salt, material, hashlib.sha256).hexdigest()[:32]


def beacon_refs(beacon: Beacon) -> list[tuple[Kind, str]]:
    """The references a beacon counts for, with their kinds."""
    refs = [(Kind.TARGET, beacon.target), (Kind.ENTITY, beacon.entity), (Kind.SOURCE, beacon.source)]
    return [(kind, text) for kind, text in refs if text]


def _claim_visitor(kind: Kind, ref: str, day: str, visitor: str, beacon: Beacon, expires: int) -> bool:
    """True if this beacon is the day's first of this visitor for this reference."""
    mark = VisitorMark(visitor_mark_key(kind, ref, day), visitor, beacon=beacon.id, expires=expires)
    try:
        mark.save(condition=VisitorMark.pk.does_not_exist() | (VisitorMark.beacon == beacon.id))
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _mark_expiry(day: str) -> int:
    # A visitor mark matters only on its own day (plus the stream's day of retries): dropping it
    # early keeps no per-visitor trace for longer than needed.
    return expiry(datetime.fromisoformat(day).replace(tzinfo=UTC), MARK_RETENTION_DAYS)


def _class_field(beacon: Beacon) -> str | None:
    classification: str | None = getattr(beacon, "classification", None)
    if classification is None:
        return None
    return "human" if classification == "human" else "machine"


def human_visitor_key(beacon: Beacon, salt: bytes) -> str | None:
    """Who a human hit is, for the unique human figures: the entity when the beacon has one (a
    recipient is one person, whatever proxy fetched for them), else the visitor key."""
    if beacon.entity:
        return hmac.new(salt, f"entity\n{beacon.entity}".encode(), hashlib.sha256).hexdigest()[:32]
    return visitor_key(beacon, salt)


def _human_mark_key(beacon: Beacon, kind: Kind, ref: str, day: str) -> str:
    return f"h#{beacon.mode}#{kind}#{ref}#{day}"


def _unique_human_slot(beacon: Beacon) -> Any:
    return Counter.unique_human_clicks if beacon.mode == "redirect" else Counter.unique_human_opens


def _get_mark(pk: str, visitor: str) -> VisitorMark | None:
    try:
        return VisitorMark.get(pk, visitor, consistent_read=True)
    except VisitorMark.DoesNotExist:
        return None


def _claim_human(tx: TransactWrite, pk: str, visitor: str, beacon: Beacon, expires: int) -> bool:
    """Put the claim of the day's first human hit of ``visitor`` in ``tx``: True if this beacon is
    it (the unique human count goes up), False if another beacon holds it (checked unchanged)."""
    mark = _get_mark(pk, visitor)
    if mark is None:
        tx.save(
            VisitorMark(pk, visitor, beacon=beacon.id, expires=expires),
            condition=VisitorMark.pk.does_not_exist(),
        )
        return True
    tx.condition_check(VisitorMark, pk, visitor, condition=VisitorMark.beacon == mark.beacon)
    return False


def _class_condition(classification: str | None) -> Any:
    if classification is None:
        return Beacon.classification.does_not_exist()
    return Beacon.classification == classification


def _not_counted() -> Any:
    return Beacon.hooks_applied.does_not_exist() | ~Beacon.hooks_applied.contains(COUNTED_MARK)


def _conflict(exc: TransactWriteError | UpdateError) -> bool:
    if isinstance(exc, UpdateError):
        return exc.cause_response_code == "ConditionalCheckFailedException"
    return any(
        reason is not None and reason.code == "ConditionalCheckFailed"
        for reason in exc.cancellation_reasons or []
    )


def _reload(beacon: Beacon) -> Beacon | None:
    try:
        return Beacon.get(beacon.pk, beacon.id, consistent_read=True)
    except Beacon.DoesNotExist:
        return None


def _take_stored(beacon: Beacon, stored: Beacon) -> None:
    beacon.classification = stored.classification
    beacon.reasons = stored.reasons
    beacon.hooks_applied = stored.hooks_applied


def _count_once(beacon: Beacon, salt_secret: bytes, settings: Settings) -> None:
    refs = beacon_refs(beacon)
    day = day_of(beacon.created_at)
    salt = daily_salt(salt_secret, day)
    visitor = visitor_key(beacon, salt)
    class_field = _class_field(beacon)
    human = human_visitor_key(beacon, salt) if class_field == "human" else None
    expires = expiry(beacon.created_at, settings.counter_retention_days)
    mark_expires = _mark_expiry(day)
    with TransactWrite(connection=transaction_connection(settings)) as tx:
        for kind, ref in refs:
            first = visitor is not None and _claim_visitor(kind, ref, day, visitor, beacon, mark_expires)
            actions: list[Any] = [Counter.total.add(1)]
            if first:
                actions.append(Counter.unique.add(1))
            if class_field == "human":
                actions.append(Counter.human.add(1))
            elif class_field == "machine":
                actions.append(Counter.machine.add(1))
            if human is not None and _claim_human(
                tx, _human_mark_key(beacon, kind, ref, day), human, beacon, mark_expires
            ):
                actions.append(_unique_human_slot(beacon).add(1))
            actions.append(Counter.expires.set(expires))
            tx.update(Counter(counter_key(kind, ref), day), actions=actions)
        # Counted once, and as the class that is stored: a relabelling in between makes this fail
        # and the beacon is counted again with its new class.
        tx.update(
            beacon,
            actions=[Beacon.hooks_applied.add({COUNTED_MARK})],
            condition=_not_counted() & _class_condition(beacon.classification),
        )


def count_beacon(beacon: Beacon, salt_secret: bytes, settings: Settings) -> bool:
    """Add the beacon to its references' counters, once, as the class stored on it (human or
    machine, and the day's unique human opens or clicks). True if counted now."""
    if not beacon_refs(beacon):
        return False  # no counter to add to: no transaction, no mark (two write units saved)
    for _ in range(MAX_ATTEMPTS):
        if COUNTED_MARK in (beacon.hooks_applied or set()):
            metrics.add_metric(name="CounterDuplicates", unit=MetricUnit.Count, value=1)
            return False
        try:
            _count_once(beacon, salt_secret, settings)
        except TransactWriteError as exc:
            if not _conflict(exc):
                raise
        else:
            return True
        # Counted meanwhile, relabelled meanwhile, or a human mark taken or released meanwhile.
        stored = _reload(beacon)
        if stored is None:
            return False
        _take_stored(beacon, stored)
    raise LabelConflictError(f"beacon {beacon.id}: counting kept conflicting; retried by the stream")


class LabelConflictError(RuntimeError):
    """Concurrent relabelling kept a beacon's conditional writes failing (the record is retried)."""


def _label_actions(verdict: Verdict, device: Device | None) -> list[Any]:
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


def store_label(
    beacon: Beacon, verdict: Verdict, device: Device, salt_secret: bytes, settings: Settings
) -> None:
    """Write the beacon's class, reasons, browser, OS and device in one conditional update, the
    first time; when a label is stored already (a replay, or a neighbour's processing labelled it
    first), make it ``verdict`` (:func:`relabel`). ``beacon`` ends up holding what is stored."""
    try:
        beacon.update(
            actions=_label_actions(verdict, device),
            condition=Beacon.id.exists() & Beacon.classification.does_not_exist(),
        )
    except UpdateError as exc:
        if not _conflict(exc):
            raise
        relabel(beacon, verdict, salt_secret, settings)


def _other_human(stored: Beacon, kind: Kind, ref: str) -> Beacon | None:
    """Another counted human hit of the same entity, mode, reference and day, if any."""
    if not stored.entity:
        return None  # a visitor key is not on beacons: no heir can be found (never relabelled)
    day = stored.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    low, high = beacon_id_floor(day), beacon_id_floor(day + timedelta(days=1))
    keys = Beacon.by_entity.query(stored.entity, Beacon.id.between(low, high))
    for other in hydrate(keys, consistent_read=True):
        if (
            other.id != stored.id
            and other.mode == stored.mode
            and other.classification == "human"
            and COUNTED_MARK in (other.hooks_applied or set())
            and getattr(other, str(kind)) == ref
        ):
            return other
    return None


def _release_human(
    tx: TransactWrite, pk: str, visitor: str, stored: Beacon, kind: Kind, ref: str, heirs: dict[str, Beacon]
) -> bool:
    """Put the release of ``stored``'s claim as the day's first human hit in ``tx``: handed to
    another human hit of the same visitor if there is one, else dropped. True if dropped (the
    unique human count goes down)."""
    mark = _get_mark(pk, visitor)
    if mark is None:
        return False
    if mark.beacon != stored.id:
        tx.condition_check(VisitorMark, pk, visitor, condition=VisitorMark.beacon == mark.beacon)
        return False
    heir = _other_human(stored, kind, ref)
    if heir is not None:
        heirs[heir.id] = heir
        tx.update(mark, actions=[VisitorMark.beacon.set(heir.id)], condition=VisitorMark.beacon == stored.id)
        return False
    tx.delete(mark, condition=VisitorMark.beacon == stored.id)
    return True


def _relabel_counted(stored: Beacon, verdict: Verdict, salt_secret: bytes, settings: Settings) -> None:
    old = stored.classification
    day = day_of(stored.created_at)
    salt = daily_salt(salt_secret, day)
    human = human_visitor_key(stored, salt)
    mark_expires = _mark_expiry(day)
    heirs: dict[str, Beacon] = {}
    with TransactWrite(connection=transaction_connection(settings)) as tx:
        if (old == "human") != verdict.human:
            for kind, ref in beacon_refs(stored):
                pk = _human_mark_key(stored, kind, ref, day)
                step = 1 if verdict.human else -1
                actions: list[Any] = [Counter.human.add(step), Counter.machine.add(-step)]
                if human is not None:
                    if verdict.human:
                        changed = _claim_human(tx, pk, human, stored, mark_expires)
                    else:
                        changed = _release_human(tx, pk, human, stored, kind, ref, heirs)
                    if changed:
                        actions.append(_unique_human_slot(stored).add(step))
                tx.update(Counter(counter_key(kind, ref), day), actions=actions)
            for heir in heirs.values():
                tx.condition_check(
                    Beacon,
                    heir.pk,
                    heir.id,
                    condition=(Beacon.classification == "human")
                    & Beacon.hooks_applied.contains(COUNTED_MARK),
                )
        tx.update(
            stored,
            actions=_label_actions(verdict, None),
            condition=_class_condition(old) & Beacon.hooks_applied.contains(COUNTED_MARK),
        )


def relabel(beacon: Beacon, verdict: Verdict, salt_secret: bytes, settings: Settings) -> bool:
    """Make a labelled beacon's class ``verdict``; if it was counted already, move it between the
    human and machine counters (and the unique human figures) in the same transaction. Conditional
    on the class and counted state read, so concurrent writers and replays cannot count it twice.
    True if the class changed now. ``beacon`` ends up holding what is stored."""
    for _ in range(MAX_ATTEMPTS):
        stored = _reload(beacon)
        if stored is None:
            return False
        if stored.classification is None or stored.classification == verdict.classification:
            _take_stored(beacon, stored)
            return False
        try:
            if COUNTED_MARK in (stored.hooks_applied or set()):
                _relabel_counted(stored, verdict, salt_secret, settings)
            else:
                stored.update(
                    actions=_label_actions(verdict, None),
                    condition=_class_condition(stored.classification) & _not_counted(),
                )
        except (TransactWriteError, UpdateError) as exc:
            if not _conflict(exc):
                raise
            continue
        metrics.add_metric(name="Relabelled", unit=MetricUnit.Count, value=1)
        refreshed = _reload(beacon)
        if refreshed is not None:
            _take_stored(beacon, refreshed)
        return True
    raise LabelConflictError(f"beacon {beacon.id}: relabelling kept conflicting; retried by the stream")


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One day of a reference's counts. The headline figures are ``unique_human_opens`` and
    ``unique_human_clicks``: distinct people (recipients, else visitors) with a human hit."""

    day: str
    total: int = 0
    unique: int = 0
    human: int = 0
    machine: int = 0
    unique_human_opens: int = 0
    unique_human_clicks: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "day": self.day,
            "unique_human_opens": self.unique_human_opens,
            "unique_human_clicks": self.unique_human_clicks,
            "total": self.total,
            "unique": self.unique,
            "human": self.human,
            "machine": self.machine,
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """A reference's daily series over a range of days (every day present, zeros included) and
    its totals. ``unique`` and the unique human figures in the totals are sums of daily figures
    (person-days): visitors are not linkable across days by design."""

    ref: str
    kind: Kind
    days: list[DayCounts]

    @property
    def totals(self) -> DayCounts:
        """Sums over the range."""
        return DayCounts(
            day=f"{self.days[0].day}..{self.days[-1].day}" if self.days else "",
            total=sum(d.total for d in self.days),
            unique=sum(d.unique for d in self.days),
            human=sum(d.human for d in self.days),
            machine=sum(d.machine for d in self.days),
            unique_human_opens=sum(d.unique_human_opens for d in self.days),
            unique_human_clicks=sum(d.unique_human_clicks for d in self.days),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"ref", "kind", "totals", "days": [...]}``."""
        totals = self.totals.as_dict()
        totals.pop("day")
        return {
            "ref": self.ref,
            "kind": str(self.kind),
            "from": self.days[0].day if self.days else None,
            "to": self.days[-1].day if self.days else None,
            "totals": totals,
            "days": [d.as_dict() for d in self.days],
        }


def _day_range(first: date, last: date) -> Iterator[str]:
    day = first
    while day <= last:
        yield day.isoformat()
        day += timedelta(days=1)


def daily_stats(kind: Kind, ref: Ref | str, first: date, last: date) -> Stats:
    """The counts of ``ref`` (as ``kind``) for each day from ``first`` to ``last``, inclusive."""
    found = {
        item.sk: item
        for item in Counter.query(
            counter_key(kind, ref), Counter.sk.between(first.isoformat(), last.isoformat())
        )
    }
    days = []
    for label in _day_range(first, last):
        item = found.get(label)
        days.append(
            DayCounts(label)
            if item is None
            else DayCounts(
                label,
                int(item.total),
                int(item.unique),
                int(item.human),
                int(item.machine),
                int(item.unique_human_opens),
                int(item.unique_human_clicks),
            )
        )
    return Stats(str(ref), kind, days)
