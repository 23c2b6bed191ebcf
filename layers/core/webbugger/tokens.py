"""Tracking tokens: the references of a tracking URL, sealed so that nobody can read or forge one.

Form: ``KID.SEALED`` where SEALED is base64url (no padding) of
``webbugger.sealing.seal(key[KID], KID, PAYLOAD)``: a 16-byte SIV, which authenticates, then the
encrypted PAYLOAD, the compact JSON array ``[mode, issued_at, flags, target, entity, source]``.
Nothing in the URL but the key id is readable; the key id is bound to the rest (the associated
data). The key id lets keys rotate: every key in the key ring opens, only the current one seals.

Tokens minted before sealing (``KID.PAYLOAD.TAG``: PAYLOAD the base64url of that JSON in clear, TAG
the first 16 bytes of HMAC-SHA256(key[KID], "KID.PAYLOAD"), base64url) still verify with the same
key ring: URLs already sent keep working until their key leaves the ring. Only :func:`verify`
reads them; :func:`sign` seals.

``flags`` is a bit set: ignore errors, honeypot, and minted for email. A token without the email
bit (every token minted before it existed) is a web token: its hits are never judged by how soon
they follow the minting (:mod:`webbugger.classify`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from webbugger import sealing
from webbugger.errors import ConfigurationError, InvalidReferenceError, InvalidTokenError
from webbugger.frozen import Frozen
from webbugger.refs import Ref, parse_optional

if TYPE_CHECKING:
    from collections.abc import Mapping

from webbugger.modes import Mode

KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}\Z")
TAG_BYTES = 16  # of a token signed before sealing
MAX_TOKEN_LENGTH = 4096
FLAG_IGNORE_ERRORS = 1
# A honeypot link: invisible in the mail, so whatever follows it is a machine.
FLAG_HONEYPOT = 2
# Minted for email (a mail's pixel or link), not for a web page.
FLAG_EMAIL = 4
_MODES = {"p": Mode.PIXEL, "r": Mode.REDIRECT}
_MODE_CODES = {mode: code for code, mode in _MODES.items()}
_B64URL = re.compile(r"[A-Za-z0-9_-]+\Z")


class Purpose(StrEnum):
    """What a URL was minted for: a web page (the default) or an email."""

    WEB = "web"
    EMAIL = "email"


class TokenClaims(Frozen):
    """What a token says: the mode it was minted for, when, and the three references.

    Immutable, compared and hashed by its fields; ``claims.replace(...)`` for a changed copy (a
    :class:`Frozen` rather than a frozen dataclass: cheaper to define at the track function's cold
    start)."""

    # The fields, in order.
    __slots__ = ("mode", "target", "entity", "source", "ignore_errors", "issued_at", "honeypot", "purpose")  # noqa: RUF023
    mode: Mode
    target: Ref | None
    entity: Ref | None
    source: Ref | None
    ignore_errors: bool
    issued_at: int
    honeypot: bool
    purpose: Purpose

    def __init__(
        self,
        mode: Mode,
        target: Ref | None = None,
        entity: Ref | None = None,
        source: Ref | None = None,
        ignore_errors: bool = False,
        issued_at: int = 0,
        honeypot: bool = False,
        purpose: Purpose = Purpose.WEB,
    ) -> None:
        if mode is Mode.REDIRECT and target is None:
            raise InvalidReferenceError("a redirect needs a target")
        self._freeze(
            mode=mode,
            target=target,
            entity=entity,
            source=source,
            ignore_errors=ignore_errors,
            issued_at=issued_at,
            honeypot=honeypot,
            purpose=purpose,
        )


class KeyRing(NamedTuple):
    """Token keys by key id; ``current`` names the one that seals new tokens.

    A NamedTuple rather than a frozen dataclass: as immutable, and cheaper to define at the track
    function's cold start (bench/cold_start.py)."""

    current: str
    keys: Mapping[str, bytes]

    def __repr__(self) -> str:
        # The key ids only: a repr ends up in logs, tracebacks and test reports.
        return f"KeyRing(current={self.current!r}, keys={sorted(self.keys)!r})"

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        """Parse the secret's JSON: ``{"current": "k1", "k1": "<secret>", "k0": "<older secret>"}``."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError("signing secret is not JSON") from exc
        if not isinstance(data, dict):
            raise ConfigurationError("signing secret must be a JSON object")
        current = data.get("current")
        keys = {kid: str(value).encode() for kid, value in data.items() if kid != "current"}
        if not isinstance(current, str) or current not in keys:
            raise ConfigurationError("signing secret's 'current' must name one of its keys")
        for kid, key in keys.items():
            if not KEY_ID.match(kid):
                raise ConfigurationError(f"invalid signing key id {kid!r}")
            if len(key) < 32:
                raise ConfigurationError(f"signing key {kid!r} is shorter than 32 characters")
        return cls(current, keys)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise InvalidTokenError("token part is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("token part is not base64url") from exc


def _legacy_tag(key: bytes, signed_part: str) -> bytes:
    return hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest()[:TAG_BYTES]


def sign(claims: TokenClaims, ring: KeyRing) -> str:
    """Mint a sealed token for ``claims`` with the ring's current key."""
    flags = (
        (FLAG_IGNORE_ERRORS if claims.ignore_errors else 0)
        | (FLAG_HONEYPOT if claims.honeypot else 0)
        | (FLAG_EMAIL if claims.purpose is Purpose.EMAIL else 0)
    )
    issued_at = claims.issued_at or int(time.time())
    body: list[Any] = [_MODE_CODES[claims.mode], issued_at, flags]
    body += [None if ref is None else str(ref) for ref in (claims.target, claims.entity, claims.source)]
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    kid = ring.current
    token = f"{kid}.{_b64encode(sealing.seal(ring.keys[kid], kid.encode('ascii'), payload))}"
    if len(token) > MAX_TOKEN_LENGTH:
        # verify() would refuse it: better no URL than one whose every hit is a 404.
        raise InvalidReferenceError(
            f"references too long for a tracking URL ({len(token)} > {MAX_TOKEN_LENGTH})"
        )
    return token


