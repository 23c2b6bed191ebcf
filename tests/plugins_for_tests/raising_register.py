"""A plugin whose ``register`` raises (a misconfigured plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webbugger.plugins import PluginTypes


class PluginSetupError(RuntimeError):
    """What this plugin raises while registering."""


def register(types: PluginTypes) -> None:
    types.source("halfway", load=lambda ident: None)
    raise PluginSetupError("settings for the halfway source are missing")
