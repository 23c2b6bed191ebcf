"""``webbugger source create`` and ``webbugger entity|source show|list``: stored records of plugin types.

Creating is for source types whose plugin registers ``create(id, name)`` (the built-in
``campaign``); listing for types whose plugin registers ``page(limit, after)`` (the built-in
``campaign`` and ``ip``; a ``recipient`` is no stored record, its figures are folded from its
beacons' day items when shown).

Showing never creates: an entity is read with its type's optional ``load``, never with
``get_or_create``; a type that registers no ``load`` cannot be shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, cast

from webbugger.refs import Ref, check_new_ref
from webbugger.registry import Kind
from webbugger.runtime import default_registry

from webbugger_cli.commands import UsageError, display, print_table, record_fields
from webbugger_cli.commands.options import bounded
from webbugger_cli.helptext import paint
from webbugger_cli.stack import resolve_stack

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.registry import Loader, Pager

# Records per page read when listing.
LIST_PAGE = 100


def _source_ref(args: argparse.Namespace) -> Ref:
    """``TYPE:ID``; the older ``TYPE ID`` still works, with a line on stderr saying so."""
    if args.legacy_id is not None:
        old, new = f"{args.ref} {args.legacy_id}", f"{args.ref}:{args.legacy_id}"
        note = paint("webbugger: note:", "yellow")
        print(f"{note} `source create {old}` is deprecated: write `source create {new}`", file=sys.stderr)
        return check_new_ref(Ref(args.ref, args.legacy_id))
    if ":" not in args.ref:
        raise UsageError(f"give the source as TYPE:ID (e.g. campaign:{args.ref}), not {args.ref!r}")
    return check_new_ref(Ref.parse(args.ref))  # refuses a bad id before a stack is looked for


def cmd_source_create(args: argparse.Namespace) -> int:
    """Store a new source record and print its reference (for ``--source``), or it as JSON."""
    ref = _source_ref(args)
    assert ref.id is not None  # parse() without allow_new always gives an id
    create = default_registry().source(ref.type).create  # UnknownTypeError: one line
    if create is None:
        raise UsageError(f"source type {ref.type} cannot be created from the command line")
    resolve_stack(args.stack, args.region)
    record = create(ref.id, args.name or None)
    if args.json:
        print(json.dumps({"ref": str(ref), **record_fields(record)}))
    else:
        print(ref)
    return 0


def _pager(kind: Kind, type_name: str) -> Pager:
    registered = default_registry().get(kind, type_name)
    page = getattr(registered, "page", None)
    if page is None:
        raise UsageError(
            f"{kind} type {type_name} cannot be listed: its plugin registers no page(limit, after); "
            f"its beacons are: webbugger beacons list --{kind} {type_name}:ID, "
            f"webbugger export --{kind} {type_name}:ID"
        )
    return cast("Pager", page)


def _listed(kind: Kind, type_names: list[str], limit: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(TYPE, fields)`` of up to ``limit`` stored records, type after type (each in its store's order)."""
    left = limit
    for type_name in type_names:
        page, after = _pager(kind, type_name), None
        while left > 0:
            records, after = page(min(left, LIST_PAGE), after)
            for record in records[:left]:
                yield type_name, record_fields(record)
            left -= len(records)
            if after is None:
                break


def cmd_list(args: argparse.Namespace) -> int:
    """Print stored entities or sources: a table (reference, name, created) or JSON lines."""
    kind = Kind(args.kind)
    registry = default_registry()
    if args.type is not None:
        names = [args.type]
        _pager(kind, args.type)  # an unknown or unlistable type: one line before a stack is looked for
    else:
        listed = registry.listing()
        names = [found.name for k, found in listed if k is kind and getattr(found, "page", None)]
    resolve_stack(args.stack, args.region)
    rows = []
    for type_name, fields in _listed(kind, names, args.limit):
        ref = f"{type_name}:{fields.get('id')}"
        if args.json:
            print(json.dumps({"ref": ref, **fields}))
        else:
            rows.append((ref, display(fields.get("name")), display(fields.get("created_at"))))
    if not args.json:
        if rows:
            print_table([("REF", "NAME", "CREATED"), *rows])
        else:
            print(f"no stored {'entities' if kind is Kind.ENTITY else 'sources'}", file=sys.stderr)
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
        "ref", metavar="TYPE:ID", help="the source (a type whose plugin can create records, e.g. campaign)"
    )
    # The older `source create TYPE ID` (deprecated): kept working, with a note.
    create.add_argument("legacy_id", nargs="?", help=argparse.SUPPRESS)
    create.add_argument("--name", help="a human-readable name")
    create.add_argument("--json", action="store_true", help="the stored record as one JSON object")
    create.set_defaults(handler=cmd_source_create)

    for kind, sub in ((Kind.ENTITY, entity), (Kind.SOURCE, source)):
        show = sub.add_parser("show", parents=[common], help=f"print a stored {kind} (never creates one)")
        show.add_argument("ref", metavar="TYPE:ID", help=f"the {kind} to show")
        show.add_argument("--json", action="store_true", help="one JSON object")
        show.set_defaults(handler=cmd_show, kind=kind.value)
        listing = sub.add_parser("list", parents=[common], help=f"print stored {kind}s (every listable type)")
        listing.add_argument("--type", metavar="TYPE", help=f"only this {kind} type's")
        listing.add_argument(
            "--limit", type=bounded(1, 10_000), default=50, help="at most this many (default: 50)"
        )
        listing.add_argument("--json", action="store_true", help="one JSON object per line")
        listing.set_defaults(handler=cmd_list, kind=kind.value)
