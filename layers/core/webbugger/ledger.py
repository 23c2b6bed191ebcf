"""Counting a stream batch exactly once: one ``ADD`` per counter item per batch, with a ledger.

What a beacon adds to its counters is its *tally*: the kinds of reference it counts for, its
class (human or machine), and which of its person-day's claims are its own
(:mod:`webbugger.persons`): unique for a reference, or the unique human open or click.

1. **Claim.** The beacon's own write stores its label and, in the same conditional update, the
   id of the batch's ledger and its tally (:func:`claim`): conditional on no ledger on the
   beacon yet, and on its ``version`` being the one read (every other beacon's processing that
   writes this beacon, labelling it or handing it a claim, raises the version, so that the
   tally is computed from what is stored).
2. **Commit.** The batch's tallies, summed per counter item, commit in one TransactWriteItems
   with the conditional put of the ledger item (``l#ID``), a ledger per 99 counter items
   (DynamoDB's limit of 100 items a transaction).

Delivery is at least once: a batch comes again whole, bisected, or from a failed record on. A
beacon that comes again has a ledger already, so its claim is refused, and:

- its ledger is committed: it was counted; nothing more;
- its ledger is not there: that batch never committed. Its invocation ended (Lambda does not
  retry a batch while it runs, and a beacon's record is in one shard), but its commit could
  still be on the wire, so the ledger is first *aborted*: put as ``aborted``, conditional on
  its absence. From then on that commit must fail; the beacon is claimed anew to this batch's
  ledger (conditional on the old one), with its tally unchanged;
- its ledger was aborted: claimed anew likewise;
- its ledger is this batch's: counted if its tally was added to it (the same record twice in the
  batch); else its claim was applied though its answer said otherwise (the SDK retried a write
  whose answer was lost, and the retry was refused), and it is added now.

So each beacon's tally is in exactly one committed ledger. The ledgers of a batch name no
beacons: a half of a bisected batch, or the records from a failed one on, resolve each beacon
by its own ledger. A beacon claimed to a ledger is then counted in that ledger's commit
whatever happens to the rest of its record (a failure after the claim retries the record,
which finds the claim). Its tally is added to the ledger right after the claim; a failure from
the claim's write on until then (the write's outcome unknown: a timeout, a server error; or a
check between: an entity's day item written, then its tombstone read again) *spoils* the ledger
(:meth:`LedgerBatch.claiming`): it never commits, and its beacons' retries abort it and claim
them anew.

**Relabelling** (:mod:`webbugger.labelling`) never waits for a ledger: a claimed beacon whose
class or claims change moves its counts at once, in one transaction with the change
(conditional on the state read). Its tally stays as claimed: if its ledger commits, the tally
and the moves add up to its current state; if it is aborted, the new claim commits the same
tally, and the moves already made still add up. A beacon not claimed yet moves nothing: its
claim will count what it is then.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, PynamoDBException, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from webbugger.counters import (
    KIND_CODES,
    Deltas,
    beacon_refs,
    class_field,
    counter_key,
    day_of,
    unique_human_field,
)
from webbugger.day_labels import item_of, label_actions, ledger_is, set_ledger, version_is
from webbugger.ids import new_beacon_id
from webbugger.models import Beacon, expiry, transaction_connection
from webbugger.persons import human_claim, unique_claim

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from webbugger.labels import Device, Verdict
    from webbugger.persons import Day
    from webbugger.registry import Kind
    from webbugger.settings import Settings

COMMITTED = "committed"
ABORTED = "aborted"
# A ledger is read only while its batch's records can come again (24 hours in the stream).
LEDGER_RETENTION_DAYS = 3
# Counter items per ledger: a transaction holds at most 100 items, one of them the ledger.
MAX_COUNTERS = 99


class Ledger(Model):
    """That a batch's counts committed (``state`` = committed), or never will (aborted)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)  # l#ID
    sk = UnicodeAttribute(range_key=True)
    state = UnicodeAttribute()
    expires = NumberAttribute(null=True)


def _ledger_item(ledger_id: str, state: str) -> Ledger:
    from webbugger.models import utcnow

    return Ledger(f"l#{ledger_id}", "ledger", state=state, expires=expiry(utcnow(), LEDGER_RETENTION_DAYS))


# --- tallies ---------------------------------------------------------------------------------


