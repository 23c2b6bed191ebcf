"""Admin function: the admin HTTP API (links, minting, beacons, stats, exports), behind IAM.

Every route of this API needs a SigV4-signed request (template.yaml: the AdminApi's default
authorizer is AWS_IAM). Requests and answers are pydantic models; the OpenAPI document that
Powertools derives from them is served at ``/openapi.json``. Errors answer
``{"error": {"code": ..., "message": ...}}``: 400 for bad input, 404 for an unknown link, 409 for
a link id already taken; bad input never gets a 5xx.

Not the hot path: this function may take its time (longer DynamoDB timeouts than the track
function's) and its dependencies (pydantic).
"""

from __future__ import annotations

import base64
import binascii
import csv
import dataclasses
import io
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from webbugger.beacon_queries import beacons_between
from webbugger.counters import daily_stats
from webbugger.destinations import normalise_destination
from webbugger.erase import erase_entity
from webbugger.errors import (
    InvalidReferenceError,
    NotFoundError,
    StoreUnavailableError,
    UnknownTypeError,
    UnsafeDestinationError,
    WebbuggerError,
)
from webbugger.minting import tracking_url
from webbugger.models import BEACON_RECORD_FIELDS, Beacon
from webbugger.modes import Mode
from webbugger.observability import logger, metrics
from webbugger.plugins import PluginLoadError
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.runtime import bind_tables, default_registry
from webbugger.settings import get_settings
from webbugger.signing import load_key_ring
from webbugger.tokens import Purpose, TokenClaims
from webbugger_plugins.link import (
    Link,
    LinkExistsError,
    create_link,
    disable_link,
    list_links,
    load,
    update_link,
)
from webbugger_plugins.url import check_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
    from aws_lambda_powertools.event_handler.openapi.types import (
        OpenAPIResponse,
        OpenAPIResponseContentModel,
        OpenAPIResponseContentSchema,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from webbugger.settings import Settings
    from webbugger.tokens import KeyRing

app = APIGatewayHttpResolver(enable_validation=True)

# Plugins load at init: a broken plugin stops this container with one clear line.
try:
    default_registry()
except PluginLoadError as exc:
    logger.critical(str(exc))
    raise

TRACKING_BASE_URL_VARIABLE = "TRACKING_BASE_URL"
SHORT_LINK_PREFIX = "/l/"
MAX_BATCH = 1000
MAX_PAGE = 1000
EXPORT_PAGE = 10_000
# Lambda answers at most 6 MB: an export page stops short of that, and says where to go on.
EXPORT_MAX_BYTES = 5 * 1024 * 1024
MAX_STATS_DAYS = 366
DEFAULT_DAYS = 30
# Link ids this API accepts: what new_link_id makes, and readable custom ids.
LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
LINK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
BEACON_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}\Z")


# --- errors -----------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than success, with its status and error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    """A 400."""
    return ApiError(400, code, message)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: ErrorDetail


def _error(status: int, code: str, message: str) -> Response[str]:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(status_code=status, content_type="application/json", body=body)


@app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
def _api_error(exc: ApiError) -> Response[str]:
    if exc.status >= 500:
        logger.error("admin request failed", extra={"code": exc.code, "reason": exc.message})
    else:
        logger.info("admin request refused", extra={"code": exc.code, "reason": exc.message})
    return _error(exc.status, exc.code, exc.message)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    problems = []
    for error in exc.errors()[:10]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg') or error.get('type')}")
    return _error(400, "invalid_request", "; ".join(problems) or "invalid request")


@app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[str]:
    return _error(400, "invalid_request", "send the request body as application/json")


@app.exception_handler(UnicodeDecodeError)  # type: ignore[untyped-decorator]
def _not_text(exc: UnicodeDecodeError) -> Response[str]:
    return _error(400, "invalid_request", "the request body is not UTF-8 text")


