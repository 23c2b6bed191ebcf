"""``webbugger recount [--from TIME] [--to TIME]``: hook, label and count the beacons the stream
never finished (their records dead-lettered after an outage), exactly once.

The beacons tell what was done for them (:mod:`webbugger.recount`: a counted beacon's ledger
committed); the others go through the stream's own processing. Locally through the core; on a
deployed stack through the admin API's ``POST /recount``, a page of about 20 seconds at a time.
Safe to repeat, and beside the stream function. Default range: the last 48 hours.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from webbugger_cli.commands import UsageError
from webbugger_cli.commands.backends import open_backend
from webbugger_cli.commands.options import add_time_range

if TYPE_CHECKING:
    import argparse

# Pages of a deployed stack's recount: bounded (about 20 s each: over a day of work).
MAX_PAGES = 5000
_FIELDS = ("examined", "unfinished", "recounted", "failed")


def cmd_recount(args: argparse.Namespace) -> int:
    """Recount a time range and print one summary line; exit status 1 if a beacon failed."""
    if args.since and args.until and args.since > args.until:
        raise UsageError("--from is after --to")
    backend = open_backend(args.stack, args.region)
    since = args.since.isoformat() if args.since else None
    until = args.until.isoformat() if args.until else None
    total = dict.fromkeys(_FIELDS, 0)
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = backend.recount(since, until, cursor)
        for name in _FIELDS:
            total[name] += int(page.get(name) or 0)
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if args.json:
        print(json.dumps(total))
    else:
        print(
            f"recount: examined {total['examined']:,} beacons: {total['unfinished']:,} unfinished, "
            f"{total['recounted']:,} recounted, {total['failed']:,} failed"
        )
    return 1 if total["failed"] else 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``recount`` to the command line."""
    recount = commands.add_parser(
        "recount",
        parents=[common],
        help="hook, label and count the beacons the stream never finished (after an outage)",
    )
    add_time_range(
        recount,
        metavar="TIME",
        since_help="first beacon time (default: 48 h ago)",
        until_help="last (default: now)",
    )
    recount.add_argument("--json", action="store_true", help="print the totals as one JSON object")
    recount.set_defaults(handler=cmd_recount)
