"""The process-wide objects of a function: settings, the registry with plugins loaded, the tracker.

Each is built once, on first use (plugin loading at a function's init; settings and tables on
the first request), and cached for the life of the container.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from typing import TYPE_CHECKING

from webbugger.errors import ConfigurationError
from webbugger.plugins import load_plugins
from webbugger.registry import Registry
from webbugger.settings import get_settings

if TYPE_CHECKING:
    from webbugger.settings import Settings
    from webbugger.tracking import Tracker


@cache
def default_registry() -> Registry:
    """The registry with every plugin loaded (entry points and ``WEBBUGGER_PLUGINS``)."""
    registry = Registry()
    load_plugins(registry)
    return registry


def bind_core_models(settings: Settings) -> None:
    """Bind the core's own models (beacons; counters where the function has them) to their tables."""
    # Imported here, as Tracker below: the CLI imports this module to mint URLs, which needs no
    # PynamoDB (bench/cli.py); a function has imported both by its first request anyway.
    from webbugger.models import Beacon, bind

    bind(Beacon, settings.beacons_table, settings)
    if settings.counters_table:
        # Not on the track function's path.
        from webbugger.counters import Counter
        from webbugger.ledger import Ledger
        from webbugger.persons import PersonDay
        from webbugger.sends import Send
        from webbugger.tombstones import Tombstone

        for model in (Counter, PersonDay, Ledger, Send, Tombstone):
            bind(model, settings.counters_table, settings)


def bind_tables(registry: Registry, settings: Settings) -> None:
    """Bind the core's models and every plugin model to their tables."""
    from webbugger.models import bind

    bind_core_models(settings)
    for model, variable in registry.tables:
        table = os.environ.get(variable)
        if not table:
            raise ConfigurationError(f"{model.__name__}'s table: environment variable {variable} is not set")
        bind(model, table, settings)


@cache
def default_settings() -> Settings:
    """The settings, with every model bound to its table."""
    settings = get_settings()
    bind_tables(default_registry(), settings)
    return settings


@cache
def default_tracker() -> Tracker:
    """The tracker of this process."""
    from webbugger.tracking import Tracker

    return Tracker(default_settings(), default_registry())


def reset() -> None:
    """Forget every cached object (tests, and the local server when its environment changes)."""
    for cached in (default_registry, default_settings, default_tracker, get_settings):
        cached.cache_clear()
    sinks = sys.modules.get("webbugger.feed.sinks")  # the hit feed's clients, if it ever ran
    if sinks is not None:
        sinks.client.cache_clear()
