"""``webbugger cost --hits N``: what N hits a month cost, by service, from the template's own settings.

Three inputs, each with one home:

- the stack's settings, read from template.yaml: each function's memory size and architecture,
  the stream's batch size and batching window, the log retention's default;
- what one hit costs in billed units (write units, milliseconds, log bytes): ``data/hits.json``,
  each figure marked measured (with its command), derived (with the code it was counted from)
  or estimate (with its assumption);
- the prices, dated, with their sources: ``data/prices.json`` (us-east-1).

With ``--front-door function-url`` (template parameter FrontDoor), CloudFront forwards to the
track function's URL: no API Gateway request is billed (function URLs cost nothing beyond the
invocation). Data transfer out is left out (a 43-byte GIF or a 302 is tiny but priced per GB by region), as
are fixed monthly costs (secrets, dashboards, alarms, custom metrics).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import TYPE_CHECKING, Any

from webbugger_cli.commands import UsageError, print_table
from webbugger_cli.commands.cost_estimate import estimate
from webbugger_cli.commands.cost_inputs import load_hit_figures, load_prices, stack_settings
from webbugger_cli.template import FRONT_DOORS

if TYPE_CHECKING:
    from webbugger_cli.commands.cost_estimate import Estimate
    from webbugger_cli.commands.cost_inputs import StackSettings

MAX_HITS = 10**13


def _money(dollars: float) -> str:
    return f"${dollars:,.2f}" if dollars >= 0.995 or dollars == 0 else f"${dollars:,.4f}"


def summary_rows(estimates: list[Estimate]) -> list[tuple[str, ...]]:
    """Per million hits: one row per service, one column per profile, then the total."""
    header = ("per million hits", *(estimate.profile for estimate in estimates))
    rows = [header]
    for service in dict.fromkeys(name for e in estimates for name in e.by_service()):
        rows.append((service, *(_money(e.per_million(e.by_service().get(service, 0.0))) for e in estimates)))
    rows.append(("total", *(_money(e.per_million(e.total)) for e in estimates)))
    return rows


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    """``rows`` (the first a header) as a Markdown table."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _as_json(
    estimates: list[Estimate], settings: StackSettings, prices: dict[str, Any], front_door: str
) -> dict[str, Any]:
    return {
        "hits": estimates[0].hits,
        "front_door": front_door,
        "region": prices["region"],
        "prices_recorded": prices["recorded"],
        "settings": {
            "track": {"memory_mb": settings.track.memory_mb, "architecture": settings.track.architecture},
            "stream": {"memory_mb": settings.stream.memory_mb, "architecture": settings.stream.architecture},
            "batch_size": settings.batch_size,
            "batching_window_s": settings.batching_window_s,
            "log_retention_days": settings.log_retention_days,
        },
        "profiles": {
            e.profile: {
                "total": round(e.total, 6),
                "per_million": round(e.per_million(e.total), 6),
                "by_service": {name: round(value, 6) for name, value in e.by_service().items()},
                "lines": [
                    {"service": line.service, "what": line.what, "dollars": round(line.dollars, 6)}
                    for line in e.lines
                ],
            }
            for e in estimates
        },
    }


def cmd_cost(args: argparse.Namespace) -> int:
    """Print the monthly cost of ``--hits`` hits by service, and per million hits."""
    if not 1 <= args.hits <= MAX_HITS:
        raise UsageError(f"--hits must be between 1 and {MAX_HITS:,}")
    settings = stack_settings()
    prices = load_prices()
    figures = load_hit_figures()
    names = list(figures["profiles"]) if args.profile is None else [args.profile]
    cloudfront = settings.has_cloudfront and not args.no_cloudfront
    if args.front_door == "function-url" and not (cloudfront and settings.has_function_url):
        raise UsageError("--front-door function-url is CloudFront's origin: leave out --no-cloudfront")
    estimates = [
        estimate(
            args.hits,
            name,
            settings,
            cloudfront=cloudfront,
            front_door=args.front_door,
            track_ms=args.track_ms,
            stream_ms=args.stream_ms,
            prices=prices,
            figures=figures,
            events=args.events,
            analytics=args.analytics,
        )
        for name in names
    ]
    if args.json:
        print(json.dumps(_as_json(estimates, settings, prices, args.front_door)))
        return 0
    if args.markdown:
        print(markdown_table(summary_rows(estimates)))
        return 0
    print(
        f"{args.hits:,} hits a month through {args.front_door if cloudfront else 'the HTTP API alone'}, "
        f"{prices['region']} prices recorded {prices['recorded']} "
        f"(cli/webbugger_cli/data/prices.json), excluding data transfer and fixed monthly costs"
    )
    for e in estimates:
        print(f"\n{e.profile}: {figures['profiles'][e.profile]['describe']}")
        rows: list[tuple[str, ...]] = [("service", "what", "this month", "per million hits")]
        rows += [(x.service, x.what, _money(x.dollars), _money(e.per_million(x.dollars))) for x in e.lines]
        rows.append(("total", "", _money(e.total), _money(e.per_million(e.total))))
        print_table(rows)
    print()
    print_table(summary_rows(estimates))
    kinds = sorted({figures[name]["kind"] for name in ("track_ms", "stream_ms_per_beacon", "init_ms")})
    print(
        f"\nLambda durations are {'/'.join(kinds)}s (see data/hits.json): "
        "pass --track-ms/--stream-ms from your functions' Duration metric (AWS/Lambda)."
    )
    return 0


_HITS = re.compile(r"(?P<int>\d{1,3}(?:([,_])\d{3})?(?:\2\d{3})*|\d+)|(?P<sci>\d+(?:\.\d+)?e\d{1,2})", re.I)


def _hits(text: str) -> int:
    """``1000000``, ``1,000,000``, ``1_000_000`` or ``1e6``."""
    match = _HITS.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a number of hits: {text!r}")
    if match["sci"]:
        return int(float(match["sci"]))
    return int(re.sub(r"[,_]", "", match["int"]))


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if not 0 < value <= 900_000:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 900000 ms, got {text}")
    return value


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cost`` to the command line."""
    cost = commands.add_parser(
        "cost", help="monthly cost of N hits by service, from template.yaml's settings"
    )
    cost.add_argument(
        "--hits", type=_hits, required=True, metavar="N", help="hits a month (e.g. 1000000 or 1e6)"
    )
    cost.add_argument(
        "--profile", choices=sorted(load_hit_figures()["profiles"]), help="one kind of hit (default: each)"
    )
    cost.add_argument(
        "--no-cloudfront", action="store_true", help="visitors use the API's own URL (no CloudFront)"
    )
    cost.add_argument(
        "--front-door",
        choices=FRONT_DOORS,
        default="http-api",
        help="what CloudFront forwards to: the HTTP API (default) or the track function's URL",
    )
    cost.add_argument(
        "--track-ms",
        type=_milliseconds,
        help="billed ms of a warm track invocation (default: data/hits.json)",
    )
    cost.add_argument(
        "--stream-ms", type=_milliseconds, help="stream function ms per beacon (default: data/hits.json)"
    )
    cost.add_argument(
        "--events", action="store_true", help="with EnableHitEvents: an EventBridge event per hit"
    )
    cost.add_argument(
        "--analytics", action="store_true", help="with EnableAnalytics: Parquet on S3 through Firehose"
    )
    output = cost.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object")
    output.add_argument("--markdown", action="store_true", help="the per-million summary as a Markdown table")
    cost.set_defaults(handler=cmd_cost)
