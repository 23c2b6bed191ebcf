"""Minting tracking URLs for references: each one parsed, its type registered, and checked by
its type when the type checks ids (the ``url`` type: its host must be allowed)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from webbugger.errors import BatchItemError, InvalidReferenceError, WebbuggerError
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Kind, TargetType
from webbugger.tokens import TokenClaims

if TYPE_CHECKING:
    from collections.abc import Iterable

    from webbugger.registry import Registry
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


def pixel_claims(registry: Registry, request: MintRequest) -> TokenClaims:
    """The pixel's claims for ``request`` (a redirect's are these with its mode and honeypot)."""
    target = checked_ref(registry, Kind.TARGET, request.target)
    entity = checked_ref(registry, Kind.ENTITY, request.entity)
    source = checked_ref(registry, Kind.SOURCE, request.source)
    if request.honeypot and target is None:
        raise InvalidReferenceError("a honeypot link needs a target to redirect to")
    return TokenClaims(Mode.PIXEL, target, entity, source, ignore_errors=request.ignore_errors)


def mint(registry: Registry, request: MintRequest, ring: KeyRing, base_url: str) -> MintedUrls:
    """The URLs of ``request``, signed with ``ring``'s current key, on the tracking ``base_url``."""
    pixel = pixel_claims(registry, request)
    if pixel.target is None:
        return MintedUrls(tracking_url(base_url, pixel, ring))
    redirect = dataclasses.replace(pixel, mode=Mode.REDIRECT, honeypot=request.honeypot)
    return MintedUrls(tracking_url(base_url, pixel, ring), tracking_url(base_url, redirect, ring))


def mint_batch(
    registry: Registry, requests: Iterable[MintRequest], ring: KeyRing, base_url: str
) -> list[MintedUrls]:
    """The URLs of each request, in order; one bad request refuses the batch
    (:class:`BatchItemError`, naming its index)."""
    minted = []
    for index, request in enumerate(requests):
        try:
            minted.append(mint(registry, request, ring, base_url))
        except WebbuggerError as exc:
            raise BatchItemError(index, exc) from exc
    return minted
