"""The tracker's semantics (django-webbugger's ``trigger``), with no database: saves are captured."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from webbugger.errors import (
    InvalidTokenError,
    NotFoundError,
    StoreUnavailableError,
    UnknownTypeError,
    UnsafeDestinationError,
)
from webbugger.ids import beacon_id_time
from webbugger.models import Beacon, beacon_partition
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Registry
from webbugger.request import MAX_LANGUAGE, MAX_REFERER, MAX_USER_AGENT, HitRequest, IncomingRequest
from webbugger.settings import Settings
from webbugger.tokens import TokenClaims, sign
from webbugger.tracking import Tracker

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.tokens import KeyRing

UA = "Mozilla/5.0 (Macintosh) Test/1.0"
HEADERS = {
    "user-agent": UA,
    "referer": "https://mail.example/inbox",
    "accept-language": "de-DE,de;q=0.9",
    "cloudfront-viewer-country": "de",
}
PAGES: dict[str, str | None] = {
    "home": "https://example.com/home?ref=mail",
    "nowhere": None,
    "script": "javascript:alert(1)",
}
QUICK = 1.0  # seconds: a visitor never waits anywhere near this for a plugin


class DatabaseDownError(Exception):
    """What a plugin's lookup raises when its store is unreachable."""


@dataclass
class Page:
    url: str | None

    def get_absolute_url(self) -> str | None:
        return self.url


class CappedPage(Page):
    """A capped link whose claim of a hit cannot reach its store (a timeout, say)."""

    def refusal(self, now: Any, *, claim: bool) -> str | None:
        raise DatabaseDownError("claim timed out")


@dataclass
class Visitor:
    id: str
    updates: list[HitRequest] = field(default_factory=list)

    def beacon_update(self, request: HitRequest) -> None:
        self.updates.append(request)


class RaisingVisitor(Visitor):
    def beacon_update(self, request: HitRequest) -> None:
        raise RuntimeError("plugin bug")


@dataclass
class World:
    """The plugin side of the tests: what was looked up, created and saved."""

    release: threading.Event = field(default_factory=threading.Event)
    saved: list[Beacon] = field(default_factory=list)
    target_loads: list[str] = field(default_factory=list)
    created: list[str | None] = field(default_factory=list)
    visitors: list[Visitor] = field(default_factory=list)
    slow_updates: list[str] = field(default_factory=list)

    def load_page(self, ident: str) -> Page | None:
        self.target_loads.append(ident)
        if ident == "broken":
            raise DatabaseDownError(ident)
        if ident == "capped-unreachable":
            return CappedPage("https://example.com/capped")
        return Page(PAGES[ident]) if ident in PAGES else None

    def load_mailing(self, ident: str) -> object | None:
        if ident == "broken":
            raise DatabaseDownError(ident)
        return object() if ident == "spring" else None

    def visitor(self, ident: str | None) -> Visitor:
        self.created.append(ident)
        made = Visitor(ident or f"new-{len(self.created)}")
        self.visitors.append(made)
        return made

    def raising_visitor(self, ident: str | None) -> Visitor:
        return RaisingVisitor(ident or "r-1")

    def slow_visitor(self, ident: str | None) -> Any:
        world = self

        class Slow(Visitor):
            def beacon_update(self, request: HitRequest) -> None:
                world.release.wait(5)  # far past the 50 ms budget
                world.slow_updates.append(request.beacon_id)

        return Slow(ident or "slow-1")

    def slow_get_or_create(self, ident: str | None) -> Visitor:
        self.release.wait(5)
        return Visitor("too-late")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    made = World()

    def capture(beacon: Beacon, *args: Any, **kwargs: Any) -> dict[str, Any]:
        made.saved.append(beacon)
        return {}

    monkeypatch.setattr(Beacon, "save", capture)
    yield made
    made.release.set()  # let abandoned hook threads finish


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "beacons_table": "beacons",
        "region": "us-east-1",
        "hook_budget_ms": 50,
        # A hook's first call gets no more: these tests' hooks are slow on every call.
        "hook_cold_budget_ms": 50,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def registry(world: World) -> Registry:
    registry = Registry()
    registry.register_target("page", world.load_page, origin="tests")
    registry.register_source("mailing", world.load_mailing, origin="tests")
    registry.register_entity("visitor", world.visitor, origin="tests")
    registry.register_entity("raising", world.raising_visitor, origin="tests")
    registry.register_entity("slow", world.slow_visitor, origin="tests")
    registry.register_entity("stuck", world.slow_get_or_create, origin="tests")
    return registry


