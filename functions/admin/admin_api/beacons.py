"""``/beacons``: a page of beacons, newest first."""

# No ``from __future__ import annotations``: see admin_api.links.

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from webbugger.registry import Kind
from webbugger.runtime import default_registry
from webbugger.service.beacons import BeaconQuery, beacon_page, beacon_query

from admin_api.config import settings
from admin_api.models import BAD_REQUEST, MAX_PAGE, BeaconPage, CursorQuery, RefQuery, SinceQuery, UntilQuery

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


def query_of(
    target: str | None,
    entity: str | None,
    source: str | None,
    since: str | None,
    until: str | None,
    cursor: str | None,
) -> BeaconQuery:
    """The beacons that the query parameters of ``/beacons`` and ``/export`` ask for."""
    return beacon_query(
        default_registry(),
        refs={Kind.TARGET: target, Kind.ENTITY: entity, Kind.SOURCE: source},
        since=since,
        until=until,
        cursor=cursor,
        retention_days=settings().retention_days,
    )


@router.get(
    "/beacons",
    summary="Beacons, newest first",
    responses={200: {"description": "A page of beacons"}, 400: BAD_REQUEST},
)
def list_beacons(
    target: RefQuery = None,
    entity: RefQuery = None,
    source: RefQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: CursorQuery = None,
) -> BeaconPage:
    """Beacons from ``from`` (default: 30 days ago) to ``to`` (default: now), newest first; only
    those of one target, entity or source when given. ``next_cursor`` resumes after the page."""
    page = beacon_page(query_of(target, entity, source, since, until, cursor), limit)
    return BeaconPage.model_validate(page, from_attributes=True)
