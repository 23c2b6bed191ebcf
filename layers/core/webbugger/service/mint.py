"""Minting tracking URLs for references: each one parsed, its type registered, and checked by
its type when the type checks ids (the ``url`` type: its host must be allowed); then each target
and source the URL names read once (:func:`check_records`), so that no URL is minted that the
track function would answer with 404 (a broken image in a sent mail). Entities are not read:
they are got or created at the hit.

URLs minted for email that name a recipient (an entity with an id) and a campaign (a source)
are a mail sent: :func:`record_minted_sends` records each once (:mod:`webbugger.sends`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from webbugger.errors import (
    BatchItemError,
    InvalidReferenceError,
    StoreUnavailableError,
    UnknownRecordError,
    WebbuggerError,
)
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref, check_new_ref
from webbugger.registry import Kind, TargetType, resolve_target_url
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
    ``check`` makes of it, fit to be given out (:func:`check_new_ref`); None for None."""
    if text is None:
        return None
    ref = Ref.parse(text, allow_new=kind is Kind.ENTITY)
    registered = registry.get(kind, ref.type)  # UnknownTypeError for a type nobody registered
    if isinstance(registered, TargetType) and registered.check is not None and ref.id is not None:
        ref = Ref(ref.type, registered.check(ref.id))
    return check_new_ref(ref)


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


def _record(registry: Registry, kind: Kind, ref: Ref, loaded: dict[tuple[Kind, Ref], object]) -> object:
    """The record of ``ref`` (a target or a source), read once per distinct reference."""
    key = (kind, ref)
    if key not in loaded:
        registered = registry.target(ref.type) if kind is Kind.TARGET else registry.source(ref.type)
        try:
            loaded[key] = registered.load(ref.id or "")
        except WebbuggerError:
            raise
        except Exception as exc:  # plugin code: the store did not answer
            reason = getattr(exc, "cause", None) or exc  # PynamoDB's errors keep botocore's in cause
            raise StoreUnavailableError(f"could not check that {ref} exists: {reason}") from exc
    return loaded[key]


def _refusal(registry: Registry, claims: TokenClaims, loaded: dict[tuple[Kind, Ref], object]) -> str | None:
    """Why the track function would answer ``claims`` with 404 (as webbugger.tracking decides)."""
    source = claims.source
    checked = source is not None and source.id is not None and not claims.ignore_errors
    if checked and source is not None and _record(registry, Kind.SOURCE, source, loaded) is None:
        creatable = registry.source(source.type).create is not None
        hint = " (create it first, or mint with ignore_errors)" if creatable else ""
        return f"no {source.type} source with id {source.id!r}{hint}"
    target = claims.target
    if target is None or target.id is None or (claims.mode is Mode.PIXEL and claims.ignore_errors):
        return None
    record = _record(registry, Kind.TARGET, target, loaded)
    if record is None:
        hint = " (create one with `webbugger link create URL`)" if registry.target(target.type).store else ""
        return f"no {target.type} with id {target.id!r}{hint}"
    if claims.mode is Mode.REDIRECT and resolve_target_url(record) is None:
        return f"{target} has nowhere to redirect to"
    return None


def first_refused(registry: Registry, batch: Sequence[Sequence[TokenClaims]]) -> tuple[int, str] | None:
    """The first item of ``batch`` (each item the claims of one request's URLs) whose target or
    source does not exist, and why; None when all do. Each distinct reference is read once,
    however many items name it; a pixel with ``ignore_errors`` needs neither (the track function
    records it all the same)."""
    loaded: dict[tuple[Kind, Ref], object] = {}
    for index, item in enumerate(batch):
        for claims in item:
            reason = _refusal(registry, claims, loaded)
            if reason is not None:
                return index, reason
    return None


def check_records(registry: Registry, claims: Sequence[TokenClaims]) -> None:
    """:class:`UnknownRecordError` when a target or source of ``claims`` does not exist."""
    refused = first_refused(registry, [claims])
    if refused is not None:
        raise UnknownRecordError(refused[1])


def _claims(registry: Registry, request: MintRequest, default: Purpose) -> list[TokenClaims]:
    """The pixel's claims, and the redirect's when there is a target."""
    pixel = pixel_claims(registry, request, default)
    if pixel.target is None:
        return [pixel]
    return [pixel, pixel.replace(mode=Mode.REDIRECT, honeypot=request.honeypot)]


def _urls(claims: list[TokenClaims], ring: KeyRing, base_url: str) -> MintedUrls:
    return MintedUrls(*(tracking_url(base_url, each, ring) for each in claims))


def mint(
    registry: Registry, request: MintRequest, ring: KeyRing, base_url: str, default: Purpose = Purpose.WEB
) -> MintedUrls:
    """The URLs of ``request``, signed with ``ring``'s current key, on the tracking ``base_url``;
    :class:`UnknownRecordError` when its target or source does not exist."""
    claims = _claims(registry, request, default)
    check_records(registry, claims)
    return _urls(claims, ring, base_url)


def mint_batch(
    registry: Registry,
    requests: Iterable[MintRequest],
    ring: KeyRing,
    base_url: str,
    default: Purpose = Purpose.EMAIL,
) -> list[MintedUrls]:
    """The URLs of each request, in order, for a mailing (``default`` email); one bad request
    refuses the batch (:class:`BatchItemError`, naming its index). Every item is checked before
    any URL is signed; a target or source the items share is read once."""
    batch = []
    for index, request in enumerate(requests):
        try:
            batch.append(_claims(registry, request, default))
        except WebbuggerError as exc:
            raise BatchItemError(index, exc) from exc
    refused = first_refused(registry, batch)
    if refused is not None:
        raise BatchItemError(refused[0], UnknownRecordError(refused[1]))
    return [_urls(claims, ring, base_url) for claims in batch]


def record_entity_sends(
    registry: Registry, source: str, entities: Sequence[str], settings: Settings
) -> tuple[int, int]:
    """Record that ``source`` (``TYPE:ID``, a campaign) was sent to each of ``entities``
    (``TYPE:ID``), e.g. for URLs minted offline; how many were new, and the total sent since."""
    from webbugger.sends import record_sends, sent_count  # PynamoDB: not for minting alone

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
    # As minting does: sends of a campaign that does not exist would be a rate of nothing.
    check_records(registry, [TokenClaims(Mode.PIXEL, source=campaign)])
    new = record_sends(campaign, recipients, settings)
    return new, sent_count(campaign)


def record_minted_sends(
    registry: Registry, requests: Iterable[MintRequest], settings: Settings, default: Purpose = Purpose.EMAIL
) -> int:
    """Record a send for each request minted for email naming an entity with an id and a source
    (once per entity and source, whatever the number of mintings); how many were new."""
    from webbugger.sends import record_sends  # PynamoDB: not for minting alone

    by_source: dict[Ref, list[Ref]] = {}
    for request in requests:
        claims = pixel_claims(registry, request, default)
        entity, source = claims.entity, claims.source
        if claims.purpose is Purpose.EMAIL and source is not None and entity is not None and entity.id:
            by_source.setdefault(source, []).append(entity)
    return sum(record_sends(source, entities, settings) for source, entities in by_source.items())
