"""What N hits a month cost, by service: :func:`estimate` from the stack's settings, the billed
units of one hit and the prices (:mod:`webbugger_cli.commands.cost_inputs`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webbugger_cli.commands.cost_inputs import load_hit_figures, load_prices, unit_price
from webbugger_cli.template import FRONT_DOORS

if TYPE_CHECKING:
    from webbugger_cli.commands.cost_inputs import FunctionSettings, StackSettings

MILLION = 1_000_000
SECONDS_PER_MONTH = 730 * 3600  # AWS's billing month
GB = 1024**3
SERVICES = ("CloudFront", "API Gateway", "Lambda", "DynamoDB", "CloudWatch Logs", "Secrets Manager")
# Services of the optional hit feed (--events, --analytics): shown only when asked for.
FEED_SERVICES = ("EventBridge", "Firehose", "S3")


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


@dataclass(frozen=True, slots=True)
class _Traffic:
    """What every service's lines are computed from: the hits, and the stream's batches they make."""

    hits: int
    # Hits a second, on average over the month.
    rate: float
    # False when the stream's event filter drops the profile's beacons (no reference).
    streamed: bool
    # Beacons a stream invocation: what arrived within the window, at least one, at most BatchSize.
    batch: float
    stream_invocations: float


def _traffic(hits: int, units: dict[str, Any], settings: StackSettings) -> _Traffic:
    rate = hits / SECONDS_PER_MONTH
    streamed = bool(units.get("stream", True))
    batch = min(max(rate * settings.batching_window_s, 1.0), float(settings.batch_size))
    return _Traffic(hits, rate, streamed, batch, hits / batch if streamed else 0.0)


def _front_lines(hits: int, prices: dict[str, Any], *, cloudfront: bool, front_door: str) -> list[Line]:
    """CloudFront's and API Gateway's requests (a function URL bills none of its own)."""
    lines = []
    if cloudfront:
        lines.append(
            Line("CloudFront", "HTTPS requests", hits * unit_price(prices, "cloudfront_https_request"))
        )
    if front_door == "http-api":
        lines.append(Line("API Gateway", "HTTP API requests", hits * unit_price(prices, "http_api_request")))
    return lines


def _track_lines(
    traffic: _Traffic,
    track: FunctionSettings,
    track_ms: float,
    prices: dict[str, Any],
    figures: dict[str, Any],
) -> list[Line]:
    """Track function: one invocation per hit, billed by the millisecond; cold starts bill their INIT."""
    hits = traffic.hits
    cold = hits * _value(figures, "cold_start_share")
    track_ms_billed = hits * math.ceil(track_ms) + cold * _value(figures, "init_ms")
    track_gbs = track_ms_billed / 1000 * track.memory_mb / 1024
    return [
        Line("Lambda", "track: requests", hits * unit_price(prices, "lambda_request")),
        Line(
            "Lambda",
            f"track: {math.ceil(track_ms)} ms at {track.memory_mb} MB {track.architecture}, cold starts",
            track_gbs * _lambda_gb_second(prices, track),
        ),
    ]


def _stream_lines(
    traffic: _Traffic,
    stream: FunctionSettings,
    per_beacon_ms: float,
    prices: dict[str, Any],
    figures: dict[str, Any],
) -> list[Line]:
    """Stream function: batches of what arrived within the window; none at all for a hit its
    event filter drops (a beacon with no reference)."""
    per_invocation = _value(figures, "stream_ms_per_invocation")
    streamed, batch, invocations = traffic.streamed, traffic.batch, traffic.stream_invocations
    stream_ms_total = traffic.hits * per_beacon_ms + invocations * per_invocation if streamed else 0.0
    stream_gbs = stream_ms_total / 1000 * stream.memory_mb / 1024
    return [
        Line(
            "Lambda",
            f"stream: requests ({batch:.1f} beacons a batch)"
            if streamed
            else "stream: not invoked (filtered out)",
            invocations * unit_price(prices, "lambda_request"),
        ),
        Line(
            "Lambda",
            f"stream: {per_beacon_ms:g} ms a beacon at {stream.memory_mb} MB {stream.architecture}",
            stream_gbs * _lambda_gb_second(prices, stream),
        ),
    ]


def _dynamodb_lines(traffic: _Traffic, units: dict[str, Any], prices: dict[str, Any]) -> list[Line]:
    """Per beacon, plus what a batch costs once (its counters and ledger), shared by its beacons."""
    hits, batch, streamed = traffic.hits, traffic.batch, traffic.streamed
    per_batch = _value(units, "stream_wru_per_batch") / batch if streamed else 0.0
    wru = _value(units, "track_wru") + _value(units, "stream_wru") + per_batch
    rru = _value(units, "track_rru") + _value(units, "stream_rru")
    rru += _value(units, "stream_rru_per_batch") / batch if streamed else 0.0
    return [
        Line(
            "DynamoDB",
            f"{wru:.3g} write units a hit",
            hits * wru * unit_price(prices, "dynamodb_on_demand_wru"),
        ),
        Line(
            "DynamoDB",
            f"{rru:.3g} read units a hit",
            hits * rru * unit_price(prices, "dynamodb_on_demand_rru"),
        ),
        Line(
            "DynamoDB",
            "stream reads (by the Lambda trigger)",
            traffic.stream_invocations * unit_price(prices, "dynamodb_streams_read_request"),
        ),
    ]


def _log_lines(
    traffic: _Traffic, settings: StackSettings, prices: dict[str, Any], figures: dict[str, Any]
) -> list[Line]:
    """CloudWatch Logs: the functions' lines and EMF metrics, ingested then stored."""
    overhead = _value(figures, "log_event_overhead_bytes")
    platform = _value(figures, "platform_log_bytes_per_invocation") + 3 * overhead
    track_bytes = (
        _value(figures, "track_log_bytes") + overhead + (platform if settings.track.platform_logs else 0)
    )
    stream_bytes = _value(figures, "stream_log_bytes_per_invocation") + overhead
    stream_bytes += platform if settings.stream.platform_logs else 0
    log_bytes = traffic.hits * track_bytes + traffic.stream_invocations * stream_bytes
    months = settings.log_retention_days / 30
    return [
        Line(
            "CloudWatch Logs",
            "ingestion (logs and EMF metrics)",
            log_bytes / GB * unit_price(prices, "cloudwatch_logs_ingestion_gb"),
        ),
        Line(
            "CloudWatch Logs",
            f"storage for {settings.log_retention_days} days",
            log_bytes / GB * months * unit_price(prices, "cloudwatch_logs_storage_gb_month"),
        ),
    ]


