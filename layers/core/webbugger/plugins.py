"""The plugin API: everything a plugin author needs, in one import.

A plugin is a Python module with a ``register(types)`` function. It is found in two ways:

- through the ``webbugger.plugins`` entry point group of an installed distribution (the plugin
  layer and third-party layers ship one), the entry point naming the module;
- through the ``WEBBUGGER_PLUGINS`` environment variable: a comma-separated list of modules,
  set in template.yaml.

``register`` receives a :class:`PluginTypes`, which records the plugin as the origin of what it
registers::

    from webbugger.plugins import HookMode, HitRequest, PluginTypes

    def register(types: PluginTypes) -> None:
        types.target("product", load=Product.load)
        types.entity("affiliate", get_or_create=Affiliate.get_or_create, hooks=HookMode.DEFERRED)
        types.source("partner", load=Partner.load)

A plugin that fails to import, has no ``register``, raises in it, or registers a type name that
another plugin already has, stops loading with :class:`PluginLoadError` naming the plugin and
the reason: a broken plugin fails at cold start, not on every hit.
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webbugger.errors import TypeClashError, WebbuggerError
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import (
    GetOrCreate,
    HookMode,
    IdCheck,
    Kind,
    LinkRecord,
    LinkStore,
    Loader,
    Pager,
    Registry,
    SourceCreator,
)
from webbugger.request import HitRequest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pynamodb.models import Model
    from pynamodb.transactions import TransactWrite

    from webbugger.applied import AppliedBeacons, update_once
    from webbugger.entity_figures import EntityFigures, entity_figures

ENTRY_POINT_GROUP = "webbugger.plugins"
PLUGINS_VARIABLE = "WEBBUGGER_PLUGINS"

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGINS_VARIABLE",
    "AppliedBeacons",
    "EntityFigures",
    "HitRequest",
    "HookMode",
    "IdCheck",
    "Kind",
    "LinkRecord",
    "LinkStore",
    "Mode",
    "Pager",
    "PluginLoadError",
    "PluginTypes",
    "Ref",
    "SourceCreator",
    "current_transaction",
    "discover_plugin_modules",
    "entity_figures",
    "joining_transaction",
    "load_plugins",
    "update_once",
]


def __getattr__(name: str) -> Any:
    # Re-exported lazily: PynamoDB's attributes take ~50 ms to import, which minting a URL from
    # the command line does without (bench/cli.py); a plugin that uses them imports them anyway.
    if name in ("AppliedBeacons", "update_once"):
        from webbugger import applied

        return getattr(applied, name)
    if name in ("EntityFigures", "entity_figures"):
        from webbugger import entity_figures

        return getattr(entity_figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PluginLoadError(WebbuggerError):
    """A plugin could not be loaded; the message names the plugin and the reason."""


class PluginTypes:
    """What a plugin's ``register`` gets: registers types with the plugin recorded as their origin."""

    def __init__(self, registry: Registry, origin: str) -> None:
        self._registry = registry
        self.origin = origin

    def target(
        self, name: str, *, load: Loader, check: IdCheck | None = None, store: LinkStore | None = None
    ) -> None:
        """A target type. ``load(id)`` returns the record or None; the record has
        ``get_beacon_url()`` or ``get_absolute_url()``. ``check(id)``, optional, returns the id
        (normalised) a tracking URL may be minted for, or raises a :class:`WebbuggerError` saying
        why not. ``store``, optional: the type's records are stored links that the admin API and
        the CLI create, change and list through this :class:`LinkStore`."""
        self._registry.register_target(name, load, origin=self.origin, check=check, store=store)

    def entity(
        self,
        name: str,
        *,
        get_or_create: GetOrCreate,
        hooks: HookMode = HookMode.INLINE,
        load: Loader | None = None,
        page: Pager | None = None,
    ) -> None:
        """An entity type. ``get_or_create(id or None)`` returns the record (with an ``id``); its
        optional ``beacon_update(request)`` runs inline (before the response, within the budget)
        or deferred (from the beacons stream, retried, applied once per beacon). ``load(id)``,
        optional, reads a record without creating it; ``page(limit, after)``, optional, lists
        them (``webbugger entity list``)."""
        self._registry.register_entity(
            name, get_or_create, origin=self.origin, hooks=hooks, load=load, page=page
        )

    def source(
        self, name: str, *, load: Loader, create: SourceCreator | None = None, page: Pager | None = None
    ) -> None:
        """A source type. ``load(id)`` returns the record or None; ``create(id, name)``, optional,
        stores a new one (``webbugger source create``); ``page(limit, after)``, optional, lists
        them (``webbugger source list``)."""
        self._registry.register_source(name, load, origin=self.origin, create=create, page=page)

    def table(self, model: type[Model], *, variable: str) -> None:
        """A PynamoDB model of the plugin's own table, whose name is in environment ``variable``
        (set in template.yaml). It is bound on first use with the hot path's timeouts."""
        self._registry.add_table(model, variable)


