"""``webbugger replay [FILE ...]``: beacons the track function could only log, back into the table.

When neither the table nor the spill queue takes a beacon, the track function logs it as one
``spilled_beacon`` record (see :mod:`webbugger.spill`). This command reads such records from
files or stdin (JSON lines of log records, or a CloudWatch Logs export's text lines with the JSON
in them), or, with ``--stack NAME`` and no FILE, from the stack's track-function log group
(FilterLogEvents since ``--since``), and stores each beacon with the drain's conditional put: a
beacon stored already (by the drain, or by an earlier replay) is counted, not stored twice.
Lines without a spilled record are skipped. One summary line; exit status 1 if a record was invalid.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from webbugger_cli.commands import UsageError
from webbugger_cli.commands.options import parse_time
from webbugger_cli.stack import StackError, describe_stack, resolve_stack, stack_outputs

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

LOG_GROUP_OUTPUT = "TrackFunctionLogGroupName"
DEFAULT_SINCE = "1d"
_DURATION = re.compile(r"(\d+)([mhd])\Z")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass
class Tally:
    """What a replay did."""

    read: int = 0
    stored: int = 0
    present: int = 0
    invalid: int = 0

    def summary(self) -> str:
        """The one line the command prints."""
        return (
            f"replay: read {self.read:,} spilled beacon{'s' if self.read != 1 else ''}: "
            f"{self.stored:,} stored, {self.present:,} already present, {self.invalid:,} invalid"
        )


def since_time(text: str, now: datetime | None = None) -> datetime:
    """argparse type: a duration back from now (``30m``, ``6h``, ``2d``) or an ISO 8601 time."""
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        return parse_time(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"not a duration or time: {text!r} (e.g. 6h, 2d or 2026-11-23T10:00:00Z)"
        ) from None


def replay_lines(lines: Iterable[str], tally: Tally) -> Tally:
    """Store the beacon of every spilled record in ``lines``; table errors propagate."""
    # Imported here: the beacon model (PynamoDB) is not for the CLI's start-up (bench/cli.py).
    from webbugger.spill import InvalidSpillRecordError, record_from_log_line, store_record

    for line in lines:
        try:
            record = record_from_log_line(line)
            if record is None:
                continue  # not a spilled beacon: other log lines are skipped
            tally.read += 1
        except InvalidSpillRecordError:
            tally.read += 1  # it names a spilled beacon, which cannot be read
            tally.invalid += 1
            continue
        try:
            stored = store_record(record)
        except InvalidSpillRecordError:
            tally.invalid += 1
            continue
        if stored:
            tally.stored += 1
        else:
            tally.present += 1
    return tally


def log_group_lines(stack_name: str, region: str | None, since: datetime) -> Iterator[str]:
    """The messages of the stack's track-function log events that carry a spilled record."""
    import boto3  # only a deployed stack's log is read with it
    from webbugger.spill import SPILL_KEY

    # The subscription filter of template.yaml's SpilledLogsSubscription: the same records.
    log_filter = "{ $.%s.id = * }" % SPILL_KEY  # noqa: UP031 - braces are the pattern's own

    session = boto3.session.Session(region_name=region)
    outputs = stack_outputs(describe_stack(session, stack_name))
    group = outputs.get(LOG_GROUP_OUTPUT)
    if not group:
        raise StackError(f"stack {stack_name!r} has no output {LOG_GROUP_OUTPUT}: update it to this template")
    pages = (
        session.client("logs")
        .get_paginator("filter_log_events")
        .paginate(logGroupName=group, filterPattern=log_filter, startTime=int(since.timestamp() * 1000))
    )
    for page in pages:
        for event in page.get("events", []):
            yield event.get("message", "")


def _open(names: list[str], stack: ExitStack) -> list[TextIO]:
    """Every input, opened before anything is written (a typo ends the command at once)."""
    opened: list[TextIO] = []
    for name in names:
        if name == "-":
            opened.append(sys.stdin)
            continue
        try:
            handle = Path(name).open(encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by ``stack``
            opened.append(stack.enter_context(handle))
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    return opened


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay spilled beacons and print one summary line."""
    stack_name = getattr(args, "stack", None)
    region = getattr(args, "region", None)
    files: list[str] = list(args.files)
    if args.since is not None and stack_name is None:
        raise UsageError("--since needs --stack NAME: it selects events of that stack's log group")
    if args.since is not None and files:
        raise UsageError("--since selects events of --stack's log group; it does not apply to FILE")
    if not files and stack_name is None:
        if sys.stdin.isatty():
            raise UsageError("nothing to replay: give FILE (- for stdin), or --stack NAME to read its log")
        files = ["-"]
    tally = Tally()
    with ExitStack() as stack:
        inputs = _open(files, stack)
        resolve_stack(stack_name, region)  # binds the beacon model to the stack's table
        if inputs:
            for handle in inputs:
                replay_lines(handle, tally)
        else:
            since = args.since or since_time(DEFAULT_SINCE)
            replay_lines(log_group_lines(str(stack_name), region, since), tally)
    print(json.dumps(dataclasses.asdict(tally)) if args.json else tally.summary())
    return 1 if tally.invalid else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``replay`` to the command line."""
    parser = subparsers.add_parser(
        "replay",
        help="store beacons the track function logged as spilled (files, stdin or --stack's log)",
        description="Store beacons the track function could only log (spilled_beacon records) in the table.",
    )
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="log records, one per line (- for stdin; default: stdin, or --stack's log group)",
    )
    parser.add_argument(
        "--since",
        type=since_time,
        default=None,
        metavar="TIME",
        help=f"with --stack and no FILE: log events since TIME, or for 6h, 2d... (default: {DEFAULT_SINCE})",
    )
    # As the other commands: --stack/--region also after the command, never overriding a value
    # given before it.
    parser.add_argument(
        "--stack", metavar="NAME", default=argparse.SUPPRESS, help="deployed stack (default: the local one)"
    )
    parser.add_argument("--region", default=argparse.SUPPRESS, help="AWS region of --stack")
    parser.add_argument("--json", action="store_true", help="the counts as one JSON object")
    parser.set_defaults(handler=cmd_replay)
