"""The deployment's settings: read once, lazily, from the environment into one typed object.

Nothing here runs at import time; :func:`get_settings` reads the environment on first call.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every annotation
# given as a string (a ForwardRef), 25 compiles at the track function's cold start. The
# annotations of this module are builtins, cheap to evaluate.
import os
from functools import cache
from typing import NamedTuple

from webbugger.errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}
IP_ADDRESS_MODES = ("anonymised", "full", "none")
# How analytics rows name an entity (the first is the default): webbugger.feed.shapes.
ANALYTICS_ENTITIES = ("pseudonymised", "clear")
# The kinds of reference with per-day counters (COUNTED_KINDS). An entity's figures (a
# recipient's, folded from its day items) already count its opens and clicks, and per-entity
# counters cost a transactional write for nearly every hit (each recipient is a counter of its
# own): off by default.
COUNTABLE_KINDS = ("target", "entity", "source")
DEFAULT_COUNTED_KINDS = ("target", "source")
# A link's change (disabled, a new URL) reaches a running track function within this many seconds.
DEFAULT_LOOKUP_CACHE_SECONDS = 30.0
_FALSE = {"0", "false", "no", "off", ""}


class Settings(NamedTuple):
    """Everything the core needs to know about where it runs (``settings._replace(...)`` for a
    changed copy).

    A NamedTuple rather than a frozen dataclass: as immutable, and about 0.6 ms cheaper to define
    at the track function's cold start (a dataclass compiles its methods when it is defined)."""

    beacons_table: str
    region: str
    # In AWS: the Secrets Manager secret holding the signing key ring.
    signing_secret_arn: str | None = None
    # Locally: the key ring itself (JSON), written by the local stack into its own state.
    local_signing_keys: str | None = None
    # The secret behind unique-visitor salts (stream function): its ARN in AWS, its value locally.
    visitor_salt_secret_arn: str | None = None
    local_visitor_salt: str | None = None
    # Only for DynamoDB Local; in AWS the regional endpoint is used.
    dynamodb_endpoint: str | None = None
    retention_days: int = 400
    # The counters table (stream and admin functions only; the track function never needs it).
    counters_table: str | None = None
    counter_retention_days: int = 400
    counted_kinds: tuple[str, ...] = DEFAULT_COUNTED_KINDS
    # Client addresses on beacons: "anonymised" (IPv4 /24, IPv6 /48), "full" or "none".
    ip_addresses: str = "anonymised"
    # Honour DNT: 1 and Sec-GPC: 1 (the hit is kept without IP, user agent or visitor key).
    honour_opt_out: bool = True
    # The secret CloudFront sends in ORIGIN_SECRET_HEADER: only a request carrying it is trusted to
    # say the viewer's address and country. Its ARN in AWS; its value locally. Neither: trust none.
    origin_secret_arn: str | None = None
    local_origin_secret: str | None = None
    hook_budget_ms: int = 200
    # A hook's first call in a container also pays its one-time costs (a database client, lazy
    # imports, a first connection: 140-220 ms for the ip entity's first get-or-create against
    # DynamoDB Local), so it may take this long (never less than hook_budget_ms).
    hook_cold_budget_ms: int = 1000
    lookup_cache_seconds: float = DEFAULT_LOOKUP_CACHE_SECONDS
    # Host names of this service besides the one a request arrived on (a CloudFront domain, the
    # API's own): a target URL on one of them is a chained tracked link, followed internally.
    tracking_hosts: tuple[str, ...] = ()
    # Secrets are read once per container every 15 minutes: a rotated key or origin secret takes
    # that long to reach every container (docs/deploy.md), for a third of the reads of 5 minutes.
    secret_cache_seconds: int = 900
    # Bounds on every DynamoDB call of the hot path: a stalled database must not hold a visitor.
    ddb_connect_timeout: float = 0.25
    ddb_read_timeout: float = 0.4
    ddb_max_retries: int = 1
    # The spill queue a beacon goes to when its write fails (webbugger.spill); None: the log only.
    spill_queue_url: str | None = None
    # The hit feed (stream function; webbugger.feed): the EventBridge bus its events go to, the
    # Firehose stream its analytics rows go to, and the queue of what neither would take.
    event_bus_name: str | None = None
    analytics_stream_name: str | None = None
    feed_dead_letter_queue_url: str | None = None
    # Analytics rows name an entity by a keyed pseudonym ("pseudonymised") or as it is ("clear").
    analytics_entities: str = "pseudonymised"

    def __repr__(self) -> str:
        # Not every field: the settings hold the local key ring and secrets' values, which a repr
        # in a log or a traceback would print.
        return f"Settings(beacons_table={self.beacons_table!r}, region={self.region!r}, ...)"


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def _number(name: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _choice(name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first is the default)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return choices[0]
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def _kinds(name: str) -> tuple[str, ...]:
    """A comma-separated subset of :data:`COUNTABLE_KINDS` ("none" or empty: no counters)."""
    raw = os.environ.get(name)
    if raw is None:
        return DEFAULT_COUNTED_KINDS
    kinds = {part.strip().lower() for part in raw.split(",") if part.strip()} - {"none"}
    unknown = kinds - set(COUNTABLE_KINDS)
    if unknown:
        raise ConfigurationError(
            f"{name} names unknown kinds {sorted(unknown)}: use {', '.join(COUNTABLE_KINDS)}"
        )
    return tuple(kind for kind in COUNTABLE_KINDS if kind in kinds)


def lookup_cache_seconds() -> float:
    """How long a track function keeps a target or source it read (``LOOKUP_CACHE_SECONDS``)."""
    return _number("LOOKUP_CACHE_SECONDS", DEFAULT_LOOKUP_CACHE_SECONDS)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def load_settings() -> Settings:
    """Read the settings from the environment now (no caching)."""
    return Settings(
        beacons_table=_required("BEACONS_TABLE"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        signing_secret_arn=os.environ.get("SIGNING_SECRET_ARN") or None,
        local_signing_keys=os.environ.get("WEBBUGGER_SIGNING_KEYS") or None,
        visitor_salt_secret_arn=os.environ.get("VISITOR_SALT_SECRET_ARN") or None,
        local_visitor_salt=os.environ.get("WEBBUGGER_VISITOR_SALT") or None,
        dynamodb_endpoint=os.environ.get("DYNAMODB_ENDPOINT") or None,
        retention_days=int(_number("BEACON_RETENTION_DAYS", 400, minimum=1)),
        counters_table=os.environ.get("COUNTERS_TABLE") or None,
        counter_retention_days=int(_number("COUNTER_RETENTION_DAYS", 400, minimum=1)),
        counted_kinds=_kinds("COUNTED_KINDS"),
        ip_addresses=_choice("IP_ADDRESSES", IP_ADDRESS_MODES),
        honour_opt_out=_flag("HONOUR_OPT_OUT", True),
        origin_secret_arn=os.environ.get("ORIGIN_SECRET_ARN") or None,
        local_origin_secret=os.environ.get("WEBBUGGER_ORIGIN_SECRET") or None,
        hook_budget_ms=int(_number("HOOK_BUDGET_MS", 200, minimum=1)),
        hook_cold_budget_ms=int(_number("HOOK_COLD_BUDGET_MS", 1000, minimum=1)),
        lookup_cache_seconds=lookup_cache_seconds(),
        spill_queue_url=os.environ.get("SPILL_QUEUE_URL") or None,
        event_bus_name=os.environ.get("EVENT_BUS_NAME") or None,
        analytics_stream_name=os.environ.get("ANALYTICS_STREAM_NAME") or None,
        analytics_entities=_choice("ANALYTICS_ENTITIES", ANALYTICS_ENTITIES),
        feed_dead_letter_queue_url=os.environ.get("FEED_DEAD_LETTER_QUEUE_URL") or None,
        tracking_hosts=tuple(
            host.strip().lower() for host in os.environ.get("TRACKING_HOSTS", "").split(",") if host.strip()
        ),
    )


@cache
def get_settings() -> Settings:
    """The settings of this process, read on first use."""
    return load_settings()
