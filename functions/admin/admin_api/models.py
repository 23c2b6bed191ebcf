"""The admin API's request and answer models, in one place: Powertools validates requests and
answers with them and derives the OpenAPI document from them (the class names are its schema
names). Also the query parameters that several routes share, and the documented error answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
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


BAD_REQUEST: OpenAPIResponse = {
    "description": "Bad input",
    "content": {"application/json": {"model": ErrorBody}},
}
NOT_FOUND: OpenAPIResponse = {
    "description": "No such link",
    "content": {"application/json": {"model": ErrorBody}},
}
LINK_EXISTS: OpenAPIResponse = {
    "description": "A link with this id exists",
    "content": {"application/json": {"model": ErrorBody}},
}

# --- shared query parameters --------------------------------------------------------------------

RefQuery = Annotated[str | None, Query(max_length=2048, description="TYPE:ID")]
SinceQuery = Annotated[str | None, Query(alias="from", max_length=64)]
UntilQuery = Annotated[str | None, Query(alias="to", max_length=64)]
CursorQuery = Annotated[str | None, Query(max_length=64)]


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

    def changes(self, *, leave_out: tuple[str, ...] = ()) -> dict[str, object]:
        """The fields the request sets (``null`` included: it removes an optional field)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name not in leave_out}


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


class ErasedOut(BaseModel):
    entity: str
    beacons: int
    counters: int
    visitor_marks: int
    record: bool = Field(description="Whether the entity's own stored record was deleted too")
    record_error: str | None = Field(default=None, description="Why the entity's record could not be deleted")
