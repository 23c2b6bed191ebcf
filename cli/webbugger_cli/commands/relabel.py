"""``webbugger relabel [--from DATE] [--to DATE]``: classify stored beacons again (after an update
of the user-agent lists or of data/machines.json) and move each changed beacon's counts between
human and machine, exactly once (:mod:`webbugger.reclassify`).

Runs against the local stack. A deployed stack's beacons are relabelled by its stream function
as new hits arrive; a bulk run there needs the stack's visitor-salt secret, which the command line
does not read, so ``--stack`` is refused with a clear line.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from webbugger_cli.commands import UsageError
from webbugger_cli.commands.options import add_time_range
from webbugger_cli.stack import require_counters, resolve_stack

if TYPE_CHECKING:
    import argparse


def cmd_relabel(args: argparse.Namespace) -> int:
    """Relabel the local stack's beacons from ``--from`` (default: the retention period) on."""
    if args.stack is not None:
        raise UsageError(
            "relabel runs against the local stack only: a deployed stack's stream function "
            "relabels its beacons (see the docs on classification)"
        )
    stack = resolve_stack(None)
    require_counters(stack)
    from webbugger.reclassify import reclassify
    from webbugger.service.beacons import BeaconQuery, within_retention
    from webbugger.signing import load_visitor_salt

    settings = stack.settings._replace(local_visitor_salt=os.environ.get("WEBBUGGER_VISITOR_SALT"))
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=settings.retention_days)
    if since > until:
        raise UsageError("--from is after --to")
    period = within_retention(BeaconQuery(since, until), settings.retention_days)
    result = reclassify(period.since, period.until, load_visitor_salt(settings), settings).as_dict()
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"relabelled {result['changed']} of {result['examined']} beacons"
        f" ({result['unlabelled']} not labelled yet, left to the stream function)"
    )
    for change, count in result["by_change"].items():
        print(f"  {change}: {count}")
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``relabel`` to the command line."""
    relabel = commands.add_parser(
        "relabel",
        parents=[common],
        help="classify stored beacons again and move their counts (after a list update)",
    )
    add_time_range(
        relabel,
        metavar="DATE",
        since_help="first beacon time (default: retention)",
        until_help="last (default: now)",
    )
    relabel.add_argument("--json", action="store_true", help="print what changed as one JSON object")
    relabel.set_defaults(handler=cmd_relabel)