@pytest.fixture
def tracker(registry: Registry, ring: KeyRing) -> Tracker:
    return Tracker(make_settings(), registry, key_ring=lambda: ring)


Hit = Callable[..., Any]


@pytest.fixture
def hit(tracker: Tracker, ring: KeyRing) -> Hit:
    """Mint a token for the claims and send one request with it through the tracker."""

    def send(
        claims: TokenClaims,
        route: Mode | None = None,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        ip: str = "203.0.113.77",
        using: Tracker | None = None,
    ) -> Any:
        incoming = IncomingRequest(
            method=method, headers=HEADERS if headers is None else headers, source_ip=ip, query={"x": "1"}
        )
        return (using or tracker).track(sign(claims, ring), route or claims.mode, incoming)

    return send


def pixel(**refs: Any) -> TokenClaims:
    return TokenClaims(mode=Mode.PIXEL, **refs)


def redirect(target: str = "page:home", **refs: Any) -> TokenClaims:
    return TokenClaims(mode=Mode.REDIRECT, target=Ref.parse(target), **refs)


# --- what is recorded -------------------------------------------------------------------------


def test_pixel_records_one_beacon_with_the_visitors_details(hit: Hit, world: World) -> None:
    result = hit(pixel(target=Ref("page", "home"), source=Ref("mailing", "spring")))

    assert (result.mode, result.location, result.stored) == (Mode.PIXEL, None, True)
    [beacon] = world.saved
    assert beacon.id == result.beacon_id
    assert beacon.pk == beacon_partition(beacon.id)
    assert beacon.mode == "pixel"
    assert beacon.method == "GET"
    assert (beacon.target, beacon.source) == ("page:home", "mailing:spring")
    assert beacon.to_record()["entity"] is None
    assert beacon.ip == "203.0.113.0"
    assert beacon.user_agent == UA
    assert beacon.referer == "https://mail.example/inbox"
    assert beacon.language == "de-DE,de;q=0.9"
    assert beacon.country is None  # CloudFront's header, but the request did not come through it
    assert beacon_id_time(beacon.id) == beacon.created_at.replace(
        microsecond=beacon.created_at.microsecond // 1000 * 1000
    )
    expected_expiry = beacon.created_at + timedelta(days=400)
    assert abs(beacon.expires - expected_expiry.timestamp()) < 1


def test_redirect_records_the_target_and_answers_its_url(hit: Hit, world: World) -> None:
    result = hit(redirect("page:home"))
    assert result.location == "https://example.com/home?ref=mail"
    assert result.stored is True
    [beacon] = world.saved
    assert (beacon.mode, beacon.target) == ("redirect", "page:home")


def test_full_addresses_are_kept_when_anonymising_is_off(
    registry: Registry, ring: KeyRing, hit: Hit, world: World
) -> None:
    keep = Tracker(make_settings(ip_addresses="full"), registry, key_ring=lambda: ring)
    hit(pixel(), using=keep)
    hit(pixel(), using=keep, ip="2001:db8:abcd:1234::1")
    assert [beacon.ip for beacon in world.saved] == ["203.0.113.77", "2001:db8:abcd:1234::1"]


def test_ipv6_is_anonymised_to_its_48(hit: Hit, world: World) -> None:
    hit(pixel(), ip="2001:db8:abcd:1234::1")
    assert world.saved[0].ip == "2001:db8:abcd::"