# Domain errors → (status, stable code). Powertools picks the handler of the most specific class.
_DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    LinkExistsError: (409, "link_exists"),
    UnsafeDestinationError: (400, "bad_url"),
    UnknownTypeError: (400, "unknown_type"),
    InvalidReferenceError: (400, "bad_reference"),
    NotFoundError: (404, "not_found"),
    StoreUnavailableError: (503, "unavailable"),
    WebbuggerError: (400, "bad_request"),
}


def _domain_error_handler(status: int, code: str) -> Callable[[Exception], Response[str]]:
    def handle(exc: Exception) -> Response[str]:
        return _error(status, code, str(exc))

    return handle


for _error_type, (_status, _code) in _DOMAIN_ERRORS.items():
    app.exception_handler(_error_type)(_domain_error_handler(_status, _code))


@app.not_found
def _no_route(exc: RouteNotFoundError) -> Response[str]:
    return _error(404, "not_found", "no such route")


_BAD_REQUEST: OpenAPIResponse = {
    "description": "Bad input",
    "content": {"application/json": {"model": ErrorBody}},
}
_NOT_FOUND: OpenAPIResponse = {
    "description": "No such link",
    "content": {"application/json": {"model": ErrorBody}},
}


# --- setup ------------------------------------------------------------------------------------


def _configured() -> Settings:
    # Keyed on the process's settings, so a reset of those (runtime.reset()) is seen here too.
    return _with_admin_bounds(get_settings())


@cache
def _with_admin_bounds(base: Settings) -> Settings:
    return dataclasses.replace(base, ddb_connect_timeout=2.0, ddb_read_timeout=10.0, ddb_max_retries=3)


def settings() -> Settings:
    """This function's settings, with every model bound to its table (the admin's timeouts).

    Rebinds when the models were bound by someone else (the local stack runs every function in
    one process, and the track function binds the same models with its tighter bounds).
    """
    current = _configured()
    meta: Any = Beacon.Meta
    if (
        getattr(meta, "read_timeout_seconds", None) != current.ddb_read_timeout
        or getattr(meta, "table_name", None) != current.beacons_table
    ):
        bind_tables(default_registry(), current)
    return current


def tracking_base_url() -> str:
    """The tracking API's base URL (template: the HttpApi's URL)."""
    base = os.environ.get(TRACKING_BASE_URL_VARIABLE, "").rstrip("/")
    if not base:
        raise ApiError(500, "misconfigured", f"{TRACKING_BASE_URL_VARIABLE} is not set")
    return base


# --- links ------------------------------------------------------------------------------------


