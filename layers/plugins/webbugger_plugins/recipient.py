"""The ``recipient`` entity, for email: open and click counts, first/last open, first/last click.

It has no hook and no table of its own: nothing is written for a recipient on a hit beyond what
the stream function writes for every entity's beacon, its registration on the entity's person-day
(which lists the beacon, and a click as a click, in one write). A recipient's figures are folded
from those day items when read (:func:`webbugger.plugins.entity_figures`): exact whatever order
the beacons were processed in, a beacon delivered twice counted once. They live as long as the
beacons (``BEACON_RETENTION_DAYS``), and there is no store of recipients to list: a recipient's
beacons are listed by ``webbugger beacons list --entity recipient:ID`` and exported by
``webbugger export --entity recipient:ID``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from webbugger.ids import new_beacon_id
from webbugger.plugins import HookMode

if TYPE_CHECKING:
    from datetime import datetime

    from webbugger.plugins import EntityFigures, PluginTypes

TYPE_NAME = "recipient"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True)
class Recipient:
    """An email recipient's opens and clicks (``figures`` None: no beacon of it is held)."""

    id: str
    figures: EntityFigures | None = None

    def to_record(self) -> dict[str, object]:
        """JSON-ready view; ``created_at`` is the time of its first beacon held."""
        found = self.figures
        return {
            "id": self.id,
            "created_at": _iso(found.first_seen) if found else None,
            "opens": found.opens if found else 0,
            "clicks": found.clicks if found else 0,
            "first_open": _iso(found.first_open) if found else None,
            "last_open": _iso(found.last_open) if found else None,
            "first_click": _iso(found.first_click) if found else None,
            "last_click": _iso(found.last_click) if found else None,
        }


def load(entity_id: str) -> Recipient | None:
    """The recipient with its figures, or None when none of its beacons is held."""
    # Imported on first use: the person-days' modules are not the track function's to load.
    from webbugger.plugins import entity_figures

    figures = entity_figures(f"{TYPE_NAME}:{entity_id}")
    return None if figures is None else Recipient(entity_id, figures)


def _get_or_create(entity_id: str | None) -> Recipient:
    # Nothing to create (the type has no hook: neither function calls this on a hit).
    if entity_id is None:
        return Recipient(new_beacon_id())
    return load(entity_id) or Recipient(entity_id)


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.entity(TYPE_NAME, get_or_create=_get_or_create, load=load, hooks=HookMode.NONE)
