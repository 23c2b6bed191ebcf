"""A well-behaved plugin: a ``shelf`` target, a ``reader`` entity (inline hook) and a ``fair`` source.

Nothing here touches a database: records live in the dicts below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webbugger.plugins import HitRequest, PluginTypes

SHELVES = {"poetry": "https://example.com/shelves/poetry"}
FAIRS = {"leipzig"}


@dataclass
class Shelf:
    url: str

    def get_absolute_url(self) -> str:
        return self.url


@dataclass
class Reader:
    id: str
    seen: list[str] = field(default_factory=list)

    def beacon_update(self, request: HitRequest) -> None:
        self.seen.append(request.beacon_id)


def load_shelf(shelf_id: str) -> Shelf | None:
    url = SHELVES.get(shelf_id)
    return None if url is None else Shelf(url)


def reader(reader_id: str | None) -> Reader:
    return Reader(reader_id or "new-reader")


def load_fair(fair_id: str) -> object | None:
    return object() if fair_id in FAIRS else None


def register(types: PluginTypes) -> None:
    types.target("shelf", load=load_shelf)
    types.entity("reader", get_or_create=reader)
    types.source("fair", load=load_fair)
