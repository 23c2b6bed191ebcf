"""PynamoDB models of the core's tables. The tables themselves are defined once, in template.yaml.

Models are bound to their tables and connection settings by :func:`bind` when first used, so
that importing this module reads no environment and opens no connection.

Beacons table layout: partition key ``pk`` = ``DAY#SHARD`` (the beacon's UTC day and one of
:data:`BEACON_SHARDS` shards derived from its id), sort key ``id`` (a ULID, so time-ordered).
A day's beacons can be read newest first with one query per shard, writes spread over the
shards, and a beacon's key follows from its id alone (which makes writes idempotent). Three
sparse indexes list the beacons of a target, an entity or a source, newest first; a beacon
without such a reference costs no index write. The indexes hold keys only: the stream function's
later updates of a beacon (its class, its hooks' marks) then rewrite no index entry, which would
cost a write unit per index each time; a query through an index fetches whole beacons with
:func:`hydrate`.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import (
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from webbugger.ids import beacon_id_time

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from webbugger.settings import Settings

BEACON_SHARDS = 8
# Keys per BatchGetItem when fetching the beacons an index query found (DynamoDB's maximum).
HYDRATE_PAGE = 100


def beacon_partition(beacon_id: str) -> str:
    """The partition key of a beacon, derived from its id alone."""
    day = beacon_id_time(beacon_id).strftime("%Y-%m-%d")
    return f"{day}#{zlib.crc32(beacon_id.encode()) % BEACON_SHARDS}"


def day_partitions(day: datetime) -> list[str]:
    """Every partition key of one UTC day."""
    label = day.astimezone(UTC).strftime("%Y-%m-%d")
    return [f"{label}#{shard}" for shard in range(BEACON_SHARDS)]


class _ByTarget(GlobalSecondaryIndex["Beacon"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_target"
        projection = KeysOnlyProjection()

    target = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class _ByEntity(GlobalSecondaryIndex["Beacon"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_entity"
        projection = KeysOnlyProjection()

    entity = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class _BySource(GlobalSecondaryIndex["Beacon"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_source"
        projection = KeysOnlyProjection()

    source = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


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
    # Deferred hooks (entity type names) already applied to this beacon: the stream's
    # at-least-once delivery must not apply one twice.
    hooks_applied = UnicodeSetAttribute(attr_name="applied", null=True)

    by_target = _ByTarget()
    by_entity = _ByEntity()
    by_source = _BySource()

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


def hydrate(found: Iterable[Beacon], *, consistent_read: bool = False) -> Iterator[Beacon]:
    """Whole beacons for the keys an index query yields, in the query's order, a page of
    :data:`HYDRATE_PAGE` keys at a time. A beacon deleted in between (TTL, erasure) is skipped."""
    page: list[Beacon] = []
    for key in found:
        page.append(key)
        if len(page) == HYDRATE_PAGE:
            yield from _fetch(page, consistent_read)
            page = []
    if page:
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