def verify(token: str, ring: KeyRing) -> TokenClaims:
    """Open a token (sealed, or signed by an earlier release) and decode its claims; any defect
    raises :class:`InvalidTokenError`."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError("token too long")
    if not token.isascii():  # a token we minted is base64url; the MAC is over ASCII
        raise InvalidTokenError("token is not ASCII")
    parts = token.split(".")
    if len(parts) == 2:
        return _decode_claims(_unseal(parts[0], parts[1], ring))
    if len(parts) == 3:
        return _decode_claims(_verify_legacy(parts[0], parts[1], parts[2], ring))
    raise InvalidTokenError("token must have two parts (three for one minted before sealing)")


def _key(kid: str, ring: KeyRing) -> bytes:
    key = ring.keys.get(kid)
    if key is None:
        raise InvalidTokenError("unknown signing key")
    return key


def _unseal(kid: str, sealed: str, ring: KeyRing) -> bytes:
    key = _key(kid, ring)
    raw = _b64decode(sealed)
    # One spelling only: base64's unused trailing bits would let several spellings of one
    # token open (the SIV covers the bytes, not their text).
    if _b64encode(raw) != sealed:
        raise InvalidTokenError("token part is not canonical base64url")
    payload = sealing.unseal(key, kid.encode("ascii"), raw)
    if payload is None:
        raise InvalidTokenError("bad token signature")
    return payload


def _verify_legacy(kid: str, payload: str, tag: str, ring: KeyRing) -> bytes:
    """The payload of a token signed before sealing (``KID.PAYLOAD.TAG``, claims in clear)."""
    key = _key(kid, ring)
    # Compare the tag's text, not its decoded bytes: base64's unused trailing bits would let 16
    # spellings of one tag verify.
    expected = _b64encode(_legacy_tag(key, f"{kid}.{payload}"))
    if not hmac.compare_digest(tag.encode("ascii", "replace"), expected.encode()):
        raise InvalidTokenError("bad token signature")
    return _b64decode(payload)


def _decode_claims(raw: bytes) -> TokenClaims:
    # Only a token we signed gets here, but decode defensively all the same.
    try:
        body = json.loads(raw.decode())
        mode_code, issued_at, flags, target, entity, source = body
        return TokenClaims(
            mode=_MODES[mode_code],
            target=parse_optional(target),
            entity=parse_optional(entity, allow_new=True),
            source=parse_optional(source),
            ignore_errors=bool(int(flags) & FLAG_IGNORE_ERRORS),
            issued_at=int(issued_at),
            honeypot=bool(int(flags) & FLAG_HONEYPOT),
            purpose=Purpose.EMAIL if int(flags) & FLAG_EMAIL else Purpose.WEB,
        )
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        OverflowError,  # an infinite issued_at or flags
        RecursionError,  # deeply nested JSON
        InvalidReferenceError,
    ) as exc:
        raise InvalidTokenError("malformed token payload") from exc
