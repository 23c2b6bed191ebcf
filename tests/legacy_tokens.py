"""Tokens as releases before sealing signed them (``KID.PAYLOAD.TAG``, the claims in clear), made by
hand from the format that webbugger.tokens documents: URLs already sent carry them, and they must
keep working."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webbugger.tokens import KeyRing, TokenClaims


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(kid: str, key: str | bytes, body: Any) -> str:
    """A signed token of ``body`` (the JSON array of claims) with ``key`` under ``kid``."""
    secret = key.encode() if isinstance(key, str) else key
    payload = b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    tag = hmac.new(secret, f"{kid}.{payload}".encode(), hashlib.sha256).digest()[:16]
    return f"{kid}.{payload}.{b64(tag)}"


def signed_before_sealing(claims: TokenClaims, ring: KeyRing) -> str:
    """The token an earlier release minted for ``claims`` with the ring's current key."""
    flags = int(claims.ignore_errors) | 2 * int(claims.honeypot) | (4 if claims.purpose == "email" else 0)
    refs = [None if ref is None else str(ref) for ref in (claims.target, claims.entity, claims.source)]
    body = ["p" if claims.mode == "pixel" else "r", claims.issued_at or int(time.time()), flags, *refs]
    return forge(ring.current, ring.keys[ring.current], body)
