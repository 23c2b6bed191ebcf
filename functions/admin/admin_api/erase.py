"""``/erase``: delete what is held about one entity (data-subject requests)."""

# No ``from __future__ import annotations``: see admin_api.links.

from aws_lambda_powertools.event_handler.api_gateway import Router
from webbugger.refs import Ref
from webbugger.runtime import default_registry
from webbugger.service.beacons import erase as erase_entity

from admin_api.config import settings
from admin_api.models import BAD_REQUEST, ErasedOut, EraseRequest

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


@router.post(
    "/erase",
    summary="Erase an entity's beacons (data-subject requests)",
    responses={200: {"description": "What was removed"}, 400: BAD_REQUEST},
)
def erase(request: EraseRequest) -> ErasedOut:
    """Delete every beacon of one entity, its counters and visitor marks, and its own record.
    Repeating it is harmless: the second run removes nothing."""
    settings()
    erased = erase_entity(default_registry(), Ref.parse(request.entity), request.since)
    return ErasedOut.model_validate(erased.as_dict())
