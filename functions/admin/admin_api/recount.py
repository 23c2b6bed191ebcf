"""``/recount``: the stream's work for beacons it never finished (after an outage)."""

# No ``from __future__ import annotations``: see admin_api.links.

from aws_lambda_powertools.event_handler.api_gateway import Router
from webbugger.runtime import default_registry
from webbugger.service.recount import recount_range
from webbugger.signing import load_visitor_salt

from admin_api.config import settings
from admin_api.models import BAD_REQUEST, RecountedOut, RecountRequest

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

# Seconds of work per request: the function's timeout is 29 s, API Gateway's 30 s.
BUDGET_S = 20.0


@router.post(
    "/recount",
    summary="Hook, label and count the beacons the stream never finished",
    responses={
        200: {"description": "What was examined and recounted, and where to resume"},
        400: BAD_REQUEST,
    },
)
def recount(request: RecountRequest) -> RecountedOut:
    """Run the stream's work, exactly once, for the beacons of a time range that it never
    finished (their records dead-lettered). A page of about 20 s: resume from ``next_cursor``."""
    current = settings()
    done = recount_range(
        default_registry(),
        current,
        load_visitor_salt(current),
        since=request.since,
        until=request.until,
        cursor=request.cursor,
        budget_s=BUDGET_S,
    )
    return RecountedOut.model_validate(done.as_dict())