def test_long_headers_are_cut_to_their_byte_bounds(hit: Hit, world: World) -> None:
    hit(pixel(), headers={"user-agent": "ü" * 1000, "referer": "r" * 2000, "accept-language": "x" * 100})
    [beacon] = world.saved
    assert beacon.user_agent == "ü" * (MAX_USER_AGENT // 2)  # two bytes each, none split
    assert beacon.referer == "r" * MAX_REFERER
    assert beacon.language == "x" * MAX_LANGUAGE


def test_retention_days_set_the_expiry(registry: Registry, ring: KeyRing, hit: Hit, world: World) -> None:
    short = Tracker(make_settings(retention_days=7), registry, key_ring=lambda: ring)
    hit(pixel(), using=short)
    [beacon] = world.saved
    assert abs(beacon.expires - (beacon.created_at + timedelta(days=7)).timestamp()) < 1


def test_a_failed_write_still_answers(monkeypatch: pytest.MonkeyPatch, hit: Hit) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(Beacon, "save", fail)
    result = hit(redirect("page:home"))
    assert result.stored is False
    assert result.location == "https://example.com/home?ref=mail"
    assert result.beacon_id is not None


# --- sources ----------------------------------------------------------------------------------


def test_missing_source_is_not_found_and_records_nothing(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError, match="source"):
        hit(pixel(source=Ref("mailing", "autumn")))
    with pytest.raises(NotFoundError):
        hit(redirect(source=Ref("mailing", "autumn")))
    assert world.saved == []


def test_missing_source_is_recorded_when_the_link_ignores_errors(hit: Hit, world: World) -> None:
    result = hit(redirect(source=Ref("mailing", "autumn"), ignore_errors=True))
    assert result.location == "https://example.com/home?ref=mail"
    assert [beacon.source for beacon in world.saved] == ["mailing:autumn"]


def test_a_source_lookup_that_fails_still_records_the_hit(hit: Hit, world: World) -> None:
    hit(pixel(source=Ref("mailing", "broken")))
    assert [beacon.source for beacon in world.saved] == ["mailing:broken"]


def test_unknown_source_type_is_not_found(hit: Hit, world: World) -> None:
    with pytest.raises(UnknownTypeError):
        hit(pixel(source=Ref("tweet", "1")))
    assert world.saved == []


# --- targets ----------------------------------------------------------------------------------


def test_missing_redirect_target_is_not_found(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError, match="unknown target"):
        hit(redirect("page:gone"))
    with pytest.raises(NotFoundError):
        hit(redirect("page:gone", ignore_errors=True))  # a redirect cannot go nowhere
    assert world.saved == []


def test_missing_pixel_target_is_not_found_unless_errors_are_ignored(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError):
        hit(pixel(target=Ref("page", "gone")))
    assert world.saved == []
    result = hit(pixel(target=Ref("page", "gone"), ignore_errors=True))
    assert result.stored is True
    assert [beacon.target for beacon in world.saved] == ["page:gone"]


def test_target_without_a_url_is_not_found(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError, match="nowhere"):
        hit(redirect("page:nowhere"))
    assert world.saved == []


def test_target_with_a_script_url_is_refused(hit: Hit, world: World) -> None:
    with pytest.raises(UnsafeDestinationError):
        hit(redirect("page:script"))
    assert world.saved == []


def test_unknown_target_type_is_not_found(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError):
        hit(redirect("shop:1"))
    assert world.saved == []


def test_redirect_target_lookup_failure_is_unavailable(hit: Hit, world: World) -> None:
    with pytest.raises(StoreUnavailableError):
        hit(redirect("page:broken"))
    assert world.saved == []


def test_a_hit_claim_that_cannot_reach_its_store_is_unavailable(hit: Hit, world: World) -> None:
    # Whether a capped link has a hit left is unknown: a 503 to retry, not a 500, nothing stored.
    with pytest.raises(StoreUnavailableError):
        hit(redirect("page:capped-unreachable"))
    assert world.saved == []


def test_pixel_target_lookup_failure_still_records(hit: Hit, world: World) -> None:
    result = hit(pixel(target=Ref("page", "broken")))
    assert result.stored is True
    assert [beacon.target for beacon in world.saved] == ["page:broken"]


def test_target_lookups_are_cached(hit: Hit, world: World) -> None:
    for _ in range(3):
        hit(redirect("page:home"))
    assert world.target_loads == ["home"]
    assert len(world.saved) == 3


# --- tokens and routes ------------------------------------------------------------------------


def test_pixel_token_on_the_redirect_route_is_not_found(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError, match="pixel"):
        hit(pixel(target=Ref("page", "home")), Mode.REDIRECT)
    with pytest.raises(NotFoundError, match="redirect"):
        hit(redirect("page:home"), Mode.PIXEL)
    assert world.saved == []


def test_forged_token_is_not_found(tracker: Tracker, world: World) -> None:
    incoming = IncomingRequest(method="GET", headers=HEADERS, source_ip="203.0.113.77")
    with pytest.raises(InvalidTokenError):
        tracker.track("k1.W10.AAAAAAAAAAAAAAAAAAAAAA", Mode.PIXEL, incoming)
    assert world.saved == []


# --- HEAD -------------------------------------------------------------------------------------


def test_head_records_nothing_and_calls_no_hook(hit: Hit, world: World) -> None:
    result = hit(redirect("page:home", entity=Ref("visitor", "v-1")), method="HEAD")
    assert result.location == "https://example.com/home?ref=mail"
    assert (result.stored, result.beacon_id) == (False, None)
    pixel_result = hit(pixel(entity=Ref("visitor")), method="HEAD")
    assert (pixel_result.stored, pixel_result.beacon_id) == (False, None)
    assert world.saved == []
    assert world.created == []
    assert world.visitors == []


def test_head_still_checks_the_link(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError):
        hit(redirect("page:gone"), method="HEAD")
    assert world.saved == []


# --- entities and hooks -----------------------------------------------------------------------


def test_new_entity_is_created_and_its_id_recorded(hit: Hit, world: World) -> None:
    hit(pixel(entity=Ref("visitor")))
    assert world.created == [None]
    [beacon] = world.saved
    assert beacon.entity == "visitor:new-1"


def test_existing_entity_is_looked_up_by_id(hit: Hit, world: World) -> None:
    hit(redirect(entity=Ref("visitor", "v-7")))
    assert world.created == ["v-7"]
    assert world.saved[0].entity == "visitor:v-7"


def test_beacon_update_gets_the_hit(hit: Hit, world: World) -> None:
    result = hit(redirect("page:home", entity=Ref("visitor"), source=Ref("mailing", "spring")))

    [visitor] = world.visitors
    [request] = visitor.updates
    [beacon] = world.saved
    assert request.beacon_id == result.beacon_id == beacon.id
    assert request.mode is Mode.REDIRECT
    assert request.method == "GET"
    assert request.ip == "203.0.113.0"
    assert request.user_agent == UA
    assert request.country is None  # not through CloudFront (tests/unit/test_privacy.py)
    assert request.target == Ref("page", "home")
    assert request.entity == Ref("visitor", "new-1")
    assert request.source == Ref("mailing", "spring")
    assert dict(request.query) == {"x": "1"}
    assert request.time == beacon.created_at


def test_unknown_entity_type_is_not_found(hit: Hit, world: World) -> None:
    with pytest.raises(NotFoundError):
        hit(pixel(entity=Ref("robot")))
    assert world.saved == []


def test_a_raising_beacon_update_does_not_affect_the_visitor(hit: Hit, world: World) -> None:
    started = time.monotonic()
    result = hit(redirect("page:home", entity=Ref("raising", "r-9")))
    assert time.monotonic() - started < QUICK
    assert result.location == "https://example.com/home?ref=mail"
    assert result.stored is True
    assert [beacon.entity for beacon in world.saved] == ["raising:r-9"]


def test_a_slow_beacon_update_is_abandoned_after_the_budget(hit: Hit, world: World) -> None:
    started = time.monotonic()
    result = hit(pixel(entity=Ref("slow", "s-1")))
    elapsed = time.monotonic() - started
    assert elapsed < QUICK / 2, f"visitor waited {elapsed:.3f}s for a 50 ms hook budget"
    assert result.stored is True
    assert [beacon.entity for beacon in world.saved] == ["slow:s-1"]
    assert world.slow_updates == []  # still running: the visitor did not wait for it


def test_a_slow_get_or_create_keeps_the_links_reference(hit: Hit, world: World) -> None:
    started = time.monotonic()
    result = hit(redirect("page:home", entity=Ref("stuck", "e-3")))
    assert time.monotonic() - started < QUICK / 2
    assert result.location == "https://example.com/home?ref=mail"
    assert [beacon.entity for beacon in world.saved] == ["stuck:e-3"]
