"""``webbugger erase TYPE:ID --yes``: delete everything held about one entity (a data-subject request).

Removes the entity's beacons, its own counters and unique-visitor marks, and its stored record
(see :mod:`webbugger.erase`); locally through the core, on a deployed stack through the admin
API's ``POST /erase``. Asks for ``--yes``: there is no undo.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from webbugger.refs import Ref
from webbugger.runtime import default_registry

from webbugger_cli.commands import UsageError
from webbugger_cli.commands.backends import open_backend

if TYPE_CHECKING:
    import argparse


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase one entity and print what was removed."""
    ref = Ref.parse(args.entity)
    if ref.id is None:
        raise UsageError("give the entity's id: TYPE:ID")
    default_registry().entity(ref.type)  # one line for a type that is not a registered entity
    if not args.yes:
        raise UsageError(f"erasing {ref} deletes its beacons for good: add --yes to go ahead")
    erased = open_backend(args.stack, args.region).erase(ref)
    if args.json:
        print(json.dumps(erased))
        return 0
    record = "its record deleted" if erased["record"] else "no stored record"
    print(
        f"erased {erased['entity']}: {erased['beacons']} beacons, {erased['counters']} counter days, "
        f"{erased['visitor_marks']} visitor marks, {erased.get('sends', 0)} send marks, {record}"
    )
    if erased.get("record_error"):
        raise UsageError(
            f"the beacons are erased, but its record could not be deleted: {erased['record_error']}"
        )
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``erase`` to the command line."""
    erase = commands.add_parser(
        "erase",
        parents=[common],
        help="delete an entity's beacons, counters and record (data-subject requests)",
    )
    erase.add_argument("entity", metavar="TYPE:ID", help="the entity, e.g. recipient:alice@example.com")
    erase.add_argument("--yes", action="store_true", help="really erase (there is no undo)")
    erase.add_argument("--json", action="store_true", help="print what was removed as one JSON object")
    erase.set_defaults(handler=cmd_erase)
