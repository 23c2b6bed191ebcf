"""The ``recipient`` entity, for email: first/last open, first/last click, open and click counts.

Its hook is deferred: it runs from the beacons stream, so the visitor waits for one write only;
counts are atomic updates (``ADD``), applied once per beacon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model
from webbugger.plugins import HookMode, Mode

from webbugger_plugins.records import get_or_create, update

if TYPE_CHECKING:
    from webbugger.plugins import HitRequest, PluginTypes


class Recipient(Model):
    """An email recipient's opens and clicks."""

    class Meta:
        table_name = "unbound-recipients"

    id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute()
    opens = NumberAttribute(default=0)
    clicks = NumberAttribute(default=0)
    first_open = UTCDateTimeAttribute(null=True)
    last_open = UTCDateTimeAttribute(null=True)
    first_click = UTCDateTimeAttribute(null=True)
    last_click = UTCDateTimeAttribute(null=True)

    def beacon_update(self, request: HitRequest) -> None:
        """Count an open (pixel) or a click (redirect)."""
        if request.mode is Mode.PIXEL:
            actions = [
                Recipient.opens.add(1),
                Recipient.first_open.set(Recipient.first_open | request.time),
                Recipient.last_open.set(request.time),
            ]
        else:
            actions = [
                Recipient.clicks.add(1),
                Recipient.first_click.set(Recipient.first_click | request.time),
                Recipient.last_click.set(request.time),
            ]
        update(self, actions)

    def to_record(self) -> dict[str, object]:
        """JSON-ready view."""

        def iso(value: object) -> str | None:
            return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "opens": int(self.opens or 0),
            "clicks": int(self.clicks or 0),
            "first_open": iso(self.first_open),
            "last_open": iso(self.last_open),
            "first_click": iso(self.first_click),
            "last_click": iso(self.last_click),
        }


def _get_or_create(entity_id: str | None) -> Recipient:
    return get_or_create(Recipient, entity_id)


def load(entity_id: str) -> Recipient | None:
    """The stored recipient, or None."""
    try:
        return Recipient.get(entity_id)
    except Recipient.DoesNotExist:
        return None


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.table(Recipient, variable="RECIPIENTS_TABLE")
    types.entity("recipient", get_or_create=_get_or_create, load=load, hooks=HookMode.DEFERRED)
