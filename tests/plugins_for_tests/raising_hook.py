"""A plugin whose inline entity hook raises: entity ``boom``.

``CALLS`` lists the beacon ids the hook was called with (it raises after recording each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webbugger.plugins import HitRequest, PluginTypes

TYPE_NAME = "boom"
CALLS: list[str] = []


class BoomHookError(RuntimeError):
    """Raised on purpose by the hook."""


@dataclass
class Boom:
    id: str

    def beacon_update(self, request: HitRequest) -> None:
        CALLS.append(request.beacon_id)
        raise BoomHookError(f"boom hook failed for {self.id}")


def get_or_create(entity_id: str | None) -> Boom:
    return Boom(entity_id or "boom-new")


def register(types: PluginTypes) -> None:
    types.entity(TYPE_NAME, get_or_create=get_or_create)
