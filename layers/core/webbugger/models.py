"""PynamoDB models of the core's tables. The tables themselves are defined once, in template.yaml.

Models are bound to their tables and connection settings by :func:`bind` when first used, so
that importing this module reads no environment and opens no connection.

Beacons table layout: partition key ``pk`` = ``DAY#SHARD`` (the beacon's UTC day and one of
:data:`BEACON_SHARDS` shards derived from its id), sort key ``id`` (a ULID, so time-ordered).
A day's beacons can be read newest first with one query per shard, writes spread over the
shards, and a beacon's key follows from its id alone (which makes writes idempotent).

The table has no index: each index entry would cost a write unit on every hit. An entity's
beacons are listed instead by the stream function on the entity's day items
(:mod:`webbugger.persons`), which it writes anyway for the day's unique counts; the beacons of a
target or a source are read from the day partitions with a filter
(:mod:`webbugger.beacon_queries`). Found keys become whole beacons with :func:`hydrate`.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from pynamodb.attributes import (
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from webbugger.ids import beacon_id_time

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from webbugger.settings import Settings

T = TypeVar("T")

BEACON_SHARDS = 8
# Keys per BatchGetItem when fetching whole beacons from their keys (DynamoDB's maximum).
HYDRATE_PAGE = 100


def beacon_partition(beacon_id: str) -> str:
    """The partition key of a beacon, derived from its id alone."""
    day = beacon_id_time(beacon_id).strftime("%Y-%m-%d")
    return f"{day}#{zlib.crc32(beacon_id.encode()) % BEACON_SHARDS}"


def day_partitions(day: datetime) -> list[str]:
    """Every partition key of one UTC day."""
    label = day.astimezone(UTC).strftime("%Y-%m-%d")
    return [f"{label}#{shard}" for shard in range(BEACON_SHARDS)]


# The fields of Beacon.to_record(), in order: the columns of every export.
BEACON_RECORD_FIELDS = (
    "id",
    "created_at",
    "mode",
    "method",
    "target",
    "entity",
    "source",
    "ip",
    "user_agent",
    "referer",
    "language",
    "country",
    "minted",
    "hints",
    "opted_out",
    "classification",
    "reasons",
    "browser",
    "os",
    "device",
    "expires",
    "rule",
    "variant",
)


class Beacon(Model):
    """One hit: a pixel load or a followed link."""

    class Meta:
        table_name = "unbound-beacons"

    pk = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    created_at = UTCDateTimeAttribute(attr_name="ts")
    mode = UnicodeAttribute()
    method = UnicodeAttribute()
    target = UnicodeAttribute(null=True)
    entity = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(attr_name="ua", null=True)
    referer = UnicodeAttribute(null=True)
    language = UnicodeAttribute(attr_name="lang", null=True)
    country = UnicodeAttribute(null=True)
    # When the tracking URL was minted (epoch seconds, from the token): a hit seconds after a
    # mail was sent is a machine's more often than a person's.
    minted = NumberAttribute(null=True)
    # What the request itself said about the hit, kept for classification (e.g. "prefetch",
    # "honeypot"). Short codes, few bytes: the hot path writes them.
    hints = UnicodeSetAttribute(null=True)
    # The opt-out signal honoured ("dnt" or "gpc"): the beacon then keeps no IP, user agent or
    # visitor key.
    opted_out = UnicodeAttribute(attr_name="optout", null=True)
    # Set off the hot path by the stream function: the class of the hit (human, mail-proxy, ...),
    # the reasons for it (short codes), and the browser, OS and device family of the user agent.
    classification = UnicodeAttribute(attr_name="class", null=True)
    reasons = ListAttribute(of=UnicodeAttribute, null=True)
    browser = UnicodeAttribute(null=True)
    os = UnicodeAttribute(null=True)
    device = UnicodeAttribute(null=True)
    # Epoch seconds; the table's TTL deletes the item after this time (at no cost).
    expires = NumberAttribute(null=True)
    # The stored link's routing rule or A/B variant that chose the destination, by name
    # (webbugger.routing); short, and only on routed clicks.
    rule = UnicodeAttribute(null=True)
    variant = UnicodeAttribute(attr_name="var", null=True)
    # Deferred hooks (entity type names) already applied to this beacon: the stream's
    # at-least-once delivery must not apply one twice.
    hooks_applied = UnicodeSetAttribute(attr_name="applied", null=True)
    # Counting (webbugger.ledger): the batch ledger the beacon's counts commit through, and what
    # they add (the tally, fixed when claimed); ``version`` goes up with every write of another
    # beacon's processing (a neighbour's label, a unique mark handed on), so that the beacon's
    # own claim, conditional on it, sees those writes.
    ledger = UnicodeAttribute(attr_name="lg", null=True)
    tally = UnicodeSetAttribute(null=True)
    version = NumberAttribute(attr_name="ver", null=True)

    def to_record(self) -> dict[str, Any]:
        """The beacon as a plain JSON-ready dict (for logs, the CLI and exports)."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "mode": self.mode,
            "method": self.method,
            "target": self.target,
            "entity": self.entity,
            "source": self.source,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "referer": self.referer,
            "language": self.language,
            "country": self.country,
            "minted": int(self.minted) if self.minted is not None else None,
            "hints": " ".join(sorted(self.hints)) if self.hints else None,
            "opted_out": self.opted_out,
            "classification": self.classification,
            "reasons": " ".join(str(reason) for reason in self.reasons) if self.reasons else None,
            "browser": self.browser,
            "os": self.os,
            "device": self.device,
            "expires": int(self.expires) if self.expires is not None else None,
            "rule": self.rule,
            "variant": self.variant,
        }