class LinkFields(BaseModel):
    """The settable fields of a link."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048, description="http(s) destination")
    valid_from: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    max_hits: int | None = Field(default=None, ge=1, le=10**12)
    fallback_url: str | None = Field(default=None, max_length=2048)
    forward_query: bool | None = None
    utm: dict[str, str] | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=50
    )


class LinkChanges(LinkFields):
    """Fields to change; ``disabled: false`` enables a disabled link again."""

    disabled: bool | None = None


class NewLink(LinkFields):
    """A link to create; a random id unless one is given."""

    url: str = Field(max_length=2048, description="http(s) destination")
    id: Annotated[str, Field(pattern=LINK_ID_PATTERN)] | None = None


class LinkOut(BaseModel):
    id: str
    url: str
    created_at: str | None
    disabled: bool
    forward_query: bool
    utm: dict[str, str]
    valid_from: str | None
    expires_at: str | None
    max_hits: int | None
    hits: int
    fallback_url: str | None
    tags: list[str]
    short_url: str


class LinkPage(BaseModel):
    links: list[LinkOut]
    next_cursor: str | None


def _link_out(link: Link) -> dict[str, Any]:
    return {**link.to_record(), "short_url": f"{tracking_base_url()}{SHORT_LINK_PREFIX}{link.id}"}


def _changes(fields: LinkFields) -> dict[str, object]:
    changes: dict[str, object] = {name: getattr(fields, name) for name in fields.model_fields_set}
    for name in ("url", "forward_query", "disabled"):
        if name in changes and changes[name] is None:
            raise bad_request(f"{name} cannot be null")
    return changes


def _check_times(link: Link | LinkFields) -> None:
    if link.valid_from is not None and link.expires_at is not None and link.valid_from >= link.expires_at:
        raise bad_request("valid_from must be before expires_at")


def _no_link(link_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no link {link_id!r}")


def _link_id(link_id: str) -> str:
    if not LINK_ID.match(link_id):
        raise ApiError(404, "not_found", "no such link")
    return link_id


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_link_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4)))
        link_id = key["id"]["S"]
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error) as exc:
        raise bad_request("cursor is not one this API gave", "bad_cursor") from exc
    if set(key) != {"id"} or not isinstance(link_id, str) or not LINK_ID.match(link_id):
        raise bad_request("cursor is not one this API gave", "bad_cursor")
    return {"id": {"S": link_id}}


@app.post(
    "/links",
    status_code=201,
    summary="Create a stored link",
    responses={
        201: {"description": "The new link"},
        400: _BAD_REQUEST,
        409: {
            "description": "A link with this id exists",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def create(link: NewLink) -> LinkOut:
    """Store a new link; 409 when its id is taken."""
    settings()
    _check_times(link)
    if link.fallback_url is not None:
        normalise_destination(link.fallback_url)  # refuse a bad one before anything is stored
    extra = {k: v for k, v in _changes(link).items() if k not in ("url", "id", "forward_query", "utm")}
    created = create_link(link.url, link.id, forward_query=bool(link.forward_query), utm=link.utm)
    # The other fields follow in a second write (create_link stores the essentials only).
    updated = update_link(created.id, extra) if extra else created
    return LinkOut.model_validate(_link_out(updated or created))


@app.get(
    "/links",
    summary="List stored links",
    responses={200: {"description": "A page of links"}, 400: _BAD_REQUEST},
)
def list_all(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> LinkPage:
    """A page of links; pass ``next_cursor`` back as ``cursor`` for the next one."""
    settings()
    links, last_key = list_links(limit, _decode_link_cursor(cursor))
    return LinkPage.model_validate(
        {"links": [_link_out(link) for link in links], "next_cursor": _encode_cursor(last_key)}
    )


@app.get(
    "/links/<link_id>",
    summary="One stored link",
    responses={200: {"description": "The link"}, 404: _NOT_FOUND},
)
def get_link(link_id: str) -> LinkOut:
    """The link, or 404."""
    settings()
    found = load(_link_id(link_id))
    if found is None:
        raise _no_link(link_id)
    return LinkOut.model_validate(_link_out(found))


@app.patch(
    "/links/<link_id>",
    summary="Change a stored link",
    responses={200: {"description": "The changed link"}, 400: _BAD_REQUEST, 404: _NOT_FOUND},
)
def patch_link(link_id: str, fields: LinkChanges) -> LinkOut:
    """Change the given fields; ``null`` removes an optional field."""
    settings()
    current = load(_link_id(link_id))
    if current is None:
        raise _no_link(link_id)
    changes = _changes(fields)
    for name in ("valid_from", "expires_at"):
        if name in changes:
            setattr(current, name, changes[name])
    _check_times(current)
    updated = update_link(link_id, changes)
    if updated is None:
        raise _no_link(link_id)
    return LinkOut.model_validate(_link_out(updated))


@app.post(
    "/links/<link_id>/disable",
    summary="Disable a stored link",
    responses={200: {"description": "The disabled link"}, 404: _NOT_FOUND},
)
def disable(link_id: str) -> LinkOut:
    """Its hits answer 404 (or its fallback URL) from now on."""
    settings()
    updated = disable_link(_link_id(link_id))
    if updated is None:
        raise _no_link(link_id)
    return LinkOut.model_validate(_link_out(updated))


# --- minting ----------------------------------------------------------------------------------


class MintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str | None = Field(default=None, max_length=2048, description="TYPE:ID")
    entity: str | None = Field(default=None, max_length=2048, description="TYPE:ID, or TYPE for a new one")
    source: str | None = Field(default=None, max_length=2048, description="TYPE:ID")
    ignore_errors: bool = False
    honeypot: bool = Field(
        default=False,
        description="Make the redirect URL a honeypot link: hidden in the mail, so whatever follows it "
        "is a machine (a security scanner), and so are its other hits in the same seconds.",
    )
    purpose: Literal["web", "email"] | None = Field(
        default=None,
        description="What the URLs are for: 'email' (a mail's pixel and links; the default of "
        "/mint/batch) or 'web' (a web page's; the default of /mint). Hits seconds after an email "
        "mint can be a gateway's; on a web page they are the reader's.",
    )


class MintOut(BaseModel):
    pixel_url: str
    redirect_url: str | None = None


class MintBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[MintRequest] = Field(max_length=MAX_BATCH)


class MintBatchOut(BaseModel):
    urls: list[MintOut]


def _registered(kind: Kind, ref: Ref) -> Ref:
    if not default_registry().has(kind, ref.type):
        raise bad_request(f"no {kind} type named {ref.type!r} is registered", "unknown_type")
    return ref


def _ref(kind: Kind, text: str | None) -> Ref | None:
    if text is None:
        return None
    ref = _registered(kind, Ref.parse(text, allow_new=kind is Kind.ENTITY))
    if kind is Kind.TARGET and ref.type == "url":
        ref = Ref("url", check_url(ref.id or ""))
    return ref


def _mint(request: MintRequest, ring: KeyRing, base: str, default: Purpose = Purpose.WEB) -> dict[str, str]:
    target = _ref(Kind.TARGET, request.target)
    entity = _ref(Kind.ENTITY, request.entity)
    source = _ref(Kind.SOURCE, request.source)
    ignore = request.ignore_errors
    purpose = Purpose(request.purpose) if request.purpose else default
    pixel = TokenClaims(
        mode=Mode.PIXEL, target=target, entity=entity, source=source, ignore_errors=ignore, purpose=purpose
    )
    if request.honeypot and target is None:
        raise bad_request("a honeypot link needs a target to redirect to", "bad_reference")
    urls = {"pixel_url": tracking_url(base, pixel, ring)}
    if target is not None:
        redirect = dataclasses.replace(pixel, mode=Mode.REDIRECT, honeypot=request.honeypot)
        urls["redirect_url"] = tracking_url(base, redirect, ring)
    return urls


def _minting() -> tuple[KeyRing, str]:
    return load_key_ring(settings()), tracking_base_url()


@app.post(
    "/mint",
    summary="Mint tracking URLs",
    responses={200: {"description": "The URLs"}, 400: _BAD_REQUEST},
)
def mint(request: MintRequest) -> MintOut:
    """A pixel URL, and a redirect URL when there is a target."""
    return MintOut.model_validate(_mint(request, *_minting()))


@app.post(
    "/mint/batch",
    summary="Mint many tracking URLs",
    responses={200: {"description": "The URLs, in the order of the items"}, 400: _BAD_REQUEST},
)
def mint_batch(batch: MintBatch) -> MintBatchOut:
    """Up to 1000 items at once, for a mailing (``purpose`` defaults to ``email``); one bad item
    refuses the batch (its index is in the message)."""
    urls = []
    ring, base = _minting()
    for index, item in enumerate(batch.items):
        try:
            urls.append(_mint(item, ring, base, Purpose.EMAIL))
        except ApiError as exc:
            raise ApiError(exc.status, exc.code, f"items[{index}]: {exc.message}") from exc
        except WebbuggerError as exc:
            code = "bad_url" if isinstance(exc, UnsafeDestinationError) else "bad_reference"
            raise bad_request(f"items[{index}]: {exc}", code) from exc
    return MintBatchOut.model_validate({"urls": urls})


# --- beacons, stats, export -------------------------------------------------------------------


class BeaconOut(BaseModel):
    id: str
    created_at: str
    mode: str
    method: str
    target: str | None
    entity: str | None
    source: str | None
    ip: str | None
    user_agent: str | None
    referer: str | None
    language: str | None
    country: str | None
    expires: int | None


class BeaconPage(BaseModel):
    beacons: list[BeaconOut]
    next_cursor: str | None


def _moment(text: str | None, name: str, default: datetime) -> datetime:
    if not text:
        return default
    try:
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise bad_request(f"{name} must be an ISO 8601 date or time", "bad_time") from exc


def _time_range(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """The range asked for, within what the table can hold (not the future, not past retention)."""
    now = datetime.now(UTC)
    floor = now - timedelta(days=settings().retention_days + 1)
    high = max(min(_moment(until, "to", now), now), floor)
    low = max(_moment(since, "from", max(high - timedelta(days=DEFAULT_DAYS), floor)), floor)
    if low > high:
        raise bad_request("from must not be after to", "bad_time")
    return low, high


def _filter(target: str | None, entity: str | None, source: str | None) -> tuple[Kind | None, Ref | None]:
    given = [
        (kind, text)
        for kind, text in ((Kind.TARGET, target), (Kind.ENTITY, entity), (Kind.SOURCE, source))
        if text
    ]
    if len(given) > 1:
        raise bad_request("give at most one of target, entity, source")
    if not given:
        return None, None
    kind, text = given[0]
    return kind, _registered(kind, Ref.parse(text))


def _beacon_cursor(cursor: str | None) -> str | None:
    if cursor and not BEACON_ID.match(cursor):
        raise bad_request("cursor is not one this API gave", "bad_cursor")
    return cursor or None


_RefQuery = Annotated[str | None, Query(max_length=2048, description="TYPE:ID")]
_TimeQuery = Annotated[str | None, Query(max_length=64, description="ISO 8601 date or time (UTC if none)")]


def _beacons(
    since: str | None,
    until: str | None,
    target: str | None,
    entity: str | None,
    source: str | None,
    cursor: str | None,
) -> Iterator[Beacon]:
    kind, ref = _filter(target, entity, source)
    low, high = _time_range(since, until)
    return beacons_between(low, high, kind=kind, ref=ref, before_id=_beacon_cursor(cursor))


@app.get(
    "/beacons",
    summary="Beacons, newest first",
    responses={200: {"description": "A page of beacons"}, 400: _BAD_REQUEST},
)
def list_beacons(
    target: _RefQuery = None,
    entity: _RefQuery = None,
    source: _RefQuery = None,
    since: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> BeaconPage:
    """Beacons from ``from`` (default: 30 days ago) to ``to`` (default: now), newest first; only
    those of one target, entity or source when given. ``next_cursor`` resumes after the page."""
    found = _beacons(since, until, target, entity, source, cursor)
    page: list[Beacon] = []
    for beacon in found:
        page.append(beacon)
        if len(page) >= limit:
            break
    more = len(page) >= limit and next(found, None) is not None
    return BeaconPage.model_validate(
        {"beacons": [b.to_record() for b in page], "next_cursor": page[-1].id if more else None}
    )


class Totals(BaseModel):
    # The headline: distinct people (recipients, else visitors) with a hit labelled human.
    unique_human_opens: int = Field(0, description="people with a human open (per day; summed in totals)")
    unique_human_clicks: int = Field(0, description="people with a human click (per day; summed in totals)")
    total: int
    unique: int
    human: int
    machine: int


class DayOut(Totals):
    day: str


class StatsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    ref: str
    kind: str
    first: str | None = Field(alias="from")
    last: str | None = Field(alias="to")
    totals: Totals
    days: list[DayOut]


def _day(text: str | None, name: str, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise bad_request(f"{name} must be a day, YYYY-MM-DD", "bad_time") from exc


@app.get(
    "/stats",
    summary="Daily counts of one reference",
    responses={200: {"description": "The daily series and totals"}, 400: _BAD_REQUEST},
)
def stats(
    ref: Annotated[str, Query(max_length=2048, description="TYPE:ID")],
    kind: Annotated[Literal["target", "entity", "source"], Query()] = "target",
    first: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> StatsOut:
    """Counts per UTC day from ``from`` to ``to`` (default: the last 30 days), at most 366 days."""
    settings()
    role = Kind(kind)
    parsed = _registered(role, Ref.parse(ref))
    today = datetime.now(UTC).date()
    end = _day(last, "to", today)
    start = _day(first, "from", end - timedelta(days=DEFAULT_DAYS - 1) if end.year > 1 else end)
    if start > end:
        raise bad_request("from must not be after to", "bad_time")
    if (end - start).days >= MAX_STATS_DAYS:
        raise bad_request(f"at most {MAX_STATS_DAYS} days at once", "bad_time")
    return StatsOut.model_validate(daily_stats(role, parsed, start, end).as_dict())


_EXPORT_CONTENT: dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}


@app.get(
    "/export",
    summary="Export beacons, a page at a time",
    responses={
        200: {
            "description": "One page of beacons, newest first; X-Next-Cursor names the next page",
            "content": _EXPORT_CONTENT,
            "headers": {
                "X-Next-Cursor": {"description": "cursor of the next page", "schema": {"type": "string"}}
            },
        },
        400: _BAD_REQUEST,
    },
)
def export(
    target: _RefQuery = None,
    entity: _RefQuery = None,
    source: _RefQuery = None,
    since: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=64)] = None,
    format: Annotated[Literal["csv", "jsonl"], Query()] = "jsonl",
    limit: Annotated[int, Query(ge=1, le=EXPORT_PAGE)] = EXPORT_PAGE,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response[str]:
    """Beacons as CSV (header row on the first page only, so pages concatenate) or JSON lines.

    A page ends after ``limit`` beacons or about 5 MB; ``X-Next-Cursor`` is then the ``cursor``
    of the next page (absent on the last one).
    """
    found = _beacons(since, until, target, entity, source, cursor)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=BEACON_RECORD_FIELDS, extrasaction="ignore", lineterminator="\n")
    if format == "csv" and not cursor:
        writer.writeheader()
    count, last_id, size = 0, None, 0
    for beacon in found:
        record = beacon.to_record()
        if format == "csv":
            writer.writerow(record)
        else:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
        count, last_id, size = count + 1, beacon.id, out.tell()
        if count >= limit or size >= EXPORT_MAX_BYTES:
            break
    more = (
        last_id is not None and (count >= limit or size >= EXPORT_MAX_BYTES) and next(found, None) is not None
    )
    headers = {"X-Next-Cursor": last_id} if more and last_id else {}
    content_type = "text/csv" if format == "csv" else "application/x-ndjson"
    return Response(status_code=200, content_type=content_type, body=out.getvalue(), headers=headers)


# --- erasure ----------------------------------------------------------------------------------


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str = Field(max_length=2048, description="TYPE:ID of the entity to erase")


class ErasedOut(BaseModel):
    entity: str
    beacons: int
    counters: int
    visitor_marks: int
    record: bool = Field(description="Whether the entity's own stored record was deleted too")
    record_error: str | None = Field(default=None, description="Why the entity's record could not be deleted")


@app.post(
    "/erase",
    summary="Erase an entity's beacons (data-subject requests)",
    responses={200: {"description": "What was removed"}, 400: _BAD_REQUEST},
)
def erase(request: EraseRequest) -> ErasedOut:
    """Delete every beacon of one entity, its counters and visitor marks, and its own record.
    Repeating it is harmless: the second run removes nothing."""
    settings()
    ref = Ref.parse(request.entity)
    if ref.id is None:
        raise bad_request("give the entity's id: TYPE:ID", "bad_reference")
    return ErasedOut.model_validate(erase_entity(ref, default_registry()).as_dict())


# --- the API's own description ----------------------------------------------------------------


@cache
def openapi_document() -> str:
    """The OpenAPI document; no 422 answers (this API answers bad input with 400)."""
    document = json.loads(
        app.get_openapi_json_schema(
            title="webbugger admin API",
            version="1",
            description="Links, minting, beacons, stats and exports. Every request needs SigV4 (IAM).",
        )
    )
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return json.dumps(document)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    """This API's OpenAPI document."""
    return Response(status_code=200, content_type="application/json", body=openapi_document())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