def _secret_line(traffic: _Traffic, track_ms: float, prices: dict[str, Any], figures: dict[str, Any]) -> Line:
    """Each warm container reads its secrets every 15 minutes (settings.secret_cache_seconds): the
    track function keeps one container per concurrent request; the stream function one per stream
    shard (one, at these rates)."""
    containers = max(1, math.ceil(traffic.rate * track_ms / 1000)) + 1
    reads = containers * _value(figures, "secret_reads_per_container_hour") * SECONDS_PER_MONTH / 3600
    # At most one read an invocation (little traffic: the cache has expired each time).
    reads = min(reads, traffic.hits + traffic.stream_invocations)
    return Line(
        "Secrets Manager",
        "key ring and visitor salt reads",
        reads * unit_price(prices, "secrets_manager_api_call"),
    )


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
    traffic = _traffic(hits, units, settings)
    lines = [
        *_front_lines(hits, prices, cloudfront=cloudfront, front_door=front_door),
        *_track_lines(traffic, settings.track, track_ms, prices, figures),
        *_stream_lines(traffic, settings.stream, per_beacon_ms, prices, figures),
        *_dynamodb_lines(traffic, units, prices),
        *_log_lines(traffic, settings, prices, figures),
        _secret_line(traffic, track_ms, prices, figures),
    ]
    if traffic.streamed and (events or analytics):
        from webbugger_cli.commands.cost_feed import feed_lines

        function = (settings.stream.memory_mb, settings.stream.architecture)
        found = feed_lines(
            hits, traffic.batch, function, events=events, analytics=analytics, prices=prices, figures=figures
        )
        lines += [Line(*line) for line in found]
    return Estimate(hits, profile, lines)
