"""Privacy on the hot path: what an address, an opt-out and CloudFront's headers leave on a beacon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from webbugger.errors import ConfigurationError
from webbugger.models import Beacon
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Registry
from webbugger.request import ORIGIN_SECRET_HEADER, IncomingRequest, client_ip, viewer_address
from webbugger.settings import Settings, load_settings
from webbugger.tokens import KeyRing, Purpose, TokenClaims, sign
from webbugger.tombstones import Tombstones
from webbugger.tracking import Tracker

UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
ORIGIN_SECRET = "s" * 40
# As a current browser sends them (Sec-Fetch-Mode: every browser since 2023, Fetch Metadata).
BROWSER = {
    "user-agent": UA,
    "referer": "https://mail.example/",
    "accept-language": "fr",
    "sec-fetch-mode": "navigate",
}


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[Beacon]:
    """The beacons the tracker saves (no database)."""
    captured: list[Beacon] = []
    monkeypatch.setattr(Beacon, "save", lambda beacon, *args, **kwargs: captured.append(beacon))
    return captured


def send(ring: KeyRing, claims: TokenClaims, headers: dict[str, str], ip: str, **settings: Any) -> None:
    registry = Registry()
    registry.register_target("page", lambda ident: Page("https://example.com/"), origin="tests")
    tracker = Tracker(
        Settings(beacons_table="beacons", region="us-east-1", **settings), registry, key_ring=lambda: ring
    )
    incoming = IncomingRequest(method="GET", headers=headers, source_ip=ip)
    tracker.track(sign(claims, ring), claims.mode, incoming)


@dataclass
class Page:
    url: str

    def get_absolute_url(self) -> str:
        return self.url


@pytest.fixture
def record(ring: KeyRing, saved: list[Beacon]) -> Callable[..., Beacon]:
    """One pixel hit through a tracker with these settings; the beacon it saved."""

    def hit(headers: dict[str, str], ip: str = "203.0.113.77", **settings: Any) -> Beacon:
        send(ring, TokenClaims(mode=Mode.PIXEL), headers, ip, **settings)
        return saved[-1]

    return hit


Record = Callable[..., Beacon]


# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "address", "stored"),
    [
        ("anonymised", "203.0.113.77", "203.0.113.0"),
        ("anonymised", "2001:db8:abcd:1234::1", "2001:db8:abcd::"),
        ("full", "203.0.113.77", "203.0.113.77"),
        ("full", "2001:db8:abcd:1234::1", "2001:db8:abcd:1234::1"),
        ("none", "203.0.113.77", None),
        ("none", "2001:db8:abcd:1234::1", None),
    ],
)
def test_the_deployment_chooses_what_address_is_kept(
    record: Record, mode: str, address: str, stored: str | None
) -> None:
    assert client_ip(address, mode) == stored
    assert record(BROWSER, ip=address, ip_addresses=mode).ip == stored


def test_by_default_no_beacon_keeps_a_full_address(record: Record) -> None:
    beacon = record(BROWSER, ip="198.51.100.23")
    assert beacon.ip == "198.51.100.0"


@pytest.mark.parametrize("value", ["perhaps", "anonymized", "yes"])
def test_an_unknown_address_mode_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("BEACONS_TABLE", "beacons")
    monkeypatch.setenv("IP_ADDRESSES", value)
    with pytest.raises(ConfigurationError, match="IP_ADDRESSES must be one of anonymised, full, none"):
        load_settings()


# --- Do-Not-Track and Global Privacy Control ---------------------------------------------------


@pytest.mark.parametrize(("header", "signal"), [("dnt", "dnt"), ("sec-gpc", "gpc")])
def test_an_opt_out_keeps_the_hit_without_address_agent_or_visitor(
    record: Record, header: str, signal: str
) -> None:
    beacon = record({**BROWSER, header: "1"})
    assert (beacon.ip, beacon.user_agent, beacon.opted_out) == (None, None, signal)
    # Still a hit: the referer and language say nothing about who the visitor is.
    assert (beacon.mode, beacon.referer, beacon.language) == ("pixel", "https://mail.example/", "fr")


@pytest.mark.parametrize("headers", [{"dnt": "0"}, {"sec-gpc": "0"}, {"dnt": ""}, {"dnt": "yes"}])
def test_only_the_value_1_opts_out(record: Record, headers: dict[str, str]) -> None:
    beacon = record({**BROWSER, **headers})
    assert (beacon.opted_out, beacon.user_agent) == (None, UA)


def test_opt_outs_are_ignored_when_the_deployment_says_so(record: Record) -> None:
    beacon = record({**BROWSER, "dnt": "1", "sec-gpc": "1"}, honour_opt_out=False)
    assert (beacon.opted_out, beacon.ip, beacon.user_agent) == (None, "203.0.113.0", UA)


# --- the client address behind CloudFront ------------------------------------------------------

VIA_CLOUDFRONT = {
    **BROWSER,
    "cloudfront-viewer-address": "198.51.100.23:50312",
    "cloudfront-viewer-country": "nl",
}


def test_cloudfronts_viewer_address_is_trusted_with_the_origin_secret(record: Record) -> None:
    beacon = record(
        {**VIA_CLOUDFRONT, ORIGIN_SECRET_HEADER: ORIGIN_SECRET}, local_origin_secret=ORIGIN_SECRET
    )
    assert (beacon.ip, beacon.country) == ("198.51.100.0", "NL")


@pytest.mark.parametrize(
    ("headers", "secret"),
    [
        (VIA_CLOUDFRONT, ORIGIN_SECRET),  # no origin header: straight to the API
        ({**VIA_CLOUDFRONT, ORIGIN_SECRET_HEADER: "guess"}, ORIGIN_SECRET),  # a wrong secret
        ({**VIA_CLOUDFRONT, ORIGIN_SECRET_HEADER: ORIGIN_SECRET[:-1]}, ORIGIN_SECRET),  # a prefix
        ({**VIA_CLOUDFRONT, ORIGIN_SECRET_HEADER: ORIGIN_SECRET}, None),  # no CloudFront deployed
    ],
)
def test_forged_forwarding_headers_get_the_address_api_gateway_saw(
    record: Record, headers: dict[str, str], secret: str | None
) -> None:
    beacon = record(headers, ip="203.0.113.77", local_origin_secret=secret)
    assert (beacon.ip, beacon.country) == ("203.0.113.0", None)


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("198.51.100.23:50312", "198.51.100.23"),
        ("2001:db8:abcd:12::7:443", "2001:db8:abcd:12::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("198.51.100.23", "198.51.100.23"),
        ("2001:db8::7", "2001:db8::7"),
        ("not-an-address:80", None),
        ("", None),
        (None, None),
    ],
)
def test_viewer_address_forms(value: str | None, address: str | None) -> None:
    assert viewer_address(value) == address


def test_an_unreadable_viewer_address_falls_back_to_the_source_address(record: Record) -> None:
    headers = {**BROWSER, "cloudfront-viewer-address": "garbage", ORIGIN_SECRET_HEADER: ORIGIN_SECRET}
    beacon = record(headers, ip="203.0.113.77", local_origin_secret=ORIGIN_SECRET)
    assert beacon.ip == "203.0.113.0"


# --- what classification needs later -----------------------------------------------------------


def test_the_beacon_keeps_when_its_url_was_minted(ring: KeyRing, saved: list[Beacon]) -> None:
    send(ring, TokenClaims(mode=Mode.PIXEL, issued_at=1_700_000_000), BROWSER, "203.0.113.77")
    assert saved[-1].minted == 1_700_000_000


@pytest.mark.parametrize(
    "headers",
    [{"purpose": "prefetch"}, {"sec-purpose": "prefetch;prerender"}, {"x-moz": "prefetch"}],
)
def test_prefetch_requests_are_hinted(record: Record, headers: dict[str, str]) -> None:
    assert record({**BROWSER, **headers}).hints == {"prefetch"}


def test_an_ordinary_request_has_no_hints(record: Record) -> None:
    assert record(BROWSER).hints is None


def test_a_request_without_fetch_metadata_is_hinted(record: Record) -> None:
    scanner = {name: value for name, value in BROWSER.items() if name != "sec-fetch-mode"}
    assert record(scanner).hints == {"nofetch"}


def test_a_url_minted_for_email_is_hinted_and_one_for_the_web_is_not(
    ring: KeyRing, saved: list[Beacon]
) -> None:
    send(ring, TokenClaims(mode=Mode.PIXEL, purpose=Purpose.EMAIL), BROWSER, "203.0.113.77")
    assert saved[-1].hints == {"email"}
    send(ring, TokenClaims(mode=Mode.PIXEL), BROWSER, "203.0.113.77")
    assert saved[-1].hints is None


def test_a_honeypot_link_is_hinted(ring: KeyRing, saved: list[Beacon]) -> None:
    claims = TokenClaims(mode=Mode.REDIRECT, target=Ref("page", "x"), honeypot=True)
    send(ring, claims, BROWSER, "203.0.113.77")
    assert saved[-1].hints == {"honeypot"}


def test_an_unreadable_origin_secret_answers_the_visitor_and_trusts_nothing(
    record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(settings: Any) -> bytes:
        raise TimeoutError("secrets manager")

    monkeypatch.setattr("webbugger.tracking.load_origin_secret", unreachable)
    beacon = record({**VIA_CLOUDFRONT, ORIGIN_SECRET_HEADER: ORIGIN_SECRET}, origin_secret_arn="arn:x")
    assert (beacon.ip, beacon.country) == ("203.0.113.0", None)


def test_the_settings_repr_shows_no_secret() -> None:
    # A repr ends up in logs and tracebacks; the settings hold the local key ring and secrets.
    settings = Settings(
        beacons_table="beacons",
        region="eu-west-1",
        local_signing_keys='{"current": "k1", "k1": "KEYMATERIAL"}',
        local_visitor_salt="SALTVALUE",
        local_origin_secret=ORIGIN_SECRET,
    )
    shown = repr(settings)
    assert "beacons" in shown
    assert "KEYMATERIAL" not in shown and "SALTVALUE" not in shown and ORIGIN_SECRET not in shown
    with pytest.raises(AttributeError):
        settings.region = "us-east-1"  # type: ignore[misc]
    assert settings._replace(region="us-east-1").region == "us-east-1"


def test_no_repr_of_a_key_ring_tombstones_or_request_shows_a_secret() -> None:
    # As for the settings: what holds the signing keys, the visitor-salt secret or the origin
    # secret CloudFront sends must not print them in a log, a traceback or `pytest --showlocals`.
    ring = KeyRing.from_json('{"current": "k1", "k1": "KEYMATERIAL-KEYMATERIAL-KEYMATERIAL-KEY"}')
    shown = repr(ring)
    assert "k1" in shown and "KEYMATERIAL" not in shown
    assert ring.keys["k1"].startswith(b"KEYMATERIAL")  # still the ring it was
    tombstones = Tombstones(b"SALTVALUE")
    tombstones._seen["recipient:alice@example.com"] = None
    shown = repr(tombstones)
    assert "SALTVALUE" not in shown and "alice" not in shown
    headers = {ORIGIN_SECRET_HEADER: ORIGIN_SECRET, "user-agent": "UA"}
    incoming = IncomingRequest("GET", headers, "203.0.113.9")
    shown = repr(incoming)
    assert ORIGIN_SECRET not in shown and "203.0.113.9" not in shown
    assert incoming.header(ORIGIN_SECRET_HEADER) == ORIGIN_SECRET


# --- the Referer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (
            "https://app.example/reset?token=RESET-SECRET&email=alice%40example.com",
            "https://app.example/reset",
        ),
        ("https://app.example/inbox#msg=RESET-SECRET", "https://app.example/inbox"),
        ("https://app.example/a?b#RESET-SECRET", "https://app.example/a"),
        ("https://mail.example/", "https://mail.example/"),
    ],
)
def test_a_referers_query_and_fragment_are_not_kept(record: Record, sent: str, kept: str) -> None:
    # Another site's query string carries its tokens and its users' addresses; classification
    # reads the Referer's host only (a gateway's link-rewriting host).
    assert record({**BROWSER, "referer": sent}).referer == kept