def tally(
    beacon: Beacon, classification: str | None, day: Day | None, refs: Iterable[tuple[Kind, str]]
) -> set[str]:
    """What the beacon adds to the counters of ``refs`` as ``classification``, holding the
    claims of ``day`` (its person-day as stored) that name it."""
    codes = {class_field(classification)}
    for kind, ref in refs:
        code = KIND_CODES[kind]
        codes.add(code)
        if day is not None and day.holds(unique_claim(kind, ref), beacon.id):
            codes.add(f"u{code}")
        if day is not None and day.holds(human_claim(beacon.mode, kind, ref), beacon.id):
            codes.add(f"h{code}")
    return codes


def tallied_refs(beacon: Beacon, codes: Iterable[str]) -> list[tuple[Kind, str]]:
    """The references a tally counts for."""
    kept = set(codes)
    return [(kind, ref) for kind, ref in beacon_refs(beacon) if KIND_CODES[kind] in kept]


def tally_deltas(beacon: Beacon, codes: Iterable[str], step: int, retention_days: int) -> Deltas:
    """The counter changes of adding (``step`` 1) or taking away (-1) a tally."""
    kept = set(codes)
    deltas = Deltas()
    expires = expiry(beacon.created_at, retention_days)
    day = day_of(beacon.created_at)
    for kind, ref in tallied_refs(beacon, kept):
        code, key = KIND_CODES[kind], (counter_key(kind, ref), day)
        deltas.add(key, "total", step, expires)
        deltas.add(key, "human" if "human" in kept else "machine", step)
        if f"u{code}" in kept:
            deltas.add(key, "unique", step)
        if f"h{code}" in kept:
            deltas.add(key, unique_human_field(beacon.mode), step)
    return deltas


def move_deltas(beacon: Beacon, before: set[str], after: set[str], retention_days: int) -> Deltas:
    """The counter changes of a counted beacon going from tally ``before`` to ``after``."""
    deltas = tally_deltas(beacon, after, 1, retention_days)
    deltas.merge(tally_deltas(beacon, before, -1, retention_days))
    return deltas


# --- the beacon's own writes -------------------------------------------------------------------


def conflicted(exc: UpdateError | PutError) -> bool:
    """Whether a single-item write failed on its condition."""
    return exc.cause_response_code == "ConditionalCheckFailedException"


