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
    target or the source does not exist (the URLs would answer 404)."""
    ring, base = load_key_ring(settings()), tracking_base_url()
    return MintOut.model_validate(
        minting.mint(default_registry(), _order(request), ring, base), from_attributes=True
    )


@router.post(
    "/mint/batch",
    summary="Mint many tracking URLs",
    responses={200: {"description": "The URLs, in the order of the items"}, 400: BAD_REQUEST},
)
def mint_batch(batch: MintBatch) -> MintBatchOut:
    """Up to 1000 items at once, for a mailing (``purpose`` defaults to ``email``); one bad item
    (a target or source that does not exist included) refuses the batch (its index is in the
    message). Each distinct target and source is read once."""
    ring, base = load_key_ring(settings()), tracking_base_url()
    orders = [_order(item) for item in batch.items]
    minted = minting.mint_batch(default_registry(), orders, ring, base, default=Purpose.EMAIL)
    return MintBatchOut(urls=[MintOut.model_validate(urls, from_attributes=True) for urls in minted])
