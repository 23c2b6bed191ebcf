"""Storing labels (stream function): a beacon's class settled with its entity's other hits, the
corrections of those hits, and relabelling counted beacons.

The verdicts themselves are pure (:mod:`webbugger.classify`). Here they are stored:

- an entity's beacons are found on its person-days (:func:`webbugger.persons.entity_days`),
  where each beacon registers before its neighbours are read: of two hits processed at once, the
  later reader sees the other, settles both and corrects the one stored first;
- a write to another beacon (its label, a unique human claim handed to it) raises that beacon's
  ``version``, so that its own claim (:func:`webbugger.ledger.claim`) fails and is made again
  from what is stored;
- relabelling a counted beacon moves its counts in one transaction with the new label and its
  person-day's claims, conditional on the class, ledger and claims read (:func:`relabel`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from webbugger.classify import (
    EVIDENCE_WINDOW,
    HONEYPOT_WINDOW,
    MAX_NEIGHBOURS,
    REACH,
    Hit,
    classify_hit,
    entity_hit,
    parse_device,
    settle_all,
)
from webbugger.counters import (
    KIND_CODES,
    Deltas,
    LabelConflictError,
    counter_key,
    daily_salt,
    day_of,
    unique_human_field,
)
from webbugger.day_labels import (
    Writes,
    bump,
    class_is,
    from_days,
    item_of,
    label_actions,
    label_fields,
    ledger_is,
    on_day,
    reload,
    take_mark,
    version_was,
)
from webbugger.feed import note_relabel
from webbugger.ids import beacon_id_time
from webbugger.ledger import conflicted, move_deltas, tallied_refs, tally
from webbugger.models import Beacon, beacon_key, expiry, hydrate, transaction_connection
from webbugger.observability import MetricUnit, metrics
from webbugger.persons import Day, PersonDay, claim_changes, entity_days, human_claim, person_of, read

if TYPE_CHECKING:
    from collections.abc import Iterable

    from webbugger.labels import Device, Verdict
    from webbugger.registry import Kind
    from webbugger.settings import Settings

# Conditional writes retried in place when a concurrent labelling or count got in between.
MAX_ATTEMPTS = 4


def entity_beacons(entity: str, around: datetime, *, besides: str | None = None) -> list[Beacon]:
    """The entity's beacons whose class can depend on a hit at ``around`` (newest first, capped),
    ``besides`` that one (the beacon being processed, which its caller holds), with their labels."""
    low, high = around - REACH, around + REACH + timedelta(milliseconds=1)
    days = list(entity_days(entity, day_of(low), day_of(high)))
    ids = sorted(
        (i for day in days for i in day.hits if low <= beacon_id_time(i) <= high and i != besides),
        reverse=True,
    )
    keys = (beacon_key(beacon_id) for beacon_id in ids[:MAX_NEIGHBOURS])
    return from_days(hydrate(keys, consistent_read=True), days)


def neighbours_of(beacon: Beacon) -> list[Beacon]:
    """The other beacons of the beacon's entity that settling reads (none without an entity)."""
    entity: str | None = beacon.entity  # PynamoDB types it non-null
    return [] if entity is None else entity_beacons(entity, beacon.created_at, besides=beacon.id)


def _affected(beacon: Beacon, others: Iterable[Beacon]) -> list[Beacon]:
    # The hits whose class the arrival of `beacon` can change.
    span = EVIDENCE_WINDOW + HONEYPOT_WINDOW
    return [other for other in others if abs(other.created_at - beacon.created_at) <= span]


def verdicts_for(beacon: Beacon, neighbours: list[Beacon]) -> dict[str, Verdict]:
    """The settled class of the beacon and of each of its entity's beacons read."""
    if not beacon.entity:
        return {beacon.id: classify_hit(Hit.of(beacon))}
    stored = [other for other in neighbours if other.id != beacon.id]
    return settle_all([entity_hit(other) for other in [*stored, beacon]])


