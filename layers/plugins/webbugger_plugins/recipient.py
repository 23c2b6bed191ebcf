"""The ``recipient`` entity, for email: first/last open, first/last click, open and click counts.

Its hook is deferred: it runs from the beacons stream, so the visitor waits for one write only;
counts are atomic updates (``ADD``), applied once per beacon in one write: the record keeps the
ids of the beacons applied to it in the last day (``applied``), and a recipient seen for the
first time is created by that same write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model
from webbugger.plugins import AppliedBeacons, HookMode, Mode

from webbugger_plugins.records import new_unless_stored, page_of, update

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
    applied = AppliedBeacons(null=True)

    def beacon_update(self, request: HitRequest) -> None:
        """Count an open (pixel) or a click (redirect)."""
        created = Recipient.created_at.set(Recipient.created_at | self.created_at)
        if request.mode is Mode.PIXEL:
            actions = [
                created,
                Recipient.opens.add(1),
                Recipient.first_open.set(Recipient.first_open | request.time),
                Recipient.last_open.set(request.time),
            ]
        else:
            actions = [
                created,
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
    # Deferred: the stream calls this with the id the track function gave (never None), and the
    # hook's update creates a recipient seen for the first time.
    return new_unless_stored(Recipient, entity_id or "")


def load(entity_id: str) -> Recipient | None:
    """The stored recipient, or None."""
    try:
        return Recipient.get(entity_id)
    except Recipient.DoesNotExist:
        return None


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.table(Recipient, variable="RECIPIENTS_TABLE")
    types.entity(
        "recipient", get_or_create=_get_or_create, load=load, hooks=HookMode.DEFERRED, page=page_of(Recipient)
    )