_transaction: ContextVar[TransactWrite | None] = ContextVar("webbugger_transaction", default=None)


def current_transaction() -> TransactWrite | None:
    """The transaction of the deferred hook now running, if any.

    Writes added to it commit together with the beacon's "applied" mark, so a beacon delivered
    twice by the stream is applied once (a transaction costs twice the write units of each of
    its items). A hook that writes one record can use :func:`update_once` instead: applied once
    too, in one plain write. Hooks that write elsewhere are applied at least once.
    """
    return _transaction.get()


@contextmanager
def joining_transaction(transaction: TransactWrite) -> Iterator[None]:
    """Make ``transaction`` the current one while a deferred hook runs (used by the stream)."""
    token = _transaction.set(transaction)
    try:
        yield
    finally:
        _transaction.reset(token)


def entry_point_modules(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """The modules named by ``group``'s entry points of the distributions on ``sys.path``.

    What ``importlib.metadata.entry_points(group=...)`` finds (the first distribution of a name
    wins, in path order; zipped ones aside), for a third of its cost: it parses the metadata of
    every installed distribution, 3-4 ms of the track function's cold start with the development
    environment's hundred (bench/cold_start.py). Here only the ``entry_points.txt`` files are
    read, and only those naming the group are parsed (by ``importlib.metadata``).
    """
    # os.listdir and open rather than pathlib: a hundred Path objects would cost more than the scan.
    # Most names on sys.path are no distribution's: the suffix is tested first; and the file is
    # searched as bytes, without decoding it (the group's header is ASCII).
    header = f"[{group}]".encode()
    seen: set[str] = set()
    modules: list[str] = []
    for directory in sys.path:
        try:
            names = os.listdir(directory or ".")  # noqa: PTH208
        except OSError:  # a zip file, or gone
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            project = name.rpartition(".")[0].partition("-")[0].lower().replace(".", "_")
            if project in seen:
                continue
            seen.add(project)
            path = os.path.join(directory, name, "entry_points.txt")  # noqa: PTH118
            # Most distributions have no entry points: asked first, no exception raised and caught.
            if not os.access(path, os.F_OK):
                continue
            try:
                with open(path, "rb") as file:  # noqa: PTH123
                    if header not in file.read():
                        continue
            except OSError:  # gone since, or unreadable
                continue
            from importlib.metadata import PathDistribution  # only when a distribution names the group

            found = PathDistribution(Path(directory, name)).entry_points.select(group=group)
            modules += [ep.value.split(":", 1)[0].strip() for ep in found]
    return modules


def discover_plugin_modules(listed: str | None = None) -> list[str]:
    """Plugin modules from the entry point group, then from ``listed`` (or the environment)."""
    modules = entry_point_modules()
    text = os.environ.get(PLUGINS_VARIABLE, "") if listed is None else listed
    modules += [name.strip() for name in text.split(",") if name.strip()]
    return list(dict.fromkeys(modules))  # in order, each once


def load_plugins(registry: Registry, modules: Iterable[str] | None = None) -> list[str]:
    """Import each plugin module and let it register its types; return the modules loaded."""
    loaded = []
    for module_name in discover_plugin_modules() if modules is None else modules:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise PluginLoadError(f"plugin {module_name} failed to import: {exc!r}") from exc
        register = getattr(module, "register", None)
        if not callable(register):
            raise PluginLoadError(f"plugin {module_name} has no register(types) function")
        try:
            register(PluginTypes(registry, module_name))
        except TypeClashError as exc:
            raise PluginLoadError(f"plugin {module_name}: {exc}") from exc
        except Exception as exc:
            raise PluginLoadError(f"plugin {module_name} failed in register(): {exc!r}") from exc
        loaded.append(module_name)
    return loaded