def correct_neighbours(
    beacon: Beacon,
    neighbours: list[Beacon],
    verdicts: dict[str, Verdict],
    salt_secret: bytes,
    settings: Settings,
) -> None:
    """Store the class the arrival of ``beacon`` gives each of its entity's other hits."""
    for other in _affected(beacon, neighbours):
        if other.id == beacon.id:
            continue
        verdict = verdicts[other.id]
        current: str | None = other.classification  # PynamoDB types it non-null
        if current is None:
            store_label(other, verdict, parse_device(other.user_agent), salt_secret, settings)
        elif current != verdict.classification:
            relabel(other, verdict, salt_secret, settings)


def store_label(
    beacon: Beacon, verdict: Verdict, device: Device, salt_secret: bytes, settings: Settings
) -> None:
    """Write another beacon's class, reasons, browser, OS and device in one conditional update,
    the first time (raising its version); when a label is stored already, make it ``verdict``
    (:func:`relabel`). ``beacon`` ends up holding what is stored."""
    if on_day(beacon):  # labelled when it registered
        relabel(beacon, verdict, salt_secret, settings)
        return
    try:
        beacon.update(
            actions=[*label_actions(verdict, device), bump(beacon)],
            condition=Beacon.id.exists() & Beacon.classification.does_not_exist(),
        )
    except UpdateError as exc:
        if not conflicted(exc):
            raise
        relabel(beacon, verdict, salt_secret, settings)


def take_stored(beacon: Beacon, stored: Beacon) -> None:
    """Make ``beacon`` hold what is stored of its processing state."""
    for name in ("classification", "reasons", "hooks_applied", "ledger", "tally", "version"):
        setattr(beacon, name, getattr(stored, name))
    take_mark(beacon, stored)


def _person_day(beacon: Beacon, salt_secret: bytes) -> Day | None:
    """The beacon's person-day as stored; None without a person, or once a visitor's day item
    has expired (the claims are gone: a relabel then moves the class counts only)."""
    day = day_of(beacon.created_at)
    person = person_of(beacon, daily_salt(salt_secret, day))
    return None if person is None else read(person, day)


class ClaimMoves:
    """How the unique human claims of a beacon's person-day change when its class does: claims
    taken (it became human), given up or handed to another human hit (it became machine)."""

    def __init__(self, beacon: Beacon, human: bool, day: Day, refs: Iterable[tuple[Kind, str]]) -> None:
        self.beacon, self.day = beacon, day
        self.gained: list[tuple[str, str]] = []
        self.lost: list[tuple[str, str | None]] = []
        self.heirs: dict[str, Beacon] = {}
        self.heir_refs: list[tuple[Beacon, Kind, str]] = []
        refs = list(refs)
        held = [(kind, ref) for kind, ref in refs if day.holds(self._name(kind, ref), beacon.id)]
        if human:
            self.gained = [
                (self._name(k, r), beacon.id) for k, r in refs if self._name(k, r) not in day.claims
            ]
        elif held:
            pool = from_days(hydrate((beacon_key(i) for i in sorted(day.hits)), consistent_read=True), [day])
            for kind, ref in held:
                heir = self._heir(pool, kind, ref)
                self.lost.append((self._name(kind, ref), None if heir is None else heir.id))
                if heir is not None:
                    self.heirs[heir.id] = heir
                    self.heir_refs.append((heir, kind, ref))

    def _name(self, kind: Kind, ref: str) -> str:
        return human_claim(self.beacon.mode, kind, ref)

    def _heir(self, pool: list[Beacon], kind: Kind, ref: str) -> Beacon | None:
        for other in pool:  # sorted by id: the earliest human hit inherits
            if (
                other.id != self.beacon.id
                and other.mode == self.beacon.mode
                and other.classification == "human"
                and getattr(other, str(kind)) == ref
            ):
                return other
        return None

    def __bool__(self) -> bool:
        return bool(self.gained or self.lost)

    def after(self) -> Day:
        """The person-day once the moves are made."""
        claims = dict(self.day.claims)
        claims.update(self.gained)
        for name, heir in self.lost:
            if heir is None:
                claims.pop(name, None)
            else:
                claims[name] = heir
        return replace(self.day, claims=claims)

    def heir_deltas(self, retention_days: int) -> Deltas:
        """+1 unique human for each counted heir (an heir not counted yet counts it when claimed)."""
        deltas = Deltas()
        for heir, kind, ref in self.heir_refs:
            if heir.ledger is not None and KIND_CODES[kind] in (heir.tally or set()):
                key = (counter_key(kind, ref), day_of(heir.created_at))
                deltas.add(key, unique_human_field(heir.mode), 1, expiry(heir.created_at, retention_days))
        return deltas

    def write(self, writes: Writes) -> None:
        """The person-day's update and the heirs' version raises."""
        if not self:
            return
        actions, condition = claim_changes(self.day, self.gained, self.lost)
        writes.update(PersonDay(self.day.person, self.day.day), actions, condition)
        for heir in self.heirs.values():
            writes.update(
                item_of(heir),
                [bump(heir)],
                class_is(heir, "human") & ledger_is(heir, heir.ledger) & version_was(heir, heir.version),
            )


