"""``/export``: beacons as CSV or JSON lines, a page at a time."""

# No ``from __future__ import annotations``: see admin_api.links.

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from webbugger.service.beacons import export_page

from admin_api.beacons import query_of
from admin_api.models import (
    BAD_REQUEST,
    EXPORT_CONTENT,
    EXPORT_PAGE,
    CursorQuery,
    RefQuery,
    SinceQuery,
    UntilQuery,
)

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


@router.get(
    "/export",
    summary="Export beacons, a page at a time",
    responses={
        200: {
            "description": "One page of beacons, newest first; X-Next-Cursor names the next page",
            "content": EXPORT_CONTENT,
            "headers": {
                "X-Next-Cursor": {"description": "cursor of the next page", "schema": {"type": "string"}}
            },
        },
        400: BAD_REQUEST,
    },
)
def export(
    target: RefQuery = None,
    entity: RefQuery = None,
    source: RefQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    format: Annotated[Literal["csv", "jsonl"], Query()] = "jsonl",
    limit: Annotated[int, Query(ge=1, le=EXPORT_PAGE)] = EXPORT_PAGE,
    cursor: CursorQuery = None,
) -> Response[str]:
    """Beacons as CSV (header row on the first page only, so pages concatenate) or JSON lines.

    A page ends after ``limit`` beacons or about 5 MB; ``X-Next-Cursor`` is then the ``cursor``
    of the next page (absent on the last one).
    """
    page = export_page(query_of(target, entity, source, since, until, cursor), format, limit)
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
    return Response(status_code=200, content_type=page.content_type, body=page.body, headers=headers)
