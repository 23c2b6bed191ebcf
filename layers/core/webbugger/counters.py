"""Per-day counters of targets and sources (and entities, when asked for), kept by the stream.

For each counted reference of a new beacon (``COUNTED_KINDS``: targets and sources by default;
an entity's figures, folded from its day items, count its opens and clicks already), one counter
item per UTC day holds ``total``, ``unique`` (distinct people that day: exact, see
:mod:`webbugger.persons`), ``human``/``machine`` (by the class :mod:`webbugger.labelling`
stores on the beacon) and the headline figures ``unique_human_opens`` /
``unique_human_clicks``: distinct people with a human open or click that day.

A person is the beacon's entity when it has one (one recipient, whichever proxy fetched for
them), else its visitor: the keyed hash of the beacon's anonymised address and user agent with a
salt that changes every UTC day (derived from the deployment's visitor-salt secret, not from the
URL-signing keys, so rotating those mid-day does not make returning visitors new), so the key
cannot be linked across days nor reversed; it is never stored in clear.

The stream adds a whole batch's beacons with one ``ADD`` per counter item, exactly once under
redelivery: see :mod:`webbugger.ledger`. A beacon relabelled after it was counted moves between
the human and machine counts in one transaction (:mod:`webbugger.labelling`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from webbugger.registry import Kind

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pynamodb.transactions import TransactWrite

    from webbugger.models import Beacon
    from webbugger.refs import Ref
    from webbugger.settings import Settings

# One letter per kind, in the claims of webbugger.persons and the tallies of webbugger.ledger.
KIND_CODES = {Kind.TARGET: "t", Kind.ENTITY: "e", Kind.SOURCE: "s"}
COUNT_FIELDS = ("total", "unique", "human", "machine", "unique_human_opens", "unique_human_clicks")


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
    # Distinct people with a human open / a human click that day (see webbugger.persons).
    unique_human_opens = NumberAttribute(default=0)
    unique_human_clicks = NumberAttribute(default=0)
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


def counted_refs(beacon: Beacon, settings: Settings) -> list[tuple[Kind, str]]:
    """The beacon's references whose kind the deployment counts (``COUNTED_KINDS``)."""
    return [(kind, ref) for kind, ref in beacon_refs(beacon) if kind in settings.counted_kinds]


def class_field(classification: str | None) -> str:
    """The counter a class adds to."""
    return "human" if classification == "human" else "machine"


def unique_human_field(mode: str) -> str:
    """The counter of distinct people with a human hit of ``mode``."""
    return "unique_human_clicks" if mode == "redirect" else "unique_human_opens"


@dataclass(slots=True)
class Deltas:
    """Changes to counter items, by item (``(pk, day)``): numbers to add, and the latest expiry."""

    changes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    expires: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, key: tuple[str, str], name: str, step: int, expires: int | None = None) -> None:
        """Add ``step`` to counter ``name`` of item ``key``."""
        fields = self.changes.setdefault(key, {})
        fields[name] = fields.get(name, 0) + step
        if expires is not None:
            self.expires[key] = max(expires, self.expires.get(key, 0))

    def merge(self, other: Deltas) -> None:
        """Add every change of ``other``."""
        for key, fields in other.changes.items():
            for name, step in fields.items():
                self.add(key, name, step, other.expires.get(key))

    def keys(self) -> set[tuple[str, str]]:
        """The counter items changed (those whose changes sum to nothing included)."""
        return set(self.changes)

    def write(self, tx: TransactWrite) -> None:
        """One update per counter item whose changes do not cancel out, in ``tx``."""
        for (pk, day), fields in sorted(self.changes.items()):
            actions: list[Any] = [getattr(Counter, name).add(step) for name, step in fields.items() if step]
            if not actions:
                continue
            if (pk, day) in self.expires:
                actions.append(Counter.expires.set(self.expires[pk, day]))
            tx.update(Counter(pk, day), actions=actions)


class LabelConflictError(RuntimeError):
    """Concurrent processing kept a beacon's conditional writes failing (the record is retried)."""


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
