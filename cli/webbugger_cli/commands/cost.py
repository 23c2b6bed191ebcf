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
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from webbugger_cli.commands import UsageError, print_table
from webbugger_cli.template import FRONT_DOORS, TemplateError, load_template

if TYPE_CHECKING:
    from webbugger_cli.template import Template

MILLION = 1_000_000
SECONDS_PER_MONTH = 730 * 3600  # AWS's billing month
GB = 1024**3
SERVICES = ("CloudFront", "API Gateway", "Lambda", "DynamoDB", "CloudWatch Logs", "Secrets Manager")
# Services of the optional hit feed (--events, --analytics): shown only when asked for.
FEED_SERVICES = ("EventBridge", "Firehose", "S3")
DEFAULT_MEMORY_MB = 128
DEFAULT_ARCHITECTURE = "x86_64"
MAX_HITS = 10**13


def _data(name: str) -> dict[str, Any]:
    text = resources.files("webbugger_cli").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_prices() -> dict[str, Any]:
    """``data/prices.json``: the dated prices with their sources."""
    return _data("prices.json")


def load_hit_figures() -> dict[str, Any]:
    """``data/hits.json``: what one hit costs in billed units, with where each figure comes from."""
    return _data("hits.json")


def unit_price(prices: dict[str, Any], name: str) -> float:
    """The price of one unit (dollars), from an entry priced ``usd`` per ``per`` units."""
    entry = prices["prices"][name]
    return float(entry["usd"]) / float(entry["per"])


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """What the bill of one function depends on."""

    memory_mb: int
    architecture: str
    # Lambda's START/END/REPORT lines: off when LoggingConfig's SystemLogLevel is WARN.
    platform_logs: bool = True


@dataclass(frozen=True, slots=True)
class StackSettings:
    """The template's settings that the cost depends on."""

    track: FunctionSettings
    stream: FunctionSettings
    batch_size: int
    batching_window_s: float
    log_retention_days: int
    has_cloudfront: bool
    has_function_url: bool = False


def _function(template: Template, name: str) -> FunctionSettings:
    if name not in template.resources:
        raise TemplateError(f"template.yaml has no {name}")
    memory = template.function_property(name, "MemorySize", DEFAULT_MEMORY_MB)
    architectures = template.function_property(name, "Architectures", [DEFAULT_ARCHITECTURE])
    logging = template.function_property(name, "LoggingConfig", {})
    quiet = isinstance(logging, dict) and logging.get("SystemLogLevel") == "WARN"
    return FunctionSettings(int(memory), str(architectures[0]), platform_logs=not quiet)


def _stream_event(template: Template) -> dict[str, Any]:
    events = template.resources["StreamFunction"].get("Properties", {}).get("Events") or {}
    for event in events.values():
        if event.get("Type") == "DynamoDB":
            found: dict[str, Any] = event.get("Properties", {})
            return found
    raise TemplateError("template.yaml's StreamFunction has no DynamoDB stream event")


def _number(template: Template, value: Any, what: str) -> float:
    if isinstance(value, dict) and "Ref" in value:
        value = template.parameter_default(str(value["Ref"]))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TemplateError(f"template.yaml: {what} is not a number ({value!r})") from None


def stack_settings(template: Template | None = None) -> StackSettings:
    """The settings of template.yaml (parameters at their defaults)."""
    template = template or load_template()
    event = _stream_event(template)
    log_group = template.resources.get("TrackFunctionLogGroup", {}).get("Properties", {})
    retention = _number(template, log_group.get("RetentionInDays"), "TrackFunctionLogGroup's RetentionInDays")
    return StackSettings(
        track=_function(template, "TrackFunction"),
        stream=_function(template, "StreamFunction"),
        batch_size=int(_number(template, event.get("BatchSize", 100), "the stream's BatchSize")),
        batching_window_s=_number(
            template, event.get("MaximumBatchingWindowInSeconds", 0), "the batching window"
        ),
        log_retention_days=int(retention),
        has_cloudfront="EnableCloudFront" in template.data.get("Parameters", {}),
        has_function_url="FrontDoor" in template.data.get("Parameters", {}),
    )


@dataclass(frozen=True, slots=True)
class Line:
    """One service's part of the bill."""

    service: str
    what: str
    dollars: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """The bill of ``hits`` hits of one profile in a month."""

    hits: int
    profile: str
    lines: list[Line]

    @property
    def total(self) -> float:
        return sum(line.dollars for line in self.lines)

    def per_million(self, dollars: float) -> float:
        """``dollars`` for these hits, scaled to one million hits."""
        return dollars * MILLION / self.hits if self.hits else 0.0

    def by_service(self) -> dict[str, float]:
        """Dollars per service (every service, in a fixed order; the feed's when it has lines)."""
        feed = [name for name in FEED_SERVICES if any(line.service == name for line in self.lines)]
        totals = dict.fromkeys((*SERVICES, *feed), 0.0)
        for line in self.lines:
            totals[line.service] += line.dollars
        return totals


def _lambda_gb_second(prices: dict[str, Any], function: FunctionSettings) -> float:
    return unit_price(prices, f"lambda_{function.architecture}_gb_second")


def _value(figures: dict[str, Any], name: str) -> float:
    return float(figures[name]["value"])


