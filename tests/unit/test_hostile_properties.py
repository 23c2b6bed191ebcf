"""Hostile input, property-based: whatever the open internet sends to the token decoder, the track
function's routes or the request parsing, no exception escapes, no answer is a 5xx, and an invalid
request writes nothing (moto's DynamoDB, tables from template.yaml; see fuzz/track_target.py)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from webbugger.errors import InvalidReferenceError, InvalidTokenError
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.request import (
    MAX_LANGUAGE,
    MAX_REFERER,
    MAX_USER_AGENT,
    IncomingRequest,
    anonymise_ip,
    client_ip,
    country,
    opt_out,
    request_hints,
    truncate_utf8,
    viewer_address,
)
from webbugger.tokens import KeyRing, TokenClaims, sign, verify

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))
import track_target

if TYPE_CHECKING:
    from collections.abc import Iterator

RING = KeyRing.from_json(track_target.RING_JSON)
OTHER_RING = KeyRing.from_json(track_target.OTHER_RING_JSON)
# Bounded so that the whole file runs in well under 20 s on a loaded machine.
PURE = settings(max_examples=120, deadline=2000, database=None)
HANDLER = settings(
    max_examples=40, deadline=5000, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Every character, lone surrogates included (a JSON-escaped header or path can carry them).
any_text = st.text(st.characters(exclude_categories=()), max_size=300)
url_ish = st.text(st.characters(codec="ascii"), max_size=200) | any_text
ref_ids = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40)
refs = st.builds(Ref, st.sampled_from(["link", "campaign", "recipient", "url", "page"]), ref_ids)
claims = st.builds(
    TokenClaims,
    mode=st.just(Mode.PIXEL),
    target=st.none() | refs,
    entity=st.none() | refs,
    source=st.none() | refs,
    ignore_errors=st.booleans(),
    issued_at=st.integers(min_value=1, max_value=2**40),
)


# --- the token decoder ------------------------------------------------------------------------


@PURE
@given(any_text)
def test_arbitrary_text_is_an_invalid_token(text: str) -> None:
    with pytest.raises(InvalidTokenError):
        verify(text, RING)


@PURE
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_an_invalid_token(raw: bytes) -> None:
    with pytest.raises(InvalidTokenError):
        verify(raw.decode("utf-8", "surrogateescape"), RING)


@PURE
@given(claims)
def test_a_signed_token_verifies_to_its_claims(made: TokenClaims) -> None:
    assert verify(sign(made, RING), RING) == made


@PURE
@given(claims, st.data())
def test_any_changed_character_invalidates_a_token(made: TokenClaims, data: st.DataObject) -> None:
    token = sign(made, RING)
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters(exclude_categories=()).filter(lambda c: c != token[index]))
    with pytest.raises(InvalidTokenError):
        verify(token[:index] + replacement + token[index + 1 :], RING)


@PURE
@given(claims, st.integers(min_value=0, max_value=1), st.integers(min_value=0), url_ish)
def test_a_truncated_or_extended_part_invalidates_a_token(
    made: TokenClaims, which: int, cut: int, extra: str
) -> None:
    parts = sign(made, RING).split(".")  # KID.SEALED
    changed = parts[which][: cut % (len(parts[which]) + 1)] + extra
    assume(changed != parts[which])
    parts[which] = changed
    with pytest.raises(InvalidTokenError):
        verify(".".join(parts), RING)


@PURE
@given(claims)
def test_swapped_key_ids_and_other_keys_do_not_verify(made: TokenClaims) -> None:
    kid, sealed = sign(made, RING).split(".")
    with pytest.raises(InvalidTokenError):
        verify(f"k0.{sealed}", RING)  # sealed by k1 under k0's id
    with pytest.raises(InvalidTokenError):
        verify(sign(made, OTHER_RING), RING)  # same key id, another deployment's key
    with pytest.raises(InvalidTokenError):
        verify(f"{kid}.{sealed}", OTHER_RING)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


# Shaped like a real payload ([mode, issued_at, flags, target, entity, source]) often enough to
# reach every field's decoding.
payload_bodies = (
    st.tuples(
        st.sampled_from(["p", "r"]) | json_values,
        st.integers() | json_values,
        st.integers() | json_values,
        st.none() | st.text(max_size=30) | json_values,
        st.none() | st.text(max_size=30) | json_values,
        st.none() | st.text(max_size=30) | json_values,
    ).map(list)
    | st.lists(json_values, max_size=8)
    | json_values
)


@settings(PURE, max_examples=80)
@given(payload_bodies)
@example(["p", 1e999, 0, None, None, None])  # found: int(inf) raised OverflowError
@example(["r", 1, -1e999, "link:a", None, None])
def test_a_correctly_tagged_but_malformed_payload_is_an_invalid_token(body: Any) -> None:
    """Only a key holder can tag a payload; even so, the decoder refuses rather than raises."""
    tagged_payload_decodes_or_is_refused(json.dumps(body).encode())


def tagged_payload_decodes_or_is_refused(raw: bytes) -> None:
    token = track_target.tag_payload(raw, RING.keys["k1"])
    with contextlib.suppress(InvalidTokenError):  # anything else escapes and fails the test
        verify(token, RING)


def test_a_correctly_tagged_deeply_nested_payload_is_an_invalid_token() -> None:
    """Found: json.loads raised RecursionError; a payload fits ~3,000 nested brackets."""
    tagged_payload_decodes_or_is_refused(b"[" * 1500 + b"]" * 1500)


@PURE
@given(any_text, st.booleans())
def test_any_reference_text_parses_or_is_an_invalid_reference(text: str, allow_new: bool) -> None:
    """Found: a lone surrogate in an id (a shell's undecodable byte) raised UnicodeEncodeError."""
    try:
        ref = Ref.parse(text, allow_new=allow_new)
    except InvalidReferenceError:
        return
    assert str(ref) == text


# --- request parsing --------------------------------------------------------------------------


@PURE
@given(st.none() | any_text, st.integers(min_value=0, max_value=600))
def test_truncation_is_bounded_and_keeps_a_prefix(text: str | None, bound: int) -> None:
    cut = truncate_utf8(text, bound)
    if text is None:
        assert cut is None
        return
    assert cut is not None
    encoded = cut.encode("utf-8")  # never raises: no lone surrogate survives
    assert len(encoded) <= bound
    assert text.encode("utf-8", "replace").startswith(encoded)


@PURE
@given(st.none() | any_text | st.ip_addresses().map(str))
def test_an_anonymised_source_address_is_a_network_address_or_none(address: str | None) -> None:
    stored = anonymise_ip(address)
    if stored is None:
        return
    ip = ipaddress.ip_address(stored)
    assert str(ip) == stored
    prefix = 24 if ip.version == 4 else 48
    assert ipaddress.ip_network(f"{stored}/{prefix}").network_address == ip


@PURE
@given(st.dictionaries(st.sampled_from(["cloudfront-viewer-country", "user-agent", "x"]), any_text))
def test_country_is_two_upper_case_letters_or_none(headers: dict[str, str]) -> None:
    found = country(IncomingRequest("GET", headers))
    assert found is None or (len(found) == 2 and found.isascii() and found.isalpha() and found.isupper())


SELF_DESCRIPTION = [
    "cloudfront-viewer-address",
    "dnt",
    "sec-gpc",
    "purpose",
    "sec-purpose",
    "x-purpose",
    "x-moz",
]


@PURE
@given(
    st.dictionaries(st.sampled_from(SELF_DESCRIPTION), any_text | st.sampled_from(["1", "prefetch"])),
    st.none() | any_text | st.ip_addresses().map(str),
    st.sampled_from(["anonymised", "full", "none"]),
)
def test_what_a_request_says_of_itself_parses_to_a_bounded_set(
    headers: dict[str, str], source_ip: str | None, mode: str
) -> None:
    incoming = IncomingRequest("GET", headers, source_ip)
    address = client_ip(viewer_address(incoming.header("cloudfront-viewer-address")) or source_ip, mode)
    if address is not None:
        ipaddress.ip_address(address)
        assert mode != "none"
    assert opt_out(incoming) in (None, "gpc", "dnt")
    assert request_hints(incoming) <= {"prefetch", "nofetch"}


# --- the track function's routes, end to end ---------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[track_target.TrackStack]:
    with track_target.track_stack() as running:
        yield running


def call_and_check(
    stack: track_target.TrackStack, made: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Call the handler and check the response's invariants; the beacons the call wrote."""
    stack.take_beacons()
    response = stack.call(made)
    track_target.check_response(response)
    written = stack.take_beacons()
    method = made["requestContext"]["http"]["method"]
    recorded = response["statusCode"] in (200, 302) and method.upper() == "GET"
    assert len(written) == (1 if recorded else 0), (response["statusCode"], method, written)
    return response, written


methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", "G\r\nX"])
prefixes = st.sampled_from(["/p/", "/r/", "/l/", "/", "", "/p//", "//r/", "/P/"])


@HANDLER
@given(prefixes, any_text, methods)
def test_any_path_is_answered_without_error(
    stack: track_target.TrackStack, prefix: str, rest: str, method: str
) -> None:
    response, _ = call_and_check(stack, track_target.event(prefix + rest, method=method))
    assert response["statusCode"] != 200 or rest.endswith(".gif")


def valid_paths(stack: track_target.TrackStack) -> list[str]:
    link = Ref("link", stack.links["forwarding"])
    return [
        "/p/" + sign(TokenClaims(mode=Mode.PIXEL, target=link), RING) + ".gif",
        "/r/" + sign(TokenClaims(mode=Mode.REDIRECT, target=link), RING),
        "/r/" + sign(TokenClaims(mode=Mode.REDIRECT, target=Ref("url", "https://a.good.example/x")), RING),
        "/l/" + stack.links["plain"],
    ]


@HANDLER
@given(st.integers(min_value=0, max_value=3), st.data())
def test_a_mutated_valid_path_is_not_found_and_writes_nothing(
    stack: track_target.TrackStack, which: int, data: st.DataObject
) -> None:
    path = valid_paths(stack)[which]
    start = path.index("/", 1) + 1
    index = data.draw(st.integers(min_value=start, max_value=len(path) - 1))
    replacement = data.draw(
        st.text(st.characters(exclude_categories=()), min_size=0, max_size=3).filter(
            lambda text: text != path[index]
        )
    )
    mutated = path[:index] + replacement + path[index + 1 :]
    response, written = call_and_check(stack, track_target.event(mutated))
    assert response["statusCode"] in (400, 404)
    assert written == []


header_names = st.sampled_from(
    [
        "host",
        "user-agent",
        "referer",
        "accept-language",
        "cloudfront-viewer-country",
        "cloudfront-viewer-address",
        "x-webbugger-origin-secret",
        "x-forwarded-for",
        "sec-gpc",
        "dnt",
        "sec-purpose",
        "x",
    ]
)


@HANDLER
@given(
    st.integers(min_value=0, max_value=3),
    st.dictionaries(header_names, any_text, max_size=5),
    st.dictionaries(any_text, any_text, max_size=4),
    any_text | st.ip_addresses().map(str),
)
# Found: a Host header that urlsplit cannot parse escaped from the chain check as a 500.
@example(which=1, headers={"host": "[::1"}, query={}, source_ip="203.0.113.9")
@example(which=3, headers={"host": "]["}, query={}, source_ip="203.0.113.9")
# Found by fuzzing: forwarding a lone surrogate made urlencode raise.
@example(which=1, headers={}, query={"\udcff": "\ud800"}, source_ip="203.0.113.9")
def test_a_valid_hit_with_hostile_headers_query_and_address_is_recorded_once(
    stack: track_target.TrackStack,
    which: int,
    headers: dict[str, str],
    query: dict[str, str],
    source_ip: str,
) -> None:
    made = track_target.event(valid_paths(stack)[which], headers=headers, query=query, source_ip=source_ip)
    response, written = call_and_check(stack, made)
    assert response["statusCode"] in (200, 302)
    [beacon] = written
    for name, bound in (("ua", MAX_USER_AGENT), ("referer", MAX_REFERER), ("lang", MAX_LANGUAGE)):
        if name in beacon:
            assert len(beacon[name]["S"].encode()) <= bound
    # Without the origin secret nothing the visitor says about address or country is believed:
    # the stored address is the anonymised source address (or none, if the visitor opted out).
    assert beacon.get("ip", {}).get("S") in (None, anonymise_ip(source_ip))
    assert "country" not in beacon