def put_beacon(beacon: Beacon) -> bool:
    """Store ``beacon`` unless a beacon with its id is stored already.

    True if this call stored it, False if it was there already (which counts as success: a beacon
    that arrives by two paths is stored once). Any other failure raises PynamoDB's ``PutError``.
    """
    try:
        beacon.save(condition=Beacon.id.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def beacon_key(beacon_id: str) -> Beacon:
    """A beacon holding only its key (for :func:`hydrate` and key-only writes)."""
    return Beacon(pk=beacon_partition(beacon_id), id=beacon_id)


def pages(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), read lazily."""
    page: list[T] = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def hydrate(found: Iterable[Beacon], *, consistent_read: bool = False) -> Iterator[Beacon]:
    """Whole beacons for the keys of ``found``, in that order, a page of
    :data:`HYDRATE_PAGE` keys at a time. A beacon deleted in between (TTL, erasure) is skipped."""
    for page in pages(found, HYDRATE_PAGE):
        yield from _fetch(page, consistent_read)


def _fetch(keys: list[Beacon], consistent_read: bool) -> Iterator[Beacon]:
    found = {
        beacon.id: beacon
        for beacon in Beacon.batch_get([(key.pk, key.id) for key in keys], consistent_read=consistent_read)
    }
    return (found[key.id] for key in keys if key.id in found)


def expiry(now: datetime, retention_days: int) -> int:
    """The TTL value (epoch seconds) of an item created at ``now``."""
    return int((now + timedelta(days=retention_days)).timestamp())


def bind(model: type[Model], table_name: str, settings: Settings) -> None:
    """Point ``model`` at its table with the hot path's bounded timeouts and retries."""
    meta: Any = model.Meta
    meta.table_name = table_name
    meta.region = settings.region
    meta.host = settings.dynamodb_endpoint
    meta.connect_timeout_seconds = settings.ddb_connect_timeout
    meta.read_timeout_seconds = settings.ddb_read_timeout
    meta.max_retry_attempts = settings.ddb_max_retries
    model._connection = None  # the next call connects with these settings


def transaction_connection(settings: Settings) -> Connection:
    """The connection the stream side's transactions use: one per container, not one per beacon."""
    return _connection(settings.region, settings.dynamodb_endpoint)


@cache
def _connection(region: str, host: str | None) -> Connection:
    return Connection(region=region, host=host)


def utcnow() -> datetime:
    """Now, in UTC (one place, so tests can see what time the core uses)."""
    return datetime.now(UTC)
