"""Tombstones of erased entities: what keeps erased hits from coming back.

An erasure (:mod:`webbugger.erase`) leaves one item in the counters table: pk ``x#HASH``, sk
``erased``, ``at`` the erasure's time (epoch milliseconds). HASH is a keyed hash (HMAC-SHA256)
of the entity reference, under a key derived from the deployment's visitor-salt secret: the
table names nobody, and whoever reads it without the secret cannot test a guess such as
``recipient:alice@example.com``.

A beacon of that entity made at or before that time is *buried*: the paths that can bring one
back all refuse it:

- the drain (spill queue, log subscription) and ``webbugger replay`` do not store it
  (:func:`webbugger.spill.store_record`);
- the stream function (and ``webbugger recount``, which runs the stream's work) deletes it
  instead of running its hooks, labelling and counting it (:mod:`webbugger.stream_batch`): a
  record written before the erasure but delivered after it.

Hits made after the erasure are new hits and are kept (the person opened an old mail again);
``erase`` again removes them. Tombstones do not expire: a spilled beacon can be replayed from a
log kept for months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from webbugger.ids import epoch_ms
from webbugger.signing import keyed_digest

if TYPE_CHECKING:
    from datetime import datetime

    from webbugger.models import Beacon
    from webbugger.settings import Settings

SORT_KEY = "erased"


class Tombstone(Model):
    """That an entity was erased, and when (its reference only as a keyed hash)."""

    class Meta:
        table_name = "unbound-counters"

    pk = UnicodeAttribute(hash_key=True)  # x#HASH
    sk = UnicodeAttribute(range_key=True)
    at = NumberAttribute()


def tombstone_key(salt_secret: bytes, entity: str) -> str:
    """The partition key of ``entity``'s tombstone."""
    return "x#" + keyed_digest(salt_secret, b"erased-entity", entity)


def bury(salt_secret: bytes, entity: str, when: datetime) -> None:
    """Leave (or move forward to ``when``) the tombstone of ``entity``."""
    item = Tombstone(tombstone_key(salt_secret, entity), SORT_KEY)
    at = epoch_ms(when)
    try:
        item.update(
            actions=[Tombstone.at.set(at)], condition=Tombstone.at.does_not_exist() | (Tombstone.at < at)
        )
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise  # else a later erasure's tombstone is there already


@dataclass
class Tombstones:
    """Which entities are erased, read once per entity (one batch, one replay)."""

    # Out of the repr (logs, tracebacks): the secret, and the entities looked up by name.
    salt_secret: bytes = field(repr=False)
    _seen: dict[str, int | None] = field(default_factory=dict, repr=False)

    def erased_at(self, entity: str, *, fresh: bool = False) -> int | None:
        """When ``entity`` was last erased (epoch ms), or None; ``fresh``: read again, strongly
        consistent (an erasure may have run since the first read)."""
        if fresh or entity not in self._seen:
            try:
                key = tombstone_key(self.salt_secret, entity)
                self._seen[entity] = int(Tombstone.get(key, SORT_KEY, consistent_read=fresh).at)
            except Tombstone.DoesNotExist:
                self._seen[entity] = None
        return self._seen[entity]

    def buried(self, beacon: Beacon, *, fresh: bool = False) -> bool:
        """Whether ``beacon`` belongs to an erased entity and was made before its erasure."""
        entity: str | None = beacon.entity  # PynamoDB types it non-null
        if not entity:
            return False
        at = self.erased_at(entity, fresh=fresh)
        return at is not None and epoch_ms(beacon.created_at) <= at


def tombstones_for(settings: Settings) -> Tombstones | None:
    """The deployment's tombstones, keyed with its visitor-salt secret; None without a counters
    table (where they live: a stack without one has no erasure either)."""
    if not settings.counters_table:
        return None
    from webbugger.signing import load_visitor_salt

    return Tombstones(load_visitor_salt(settings))
