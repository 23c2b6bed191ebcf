"""The ``ip`` entity, django-webbugger's IPEntity: remembers the (anonymised) addresses it was
seen from, with first and last time seen. Its hook runs inline, as in django-webbugger.

The record expires (DynamoDB TTL, ``expires``) ``BEACON_RETENTION_DAYS`` after its last hit, with
that hit's beacon: the addresses are not kept longer than the beacons that saw them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.models import Model
from webbugger.models import expiry
from webbugger.settings import get_settings

from webbugger_plugins.records import get_or_create, page_of, update

if TYPE_CHECKING:
    from webbugger.plugins import HitRequest, PluginTypes


class IpEntity(Model):
    """A visitor known by the addresses it came from."""

    class Meta:
        table_name = "unbound-ip-entities"

    id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute()
    addresses = UnicodeSetAttribute(null=True)
    first_seen = UTCDateTimeAttribute(null=True)
    last_seen = UTCDateTimeAttribute(null=True)
    # TTL (epoch seconds): the last hit's time plus the beacons' retention.
    expires = NumberAttribute(null=True)

    def beacon_update(self, request: HitRequest) -> None:
        """Remember the address and the time."""
        actions: list[Any] = [
            IpEntity.first_seen.set(IpEntity.first_seen | request.time),
            IpEntity.last_seen.set(request.time),
            IpEntity.expires.set(expiry(request.time, get_settings().retention_days)),
        ]
        if request.ip:
            actions.append(IpEntity.addresses.add({request.ip}))
        update(self, actions)

    def to_record(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "addresses": sorted(self.addresses or ()),
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


def _get_or_create(entity_id: str | None) -> IpEntity:
    return get_or_create(IpEntity, entity_id)


def load(entity_id: str) -> IpEntity | None:
    """The stored entity, or None."""
    try:
        return IpEntity.get(entity_id)
    except IpEntity.DoesNotExist:
        return None


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.table(IpEntity, variable="IP_ENTITIES_TABLE")
    types.entity("ip", get_or_create=_get_or_create, load=load, page=page_of(IpEntity))
