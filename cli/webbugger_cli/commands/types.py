"""``webbugger types``: every registered target, entity and source type, and where it came from."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from webbugger.registry import EntityType
from webbugger.runtime import default_registry

from webbugger_cli.commands import print_table

if TYPE_CHECKING:
    import argparse

    from webbugger.registry import Kind, RegisteredType, Registry

_COLUMNS = ("KIND", "NAME", "HOOKS", "ORIGIN")


def type_entries(registry: Registry) -> list[dict[str, str | None]]:
    """Every type of ``registry``: kind, name, hooks and origin (the plugin module)."""
    return [_entry(kind, registered) for kind, registered in registry.listing()]


def _entry(kind: Kind, registered: RegisteredType) -> dict[str, str | None]:
    return {
        "kind": kind.value,
        "name": registered.name,
        # Only entities have hooks: inline (before the answer), deferred (from the stream) or none.
        "hooks": registered.hooks.value if isinstance(registered, EntityType) else None,
        "origin": registered.origin,
    }


def cmd_types(args: argparse.Namespace) -> int:
    """Print the registered types, as a table or as JSON lines. Needs no stack."""
    # The plugins this process loads: entry points and WEBBUGGER_PLUGINS, as the functions do.
    entries = type_entries(default_registry())
    if args.json:
        for entry in entries:
            print(json.dumps(entry))
        return 0
    rows = [tuple(entry[key] or "-" for key in ("kind", "name", "hooks", "origin")) for entry in entries]
    print_table([_COLUMNS, *rows])
    return 0


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``types`` to the command line."""
    types = commands.add_parser(
        "types",
        help="list the registered target, entity and source types (plugins from entry points "
        "and $WEBBUGGER_PLUGINS)",
    )
    types.add_argument("--json", action="store_true", help="one JSON object per line")
    types.set_defaults(handler=cmd_types)
