"""``/rewrite``: a message's links wrapped and its pixel placed, for one recipient or a batch,
each recipient's send recorded (:mod:`webbugger.service.rewrite`); ``/sends``: sends alone."""

# No ``from __future__ import annotations``: see admin_api.links.

from aws_lambda_powertools.event_handler.api_gateway import Router
from webbugger.runtime import default_registry
from webbugger.service import mint as minting
from webbugger.service.rewrite import RewriteOrder, Rewritten, rewrite_for_recipients
from webbugger.signing import load_key_ring

from admin_api.config import settings, tracking_base_url
from admin_api.email_models import (
    RecipientMessage,
    RewriteBatch,
    RewriteBatchOut,
    RewriteFields,
    RewriteOut,
    RewriteRequest,
    RewriteSummary,
    SendsOut,
    SendsRequest,
    SkippedOut,
)
from admin_api.models import BAD_REQUEST, TOO_LARGE

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

# Lambda answers at most 6 MB: the messages as JSON strings stay under this, the rest is small.
MAX_ANSWER_CHARS = 4_500_000


def _rewrite(fields: RewriteFields, recipients: list[str]) -> Rewritten:
    order = RewriteOrder(
        html=fields.html,
        text=fields.text,
        campaign=fields.campaign,
        recipients=recipients,
        honeypot=fields.honeypot,
        track_unsubscribe=fields.track_unsubscribe,
        list_unsubscribe=fields.list_unsubscribe,
    )
    config = settings()
    ring, base = load_key_ring(config), tracking_base_url()
    return rewrite_for_recipients(default_registry(), order, ring, base, config, budget=MAX_ANSWER_CHARS)


def _summary(done: Rewritten) -> RewriteSummary:
    first = done.messages[0][1]
    return RewriteSummary(
        wrapped=first.wrapped,
        text_wrapped=first.text_wrapped,
        pixel=first.pixel,
        honeypot=first.honeypot,
        links=first.links,
        skipped=[SkippedOut(href=link.href, reason=str(link.reason)) for link in done.plan.skipped],
        new_sends=done.new_sends,
    )


@router.post(
    "/rewrite",
    summary="Rewrite a message for one recipient",
    responses={
        200: {"description": "The rewritten message"},
        400: BAD_REQUEST,
        413: TOO_LARGE,
    },
)
def rewrite(request: RewriteRequest) -> RewriteOut:
    """Every trackable link wrapped as a signed redirect carrying the recipient and the campaign,
    one pixel added, nothing else changed; the send recorded. 400 (``unknown_record``) when the
    campaign does not exist, as ``/mint`` and ``/sends`` answer a source that does not exist."""
    done = _rewrite(request, [request.recipient])
    recipient, message = done.messages[0]
    return RewriteOut(
        **_summary(done).model_dump(), recipient=str(recipient.id), html=message.html, text=message.text
    )


@router.post(
    "/rewrite/batch",
    summary="Rewrite a message for many recipients",
    responses={
        200: {"description": "Each recipient's message"},
        400: BAD_REQUEST,
        413: TOO_LARGE,
    },
)
def rewrite_batch(batch: RewriteBatch) -> RewriteBatchOut:
    """Up to 500 recipients (repeats once), the message parsed once; each send recorded once per
    recipient and campaign, however often the batch is sent again. The messages must fit in one
    answer (Lambda's 6 MB): a batch too large is refused, saying how many recipients fit."""
    done = _rewrite(batch, batch.recipients)
    messages = [
        RecipientMessage(recipient=str(recipient.id), html=message.html, text=message.text)
        for recipient, message in done.messages
    ]
    return RewriteBatchOut(**_summary(done).model_dump(), messages=messages)


@router.post(
    "/sends",
    summary="Record a campaign's sends",
    responses={200: {"description": "How many were new"}, 400: BAD_REQUEST},
)
def sends(request: SendsRequest) -> SendsOut:
    """That a campaign (a source) was sent to each of up to 1000 recipients (entities), for mail
    whose URLs were minted offline: the denominator of its rates. Once per recipient and campaign."""
    config = settings()
    new, sent = minting.record_entity_sends(default_registry(), request.source, request.entities, config)
    return SendsOut(source=request.source, recorded=new, sent=sent)
