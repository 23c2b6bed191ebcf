"""Sends: that a campaign's mail went to a recipient, once per (recipient, campaign), counted.

The denominator of a campaign's open and click rates. Minting a mail's URLs (``/mint/batch``,
``/mint`` for email, ``/rewrite``, ``webbugger email rewrite``) or ``/sends`` records a send for
each recipient (the URLs' entity) of a campaign (their source).

In the counters table:

- a *mark* per recipient and campaign, in the recipient's own partition (pk ``p#e#ENTITY``, as
  its day items in :mod:`webbugger.persons`; sk ``s#SOURCE``, or the source's hash when it is
  too long for a sort key), ``at`` the first send's time in epoch seconds: that the recipient
  was sent the campaign, and when (the report's time from send to first open). Erasing the
  recipient deletes its marks with its day items (:mod:`webbugger.erase`);
- the campaign's *total*, in :data:`TOTAL_SHARDS` items (pk ``s#SOURCE``, sk ``#sent#NN``)
  whose ``sent`` add up to the number of marks: senders working in parallel add to different
  items, so their transactions seldom meet on one (DynamoDB cancels transactions that write the
  same item at once). A total names nobody.

Up to :data:`CHUNK` marks are put in one TransactWriteItems with the ``ADD`` of their number to
a total item, each put conditional on the mark's absence, so a send minted twice (a retried
batch, a second rewrite) counts once and the total never drifts from the marks. A mark already
there cancels the transaction; DynamoDB names the marks that failed their condition and the
transaction is retried without them (after a short wait when it met another writer). Cost: 2
write units per new recipient (a transaction's price), 2 per chunk for the total; a recipient
sent again costs the same and adds nothing. Reading ``sent`` is one query of the total items.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from webbugger.models import expiry, transaction_connection, utcnow
from webbugger.persons import entity_person

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from webbugger.refs import Ref
    from webbugger.settings import Settings

TOTAL = "#sent#"  # the total items' sort keys begin so
TOTAL_SHARDS = 16
MARK = "s#"  # the marks' sort keys in a recipient's partition begin so (its days are YYYY-MM-DD)
_MAX_SORT_KEY_BYTES = 1024
# Marks per transaction: DynamoDB's limit is 100 items, one of them the total.
CHUNK = 99
# Tries of one chunk: each drops the marks found there already, or waits out another writer.
_TRIES = 6
_BACKOFF_S = 0.05
_TAKEN = "ConditionalCheckFailed"
_CONFLICT = "TransactionConflict"


class Send(Model):
    """A send mark (pk: the recipient's, sk: :data:`MARK` and the campaign) or a part of a
    campaign's total (pk: the campaign's, sk: :data:`TOTAL` and a number)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = NumberAttribute(null=True)
    sent = NumberAttribute(null=True)
    expires = NumberAttribute(null=True)


def sends_key(source: Ref | str) -> str:
    """The partition key of a campaign's total."""
    return f"s#{source}"


def mark_key(source: Ref | str) -> str:
    """The sort key of a campaign's marks, in each recipient's partition."""
    text = str(source)
    if len(f"{MARK}{text}".encode()) <= _MAX_SORT_KEY_BYTES:
        return f"{MARK}{text}"
    return f"{MARK}#{hashlib.sha256(text.encode()).hexdigest()}"


def _put_chunk(source: str, entities: list[str], moment: datetime, settings: Settings) -> int:
    """Put the marks of ``entities`` not there yet with their count added to the total; how
    many were new."""
    pk, sk, expires = sends_key(source), mark_key(source), expiry(moment, settings.counter_retention_days)
    total = f"{TOTAL}{zlib.crc32(entities[0].encode()) % TOTAL_SHARDS:02d}" if entities else TOTAL
    left = entities
    for attempt in range(_TRIES):
        if not left:
            return 0
        try:
            with TransactWrite(connection=transaction_connection(settings)) as tx:
                for entity in left:
                    mark = Send(entity_person(entity), sk, at=int(moment.timestamp()), expires=expires)
                    tx.save(mark, condition=Send.pk.does_not_exist())
                tx.update(Send(pk, total), actions=[Send.sent.add(len(left)), Send.expires.set(expires)])
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons
            if exc.cause_response_code != "TransactionCanceledException" or not reasons:
                raise
            codes = [None if reason is None else reason.code for reason in reasons]
            if any(code not in (None, _TAKEN, _CONFLICT) for code in codes):
                raise
            left = [entity for entity, code in zip(left, codes, strict=False) if code != _TAKEN]
            if _CONFLICT in codes:
                time.sleep(_BACKOFF_S * 2**attempt)
            continue
        return len(left)
    raise RuntimeError(f"recording {len(entities)} sends of {source} kept conflicting")


def record_sends(
    source: Ref | str, entities: Iterable[Ref | str], settings: Settings, *, now: datetime | None = None
) -> int:
    """Record that ``source`` (a campaign) was sent to each of ``entities``; how many of them
    were not recorded before (the rest change nothing)."""
    moment = now or utcnow()
    pending = list(dict.fromkeys(str(entity) for entity in entities))
    return sum(
        _put_chunk(str(source), pending[start : start + CHUNK], moment, settings)
        for start in range(0, len(pending), CHUNK)
    )


def sent_count(source: Ref | str) -> int:
    """How many recipients ``source`` was sent to (one query of the total items)."""
    items = Send.query(sends_key(source), Send.sk.startswith(TOTAL), consistent_read=True)
    return sum(int(item.sent or 0) for item in items)


def sent_at(source: Ref | str, entities: Iterable[str]) -> dict[str, datetime]:
    """When each of ``entities`` (``TYPE:ID``) was first sent ``source``; those never sent are
    left out (a BatchGetItem per 100)."""
    sk = mark_key(source)
    keys = [(entity_person(entity), sk) for entity in dict.fromkeys(entities)]
    found = {}
    for mark in Send.batch_get(keys):
        if mark.at is not None:
            found[mark.pk.removeprefix("p#e#")] = datetime.fromtimestamp(int(mark.at), UTC)
    return found


def entity_marks(entity: Ref | str) -> Iterator[Send]:
    """The send marks of one recipient (for its erasure)."""
    return Send.query(entity_person(str(entity)), Send.sk.startswith(MARK))
