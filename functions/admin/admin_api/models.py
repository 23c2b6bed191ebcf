"""The admin API's request and answer models, in one place: Powertools validates requests and
answers with them and derives the OpenAPI document from them (the class names are its schema
names). Also the query parameters that several routes share, and the documented error answers.
The email routes' models (rewrite, campaign stats) are in :mod:`admin_api.email_models`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from webbugger.routing_fields import (
    MAX_QUERY_CONDITIONS,
    MAX_QUERY_TEXT,
    MAX_RULES,
    MAX_VALUES,
    MAX_VARIANTS,
    MAX_WEIGHT,
)
from webbugger.service.links import LINK_ID_PATTERN

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import (
        OpenAPIResponse,
        OpenAPIResponseContentModel,
        OpenAPIResponseContentSchema,
    )

MAX_BATCH = 1000
MAX_PAGE = 1000
EXPORT_PAGE = 10_000


# --- errors -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: ErrorDetail


def _error_answer(description: str, model: type[BaseModel] = ErrorBody) -> OpenAPIResponse:
    """An error answer of the OpenAPI document: its description and its JSON body's model."""
    return {"description": description, "content": {"application/json": {"model": model}}}


BAD_REQUEST = _error_answer("Bad input")
NOT_FOUND = _error_answer("No such link")


class GatewayMessage(BaseModel):
    """API Gateway's own answer (before this function runs)."""

    message: str


TOO_LARGE = _error_answer("A body over 10 MB (API Gateway's limit)", GatewayMessage)
LINK_EXISTS = _error_answer("A link with this id exists")
NO_SHORT_URL = _error_answer("The link's short URL is off (set short_url_enabled first)")

# --- shared query parameters --------------------------------------------------------------------

RefQuery = Annotated[str | None, Query(max_length=2048, description="TYPE:ID")]
SinceQuery = Annotated[str | None, Query(alias="from", max_length=64)]
UntilQuery = Annotated[str | None, Query(alias="to", max_length=64)]
CursorQuery = Annotated[str | None, Query(max_length=64)]


# --- links ------------------------------------------------------------------------------------

RoutingName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Device = Literal["ios", "android", "desktop"]
System = Literal["ios", "android", "windows", "macos", "linux", "chromeos"]
Country = Annotated[str, Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")]
LanguageRange = Annotated[
    str, Field(pattern=r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8}){0,3}$", description="e.g. de, de-CH")
]
QueryText = Annotated[str, Field(max_length=MAX_QUERY_TEXT)]


class Rule(BaseModel):
    """A routing rule: ``url`` for hits that meet every condition given (at least one)."""

    model_config = ConfigDict(extra="forbid")

    name: RoutingName | None = Field(default=None, description="recorded on the beacon; default: r1, r2, ...")
    url: str = Field(max_length=2048, description="http(s) destination")
    device: list[Device] | None = Field(default=None, min_length=1, max_length=3)
    os: list[System] | None = Field(default=None, min_length=1, max_length=6)
    country: list[Country] | None = Field(
        default=None, min_length=1, max_length=MAX_VALUES, description="CloudFront-Viewer-Country"
    )
    language: list[LanguageRange] | None = Field(
        default=None, min_length=1, max_length=MAX_VALUES, description="the visitor's preferred language"
    )
    query: dict[Annotated[str, Field(min_length=1, max_length=MAX_QUERY_TEXT)], QueryText] | None = Field(
        default=None, min_length=1, max_length=MAX_QUERY_CONDITIONS, description="exact parameter values"
    )


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: RoutingName
    url: str = Field(max_length=2048, description="http(s) destination")
    weight: int = Field(default=1, ge=1, le=MAX_WEIGHT)


