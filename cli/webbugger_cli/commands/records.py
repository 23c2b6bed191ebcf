"""``webbugger source create`` and ``webbugger entity|source show``: stored records of plugin types.

Creating is for source types whose plugin registers ``create(id, name)`` (the built-in
``campaign``).

Showing never creates: an entity is read with its type's optional ``load``, never with
``get_or_create``; a type that registers no ``load`` cannot be shown.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.runtime import default_registry

from webbugger_cli.commands import UsageError, display, print_table, record_fields
from webbugger_cli.stack import resolve_stack

if TYPE_CHECKING:
    import argparse

    from webbugger.registry import Loader


def cmd_source_create(args: argparse.Namespace) -> int:
    """Store a new source record and print its reference (for ``--source``)."""
    create = default_registry().source(args.type).create  # UnknownTypeError: one line
    if create is None:
        raise UsageError(f"source type {args.type} cannot be created from the command line")
    ref = Ref(args.type, args.id)  # refuses a bad id before a stack is looked for
    resolve_stack(args.stack, args.region)
    create(args.id, args.name or None)
    print(ref)
    return 0


def _loader(kind: Kind, type_name: str) -> Loader:
    registry = default_registry()
    if kind is Kind.ENTITY:
        load = registry.entity(type_name).load
        if load is None:
            raise UsageError(
                f"entity type {type_name} cannot be shown: its plugin registers no load(id) "
                "(only get_or_create, which would create one)"
            )
        return load
    return registry.source(type_name).load


def cmd_show(args: argparse.Namespace) -> int:
    """Print one stored entity or source, as ``name value`` lines or as one JSON object."""
    kind = Kind(args.kind)
    ref = Ref.parse(args.ref)
    assert ref.id is not None  # parse() without allow_new always gives an id
    load = _loader(kind, ref.type)
    resolve_stack(args.stack, args.region)
    record = load(ref.id)
    if record is None:
        raise UsageError(f"no {ref.type} {kind} with id {ref.id!r}")
    fields = record_fields(record)
    if args.json:
        print(json.dumps(fields))
    elif fields:
        print_table([(name, display(value)) for name, value in fields.items()])
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``entity show``, ``source create`` and ``source show`` to the command line."""
    entity = commands.add_parser("entity", help="stored entities (who hits)").add_subparsers(
        dest="entity_command", required=True, metavar="COMMAND"
    )
    source = commands.add_parser("source", help="stored sources (where traffic comes from)").add_subparsers(
        dest="source_command", required=True, metavar="COMMAND"
    )

    create = source.add_parser("create", parents=[common], help="store a source and print TYPE:ID")
    create.add_argument(
        "type", metavar="TYPE", help="source type (one whose plugin can create records, e.g. campaign)"
    )
    create.add_argument("id", metavar="ID", help="the source's id")
    create.add_argument("--name", help="a human-readable name")
    create.set_defaults(handler=cmd_source_create)

    for kind, sub in ((Kind.ENTITY, entity), (Kind.SOURCE, source)):
        show = sub.add_parser("show", parents=[common], help=f"print a stored {kind} (never creates one)")
        show.add_argument("ref", metavar="TYPE:ID", help=f"the {kind} to show")
        show.add_argument("--json", action="store_true", help="one JSON object")
        show.set_defaults(handler=cmd_show, kind=kind.value)
