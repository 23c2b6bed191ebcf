"""Tracking tokens: nobody without a key can read, mint, alter or re-key a tracking URL, and the
tokens earlier releases signed (claims in clear) still verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
from contextlib import suppress
from typing import Any

import pytest
from legacy_tokens import b64, forge
from webbugger.errors import ConfigurationError, InvalidReferenceError, InvalidTokenError
from webbugger.modes import Mode
from webbugger.refs import MAX_ID_BYTES, Ref
from webbugger.tokens import MAX_TOKEN_LENGTH, KeyRing, Purpose, TokenClaims, sign, verify

B64URL = string.ascii_letters + string.digits + "-_"
K0 = "old-key-" + "0" * 40
K1 = "new-key-" + "1" * 40
ISSUED = 1_746_515_289

PIXEL = TokenClaims(
    mode=Mode.PIXEL,
    target=Ref("link", "aB3dE6gH"),
    entity=Ref("subscriber", "s-42"),
    source=Ref("newsletter", "2025-05"),
    issued_at=ISSUED,
)
REDIRECT = TokenClaims(
    mode=Mode.REDIRECT,
    target=Ref("url", "https://example.com/a:b?c=d"),
    entity=Ref("visitor"),  # a new entity per hit
    source=Ref("campaign", "spring"),
    ignore_errors=True,
    issued_at=ISSUED,
)


def ring_of(current: str, **keys: str) -> KeyRing:
    return KeyRing.from_json(json.dumps({"current": current, **keys}))


def seal_by_hand(kid: str, key: str, body: Any, *, associated: str | None = None) -> str:
    """A sealed token made by hand, as webbugger.tokens and webbugger.sealing specify the format."""
    plaintext = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    siv_key = hmac.digest(key.encode(), b"webbugger token v2: siv", "sha512")
    stream_key = hmac.digest(key.encode(), b"webbugger token v2: stream", "sha512")
    ad = (kid if associated is None else associated).encode()
    siv = hashlib.blake2b(bytes([len(ad)]) + ad + plaintext, key=siv_key, digest_size=16).digest()
    stream = b"".join(
        hashlib.blake2b(siv + i.to_bytes(4, "big"), key=stream_key).digest()
        for i in range(len(plaintext) // 64 + 1)
    )
    return f"{kid}.{b64(siv + bytes(a ^ b for a, b in zip(plaintext, stream, strict=False)))}"


@pytest.fixture
def k1_ring() -> KeyRing:
    return ring_of("k1", k1=K1)


@pytest.fixture
def token(k1_ring: KeyRing) -> str:
    return sign(PIXEL, k1_ring)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("claims", [PIXEL, REDIRECT], ids=["pixel", "redirect"])
def test_sign_verify_round_trip_keeps_every_claim(claims: TokenClaims, k1_ring: KeyRing) -> None:
    assert verify(sign(claims, k1_ring), k1_ring) == claims


def test_what_a_url_was_minted_for_round_trips_in_the_flags(k1_ring: KeyRing) -> None:
    email = TokenClaims(mode=Mode.PIXEL, issued_at=ISSUED, purpose=Purpose.EMAIL, honeypot=False)
    assert verify(sign(email, k1_ring), k1_ring).purpose is Purpose.EMAIL
    # The email bit, beside ignore_errors (1) and honeypot (2).
    assert sign(email, k1_ring) == seal_by_hand("k1", K1, ["p", ISSUED, 4, None, None, None])
    assert verify(sign(PIXEL, k1_ring), k1_ring).purpose is Purpose.WEB


def test_a_token_minted_before_the_email_flag_existed_is_a_web_token(k1_ring: KeyRing) -> None:
    # The exact body shape every earlier release signed: flags 0..3, no email bit.
    for flags in range(4):
        claims = verify(forge("k1", K1, ["r", ISSUED, flags, "link:x", None, None]), k1_ring)
        assert claims.purpose is Purpose.WEB
        assert (claims.ignore_errors, claims.honeypot) == (bool(flags & 1), bool(flags & 2))


def test_pixel_without_references_round_trips(k1_ring: KeyRing) -> None:
    claims = verify(sign(TokenClaims(mode=Mode.PIXEL), k1_ring), k1_ring)
    assert (claims.mode, claims.target, claims.entity, claims.source) == (Mode.PIXEL, None, None, None)
    assert claims.ignore_errors is False
    assert claims.issued_at > ISSUED  # stamped with the signing time


def test_non_ascii_ids_round_trip(k1_ring: KeyRing) -> None:
    claims = TokenClaims(mode=Mode.REDIRECT, target=Ref("page", "straße/ü"), issued_at=ISSUED)
    assert verify(sign(claims, k1_ring), k1_ring) == claims


def test_token_is_url_safe_with_the_current_key_id(token: str) -> None:
    kid, sealed = token.split(".")
    assert kid == "k1"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", sealed)


def test_token_matches_the_documented_format(token: str) -> None:
    body = ["p", ISSUED, 0, "link:aB3dE6gH", "subscriber:s-42", "newsletter:2025-05"]
    assert seal_by_hand("k1", K1, body) == token
    # No longer than the signed form of earlier releases (a 16-byte tag either way, one dot fewer).
    assert len(token) <= len(forge("k1", K1, body))


def test_sealing_is_deterministic_and_every_claim_changes_the_token(k1_ring: KeyRing) -> None:
    assert sign(PIXEL, k1_ring) == sign(PIXEL, k1_ring)
    others = [
        PIXEL.replace(issued_at=ISSUED + 1),
        PIXEL.replace(entity=Ref("subscriber", "s-43")),
        PIXEL.replace(honeypot=True),
    ]
    assert len({sign(PIXEL, k1_ring), *(sign(other, k1_ring) for other in others)}) == 4


# --- nothing readable -------------------------------------------------------------------------

# What an earlier release put in clear (base64 of `recipient:alice@example.com`), so that anyone
# who saw a forwarded mail or a proxy log learnt the address; minted by that release with K1.
LEGACY_EMAIL_PIXEL = (
    "k1.WyJwIiwxNzQ2NTE1Mjg5LDQsImxpbms6YUIzZEU2Z0giLCJyZWNpcGllbnQ6YWxpY2VAZXhhbXBsZS5jb20iLCJu"
    "ZXdzbGV0dGVyOjIwMjUtMDUiXQ.OE2Q48wbOm4UcTgfzAvDDw"
)
EMAIL_PIXEL = PIXEL.replace(entity=Ref("recipient", "alice@example.com"), purpose=Purpose.EMAIL)
SECRETS = ["alice@example.com", "alice", "example.com", "aB3dE6gH", "newsletter", "2025-05", "recipient"]


def readable_forms(token: str) -> list[bytes]:
    """The token and what its parts decode to (base64url or standard base64 at every alignment,
    hex), lower-cased: wherever someone who sees the URL would look."""
    forms = [token.encode().lower()]
    for part in re.split(r"[./]", token):
        for offset in range(4):
            chunk = part[offset:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            for alphabet in (b"-_", b"+/"):
                raw = base64.b64decode(chunk.translate(str.maketrans("-_", alphabet.decode())) + "==")
                forms += [raw.lower(), raw.hex().encode()]
        with suppress(ValueError):
            forms.append(bytes.fromhex(part).lower())
    return forms


def test_the_old_signed_form_shows_the_recipient_and_the_sealed_form_shows_nothing(
    k1_ring: KeyRing,
) -> None:
    # The check can see: the same search finds the address in a token of an earlier release.
    assert any(b"alice@example.com" in form for form in readable_forms(LEGACY_EMAIL_PIXEL))
    url_token = sign(EMAIL_PIXEL, k1_ring)
    forms = readable_forms(url_token)
    for secret in SECRETS:
        needle = secret.lower().encode()
        assert not [form for form in forms if needle in form or needle.hex().encode() in form], secret


def test_a_token_of_an_earlier_release_still_verifies(k1_ring: KeyRing) -> None:
    assert verify(LEGACY_EMAIL_PIXEL, k1_ring) == EMAIL_PIXEL
    assert verify(sign(EMAIL_PIXEL, k1_ring), k1_ring) == EMAIL_PIXEL


def test_a_redirect_needs_a_target() -> None:
    with pytest.raises(InvalidReferenceError):
        TokenClaims(mode=Mode.REDIRECT)


# --- tampering --------------------------------------------------------------------------------


def single_character_changes(token: str) -> list[tuple[int, str]]:
    return [
        (index, token[:index] + replacement + token[index + 1 :])
        for index, char in enumerate(token)
        for replacement in B64URL + "."
        if replacement != char
    ]


def test_every_change_outside_the_tags_last_character_is_rejected(token: str, k1_ring: KeyRing) -> None:
    accepted = []
    for index, changed in single_character_changes(token):
        if index == len(token) - 1:
            continue
        try:
            verify(changed, k1_ring)
        except InvalidTokenError:
            continue
        accepted.append(changed)
    assert accepted == []


def test_every_change_of_the_tags_last_character_is_rejected(token: str, k1_ring: KeyRing) -> None:
    accepted = []
    for index, changed in single_character_changes(token):
        if index != len(token) - 1:
            continue
        try:
            verify(changed, k1_ring)
        except InvalidTokenError:
            continue
        accepted.append(changed)
    assert accepted == []


def test_every_truncation_is_rejected(token: str, k1_ring: KeyRing) -> None:
    for length in range(len(token)):
        with pytest.raises(InvalidTokenError):
            verify(token[:length], k1_ring)


@pytest.mark.parametrize(
    "shape",
    ["{t}.x", "{t}.", ".{t}", "x.{t}", "{t}.{t}", "{t}{t}", " {t}", "{t}\n", "{t}.gif"],
)
def test_extra_parts_and_padding_are_rejected(shape: str, token: str, k1_ring: KeyRing) -> None:
    with pytest.raises(InvalidTokenError):
        verify(shape.format(t=token), k1_ring)


@pytest.mark.parametrize("text", ["", ".", "..", "k1..", "k1.x.", "k1..x", "not a token", "k1.%%%.%%%"])
def test_garbage_is_rejected(text: str, k1_ring: KeyRing) -> None:
    with pytest.raises(InvalidTokenError):
        verify(text, k1_ring)


def test_unknown_key_id_is_rejected(token: str) -> None:
    with pytest.raises(InvalidTokenError, match="unknown signing key"):
        verify(token, ring_of("k2", k2=K1))  # same secret, different id: still unknown


def test_a_different_key_with_the_same_id_is_rejected(token: str) -> None:
    with pytest.raises(InvalidTokenError, match="signature"):
        verify(token, ring_of("k1", k1=K0))


def test_rotation_old_key_opens_while_in_the_ring_and_fails_once_removed() -> None:
    old_ring = ring_of("k0", k0=K0)
    old_token = sign(PIXEL, old_ring)
    assert old_token.startswith("k0.")

    rotated = ring_of("k1", k1=K1, k0=K0)
    assert verify(old_token, rotated) == PIXEL  # URLs already sent keep working
    new_token = sign(PIXEL, rotated)
    assert new_token.startswith("k1.")  # only the current key signs
    assert verify(new_token, rotated) == PIXEL

    retired = ring_of("k1", k1=K1)
    with pytest.raises(InvalidTokenError):
        verify(old_token, retired)
    assert verify(new_token, retired) == PIXEL


def test_relabelling_a_token_with_another_key_id_is_rejected() -> None:
    both = ring_of("k1", k1=K1, k0=K0)
    old_token = sign(PIXEL, ring_of("k0", k0=K0))
    with pytest.raises(InvalidTokenError):
        verify("k1" + old_token.removeprefix("k0"), both)


def test_rotation_keeps_tokens_of_an_earlier_release_until_their_key_leaves() -> None:
    legacy_k0 = forge("k0", K0, ["p", ISSUED, 0, "link:aB3dE6gH", "subscriber:s-42", "newsletter:2025-05"])
    assert verify(legacy_k0, ring_of("k1", k1=K1, k0=K0)) == PIXEL
    with pytest.raises(InvalidTokenError, match="unknown signing key"):
        verify(legacy_k0, ring_of("k1", k1=K1))


BODY = ["p", ISSUED, 0, "link:aB3dE6gH", "subscriber:s-42", "newsletter:2025-05"]


def test_a_payload_sealed_with_one_key_under_another_key_id_is_rejected() -> None:
    both = ring_of("k1", k1=K1, k0=K0)
    _kid, sealed = seal_by_hand("k0", K0, BODY, associated="k1").split(".")
    with pytest.raises(InvalidTokenError, match="signature"):
        verify(f"k1.{sealed}", both)  # k0's key, sealed for k1's id
    with pytest.raises(InvalidTokenError, match="signature"):
        verify(f"k0.{sealed}", both)  # k0's key and id, but sealed for another id
    # The same payload honestly sealed by k0 is fine: k0 is still in the ring.
    assert verify(seal_by_hand("k0", K0, BODY), both) == PIXEL


def test_a_legacy_payload_re_signed_with_one_key_under_another_key_id_is_rejected() -> None:
    both = ring_of("k1", k1=K1, k0=K0)
    _kid, payload, _tag = forge("k1", K1, BODY).split(".")
    tag = hmac.new(K0.encode(), f"k1.{payload}".encode(), hashlib.sha256).digest()[:16]
    with pytest.raises(InvalidTokenError, match="signature"):
        verify(f"k1.{payload}.{b64(tag)}", both)
    # The same payload honestly signed by k0 is fine: k0 is still in the ring.
    tag0 = hmac.new(K0.encode(), f"k0.{payload}".encode(), hashlib.sha256).digest()[:16]
    assert verify(f"k0.{payload}.{b64(tag0)}", both) == PIXEL


def test_a_legacy_token_changed_anywhere_is_rejected(k1_ring: KeyRing) -> None:
    legacy = forge("k1", K1, BODY)
    assert verify(legacy, k1_ring) == PIXEL
    accepted = []
    for _index, changed in single_character_changes(legacy):
        with suppress(InvalidTokenError):
            verify(changed, k1_ring)
            accepted.append(changed)
    assert accepted == []


def test_over_long_token_is_rejected_before_any_work(k1_ring: KeyRing) -> None:
    with pytest.raises(InvalidTokenError, match="too long"):
        verify("k1." + "A" * MAX_TOKEN_LENGTH + ".AAAA", k1_ring)


@pytest.mark.parametrize("make", [forge, seal_by_hand], ids=["signed", "sealed"])
def test_a_validly_signed_but_over_long_token_is_rejected(make: Any, k1_ring: KeyRing) -> None:
    # sign() refuses to make such a token, so make one by hand with the right key.
    big = "x" * 1500
    long_token = make("k1", K1, ["p", 1, 0, f"url:{big}", f"e:{big}", f"s:{big}"])
    assert len(long_token) > MAX_TOKEN_LENGTH
    with pytest.raises(InvalidTokenError, match="too long"):
        verify(long_token, k1_ring)


def test_sign_never_returns_a_token_verify_rejects(k1_ring: KeyRing) -> None:
    big = "x" * MAX_ID_BYTES
    claims = TokenClaims(mode=Mode.REDIRECT, target=Ref("url", big), entity=Ref("e", big), issued_at=1)
    try:
        minted = sign(claims, k1_ring)
    except (InvalidReferenceError, ValueError):
        return  # refusing to mint is fine
    assert verify(minted, k1_ring) == claims


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "p"},
        ["p", ISSUED, 0, None, None],
        ["p", ISSUED, 0, None, None, None, None],
        ["x", ISSUED, 0, None, None, None],
        ["r", ISSUED, 0, None, None, None],  # a redirect without a target
        ["p", "soon", 0, None, None, None],
        ["p", ISSUED, "x", None, None, None],
        ["p", ISSUED, 0, "Bad Type:1", None, None],
        ["p", ISSUED, 0, "link", None, None],  # a target needs an id
        ["p", ISSUED, 0, None, None, "source"],  # so does a source
        pytest.param(
            ["p", ISSUED, 0, 7, None, None],
            id="non-string-reference",
        ),
    ],
)
@pytest.mark.parametrize("make", [forge, seal_by_hand], ids=["signed", "sealed"])
def test_malformed_payloads_are_rejected_even_when_signed(make: Any, body: Any, k1_ring: KeyRing) -> None:
    with pytest.raises(InvalidTokenError, match="malformed"):
        verify(make("k1", K1, body), k1_ring)


def test_a_signed_payload_that_is_not_json_is_rejected(k1_ring: KeyRing) -> None:
    payload = b64(b"\xff\xfe not json")
    tag = hmac.new(K1.encode(), f"k1.{payload}".encode(), hashlib.sha256).digest()[:16]
    with pytest.raises(InvalidTokenError, match="malformed"):
        verify(f"k1.{payload}.{b64(tag)}", k1_ring)
    with pytest.raises(InvalidTokenError, match="malformed"):
        verify(seal_by_hand("k1", K1, b"\xff\xfe not json"), k1_ring)


def test_a_sealed_token_shorter_than_its_siv_is_rejected(k1_ring: KeyRing) -> None:
    for length in (0, 1, 15, 16):
        with pytest.raises(InvalidTokenError):
            verify(f"k1.{b64(bytes(length))}", k1_ring)


def test_a_non_canonical_spelling_of_a_sealed_token_is_rejected(token: str, k1_ring: KeyRing) -> None:
    kid, sealed = token.split(".")
    raw = base64.urlsafe_b64decode(sealed + "==")
    # The last character's spare bits (when the length is not a multiple of 3 bytes) give other
    # spellings of the same bytes: the SIV covers the bytes, so only the canonical text may open.
    others = [
        f"{kid}.{sealed[:-1]}{char}"
        for char in B64URL
        if char != sealed[-1] and base64.urlsafe_b64decode(sealed[:-1] + char + "==") == raw
    ]
    assert others  # this token has spare bits (its length is not a multiple of 3)
    for changed in others:
        with pytest.raises(InvalidTokenError, match="canonical"):
            verify(changed, k1_ring)


# --- key rings --------------------------------------------------------------------------------


def test_key_ring_from_json() -> None:
    ring = KeyRing.from_json(json.dumps({"current": "k1", "k1": K1, "k0": K0}))
    assert ring.current == "k1"
    assert dict(ring.keys) == {"k1": K1.encode(), "k0": K0.encode()}
    assert KeyRing.from_json(json.dumps({"current": "A_z-9", "A_z-9": "x" * 32})).current == "A_z-9"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("", "not JSON"),
        ('["k1"]', "JSON object"),
        ('"k1"', "JSON object"),
        (json.dumps({"k1": K1}), "current"),
        (json.dumps({"current": "k2", "k1": K1}), "current"),
        (json.dumps({"current": 1, "1": K1}), "current"),
        (json.dumps({"current": "k1"}), "current"),
        (json.dumps({"current": "k1", "k1": "x" * 31}), "shorter than 32"),
        (json.dumps({"current": "k1", "k1": K1, "k0": "short"}), "shorter than 32"),
        (json.dumps({"current": "k 1", "k 1": K1}), "invalid signing key id"),
        (json.dumps({"current": "k1", "k1": K1, "k.0": K0}), "invalid signing key id"),
        (json.dumps({"current": "k" * 17, "k" * 17: K1}), "invalid signing key id"),
        (json.dumps({"current": "", "": K1}), "invalid signing key id"),
    ],
)
def test_key_ring_from_json_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        KeyRing.from_json(text)
