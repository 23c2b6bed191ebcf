"""``webbugger report TYPE:ID --html PATH``: one self-contained HTML page of a reference's traffic.

Fetches the reference's daily counters and a capped scan of its beacons from the stack, then
writes the page :mod:`webbugger_cli.report_html` renders (atomically: a reader never sees half a file).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, date, datetime, time
from pathlib import Path

from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.runtime import default_registry

from webbugger_cli.campaign_report import CampaignReport
from webbugger_cli.commands import UsageError
from webbugger_cli.commands.options import bounded
from webbugger_cli.commands.stats import chosen_kind, day_range
from webbugger_cli.report import DEFAULT_SCAN_CAP, ReportData, tally
from webbugger_cli.report_html import render_html
from webbugger_cli.stack import require_counters, resolve_stack

DEFAULT_DAYS = 30
MAX_DAYS = 400  # the counters' default retention (COUNTER_RETENTION_DAYS)
MAX_SCAN = 1_000_000


def fetch(kind: Kind, ref: Ref, days: int, *, cap: int, now: datetime) -> ReportData:
    """The report's data, read from the bound tables; refused (one line) for a reference with no
    stored record and nothing counted (an empty report would read as "no traffic")."""
    # PynamoDB's modules: not at the CLI's start-up.
    from webbugger.beacon_queries import beacons_between
    from webbugger.counters import daily_stats
    from webbugger.service.stats import require_known

    first, last = day_range(days, now)
    stats = daily_stats(kind, ref, first, last)
    require_known(default_registry(), kind, ref, stats)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    found = tally(beacons_between(since, now, kind=kind, ref=ref), cap=cap)
    return ReportData(
        campaign=campaign_report(ref, first, last, cap) if kind is Kind.SOURCE else None,
        ref=str(ref),
        kind=str(kind),
        first_day=first.isoformat(),
        last_day=last.isoformat(),
        generated_at=now,
        days=stats.days,
        tally=found,
    )


def campaign_report(ref: Ref, first: date, last: date, cap: int) -> CampaignReport | None:
    """A source's campaign part: its figures and the hours from send to first open; None when
    nothing was sent to it (a source that is not a campaign)."""
    from webbugger.campaigns import send_to_open
    from webbugger.sends import sent_at
    from webbugger.service.stats import campaign_figures

    figures = campaign_figures(default_registry(), ref, first, last, cap=cap)
    if not figures.sent:
        return None
    return CampaignReport(figures, send_to_open(figures, sent_at(ref, figures.first_opens)))


def _destination(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise UsageError(f"--html {text}: is a directory")
    if not path.parent.is_dir():
        raise UsageError(f"--html {text}: directory {path.parent} does not exist")
    return path


def write_atomically(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same directory."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report and print one summary line."""
    ref = Ref.parse(args.ref)  # InvalidReferenceError: one line, before any stack is looked for
    # As `stats` does: the kind its type is registered as, unless --kind says.
    kind = chosen_kind(default_registry(), ref.type, args.kind)
    path = _destination(args.html)
    stack = resolve_stack(getattr(args, "stack", None), getattr(args, "region", None))
    require_counters(stack)
    data = fetch(kind, ref, args.days, cap=args.max_scan, now=datetime.now(UTC))
    write_atomically(path, render_html(data))
    total = sum(day.total for day in data.days)
    unique = sum(day.unique for day in data.days)
    opens = sum(day.unique_human_opens for day in data.days)
    clicks = sum(day.unique_human_clicks for day in data.days)
    capped = f" (capped at {data.tally.cap:,})" if data.tally.capped else ""
    print(
        f"wrote {path}: {opens:,} unique human opens, {clicks:,} unique human clicks; "
        f"{total:,} hits, {unique:,} unique visitor-days over {args.days} days; "
        f"{data.tally.scanned:,} beacons scanned{capped}"
    )
    if data.campaign is not None:
        f = data.campaign.figures
        print(
            f"campaign {ref}: sent {f.sent:,}, unique human opens {f.unique_human_opens:,} "
            f"({_rate(f.open_rate)}), unique human clicks {f.unique_human_clicks:,} ({_rate(f.click_rate)})"
        )
    return 0


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the command line."""
    parser = subparsers.add_parser(
        "report", help="write a self-contained HTML report of one target, entity or source"
    )
    parser.add_argument("ref", metavar="TYPE:ID", help="the reference to report on")
    parser.add_argument(
        "--kind",
        choices=[kind.value for kind in Kind],
        help="what TYPE:ID is in the beacons (default: the kind TYPE is registered as)",
    )
    parser.add_argument(
        "--days",
        type=bounded(1, MAX_DAYS),
        default=DEFAULT_DAYS,
        help=f"the last N UTC days, today included (default: {DEFAULT_DAYS})",
    )
    parser.add_argument("--html", metavar="PATH", required=True, help="the HTML file to write")
    parser.add_argument(
        "--max-scan",
        type=bounded(1, MAX_SCAN),
        default=DEFAULT_SCAN_CAP,
        help=f"read at most this many beacons for the top tables (default: {DEFAULT_SCAN_CAP:,})",
    )
    # As main's other commands: --stack/--region also after the command, never overriding a value
    # given before it (the top-level parser's defaults stand when they are not given here).
    parser.add_argument(
        "--stack", metavar="NAME", default=argparse.SUPPRESS, help="deployed stack (default: the local one)"
    )
    parser.add_argument("--region", default=argparse.SUPPRESS, help="AWS region of --stack")
    parser.set_defaults(handler=cmd_report)
