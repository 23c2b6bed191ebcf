"""``/mint``: signed tracking URLs, one request or a batch."""

# No ``from __future__ import annotations``: see admin_api.links.

from aws_lambda_powertools.event_handler.api_gateway import Router
from webbugger.runtime import default_registry
from webbugger.service import mint as minting
from webbugger.signing import load_key_ring
from webbugger.tokens import Purpose

from admin_api.config import settings, tracking_base_url
from admin_api.models import BAD_REQUEST, MintBatch, MintBatchOut, MintOut, MintRequest

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


def _order(request: MintRequest) -> minting.MintRequest:
    return minting.MintRequest(**request.model_dump())


@router.post(
    "/mint",
    summary="Mint tracking URLs",
    responses={200: {"description": "The URLs"}, 400: BAD_REQUEST},
)
def mint(request: MintRequest) -> MintOut:
    """A pixel URL, and a redirect URL when there is a target; 400 (``unknown_record``) when the
    target or the source does not exist (the URLs would answer 404). With ``purpose`` email, an
    entity with an id and a source, the mail's send is recorded (once per entity and source)."""
    config = settings()
    ring, base, order = load_key_ring(config), tracking_base_url(), _order(request)
    minted = minting.mint(default_registry(), order, ring, base)
    minting.record_minted_sends(default_registry(), [order], config, default=Purpose.WEB)
    return MintOut.model_validate(minted, from_attributes=True)


@router.post(
    "/mint/batch",
    summary="Mint many tracking URLs",
    responses={200: {"description": "The URLs, in the order of the items"}, 400: BAD_REQUEST},
)
def mint_batch(batch: MintBatch) -> MintBatchOut:
    """Up to 1000 items at once, for a mailing (``purpose`` defaults to ``email``); one bad item
    (a target or source that does not exist included) refuses the batch (its index is in the
    message). Each distinct target and source is read once. An email item naming an entity with
    an id and a source records that mail's send (once per entity and source)."""
    config = settings()
    ring, base = load_key_ring(config), tracking_base_url()
    orders = [_order(item) for item in batch.items]
    minted = minting.mint_batch(default_registry(), orders, ring, base, default=Purpose.EMAIL)
    minting.record_minted_sends(default_registry(), orders, config)
    return MintBatchOut(urls=[MintOut.model_validate(urls, from_attributes=True) for urls in minted])