def align_own_claims(
    beacon: Beacon, verdict: Verdict, day: Day, refs: list[tuple[Kind, str]], settings: Settings
) -> Day:
    """Before a beacon is claimed: make its person-day's human claims agree with its settled
    class (registration claimed by its own class). The person-day as it then is."""
    moves = ClaimMoves(beacon, verdict.human, day, refs)
    if not moves:
        return day
    writes = Writes()
    moves.write(writes)
    with TransactWrite(connection=transaction_connection(settings)) as tx:
        moves.heir_deltas(settings.counter_retention_days).write(tx)
        writes.write(tx)
    return moves.after()


def _relabel_stored(stored: Beacon, verdict: Verdict, salt_secret: bytes, settings: Settings) -> None:
    old: str | None = stored.classification
    label = [*label_fields(stored, verdict), bump(stored)]
    # On the class, ledger and version read: any write in between makes this one start over.
    condition = class_is(stored, old) & ledger_is(stored, stored.ledger) & version_was(stored, stored.version)
    if stored.ledger is None or (old == "human") == verdict.human:
        # Not counted yet (its claim will count what it is then), or no count changes.
        item_of(stored).update(actions=label, condition=condition)
        return
    refs = tallied_refs(stored, stored.tally or set())
    day = _person_day(stored, salt_secret)
    moves = ClaimMoves(stored, verdict.human, day, refs) if day is not None else None
    before = tally(stored, old, day, refs)
    after = tally(stored, verdict.classification, moves.after() if moves else None, refs)
    deltas = move_deltas(stored, before, after, settings.counter_retention_days)
    writes = Writes()  # the claims and the label can be one item: the entity's day item
    if moves is not None:
        deltas.merge(moves.heir_deltas(settings.counter_retention_days))
        moves.write(writes)
    writes.update(item_of(stored), label, condition)
    with TransactWrite(connection=transaction_connection(settings)) as tx:
        deltas.write(tx)
        writes.write(tx)


def relabel(beacon: Beacon, verdict: Verdict, salt_secret: bytes, settings: Settings) -> bool:
    """Make a labelled beacon's class ``verdict``; if it was counted already, move it between the
    human and machine counters (and the unique human figures) in the same transaction. Conditional
    on the class, ledger and claims read, so concurrent writers and replays cannot count it twice.
    True if the class changed now. ``beacon`` ends up holding what is stored."""
    for _ in range(MAX_ATTEMPTS):
        stored = reload(beacon)
        if stored is None:
            return False
        if stored.classification is None or stored.classification == verdict.classification:
            take_stored(beacon, stored)
            return False
        previous: str = stored.classification
        try:
            _relabel_stored(stored, verdict, salt_secret, settings)
        except (TransactWriteError, UpdateError) as exc:
            if isinstance(exc, UpdateError) and not conflicted(exc):
                raise
            if isinstance(exc, TransactWriteError) and not transaction_conflict(exc):
                raise
            continue
        metrics.add_metric(name="Relabelled", unit=MetricUnit.Count, value=1)
        refreshed = reload(beacon)
        if refreshed is not None:
            take_stored(beacon, refreshed)
            note_relabel(refreshed, previous)  # the hit feed's relabel event and row
        return True
    raise LabelConflictError(f"beacon {beacon.id}: relabelling kept conflicting; retried by the stream")


def transaction_conflict(exc: TransactWriteError) -> bool:
    """Whether a transaction was cancelled by a condition or a concurrent transaction."""
    return any(
        reason is not None and reason.code in ("ConditionalCheckFailed", "TransactionConflict")
        for reason in exc.cancellation_reasons or []
    )