class Split(BaseModel):
    """An A/B split: each visitor gets one variant, the same every time, until ``ends_at``; then
    the ``winner`` (the link's url if none)."""

    model_config = ConfigDict(extra="forbid")

    variants: list[Variant] = Field(min_length=2, max_length=MAX_VARIANTS)
    ends_at: AwareDatetime | None = None
    winner: RoutingName | None = None


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
    short_url_enabled: bool | None = Field(default=None, description="answer the unsigned short URL /l/ID")
    rules: list[Rule] | None = Field(default=None, max_length=MAX_RULES, description="first match wins")
    split: Split | None = None

    def changes(self, *, leave_out: tuple[str, ...] = ()) -> dict[str, object]:
        """The fields the request sets (``null`` included: it removes an optional field)."""
        found: dict[str, object] = {}
        for name in self.model_fields_set - set(leave_out):
            value = getattr(self, name)
            if name == "rules" and value is not None:
                value = [rule.model_dump(mode="json", exclude_none=True) for rule in value]
            elif name == "split" and value is not None:
                value = value.model_dump(mode="json")
            found[name] = value
        return found


class LinkChanges(LinkFields):
    """Fields to change; ``disabled: false`` enables a disabled link again."""

    disabled: bool | None = None


class NewLink(LinkFields):
    """A link to create; a random id unless one is given."""

    url: str = Field(max_length=2048, description="http(s) destination")
    id: Annotated[str, Field(pattern=LINK_ID_PATTERN)] | None = None


class RuleOut(BaseModel):
    name: str
    url: str
    device: list[str] | None = None
    os: list[str] | None = None
    country: list[str] | None = None
    language: list[str] | None = None
    query: dict[str, str] | None = None


class SplitOut(BaseModel):
    variants: list[Variant]
    ends_at: str | None
    winner: str | None


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
    short_url_enabled: bool
    short_url: str | None = Field(description="/l/ID under the tracking domain; null while it is off")
    rules: list[RuleOut]
    split: SplitOut | None


class VariantCount(BaseModel):
    name: str
    url: str | None = Field(description="null for a variant no longer in the split")
    weight: int | None
    clicks: int
    human_clicks: int


class VariantClicksOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    link: str
    first: str = Field(alias="from")
    last: str = Field(alias="to")
    ends_at: str | None
    winner: str | None
    variants: list[VariantCount]


QR_CONTENT: dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel] = {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/svg+xml": {"schema": {"type": "string"}},
}


class LinkPage(BaseModel):
    links: list[LinkOut]
    next_cursor: str | None


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
        "/mint/batch) or 'web' (a web page's; the default of /mint). A hit seconds after an email "
        "mint may be a mail gateway's; on a web page it is the reader's.",
    )


class MintOut(BaseModel):
    pixel_url: str
    redirect_url: str | None = None


class MintBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[MintRequest] = Field(max_length=MAX_BATCH)


class MintBatchOut(BaseModel):
    urls: list[MintOut]


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
    rule: str | None = Field(default=None, description="the link's routing rule that chose the destination")
    variant: str | None = Field(default=None, description="the link's A/B variant the visitor got")


class BeaconPage(BaseModel):
    beacons: list[BeaconOut]
    next_cursor: str | None


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


EXPORT_CONTENT: dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}


# --- erasure ----------------------------------------------------------------------------------


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str = Field(max_length=2048, description="TYPE:ID of the entity to erase")
    since: AwareDatetime | None = Field(
        default=None,
        description="The entity has no beacon before this time: its beacons the stream has not "
        "listed yet are looked for from then (default: the last 26 hours, a read of every beacon "
        "of that window). Listed beacons are erased whatever their time.",
    )


class RecountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str | None = Field(
        default=None, alias="from", max_length=64, description="ISO 8601 (default: 48 h ago)"
    )
    until: str | None = Field(default=None, alias="to", max_length=64, description="ISO 8601 (default: now)")
    cursor: str | None = Field(default=None, max_length=64, description="next_cursor of the previous page")


class RecountedOut(BaseModel):
    examined: int
    unfinished: int = Field(description="Beacons whose hooks, label or counts were not all done")
    recounted: int
    failed: int
    next_cursor: str | None = Field(description="Where the next page resumes; null after the last")


class ErasedOut(BaseModel):
    entity: str
    beacons: int
    counters: int
    visitor_marks: int
    record: bool = Field(description="Whether the entity's own stored record was deleted too")
    record_error: str | None = Field(default=None, description="Why the entity's record could not be deleted")
    sends: int = Field(default=0, description="Its send marks deleted: the campaigns sent to it")
