"""Sends: that a campaign's mail went to a recipient, once per (recipient, campaign), counted.

The denominator of a campaign's open and click rates. Minting a mail's URLs (``/mint/batch``,
``/mint`` for email, ``/rewrite``, ``webbugger email rewrite``) records a send for each
recipient (the URLs' entity) of a campaign (their source).

In the counters table, one partition per campaign (pk ``s#SOURCE``):

- a *mark* per recipient (sk the entity, ``at`` the first send's time in epoch seconds): that
  the recipient was sent the campaign, and when (the report's time from send to first open). An
  entity too long for a sort key (DynamoDB's 1,024 bytes) is keyed by its hash and kept whole
  in ``entity``;
- the *total*, in :data:`TOTAL_SHARDS` items (sk ``#sent#NN``) whose ``sent`` add up to the
  number of marks: senders working in parallel add to different items, so their transactions
  seldom meet on one (DynamoDB cancels transactions that write the same item at once).

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
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from webbugger.models import expiry, transaction_connection, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from webbugger.refs import Ref
    from webbugger.settings import Settings

TOTAL = "#sent#"  # the total items' sort keys begin so; they sort before every "TYPE:ID"
TOTAL_SHARDS = 16
_MARKS_FROM = "#~"  # sorts after every total item, before every mark
_LONG = "~h#"  # the sort keys of long entities' marks, after every "TYPE:ID"
_MAX_SORT_KEY_BYTES = 1024
# Marks per transaction: DynamoDB's limit is 100 items, one of them the total.
CHUNK = 99
# Tries of one chunk: each drops the marks found there already, or waits out another writer.
_TRIES = 6
_BACKOFF_S = 0.05
_TAKEN = "ConditionalCheckFailed"
_CONFLICT = "TransactionConflict"


class Send(Model):
    """A send mark (sk: the recipient) or a part of a campaign's total (sk: :data:`TOTAL` NN)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = NumberAttribute(null=True)
    sent = NumberAttribute(null=True)
    entity = UnicodeAttribute(null=True)  # a long entity's whole reference
    expires = NumberAttribute(null=True)


def sends_key(source: Ref | str) -> str:
    """The partition key of a campaign's sends."""
    return f"s#{source}"


def _mark(pk: str, entity: str, at: int, expires: int) -> Send:
    if len(entity.encode()) < _MAX_SORT_KEY_BYTES:
        return Send(pk, entity, at=at, expires=expires)
    digest = hashlib.sha256(entity.encode()).hexdigest()
    return Send(pk, f"{_LONG}{digest}", at=at, entity=entity, expires=expires)


def _put_chunk(source: str, entities: list[str], moment: datetime, settings: Settings) -> int:
    """Put the marks of ``entities`` not there yet with their count added to the total; how
    many were new."""
    pk, expires = sends_key(source), expiry(moment, settings.counter_retention_days)
    total = f"{TOTAL}{zlib.crc32(entities[0].encode()) % TOTAL_SHARDS:02d}" if entities else TOTAL
    left = entities
    for attempt in range(_TRIES):
        if not left:
            return 0
        try:
            with TransactWrite(connection=transaction_connection(settings)) as tx:
                for entity in left:
                    mark = _mark(pk, entity, int(moment.timestamp()), expires)
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


def send_times(source: Ref | str) -> Iterator[tuple[str, datetime]]:
    """Each recipient of ``source`` and when it was first sent (a query of every mark)."""
    for mark in Send.query(sends_key(source), Send.sk > _MARKS_FROM):
        at: Any = mark.at
        if at is not None:
            yield mark.entity or mark.sk, datetime.fromtimestamp(int(at), UTC)
