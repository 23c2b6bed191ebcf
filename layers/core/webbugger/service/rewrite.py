"""Rewriting a campaign's message for its recipients, and recording the sends.

The admin API's ``/rewrite`` and ``/rewrite/batch`` call :func:`rewrite_for_recipients`; the CLI's
``webbugger email rewrite`` does the same steps with its own link backend (a deployed stack's
admin API, or this layer). The message is parsed once whatever the number of recipients; each
distinct destination is one stored link of the campaign (:func:`webbugger.rewrite.campaign_link_id`,
created the first time, reused by every recipient and every later rewrite); each recipient's
send is recorded (:mod:`webbugger.sends`), once per recipient and campaign.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from webbugger.errors import InvalidReferenceError, LinkExistsError, UnknownRecordError, WebbuggerError
from webbugger.minting import tracking_url
from webbugger.refs import Ref, check_new_ref
from webbugger.rewrite import campaign_link_id, plan_message, render, resolve_links, unsubscribe_targets
from webbugger.sends import record_sends
from webbugger.service.links import create_link, get_link

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from webbugger.registry import Registry
    from webbugger.rewrite import MessagePlan, RewrittenMessage
    from webbugger.settings import Settings
    from webbugger.tokens import KeyRing, TokenClaims

RECIPIENT_TYPE = "recipient"
CAMPAIGN_TYPE = "campaign"


@dataclass(frozen=True, slots=True)
class RewriteOrder:
    """A message (its HTML, and its plain-text part if any) to rewrite for a campaign's recipients."""

    html: str
    campaign: str
    recipients: Sequence[str]
    text: str | None = None
    honeypot: bool = False
    track_unsubscribe: bool = False
    list_unsubscribe: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Rewritten:
    """The plan found once, each recipient's message in order, and how many sends were new."""

    plan: MessagePlan
    messages: list[tuple[Ref, RewrittenMessage]]
    new_sends: int


def check_campaign(registry: Registry, campaign: Ref) -> None:
    """That the types a rewrite needs are registered and the campaign exists (a beacon naming an
    unknown campaign answers 404, so every link of the message would): :class:`UnknownRecordError`
    otherwise, as minting refuses a source that does not exist."""
    registry.entity(RECIPIENT_TYPE)  # UnknownTypeError if a type is missing
    registry.target("link")
    if campaign.id is not None and registry.source(campaign.type).load(campaign.id) is None:
        raise UnknownRecordError(f"no {campaign}: create the campaign first, or every link would answer 404")


def campaign_link(registry: Registry, campaign: Ref) -> Callable[[str], str]:
    """The id of the campaign's stored link to a destination: read, or created the first time."""

    def link_id_for(destination: str) -> str:
        link_id = campaign_link_id(campaign, destination)
        stored = get_link(registry, link_id)
        if stored is None:
            try:
                stored = create_link(registry, destination, link_id)
            except LinkExistsError:  # another rewrite created it meanwhile
                stored = get_link(registry, link_id)
        if stored is None or stored.get("url") != destination:
            found = None if stored is None else stored.get("url")
            raise WebbuggerError(f"link {link_id} exists with another URL ({found}): not reused")
        return link_id

    return link_id_for


def _json_size(message: RewrittenMessage) -> int:
    return len(json.dumps(message.html)) + len(json.dumps(message.text))


def recipient_ref(recipient: str) -> Ref:
    """The recipient entity of ``recipient``, an id: :class:`InvalidReferenceError` for the
    ``TYPE:ID`` form, which would be stored as ``recipient:recipient:...``."""
    ident = recipient.strip()
    if ident.startswith(f"{RECIPIENT_TYPE}:"):
        bare = ident.removeprefix(f"{RECIPIENT_TYPE}:")
        raise InvalidReferenceError(f"a recipient is given by its id: {bare!r}, not {ident!r}")
    return check_new_ref(Ref(RECIPIENT_TYPE, ident))


def rewrite_for_recipients(
    registry: Registry,
    order: RewriteOrder,
    ring: KeyRing,
    base_url: str,
    settings: Settings,
    *,
    budget: int | None = None,
) -> Rewritten:
    """Each recipient's message, signed with ``ring`` on the tracking ``base_url``; the sends
    recorded once the messages are made. ``budget``: the most characters the messages may take
    as JSON strings together (estimated from the first), refused before any send is recorded."""
    campaign = check_new_ref(Ref(CAMPAIGN_TYPE, order.campaign))
    recipients = [recipient_ref(recipient) for recipient in dict.fromkeys(order.recipients)]
    check_campaign(registry, campaign)
    targets = [target for value in order.list_unsubscribe for target in unsubscribe_targets(value)]
    plan = plan_message(
        order.html, order.text, unsubscribe_urls=targets, track_unsubscribe=order.track_unsubscribe
    )
    links = resolve_links(plan, campaign_link(registry, campaign))

    def mint(claims: TokenClaims) -> str:
        return tracking_url(base_url, claims, ring)

    def message_for(who: Ref) -> RewrittenMessage:
        return render(plan, links, mint, recipient=who, campaign=campaign, honeypot=order.honeypot)

    first = message_for(recipients[0])
    if budget is not None and _json_size(first) * len(recipients) > budget:
        most = max(1, budget // _json_size(first))
        raise WebbuggerError(
            f"the messages would be too large: at most {most} recipients of this one a request"
        )
    messages = [(recipients[0], first)] + [(who, message_for(who)) for who in recipients[1:]]
    return Rewritten(plan, messages, record_sends(campaign, recipients, settings))
