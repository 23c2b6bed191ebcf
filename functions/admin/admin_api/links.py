"""``/links``: create, list, read, change and disable stored links; a link's QR code and its
clicks per A/B variant."""

# No ``from __future__ import annotations`` in the routers: Powertools reads each route's
# annotations when it is included, so the models they name must be real imports.

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from webbugger.errors import NotFoundError
from webbugger.runtime import default_registry
from webbugger.service import links
from webbugger.service.qr import CONTENT_TYPES, link_qr
from webbugger.service.stats import parse_day, variant_clicks

from admin_api.config import settings, tracking_base_url
from admin_api.models import (
    BAD_REQUEST,
    LINK_EXISTS,
    MAX_PAGE,
    NO_SHORT_URL,
    NOT_FOUND,
    QR_CONTENT,
    LinkChanges,
    LinkOut,
    LinkPage,
    NewLink,
    VariantClicksOut,
)

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


def _out(record: dict[str, Any] | None, link_id: str) -> LinkOut:
    if record is None:
        raise NotFoundError(f"no link {link_id!r}")
    return LinkOut.model_validate({**record, "short_url": links.short_url(record, tracking_base_url())})


def _link_id(link_id: str) -> str:
    if not links.LINK_ID.match(link_id):
        raise NotFoundError("no such link")
    return link_id


@router.post(
    "/links",
    status_code=201,
    summary="Create a stored link",
    responses={201: {"description": "The new link"}, 400: BAD_REQUEST, 409: LINK_EXISTS},
)
def create(link: NewLink) -> LinkOut:
    """Store a new link; 409 when its id is taken."""
    settings()
    record = links.create_link(default_registry(), link.url, link.id, link.changes(leave_out=("url", "id")))
    return _out(record, str(link.id))


@router.get(
    "/links",
    summary="List stored links",
    responses={200: {"description": "A page of links"}, 400: BAD_REQUEST},
)
def list_all(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> LinkPage:
    """A page of links; pass ``next_cursor`` back as ``cursor`` for the next one."""
    settings()
    found, next_cursor = links.list_links(default_registry(), limit, cursor)
    return LinkPage(links=[_out(record, str(record["id"])) for record in found], next_cursor=next_cursor)


@router.get(
    "/links/<link_id>",
    summary="One stored link",
    responses={200: {"description": "The link"}, 404: NOT_FOUND},
)
def get_link(link_id: str) -> LinkOut:
    """The link, or 404."""
    settings()
    return _out(links.get_link(default_registry(), _link_id(link_id)), link_id)


@router.patch(
    "/links/<link_id>",
    summary="Change a stored link",
    responses={200: {"description": "The changed link"}, 400: BAD_REQUEST, 404: NOT_FOUND},
)
def patch_link(link_id: str, fields: LinkChanges) -> LinkOut:
    """Change the given fields; ``null`` removes an optional field."""
    settings()
    return _out(links.update_link(default_registry(), _link_id(link_id), fields.changes()), link_id)


@router.post(
    "/links/<link_id>/disable",
    summary="Disable a stored link",
    responses={200: {"description": "The disabled link"}, 404: NOT_FOUND},
)
def disable(link_id: str) -> LinkOut:
    """Its hits answer 404 (or its fallback URL) within ``LOOKUP_CACHE_SECONDS`` (30 s by default):
    each running track function keeps a link it read that long."""
    settings()
    return _out(links.disable_link(default_registry(), _link_id(link_id)), link_id)


@router.get(
    "/links/<link_id>/qr",
    summary="A QR code of a link's short URL",
    responses={
        200: {
            "description": "The QR code (PNG or SVG) of /l/ID",
            "content": QR_CONTENT,
            "headers": {"X-Short-Url": {"description": "the URL it encodes", "schema": {"type": "string"}}},
        },
        400: BAD_REQUEST,
        404: NOT_FOUND,
        409: NO_SHORT_URL,
    },
)
# No return annotation: Powertools would validate a Response[bytes] body as UTF-8 text.
def qr(link_id: str, format: Annotated[Literal["png", "svg"], Query()] = "png"):  # type: ignore[no-untyped-def]
    """The short URL as a QR code; 409 while the link's short URL is off."""
    settings()
    url, image = link_qr(default_registry(), _link_id(link_id), tracking_base_url(), format)
    headers = {"X-Short-Url": url, "Cache-Control": "no-store"}
    return Response(status_code=200, content_type=CONTENT_TYPES[format], body=image, headers=headers)


@router.get(
    "/links/<link_id>/variants",
    summary="A link's clicks per A/B variant",
    responses={200: {"description": "Clicks per variant"}, 400: BAD_REQUEST, 404: NOT_FOUND},
)
def variants(
    link_id: str,
    first: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> VariantClicksOut:
    """Clicks (and human clicks) per variant from ``from`` to ``to`` (default: the last 30 days),
    counted from the link's beacons."""
    settings()
    found = variant_clicks(
        default_registry(), _link_id(link_id), parse_day(first, "from"), parse_day(last, "to")
    )
    return VariantClicksOut.model_validate(found.as_dict())
