"""A plugin that registers a target type called ``link``: the built-in link plugin has that name."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webbugger.plugins import PluginTypes


def register(types: PluginTypes) -> None:
    types.target("link", load=lambda ident: None)
