"""``webbugger beacons list``: the latest beacons, newest first, with their class and its reasons."""

from __future__ import annotations

import itertools
import json
import sys
from typing import TYPE_CHECKING

from webbugger.refs import Ref
from webbugger.registry import Kind

from webbugger_cli.commands import print_table
from webbugger_cli.commands.options import positive
from webbugger_cli.stack import resolve_stack

if TYPE_CHECKING:
    import argparse

    from webbugger.models import Beacon

USER_AGENT_WIDTH = 40
REASONS_WIDTH = 40
_COLUMNS = ("time", "mode", "class", "target", "entity", "source", "ip", "user agent", "reasons")


def _cut(text: str | None, width: int) -> str:
    if not text:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(beacon: Beacon) -> tuple[str, ...]:
    record = beacon.to_record()
    return (
        beacon.created_at.strftime("%Y-%m-%d %H:%M:%SZ"),
        beacon.mode,
        # Not labelled yet: the stream function labels a beacon with a reference within seconds.
        record["classification"] or "pending",
        beacon.target or "-",
        beacon.entity or "-",
        beacon.source or "-",
        beacon.ip or "-",
        _cut(beacon.user_agent, USER_AGENT_WIDTH),
        _cut(record["reasons"], REASONS_WIDTH),
    )


def _require_record(kind: Kind, ref: Ref, found: str) -> None:
    """:class:`NotFoundError` when nothing was found for ``ref`` and it names no stored record:
    a mistyped id must not read as "no traffic" (as ``stats`` refuses it)."""
    from webbugger.errors import NotFoundError
    from webbugger.runtime import default_registry
    from webbugger.service.stats import record_exists

    if record_exists(default_registry(), kind, ref) is False:
        raise NotFoundError(f"no {ref.type} {kind} with id {ref.id!r}, {found}")


def cmd_beacons_list(args: argparse.Namespace) -> int:
    """Print the latest beacons, newest first, as a table or as JSON lines."""
    kind, ref = None, None
    for candidate in Kind:
        text = getattr(args, candidate.value)
        if text is not None:
            # Not checked against the registry: old beacons may name types no longer registered.
            kind, ref = candidate, Ref.parse(text)
    from webbugger.beacon_queries import latest_beacons

    resolve_stack(args.stack, args.region)
    beacons = list(itertools.islice(latest_beacons(kind=kind, ref=ref, days=args.days), args.limit))
    if not beacons and kind is not None and ref is not None:
        _require_record(kind, ref, f"and no beacons in the last {args.days} days")
    if args.json:
        for beacon in beacons:
            print(json.dumps(beacon.to_record()))
        return 0
    rows = [_row(beacon) for beacon in beacons]
    if not rows:
        print(f"no beacons in the last {args.days} days", file=sys.stderr)
        return 0
    print_table([tuple(name.upper() for name in _COLUMNS), *rows])
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``beacons list`` to the command line."""
    beacons = commands.add_parser("beacons", help="recorded beacons").add_subparsers(
        dest="beacons_command", required=True, metavar="COMMAND"
    )
    listing = beacons.add_parser(
        "list",
        parents=[common],
        help="print the latest beacons, newest first, with their class and its reasons",
    )
    only = listing.add_mutually_exclusive_group()
    for kind in Kind:
        only.add_argument(f"--{kind.value}", metavar="TYPE:ID", help=f"only the beacons of this {kind}")
    listing.add_argument("--days", type=positive, default=30, help="how far back to look (default: 30)")
    listing.add_argument("--limit", type=positive, default=50, help="at most this many (default: 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=cmd_beacons_list)
