"""Minting tracking URLs: sign the references, put the token in the route's path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webbugger import tokens
from webbugger.modes import Mode

if TYPE_CHECKING:
    from webbugger.tokens import KeyRing, TokenClaims

PIXEL_PREFIX = "/p/"
REDIRECT_PREFIX = "/r/"
PIXEL_SUFFIX = ".gif"


def tracking_url(base_url: str, claims: TokenClaims, ring: KeyRing) -> str:
    """The full URL of a pixel (``BASE/p/TOKEN.gif``) or a redirect (``BASE/r/TOKEN``)."""
    token = tokens.sign(claims, ring)
    base = base_url.rstrip("/")
    if claims.mode is Mode.PIXEL:
        return f"{base}{PIXEL_PREFIX}{token}{PIXEL_SUFFIX}"
    return f"{base}{REDIRECT_PREFIX}{token}"
