"""Minting tracking URLs for references: each one parsed, its type registered, and checked by
its type when the type checks ids (the ``url`` type: its host must be allowed).

URLs minted for email that name a recipient (an entity with an id) and a campaign (a source)
are a mail sent: :func:`record_minted_sends` records each once (:mod:`webbugger.sends`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from webbugger.errors import BatchItemError, InvalidReferenceError, WebbuggerError
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Kind, TargetType
from webbugger.sends import record_sends, sent_count
from webbugger.tokens import Purpose, TokenClaims

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from webbugger.registry import Registry
    from webbugger.settings import Settings
    from webbugger.tokens import KeyRing


@dataclass(frozen=True, slots=True)
class MintRequest:
    """What to mint URLs for: ``TYPE:ID`` references (an entity may be ``TYPE``: a new one)."""

    target: str | None = None
    entity: str | None = None
    source: str | None = None
    ignore_errors: bool = False
    # The redirect URL is a honeypot link (hidden in the mail: whatever follows it is a machine).
    honeypot: bool = False
    # "web" or "email" (Purpose); None: the caller's default (web for one, email for a batch).
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class MintedUrls:
    """A pixel URL, and a redirect URL when there is a target."""

    pixel_url: str
    redirect_url: str | None = None


def checked_ref(registry: Registry, kind: Kind, text: str | None) -> Ref | None:
    """``text`` parsed as a ``kind`` reference of a registered type, with the id its type's
    ``check`` makes of it; None for None."""
    if text is None:
        return None
    ref = Ref.parse(text, allow_new=kind is Kind.ENTITY)
    registered = registry.get(kind, ref.type)  # UnknownTypeError for a type nobody registered
    if isinstance(registered, TargetType) and registered.check is not None and ref.id is not None:
        ref = Ref(ref.type, registered.check(ref.id))
    return ref


def pixel_claims(registry: Registry, request: MintRequest, default: Purpose = Purpose.WEB) -> TokenClaims:
    """The pixel's claims for ``request`` (a redirect's are these with its mode and honeypot);
    ``default`` is what the URLs are for when the request does not say."""
    target = checked_ref(registry, Kind.TARGET, request.target)
    entity = checked_ref(registry, Kind.ENTITY, request.entity)
    source = checked_ref(registry, Kind.SOURCE, request.source)
    if request.honeypot and target is None:
        raise InvalidReferenceError("a honeypot link needs a target to redirect to")
    purpose = Purpose(request.purpose) if request.purpose else default
    return TokenClaims(
        Mode.PIXEL, target, entity, source, ignore_errors=request.ignore_errors, purpose=purpose
    )


def mint(
    registry: Registry, request: MintRequest, ring: KeyRing, base_url: str, default: Purpose = Purpose.WEB
) -> MintedUrls:
    """The URLs of ``request``, signed with ``ring``'s current key, on the tracking ``base_url``."""
    pixel = pixel_claims(registry, request, default)
    if pixel.target is None:
        return MintedUrls(tracking_url(base_url, pixel, ring))
    redirect = dataclasses.replace(pixel, mode=Mode.REDIRECT, honeypot=request.honeypot)
    return MintedUrls(tracking_url(base_url, pixel, ring), tracking_url(base_url, redirect, ring))


def mint_batch(
    registry: Registry,
    requests: Iterable[MintRequest],
    ring: KeyRing,
    base_url: str,
    default: Purpose = Purpose.EMAIL,
) -> list[MintedUrls]:
    """The URLs of each request, in order, for a mailing (``default`` email); one bad request
    refuses the batch (:class:`BatchItemError`, naming its index)."""
    minted = []
    for index, request in enumerate(requests):
        try:
            minted.append(mint(registry, request, ring, base_url, default))
        except WebbuggerError as exc:
            raise BatchItemError(index, exc) from exc
    return minted


def record_entity_sends(
    registry: Registry, source: str, entities: Sequence[str], settings: Settings
) -> tuple[int, int]:
    """Record that ``source`` (``TYPE:ID``, a campaign) was sent to each of ``entities``
    (``TYPE:ID``), e.g. for URLs minted offline; how many were new, and the total sent since."""
    campaign = checked_ref(registry, Kind.SOURCE, source)
    recipients = []
    for index, text in enumerate(entities):
        try:
            entity = checked_ref(registry, Kind.ENTITY, text)
        except WebbuggerError as exc:
            raise BatchItemError(index, exc) from exc
        if entity is None or entity.id is None:
            raise BatchItemError(index, InvalidReferenceError("a send names an entity with an id"))
        recipients.append(entity)
    if campaign is None or campaign.id is None:
        raise InvalidReferenceError("a send names a source with an id")
    new = record_sends(campaign, recipients, settings)
    return new, sent_count(campaign)


def record_minted_sends(
    registry: Registry, requests: Iterable[MintRequest], settings: Settings, default: Purpose = Purpose.EMAIL
) -> int:
    """Record a send for each request minted for email naming an entity with an id and a source
    (once per entity and source, whatever the number of mintings); how many were new."""
    by_source: dict[Ref, list[Ref]] = {}
    for request in requests:
        claims = pixel_claims(registry, request, default)
        entity, source = claims.entity, claims.source
        if claims.purpose is Purpose.EMAIL and source is not None and entity is not None and entity.id:
            by_source.setdefault(source, []).append(entity)
    return sum(record_sends(source, entities, settings) for source, entities in by_source.items())
