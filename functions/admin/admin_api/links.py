"""``/links``: create, list, read, change and disable stored links."""

# No ``from __future__ import annotations`` in the routers: Powertools reads each route's
# annotations when it is included, so the models they name must be real imports.

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from webbugger.errors import NotFoundError
from webbugger.runtime import default_registry
from webbugger.service import links

from admin_api.config import settings, tracking_base_url
from admin_api.models import (
    BAD_REQUEST,
    LINK_EXISTS,
    MAX_PAGE,
    NOT_FOUND,
    LinkChanges,
    LinkOut,
    LinkPage,
    NewLink,
)

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated
SHORT_LINK_PREFIX = "/l/"  # the track function's short-link route (template.yaml)


def _out(record: dict[str, Any] | None, link_id: str) -> LinkOut:
    if record is None:
        raise NotFoundError(f"no link {link_id!r}")
    short_url = f"{tracking_base_url()}{SHORT_LINK_PREFIX}{record['id']}"
    return LinkOut.model_validate({**record, "short_url": short_url})


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
    """Its hits answer 404 (or its fallback URL) from now on."""
    settings()
    return _out(links.disable_link(default_registry(), _link_id(link_id)), link_id)
