"""``/mint``: signed tracking URLs, one request or a batch."""

# No ``from __future__ import annotations``: see admin_api.links.

from aws_lambda_powertools.event_handler.api_gateway import Router
from webbugger.runtime import default_registry
from webbugger.service import mint as minting
from webbugger.signing import load_key_ring

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
    """A pixel URL, and a redirect URL when there is a target."""
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
    """Up to 1000 items at once; one bad item refuses the batch (its index is in the message)."""
    ring, base = load_key_ring(settings()), tracking_base_url()
    minted = minting.mint_batch(default_registry(), [_order(item) for item in batch.items], ring, base)
    return MintBatchOut(urls=[MintOut.model_validate(urls, from_attributes=True) for urls in minted])
