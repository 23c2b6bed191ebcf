"""``/stats``: the daily counts of one reference; ``/stats/campaign``: a campaign's rates."""

# No ``from __future__ import annotations``: see admin_api.links.

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from webbugger.errors import NotFoundError, UnknownTypeError, WebbuggerError
from webbugger.refs import Ref
from webbugger.registry import Kind, Registry
from webbugger.runtime import default_registry
from webbugger.service.stats import campaign_figures, day_range, parse_day, read_stats, record_exists

from admin_api.config import settings
from admin_api.email_models import CampaignStatsOut
from admin_api.models import BAD_REQUEST, NOT_FOUND, StatsOut

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


@router.get(
    "/stats",
    summary="Daily counts of one reference",
    responses={200: {"description": "The daily series and totals"}, 400: BAD_REQUEST, 404: NOT_FOUND},
)
def stats(
    ref: Annotated[str, Query(max_length=2048, description="TYPE:ID")],
    kind: Annotated[
        Literal["target", "entity", "source"] | None,
        Query(description="The reference's kind; by default the one its type is registered as"),
    ] = None,
    first: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> StatsOut:
    """Counts per UTC day from ``from`` to ``to`` (default: the last 30 days), at most 366 days;
    404 for a reference with no stored record and nothing counted in those days."""
    settings()
    parsed = Ref.parse(ref)
    registry = default_registry()
    role = Kind(kind) if kind is not None else _registered_kind(registry, parsed.type)
    registry.get(role, parsed.type)  # 400 for a type nobody registered
    end = parse_day(last, "to")
    start = parse_day(first, "from")
    return StatsOut.model_validate(read_stats(role, parsed, start, end, registry=registry).as_dict())


def _registered_kind(registry: Registry, type_name: str) -> Kind:
    """The one kind ``type_name`` is registered as (``campaign:ID`` is a source); 400 else."""
    kinds = registry.kinds_of(type_name)
    if len(kinds) == 1:
        return kinds[0]
    if not kinds:
        raise UnknownTypeError(f"no type named {type_name!r} is registered")
    names = " and ".join(str(kind) for kind in kinds)
    raise WebbuggerError(f"type {type_name!r} is registered as {names}: pass kind={'|'.join(kinds)}")


@router.get(
    "/stats/campaign",
    summary="A campaign's sends, open and click rates, and clicks per link",
    responses={200: {"description": "The campaign's figures"}, 400: BAD_REQUEST, 404: NOT_FOUND},
)
def campaign_stats(
    ref: Annotated[str, Query(max_length=2048, description="TYPE:ID of the campaign (a source)")],
    first: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> CampaignStatsOut:
    """Sent, unique human opens and clicks (distinct recipients over the range), their rates,
    machine opens and clicks apart, and each link's clicks: read from the campaign's beacons of
    ``from`` to ``to`` (default: the last 30 days)."""
    settings()
    parsed = Ref.parse(ref)
    registry = default_registry()
    registry.get(Kind.SOURCE, parsed.type)  # 400 for a type nobody registered
    start, end = day_range(parse_day(first, "from"), parse_day(last, "to"))
    figures = campaign_figures(registry, parsed, start, end)
    if not figures.sent and record_exists(registry, Kind.SOURCE, parsed) is False:
        # As /stats refuses a reference with no record and no counts: zeros would read as no opens.
        raise NotFoundError(f"no {parsed.type} source with id {parsed.id!r}, and no sends recorded")
    return CampaignStatsOut.model_validate(
        figures.as_dict() | {"from": start.isoformat(), "to": end.isoformat()}
    )
