"""Per-day counters of every target, entity and source, kept off the hot path by the stream.

For each reference of a new beacon, one counter item per UTC day holds ``total``, ``unique``
(distinct visitors that day: exact, see below), and ``human``/``machine`` once beacons carry a
classification. Counting is idempotent per beacon: the counter updates commit in one DynamoDB
transaction with a "counted" mark on the beacon, conditional on the mark being absent.

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
from functools import cache
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from webbugger.models import Beacon, expiry
from webbugger.observability import MetricUnit, metrics
from webbugger.registry import Kind

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.refs import Ref
    from webbugger.settings import Settings

COUNTED_MARK = "#counters"
# Days after the start of its day that a visitor mark lives: its day, then the stream's retries.
MARK_RETENTION_DAYS = 3  # in Beacon.hooks_applied; no type name starts with '#'


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
    expires = NumberAttribute(null=True)


class VisitorMark(Model):
    """That a visitor was counted for a reference on a day (``pk`` = ``v#KIND#TYPE:ID#DAY``)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # the visitor key
    beacon = UnicodeAttribute()
    expires = NumberAttribute(null=True)


def counter_key(kind: Kind, ref: Ref | str) -> str:
    """The partition key of a reference's counters."""
    return f"c#{kind}#{ref}"


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
    mark = VisitorMark(f"v#{kind}#{ref}#{day}", visitor, beacon=beacon.id, expires=expires)
    try:
        mark.save(condition=VisitorMark.pk.does_not_exist() | (VisitorMark.beacon == beacon.id))
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _class_field(beacon: Beacon) -> str | None:
    classification: str | None = getattr(beacon, "classification", None)
    if classification is None:
        return None
    return "human" if classification == "human" else "machine"


@cache
def _connection(region: str, host: str | None) -> Connection:
    return Connection(region=region, host=host)


def count_beacon(beacon: Beacon, salt_secret: bytes, settings: Settings) -> bool:
    """Add the beacon to its references' counters, once. True if counted now."""
    if COUNTED_MARK in (beacon.hooks_applied or set()):
        return False
    refs = beacon_refs(beacon)
    day = day_of(beacon.created_at)
    visitor = visitor_key(beacon, daily_salt(salt_secret, day))
    class_field = _class_field(beacon)
    expires = expiry(beacon.created_at, settings.counter_retention_days)
    # A visitor mark matters only on its own day (plus the stream's day of retries): dropping it
    # early keeps no per-visitor trace for longer than needed.
    mark_expires = expiry(datetime.fromisoformat(day).replace(tzinfo=UTC), MARK_RETENTION_DAYS)
    try:
        with TransactWrite(connection=_connection(settings.region, settings.dynamodb_endpoint)) as tx:
            for kind, ref in refs:
                first = visitor is not None and _claim_visitor(kind, ref, day, visitor, beacon, mark_expires)
                actions: list[Any] = [Counter.total.add(1)]
                if first:
                    actions.append(Counter.unique.add(1))
                if class_field == "human":
                    actions.append(Counter.human.add(1))
                elif class_field == "machine":
                    actions.append(Counter.machine.add(1))
                actions.append(Counter.expires.set(expires))
                tx.update(Counter(counter_key(kind, ref), day), actions=actions)
            tx.update(
                beacon,
                actions=[Beacon.hooks_applied.add({COUNTED_MARK})],
                condition=Beacon.hooks_applied.does_not_exist()
                | ~Beacon.hooks_applied.contains(COUNTED_MARK),
            )
    except TransactWriteError as exc:
        reasons = exc.cancellation_reasons or []
        if reasons and reasons[-1] is not None and reasons[-1].code == "ConditionalCheckFailed":
            metrics.add_metric(name="CounterDuplicates", unit=MetricUnit.Count, value=1)
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One day of a reference's counts."""

    day: str
    total: int = 0
    unique: int = 0
    human: int = 0
    machine: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "day": self.day,
            "total": self.total,
            "unique": self.unique,
            "human": self.human,
            "machine": self.machine,
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """A reference's daily series over a range of days (every day present, zeros included) and
    its totals. ``unique`` in the totals is the sum of daily uniques (visitor-days): visitors are
    not linkable across days by design."""

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
            else DayCounts(label, int(item.total), int(item.unique), int(item.human), int(item.machine))
        )
    return Stats(str(ref), kind, days)