# Server errors after which a write may have been applied all the same.
_SERVER_ERRORS = frozenset({"InternalServerError", "ServiceUnavailable"})


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed write may have been applied all the same: no answer (a timeout, a lost
    connection, after the SDK's retries) or a server error."""
    found: BaseException | None = exc
    while found is not None and not isinstance(found, PynamoDBException):
        # A handler that read the write's error code failed on it (cause_response_code does, on a
        # timeout's error, whose `response` is None): the write's error is its context.
        found = found.__context__
    if found is None:
        return False
    answer = getattr(found.cause, "response", None)
    code = answer.get("Error", {}).get("Code") if isinstance(answer, dict) else None
    return code is None or code in _SERVER_ERRORS


def claim(
    beacon: Beacon, verdict: Verdict, device: Device, codes: set[str] | None, ledger_id: str | None
) -> bool:
    """Store the beacon's label and, when it counts (``codes``), claim its tally to the ledger,
    in one update conditional on no ledger yet and on the version read. False on conflict."""
    actions = label_actions(verdict, device)
    if codes is not None and ledger_id is not None:
        actions += [Beacon.ledger.set(ledger_id), Beacon.tally.set(codes)]
    condition = Beacon.id.exists() & Beacon.ledger.does_not_exist() & version_is(beacon.version)
    try:
        beacon.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if not conflicted(exc):
            raise
        return False
    return True


def reclaim(stored: Beacon, ledger_id: str) -> bool:
    """Claim a beacon whose ledger was aborted to ``ledger_id``, its tally unchanged (wherever its
    label lives: :mod:`webbugger.day_labels`)."""
    try:
        item_of(stored).update(
            actions=[set_ledger(stored, ledger_id)], condition=ledger_is(stored, stored.ledger)
        )
    except UpdateError as exc:
        if not conflicted(exc):
            raise
        return False
    return True


# --- a batch's ledgers -------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    ledger_id: str
    deltas: Deltas = field(default_factory=Deltas)
    reserved: set[tuple[str, str]] = field(default_factory=set)
    beacons: list[str] = field(default_factory=list)
    # A beacon was claimed to it and could not be added: it must not commit (see spoil).
    spoiled: bool = False


class LedgerBatch:
    """One stream batch's ledgers and the tallies claimed to them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._chunks: list[_Chunk] = []
        self._states: dict[str, str] = {}

    def ledger_for(self, keys: set[tuple[str, str]]) -> str:
        """The ledger to claim a beacon counting in counter items ``keys`` to."""
        chunk = self._chunks[-1] if self._chunks else None
        if chunk is None or chunk.spoiled or len(chunk.reserved | keys) > MAX_COUNTERS:
            chunk = _Chunk(new_beacon_id())
            self._chunks.append(chunk)
        chunk.reserved |= keys
        return chunk.ledger_id

    def add(self, ledger_id: str, beacon: Beacon, codes: Iterable[str]) -> None:
        """Count a beacon claimed to ``ledger_id`` (one of this batch's) in its commit."""
        chunk = next(chunk for chunk in self._chunks if chunk.ledger_id == ledger_id)
        chunk.deltas.merge(tally_deltas(beacon, codes, 1, self.settings.counter_retention_days))
        chunk.beacons.append(beacon.id)

    @contextmanager
    def claiming(self, ledger_id: str | None, *, written: bool) -> Iterator[None]:
        """Around a beacon's claim to ``ledger_id``: its write (``written`` False), where a failure
        whose outcome is unknown (:func:`outcome_unknown`: the claim may be stored) spoils the
        ledger, or what follows that write before the tally is added (``written``), where any
        failure does."""
        try:
            yield
        except Exception as exc:
            if ledger_id is not None and (written or outcome_unknown(exc)):
                self.spoil(ledger_id)
            raise

    def spoil(self, ledger_id: str) -> None:
        """A beacon was claimed to ``ledger_id`` but its processing failed before its tally was
        added: the ledger must never commit (the beacon's retry would find it committed and count
        nothing). Its beacons are reported failed; their retries abort it and claim them anew."""
        for chunk in self._chunks:
            if chunk.ledger_id == ledger_id:
                chunk.spoiled = True

    def counted(self, ledger_id: str, beacon_id: str) -> bool:
        """Whether beacon ``beacon_id``, claimed to ``ledger_id``, is counted: added to it in this
        batch, or its ledger (another batch's) committed. One that is not there is aborted first,
        so that it never commits."""
        for chunk in self._chunks:
            if chunk.ledger_id == ledger_id:
                # The same record twice in this batch; else its claim here was applied though its
                # answer said otherwise (an SDK retry refused): not added yet.
                return beacon_id in chunk.beacons
        state = self._states.get(ledger_id) or self._state(ledger_id)
        if state is None:
            try:
                _ledger_item(ledger_id, ABORTED).save(condition=Ledger.pk.does_not_exist())
                state = ABORTED
            except PutError as exc:
                if not conflicted(exc):
                    raise
                state = self._state(ledger_id) or ABORTED
        self._states[ledger_id] = state
        return state == COMMITTED

    @staticmethod
    def _state(ledger_id: str) -> str | None:
        try:
            return str(Ledger.get(f"l#{ledger_id}", "ledger", consistent_read=True).state)
        except Ledger.DoesNotExist:
            return None

    def commit(self) -> set[str]:
        """Commit every ledger with its counter changes; the ids of the beacons of those that
        failed (their records are to be retried)."""
        from webbugger.observability import logger

        failed: set[str] = set()
        for chunk in self._chunks:
            if chunk.spoiled:
                failed.update(chunk.beacons)
                continue
            if not chunk.beacons:
                continue
            try:
                with TransactWrite(
                    connection=transaction_connection(self.settings), client_request_token=chunk.ledger_id
                ) as tx:
                    chunk.deltas.write(tx)
                    tx.save(_ledger_item(chunk.ledger_id, COMMITTED), condition=Ledger.pk.does_not_exist())
            except Exception:  # noqa: BLE001 - the records are retried; the next batch aborts the ledger
                logger.exception("counting a batch failed", extra={"ledger": chunk.ledger_id})
                failed.update(chunk.beacons)
        return failed