def estimate(
    hits: int,
    profile: str,
    settings: StackSettings,
    *,
    cloudfront: bool = True,
    front_door: str = "http-api",
    track_ms: float | None = None,
    stream_ms: float | None = None,
    prices: dict[str, Any] | None = None,
    figures: dict[str, Any] | None = None,
    events: bool = False,
    analytics: bool = False,
) -> Estimate:
    """The cost of ``hits`` hits of ``profile`` in one month, through ``front_door`` (see
    FRONT_DOORS), with the hit feed's ``events`` and ``analytics`` when asked for."""
    if front_door not in FRONT_DOORS or (front_door == "function-url" and not cloudfront):
        raise ValueError(f"front door {front_door!r}: one of {FRONT_DOORS}, function-url behind CloudFront")
    prices = prices or load_prices()
    figures = figures or load_hit_figures()
    units = figures["profiles"][profile]
    track_ms = _value(figures, "track_ms") if track_ms is None else track_ms
    per_beacon_ms = _value(figures, "stream_ms_per_beacon") if stream_ms is None else stream_ms
    rate = hits / SECONDS_PER_MONTH
    lines: list[Line] = []
    if cloudfront:
        lines.append(
            Line("CloudFront", "HTTPS requests", hits * unit_price(prices, "cloudfront_https_request"))
        )
    if front_door == "http-api":
        lines.append(Line("API Gateway", "HTTP API requests", hits * unit_price(prices, "http_api_request")))

    # Track function: one invocation per hit, billed by the millisecond; cold starts bill their INIT.
    track = settings.track
    cold = hits * _value(figures, "cold_start_share")
    track_ms_billed = hits * math.ceil(track_ms) + cold * _value(figures, "init_ms")
    track_gbs = track_ms_billed / 1000 * track.memory_mb / 1024
    lines.append(Line("Lambda", "track: requests", hits * unit_price(prices, "lambda_request")))
    lines.append(
        Line(
            "Lambda",
            f"track: {math.ceil(track_ms)} ms at {track.memory_mb} MB {track.architecture}, cold starts",
            track_gbs * _lambda_gb_second(prices, track),
        )
    )
    # Stream function: batches of what arrived within the window (at least one beacon, at most
    # BatchSize); none at all for a hit its event filter drops (a beacon with no reference).
    streamed = bool(units.get("stream", True))
    batch = min(max(rate * settings.batching_window_s, 1.0), float(settings.batch_size))
    invocations = hits / batch if streamed else 0.0
    stream = settings.stream
    stream_ms_total = (
        hits * per_beacon_ms + invocations * _value(figures, "stream_ms_per_invocation") if streamed else 0.0
    )
    stream_gbs = stream_ms_total / 1000 * stream.memory_mb / 1024
    lines.append(
        Line(
            "Lambda",
            f"stream: requests ({batch:.1f} beacons a batch)"
            if streamed
            else "stream: not invoked (filtered out)",
            invocations * unit_price(prices, "lambda_request"),
        )
    )
    lines.append(
        Line(
            "Lambda",
            f"stream: {per_beacon_ms:g} ms a beacon at {stream.memory_mb} MB {stream.architecture}",
            stream_gbs * _lambda_gb_second(prices, stream),
        )
    )

    # Per beacon, plus what a batch costs once (its counters and ledger), shared by its beacons.
    per_batch = _value(units, "stream_wru_per_batch") / batch if streamed else 0.0
    wru = _value(units, "track_wru") + _value(units, "stream_wru") + per_batch
    lines.append(
        Line(
            "DynamoDB",
            f"{wru:.3g} write units a hit",
            hits * wru * unit_price(prices, "dynamodb_on_demand_wru"),
        )
    )
    rru = _value(units, "track_rru") + _value(units, "stream_rru")
    rru += _value(units, "stream_rru_per_batch") / batch if streamed else 0.0
    lines.append(
        Line(
            "DynamoDB",
            f"{rru:.3g} read units a hit",
            hits * rru * unit_price(prices, "dynamodb_on_demand_rru"),
        )
    )
    lines.append(
        Line(
            "DynamoDB",
            "stream reads (by the Lambda trigger)",
            invocations * unit_price(prices, "dynamodb_streams_read_request"),
        )
    )

    overhead = _value(figures, "log_event_overhead_bytes")
    platform = _value(figures, "platform_log_bytes_per_invocation") + 3 * overhead
    track_bytes = _value(figures, "track_log_bytes") + overhead + (platform if track.platform_logs else 0)
    stream_bytes = _value(figures, "stream_log_bytes_per_invocation") + overhead
    stream_bytes += platform if stream.platform_logs else 0
    log_bytes = hits * track_bytes + invocations * stream_bytes
    lines.append(
        Line(
            "CloudWatch Logs",
            "ingestion (logs and EMF metrics)",
            log_bytes / GB * unit_price(prices, "cloudwatch_logs_ingestion_gb"),
        )
    )
    months = settings.log_retention_days / 30
    lines.append(
        Line(
            "CloudWatch Logs",
            f"storage for {settings.log_retention_days} days",
            log_bytes / GB * months * unit_price(prices, "cloudwatch_logs_storage_gb_month"),
        )
    )

    # Each warm container reads its secrets every 15 minutes (settings.secret_cache_seconds): the
    # track function keeps one container per concurrent request; the stream function one per stream
    # shard (one, at these rates).
    containers = max(1, math.ceil(rate * track_ms / 1000)) + 1
    reads = containers * _value(figures, "secret_reads_per_container_hour") * SECONDS_PER_MONTH / 3600
    reads = min(reads, hits + invocations)  # at most one read an invocation (little traffic: cache expired)
    lines.append(
        Line(
            "Secrets Manager",
            "key ring and visitor salt reads",
            reads * unit_price(prices, "secrets_manager_api_call"),
        )
    )
    if streamed and (events or analytics):
        from webbugger_cli.commands.cost_feed import feed_lines

        function = (stream.memory_mb, stream.architecture)
        found = feed_lines(
            hits, batch, function, events=events, analytics=analytics, prices=prices, figures=figures
        )
        lines += [Line(*line) for line in found]
    return Estimate(hits, profile, lines)


# --- the command ------------------------------------------------------------------------------


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
