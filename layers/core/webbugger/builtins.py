"""The built-in types: the ``link`` target (a stored URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webbugger.models import Link

if TYPE_CHECKING:
    from webbugger.registry import Registry

ORIGIN = "webbugger (built-in)"


def load_link(link_id: str) -> Link | None:
    """The stored link with this id, or None."""
    try:
        return Link.get(link_id)
    except Link.DoesNotExist:
        return None


def register_builtins(registry: Registry) -> None:
    """Register the core's own types."""
    registry.register_target("link", load_link, origin=ORIGIN)
