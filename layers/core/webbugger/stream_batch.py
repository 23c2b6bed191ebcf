"""One batch of new beacons from the beacons table's stream: deferred hooks, labels, counts.

Per beacon, in this order (each step safe to repeat, so a record delivered again is harmless):

0. unless its entity was erased after it was made (:mod:`webbugger.tombstones`): then the beacon
   is deleted, and nothing else is done for it (and if the erasure comes while the beacon is
   processed, what was written for it is taken back: :func:`webbugger.erase.forget_late_work`);
1. its entity's deferred hook, once (:mod:`webbugger.deferred`);

then, for an entity's beacon whose day item has room for its label (:mod:`webbugger.day_labels`):

2. one write: its registration on its person-day, its claims, its label as it stands alone and
   its tally claimed to the batch's ledger, conditional on the day item being as read;
3. its class settled with its entity's other hits, read after that write (of two hits processed
   at once, the later reader sees the other): relabelled if they change it (rare);
4. the corrections its arrival makes to its entity's other hits;

and for any other beacon:

2. its registration on its person-day with its unique claims (:func:`webbugger.persons.register`:
   one write), unless it has no person or counts for nothing;
3. its class, settled with its entity's other hits (:mod:`webbugger.labelling`), and its human
   claims made to agree with it;
4. its own write: the label, and its tally claimed to the batch's ledger (one write);
5. the corrections its arrival makes to its entity's other hits.

Then the batch's counts commit, one ``ADD`` per counter item (:class:`webbugger.ledger.LedgerBatch`).
A beacon that fails is reported alone; its record comes again, with those after it (with every
beacon of its batch's ledger if it failed between its day item's write and its count: the ledger
then never commits, :meth:`webbugger.ledger.LedgerBatch.spoil`).

Then, if the template turned it on, the hit feed publishes the batch (:mod:`webbugger.feed`).

Write units of a hit with a recipient and a campaign: its one write on the recipient's day item
(which lists a click as a click: the recipient's figures are folded from it); per batch, 2 per
counter item and 2 for the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError

from webbugger.classify import Hit, classify_hit, parse_device
from webbugger.counters import LabelConflictError, counted_refs, counter_key, daily_salt, day_of
from webbugger.day_labels import apply, fits, register_labelled, reload
from webbugger.deferred import apply_deferred_hooks
from webbugger.erase import forget_late_work
from webbugger.feed import collecting_relabels, publish
from webbugger.labelling import (
    MAX_ATTEMPTS,
    align_own_claims,
    correct_neighbours,
    neighbours_of,
    relabel,
    take_stored,
    transaction_conflict,
    verdicts_for,
)
from webbugger.ledger import LedgerBatch, claim, reclaim, tallied_refs, tally
from webbugger.models import beacon_key
from webbugger.observability import MetricUnit, logger, metrics
from webbugger.persons import Day, DayLabel, claims_of, person_of, read, register
from webbugger.tombstones import Tombstones

if TYPE_CHECKING:
    from collections.abc import Iterable

    from webbugger.labels import Verdict
    from webbugger.models import Beacon
    from webbugger.registry import Kind, Registry
    from webbugger.settings import Settings


def _keys(beacon: Beacon, refs: Iterable[tuple[Kind, str]]) -> set[tuple[str, str]]:
    day = day_of(beacon.created_at)
    return {(counter_key(kind, ref), day) for kind, ref in refs}


class BatchRun:
    """The processing of one batch."""

    def __init__(self, registry: Registry, salt_secret: bytes, settings: Settings) -> None:
        self.registry, self.salt_secret, self.settings = registry, salt_secret, settings
        self.ledgers = LedgerBatch(settings)
        self.tombstones = Tombstones(salt_secret) if settings.counters_table else None
        self.buried: set[str] = set()
        # Entities' day items as this batch's own writes left them (person, day → item).
        self.days: dict[tuple[str, str], Day] = {}

    def process(self, beacons: list[Beacon]) -> set[str]:
        """Process every beacon, then commit the counts; the ids of the beacons that failed."""
        failed: set[str] = set()
        for beacon in beacons:
            try:
                if self.tombstones is not None and self.tombstones.buried(beacon):
                    beacon_key(beacon.id).delete()  # a late record of an erased entity: gone again
                    self.buried.add(beacon.id)
                    metrics.add_metric(name="ErasedBeaconsDropped", unit=MetricUnit.Count, value=1)
                    continue
                self.process_one(beacon)
            except Exception:  # noqa: BLE001 - one beacon's failure must not stop the others
                logger.exception(
                    "processing a beacon failed; its record is retried", extra={"beacon_id": beacon.id}
                )
                metrics.add_metric(name="StreamRecordFailures", unit=MetricUnit.Count, value=1)
                failed.add(beacon.id)
        return failed | self.ledgers.commit()

    def process_one(self, beacon: Beacon) -> None:
        """Hooks, label and counts of one beacon."""
        apply_deferred_hooks(beacon, self.registry, self.settings)
        day_label = day_of(beacon.created_at)
        person = person_of(beacon, daily_salt(self.salt_secret, day_label))
        refs = counted_refs(beacon, self.settings)
        if beacon.entity and person is not None and self._register_labelled(beacon, person, refs):
            return
        own = classify_hit(Hit.of(beacon))
        day: Day | None = None
        if person is not None and (refs or beacon.entity):
            day = register(beacon, person, own.human, self.settings)
            if day is None:  # registered before: the record came again
                stored = reload(beacon)
                if stored is None:
                    self._vanished(beacon)
                    return
                take_stored(beacon, stored)
                day = read(person, day_label) or Day(person, day_label)
        claimed: str | None = beacon.ledger  # PynamoDB types it non-null
        if claimed is None:
            self._label_and_claim(beacon, person, day, refs)
        else:
            self._counted_again(beacon)

    def _register_labelled(self, beacon: Beacon, person: str, refs: list[tuple[Kind, str]]) -> bool:
        """An entity's beacon registered, claimed and labelled in one write on its day item, then
        settled with its neighbours; False when its day item has no room for its label (or it
        was registered without one before): the beacon is then labelled on itself."""
        day_label = day_of(beacon.created_at)
        own = verdicts_for(beacon, [])[beacon.id]
        for attempt in range(MAX_ATTEMPTS):
            # The first read may be stale (half a read unit), or the item as this batch last
            # wrote it (none): the write is conditional on it.
            known = self.days.get((person, day_label)) if attempt == 0 else None
            day = known or read(person, day_label, consistent=attempt > 0) or Day(person, day_label)
            if beacon.id in day.hits:  # registered before: the record came again
                if beacon.id not in day.labels:
                    return False
                stored = reload(beacon)
                if stored is None:
                    self._vanished(beacon)
                    return True
                take_stored(beacon, stored)
                self._counted_again(beacon)
                return True
            taken = self._free_claims(beacon, own, day)
            after = Day(
                person, day_label, day.hits | {beacon.id}, {**day.claims, **dict.fromkeys(taken, beacon.id)}
            )
            codes = tally(beacon, own.classification, after, refs) if refs else None
            ledger_id = self.ledgers.ledger_for(_keys(beacon, refs)) if codes else None
            label = DayLabel(
                own.classification, tuple(map(str, own.reasons)), ledger_id, frozenset(codes or ())
            )
            if not fits(beacon, day, taken, label):  # a busy day: labelled on the beacon
                return False
            with self.ledgers.claiming(ledger_id, written=False):
                written = register_labelled(beacon, day, taken, label, self.settings)
            if written is None:
                continue  # the day item changed since read
            self.days[person, day_label] = written
            with self.ledgers.claiming(ledger_id, written=True):
                apply(beacon, label)
                # Nothing here wrote the beacon item, whose absence would tell of an erasure since
                # its tombstone was read: the tombstone is read again (an erasure that missed this
                # day item buried the entity first).
                vanished = self._vanished(beacon)
            if vanished:
                return True
            if codes and ledger_id:
                self.ledgers.add(ledger_id, beacon, codes)
            self._settle(beacon, own)
            return True
        # A burst of the entity's hits kept changing its day item: labelled on the beacon, whose
        # registration takes what is free whatever the others do.
        metrics.add_metric(name="DayLabelConflicts", unit=MetricUnit.Count, value=1)
        return False

    def _free_claims(self, beacon: Beacon, own: Verdict, day: Day) -> list[str]:
        """The claims of ``day`` the beacon takes as ``own``: each first for a reference, and the
        human open or click of each when it is human."""
        return [name for name in claims_of(beacon, own.human, self.settings) if name not in day.claims]

    def _settle(self, beacon: Beacon, own: Verdict) -> None:
        """Settle a beacon labelled as it stands alone with its entity's other hits (read now)."""
        neighbours = neighbours_of(beacon)
        if not neighbours:
            return
        verdicts = verdicts_for(beacon, neighbours)
        if verdicts[beacon.id].classification != own.classification:
            relabel(beacon, verdicts[beacon.id], self.salt_secret, self.settings)
        correct_neighbours(beacon, neighbours, verdicts, self.salt_secret, self.settings)

    def _label_and_claim(
        self, beacon: Beacon, person: str | None, day: Day | None, refs: list[tuple[Kind, str]]
    ) -> None:
        device = parse_device(beacon.user_agent)
        for _ in range(MAX_ATTEMPTS):
            neighbours = neighbours_of(beacon)
            verdicts = verdicts_for(beacon, neighbours)
            verdict = verdicts[beacon.id]
            if refs and day is not None:
                try:
                    day = align_own_claims(beacon, verdict, day, refs, self.settings)
                except TransactWriteError as exc:
                    if not transaction_conflict(exc):
                        raise
                    day = read(day.person, day.day) or day  # a neighbour registered meanwhile
                    continue
            codes = tally(beacon, verdict.classification, day, refs) if refs else None
            ledger_id = self.ledgers.ledger_for(_keys(beacon, refs)) if codes else None
            with self.ledgers.claiming(ledger_id, written=False):
                claimed_now = claim(beacon, verdict, device, codes, ledger_id)
            if claimed_now:
                if codes and ledger_id:
                    self.ledgers.add(ledger_id, beacon, codes)
                correct_neighbours(beacon, neighbours, verdicts, self.salt_secret, self.settings)
                return
            # Another beacon's processing wrote this one (or its claim) since it was read.
            stored = reload(beacon)
            if stored is None:
                self._vanished(beacon)
                return
            take_stored(beacon, stored)
            claimed: str | None = beacon.ledger
            if claimed is not None:
                self._counted_again(beacon)
                return
            if person is not None and day is not None:
                day = read(person, day.day) or Day(person, day.day)
        raise LabelConflictError(f"beacon {beacon.id}: its claim kept conflicting; retried by the stream")

    def _vanished(self, beacon: Beacon) -> bool:
        """The beacon was (or may have been) erased while this processed it: if its entity's
        tombstone, read again, buries it, take back what was written for it since. True if so."""
        if self.tombstones is not None and forget_late_work(beacon, self.registry, self.tombstones):
            self.buried.add(beacon.id)
            metrics.add_metric(name="ErasedBeaconsDropped", unit=MetricUnit.Count, value=1)
            return True
        return False

    def _counted_again(self, stored: Beacon) -> None:
        """A beacon claimed before: counted if its ledger committed, else claimed to this batch's;
        then its class and its neighbours' settled again (a correction may have been cut short)."""
        old: str | None = stored.ledger
        if old is None:
            pass  # labelled, counting nothing
        elif not self.ledgers.counted(old, stored.id):
            codes = set(stored.tally or ())
            ledger_id = self.ledgers.ledger_for(_keys(stored, tallied_refs(stored, codes)))
            with self.ledgers.claiming(ledger_id, written=False):
                reclaimed = reclaim(stored, ledger_id)
            if not reclaimed:
                raise LabelConflictError(f"beacon {stored.id}: claimed anew meanwhile; retried by the stream")
            stored.ledger = ledger_id
            self.ledgers.add(ledger_id, stored, codes)
            metrics.add_metric(name="CountsReclaimed", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="CounterDuplicates", unit=MetricUnit.Count, value=1)
        neighbours = neighbours_of(stored)
        verdicts = verdicts_for(stored, neighbours)
        if stored.classification != verdicts[stored.id].classification:
            relabel(stored, verdicts[stored.id], self.salt_secret, self.settings)
        correct_neighbours(stored, neighbours, verdicts, self.salt_secret, self.settings)


def process_batch(
    beacons: list[Beacon], registry: Registry, salt_secret: bytes, settings: Settings
) -> set[str]:
    """Process a stream batch's new beacons; the ids of those whose records are to be retried.
    Then the hit feed (:mod:`webbugger.feed`, when on): the beacons that succeeded, labelled,
    and every class change the batch made."""
    run = BatchRun(registry, salt_secret, settings)
    with collecting_relabels(settings) as relabels:
        retry = run.process(beacons)
    done = (beacon for beacon in beacons if beacon.id not in retry and beacon.id not in run.buried)
    publish(done, relabels, salt_secret, settings)
    return retry
