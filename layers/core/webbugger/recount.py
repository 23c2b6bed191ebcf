"""``webbugger recount``: the stream's work run again for the beacons it never finished.

A stream record that kept failing (a table outage longer than the stream's retries, a broken
hook) is dead-lettered with its coordinates only; its beacon is in the table, though, and says
how far its processing went (:mod:`webbugger.stream_batch`):

- a beacon that counts (a reference of a kind in ``COUNTED_KINDS``) is counted when it is claimed
  to a ledger and that ledger committed (:mod:`webbugger.ledger`): no ledger, or a ledger that is
  absent or aborted, is *unfinished*;
- a beacon that counts nothing but has an entity is done once it is labelled and registered on
  its entity's day (which comes after its deferred hook);
- any other beacon with a reference is done once labelled.

Each unfinished beacon goes through the stream's own batch processing
(:func:`webbugger.stream_batch.process_batch`) as if its record came again: every step is
conditional on what is stored, so a beacon is counted, hooked and labelled exactly once, however
often this runs, and beside the stream function (a ledger still on the wire is aborted first and
its records retried by the stream, which then finds them counted). Beacons of an entity erased
since are deleted (:mod:`webbugger.tombstones`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from webbugger.beacon_queries import beacons_between
from webbugger.counters import counted_refs, day_of
from webbugger.ledger import COMMITTED, Ledger
from webbugger.persons import entity_person, read
from webbugger.stream_batch import process_batch

if TYPE_CHECKING:
    from datetime import datetime

    from webbugger.models import Beacon
    from webbugger.registry import Registry
    from webbugger.settings import Settings

# Beacons handed to the stream's processing at once: the stream's BatchSize.
BATCH = 100


@dataclass
class Recounted:
    """What a run examined and did; ``next_cursor`` resumes a run cut short by its time budget."""

    examined: int = 0
    unfinished: int = 0
    recounted: int = 0
    failed: int = 0
    next_cursor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class _Progress:
    """What is known of the ledgers and entity-days read so far (each read once)."""

    ledgers: dict[str, bool] = field(default_factory=dict)
    registered: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    def committed(self, ledger_id: str) -> bool:
        if ledger_id not in self.ledgers:
            try:
                state = Ledger.get(f"l#{ledger_id}", "ledger", consistent_read=True).state
            except Ledger.DoesNotExist:
                state = None
            self.ledgers[ledger_id] = state == COMMITTED
        return self.ledgers[ledger_id]

    def listed(self, entity: str, beacon: Beacon) -> bool:
        key = (entity, day_of(beacon.created_at))
        if key not in self.registered:
            day = read(entity_person(entity), key[1])
            self.registered[key] = frozenset() if day is None else day.hits
        return beacon.id in self.registered[key]


def unfinished(beacon: Beacon, settings: Settings, progress: _Progress) -> bool:
    """Whether the stream's work for ``beacon`` is not all done (see the module's docstring)."""
    entity: str | None = beacon.entity  # PynamoDB types these non-null
    if not (beacon.target or entity or beacon.source):
        return False  # the stream never takes these: labelled when read
    if counted_refs(beacon, settings):
        ledger: str | None = beacon.ledger
        return ledger is None or not progress.committed(ledger)
    label: str | None = beacon.classification
    if label is None:
        return True
    return entity is not None and not progress.listed(entity, beacon)


def recount(
    since: datetime,
    until: datetime,
    registry: Registry,
    salt_secret: bytes,
    settings: Settings,
    *,
    before_id: str | None = None,
    budget_s: float | None = None,
) -> Recounted:
    """Run the stream's work for every unfinished beacon made from ``since`` to ``until`` (older
    than ``before_id``, when resuming). With ``budget_s``, stop after about that many seconds and
    say where to resume (``next_cursor``)."""
    started = time.monotonic()
    result, progress = Recounted(), _Progress()
    pending: list[Beacon] = []
    for beacon in beacons_between(since, until, before_id=before_id):
        result.examined += 1
        if unfinished(beacon, settings, progress):
            pending.append(beacon)
        if len(pending) >= BATCH:
            _process(pending, registry, salt_secret, settings, result)
            pending = []
        if budget_s is not None and time.monotonic() - started > budget_s:
            result.next_cursor = beacon.id
            break
    _process(pending, registry, salt_secret, settings, result)
    return result


def _process(
    beacons: list[Beacon], registry: Registry, salt_secret: bytes, settings: Settings, result: Recounted
) -> None:
    if not beacons:
        return
    failed = process_batch(beacons, registry, salt_secret, settings)
    result.unfinished += len(beacons)
    result.failed += len(failed)
    result.recounted += len(beacons) - len(failed)
