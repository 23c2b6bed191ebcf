"""``webbugger stats TYPE:ID``: a reference's daily counters, as a chart in the terminal or as JSON.

The first line is the headline: unique human opens and clicks (people whose hit was labelled
human, see :mod:`webbugger.classify`), then total, unique visitors, human and machine hits.

The chart has one row per UTC day, oldest first: the day's total and unique counts, then a bar
whose dark part is the unique visitors and whose whole length is the total, scaled to the
busiest day and to the terminal's width.

For a stored link with an A/B split, a line per variant follows: its clicks and human clicks
over the same days (counted from the link's beacons, which record the variant).

For a source (a campaign), its figures follow (``"campaign"`` in the JSON): sent, unique human
opens and clicks (distinct recipients over the days), the open, click and click-to-open rates,
machine opens and clicks apart, and the clicks of each link (:mod:`webbugger.campaigns`, read
from the campaign's beacons).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from webbugger.refs import Ref
from webbugger.registry import Kind, Registry
from webbugger.runtime import default_registry

from webbugger_cli.commands import UsageError
from webbugger_cli.commands.backends import open_backend
from webbugger_cli.commands.options import bounded
from webbugger_cli.helptext import paint
from webbugger_cli.terminal import terminal_text

if TYPE_CHECKING:
    import argparse

    from webbugger.counters import Stats

    from webbugger_cli.commands.backend_records import Record

DEFAULT_DAYS = 30
MAX_DAYS = 366  # as the admin API's /stats allows
FALLBACK_WIDTH = 80
MIN_BAR = 10
DAY_WIDTH = len("YYYY-MM-DD")
UNIQUE_BLOCK = "█"
TOTAL_BLOCK = "░"


def infer_kind(registry: Registry, type_name: str) -> Kind:
    """The kind a type is registered as; :class:`UsageError` when none or several."""
    kinds = registry.kinds_of(type_name)
    if len(kinds) == 1:
        return kinds[0]
    if not kinds:
        raise UsageError(
            f"no type named {type_name!r} is registered (pass --kind to read the counters of an "
            "unregistered type)"
        )
    names = " and ".join(str(kind) for kind in kinds)
    raise UsageError(f"type {type_name!r} is registered as {names}: pass --kind {'|'.join(kinds)}")


def chosen_kind(registry: Registry, type_name: str, given: str | None) -> Kind:
    """``--kind`` if given, else the kind the type is registered as; :class:`UsageError` for a
    ``--kind`` the type is registered otherwise than (``campaign:ID --kind target``: zeros)."""
    if given is None:
        return infer_kind(registry, type_name)
    kind = Kind(given)
    others = [str(other) for other in Kind if other is not kind and registry.has(other, type_name)]
    if others and not registry.has(kind, type_name):
        raise UsageError(f"type {type_name!r} is registered as {' and '.join(others)}, not {kind}")
    return kind


def uncounted_note(kind: Kind, counted_kinds: str | None) -> str | None:
    """Why the counts of ``kind`` are zeros on a stack whose ``COUNTED_KINDS`` (the local
    stack's, adopted) leaves it out; None when it counts them or the CLI cannot tell."""
    if counted_kinds is None:
        return None
    counted = {name.strip() for name in counted_kinds.split(",")}
    if str(kind) in counted:
        return None
    return f"this stack keeps no {kind} counters (COUNTED_KINDS={counted_kinds}): the counts are zeros"


def day_range(days: int, now: datetime) -> tuple[date, date]:
    """The ``days`` UTC days ending with today's, inclusive."""
    last = now.astimezone(UTC).date()
    return last - timedelta(days=days - 1), last


def totals_line(stats: Stats) -> str:
    """One line: the reference, the range, the headline (unique human opens and clicks), then the
    other totals."""
    totals = stats.totals
    span = f"{stats.days[0].day} to {stats.days[-1].day}" if stats.days else "no days"
    return (
        f"{stats.ref} ({stats.kind}), {span}: unique human opens {totals.unique_human_opens}, "
        f"unique human clicks {totals.unique_human_clicks}; total {totals.total}, "
        f"unique {totals.unique}, human {totals.human}, machine {totals.machine}"
    )


def _cells(value: int, peak: int, width: int) -> int:
    if value <= 0 or peak <= 0:
        return 0
    return max(1, round(value * width / peak))


def render_chart(stats: Stats, width: int) -> list[str]:
    """The chart's lines for a terminal ``width`` columns wide (a header, then one row per day)."""
    total_width = max([len("TOTAL"), *(len(str(day.total)) for day in stats.days)])
    unique_width = max([len("UNIQUE"), *(len(str(day.unique)) for day in stats.days)])
    prefix = DAY_WIDTH + 2 + total_width + 2 + unique_width + 2
    bar_width = max(MIN_BAR, width - prefix - 1)
    peak = max((day.total for day in stats.days), default=0)
    legend = f"{UNIQUE_BLOCK} unique  {TOTAL_BLOCK} total"
    lines = [f"{'DAY':<{DAY_WIDTH}}  {'TOTAL':>{total_width}}  {'UNIQUE':>{unique_width}}  {legend}"]
    for day in stats.days:
        total_cells = _cells(day.total, peak, bar_width)
        unique_cells = min(_cells(min(day.unique, day.total), peak, bar_width), total_cells)
        bar = UNIQUE_BLOCK * unique_cells + TOTAL_BLOCK * (total_cells - unique_cells)
        counts = f"{day.total:>{total_width}}  {day.unique:>{unique_width}}"
        lines.append(f"{day.day:<{DAY_WIDTH}}  {counts}  {bar}".rstrip())
    return lines


def terminal_width() -> int:
    """The terminal's width ($COLUMNS, else the terminal's), else 80 columns."""
    return shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns or FALLBACK_WIDTH


def variant_lines(variants: list[Record]) -> list[str]:
    """One line per A/B variant: its clicks, human clicks and share of the clicks."""
    total = sum(int(variant["clicks"]) for variant in variants)
    width = max(len(terminal_text(variant["name"])) for variant in variants)
    return [
        f"variant {terminal_text(v['name']):<{width}}  clicks {v['clicks']}  human {v['human_clicks']}  "
        f"{(100 * int(v['clicks']) / total) if total else 0:.1f}% of clicks"
        for v in variants
    ]


def _percent(rate: object) -> str:
    return "-" if rate is None else f"{100 * float(str(rate)):.1f}%"


def campaign_lines(campaign: Record) -> list[str]:
    """The campaign's headline line, its machine line and one line per link."""
    lines = [
        f"sent {campaign['sent']}: unique human opens {campaign['unique_human_opens']} "
        f"(open rate {_percent(campaign['open_rate'])}), unique human clicks "
        f"{campaign['unique_human_clicks']} (click rate {_percent(campaign['click_rate'])}, "
        f"click-to-open {_percent(campaign['click_to_open_rate'])})",
        f"machines apart: {campaign['machine_opens']} opens, {campaign['machine_clicks']} clicks"
        + "".join(f"; {label} {count}" for label, count in campaign["machine_classes"].items())
        + (f"; {campaign['pending']} hits not labelled yet" if campaign["pending"] else ""),
    ]
    for link in campaign["links"]:
        lines.append(
            f"link {link['target']}  unique human clicks {link['unique_human_clicks']}  "
            f"human {link['human_clicks']}  machine {link['machine_clicks']}  {link['url'] or ''}".rstrip()
        )
    if campaign.get("openers_not_sent"):
        lines.append(
            f"{campaign['openers_not_sent']} opener(s) with no recorded send, left out of the rates "
            "(record them with POST /sends)"
        )
    if campaign.get("capped"):
        lines.append(f"(read the newest {campaign['scanned']} beacons only: the scan is capped)")
    return lines


def cmd_stats(args: argparse.Namespace) -> int:
    """Print a reference's daily counters (and a split link's clicks per variant)."""
    ref = Ref.parse(args.ref)  # one line for a malformed reference, before any stack is looked for
    kind = chosen_kind(default_registry(), ref.type, args.kind)
    first, last = day_range(args.days, datetime.now(UTC))
    backend = open_backend(args.stack, args.region)
    stats = backend.stats(kind, ref, first, last)  # refused first: no note above the one line
    note = uncounted_note(kind, os.environ.get("COUNTED_KINDS") if args.stack is None else None)
    if note is not None:
        print(f"{paint('webbugger: note:', 'yellow')} {note}", file=sys.stderr)
    variants: list[Record] = []
    from webbugger.tracking import SHORT_LINK_TYPE  # the tracker's modules: not at start-up

    if kind is Kind.TARGET and ref.type == SHORT_LINK_TYPE and ref.id:
        with contextlib.suppress(UsageError):  # no such link (any more): its counters all the same
            variants = backend.variant_clicks(ref.id, first, last)["variants"]
    campaign = backend.campaign(ref, first, last) if kind is Kind.SOURCE and ref.id else None
    if args.json:
        extra = ({"variants": variants} if variants else {}) | ({"campaign": campaign} if campaign else {})
        print(json.dumps(stats.as_dict() | extra))
        return 0
    print(totals_line(stats))
    for line in render_chart(stats, terminal_width()):
        print(line)
    for line in variant_lines(variants) if variants else ():
        print(line)
    # A source never sent is no campaign: no lines of zeros.
    for line in campaign_lines(campaign) if campaign and campaign["sent"] else ():
        print(line)
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``stats`` to the command line."""
    stats = commands.add_parser(
        "stats", parents=[common], help="daily counters of a target, entity or source, charted"
    )
    stats.add_argument("ref", metavar="TYPE:ID", help="the reference, e.g. link:abc123")
    stats.add_argument(
        "--kind",
        choices=[kind.value for kind in Kind],
        help="what TYPE:ID is in the beacons (default: the kind TYPE is registered as)",
    )
    stats.add_argument(
        "--days",
        type=bounded(1, MAX_DAYS),
        default=DEFAULT_DAYS,
        help=f"the last N UTC days, today included (default: {DEFAULT_DAYS})",
    )
    stats.add_argument("--json", action="store_true", help="one JSON object (the daily series and totals)")
    stats.set_defaults(handler=cmd_stats)
