"""The tracker's plugin semantics with no database (saves are captured): deferred and inline
entities, query forwarding, and chained tracked links."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from webbugger.destinations import safe_location
from webbugger.errors import NotFoundError
from webbugger.minting import tracking_url
from webbugger.models import Beacon
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import HookMode, Registry
from webbugger.request import HitRequest, IncomingRequest
from webbugger.settings import Settings
from webbugger.tokens import TokenClaims, sign
from webbugger.tracking import MAX_CHAIN, Tracker

if TYPE_CHECKING:
    from webbugger.tokens import KeyRing

HOST = "t.example.com"
OTHER_HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
UA = "Mozilla/5.0 (X11) PluginTest/1.0"
NEW_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}\Z")  # a ULID: Crockford base32, 26 characters


@dataclass
class Page:
    url: str
    forward_query: bool = False

    def get_absolute_url(self) -> str:
        return self.url


@dataclass
class Member:
    id: str
    updates: list[HitRequest] = field(default_factory=list)

    def beacon_update(self, request: HitRequest) -> None:
        self.updates.append(request)


@dataclass
class World:
    """Pages by id, entity calls, and every beacon the tracker saved."""

    pages: dict[str, Page] = field(default_factory=dict)
    saved: list[Beacon] = field(default_factory=list)
    deferred_calls: list[str | None] = field(default_factory=list)
    inline_made: list[Member] = field(default_factory=list)

    def load_page(self, ident: str) -> Page | None:
        return self.pages.get(ident)

    def deferred_member(self, ident: str | None) -> Member:
        self.deferred_calls.append(ident)
        return Member(ident or "made-on-the-hot-path")

    def inline_member(self, ident: str | None) -> Member:
        made = Member(ident or f"inline-{len(self.inline_made) + 1}")
        self.inline_made.append(made)
        return made


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World()

    def capture(beacon: Beacon, *args: Any, **kwargs: Any) -> dict[str, Any]:
        made.saved.append(beacon)
        return {}

    monkeypatch.setattr(Beacon, "save", capture)
    return made


@pytest.fixture
def registry(world: World) -> Registry:
    registry = Registry()
    registry.register_target("page", world.load_page, origin="tests")
    registry.register_entity("member", world.deferred_member, origin="tests", hooks=HookMode.DEFERRED)
    registry.register_entity("visitor", world.inline_member, origin="tests")
    return registry


def make_tracker(registry: Registry, ring: KeyRing, **overrides: Any) -> Tracker:
    settings = Settings(
        beacons_table="beacons", region="us-east-1", hook_budget_ms=1000, lookup_cache_seconds=0, **overrides
    )
    return Tracker(settings, registry, key_ring=lambda: ring)


@pytest.fixture
def tracker(registry: Registry, ring: KeyRing) -> Tracker:
    return make_tracker(registry, ring)


def incoming(method: str = "GET", host: str = HOST, query: dict[str, str] | None = None) -> IncomingRequest:
    return IncomingRequest(
        method=method,
        headers={"user-agent": UA, "host": host},
        source_ip="203.0.113.9",
        query=query or {},
    )


def redirect_claims(page: str, **refs: Any) -> TokenClaims:
    return TokenClaims(mode=Mode.REDIRECT, target=Ref("page", page), **refs)


def redirect_url(ring: KeyRing, page: str, host: str = HOST) -> str:
    """The full tracked-link URL of ``page`` on ``host``."""
    return tracking_url(f"https://{host}", redirect_claims(page), ring)


def track(
    tracker: Tracker, ring: KeyRing, claims: TokenClaims, request: IncomingRequest | None = None
) -> Any:
    return tracker.track(sign(claims, ring), claims.mode, request or incoming())


# --- deferred and inline entities ---------------------------------------------------------------


def test_deferred_entity_is_not_touched_on_the_hot_path(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    result = track(tracker, ring, TokenClaims(mode=Mode.PIXEL, entity=Ref("member", "m-7")))
    assert result.stored is True
    assert world.deferred_calls == []  # get_or_create is the stream function's job
    [beacon] = world.saved
    assert beacon.entity == "member:m-7"


def test_deferred_entity_without_an_id_gets_a_new_one_in_the_beacon(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    track(tracker, ring, TokenClaims(mode=Mode.PIXEL, entity=Ref("member")))
    track(tracker, ring, TokenClaims(mode=Mode.PIXEL, entity=Ref("member")))
    assert world.deferred_calls == []
    ids = [beacon.entity.removeprefix("member:") for beacon in world.saved]
    assert all(NEW_ID.match(ident) for ident in ids), ids
    assert ids[0] != ids[1]


def test_deferred_entity_on_a_redirect(tracker: Tracker, ring: KeyRing, world: World) -> None:
    world.pages["home"] = Page("https://example.com/home")
    result = track(tracker, ring, redirect_claims("home", entity=Ref("member", "m-8")))
    assert result.location == "https://example.com/home"
    assert world.deferred_calls == []
    assert [beacon.entity for beacon in world.saved] == ["member:m-8"]


def test_inline_entity_is_made_and_its_hook_called_with_the_hit(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    result = track(tracker, ring, TokenClaims(mode=Mode.PIXEL, entity=Ref("visitor", "v-1")))
    [member] = world.inline_made
    [update] = member.updates
    assert update.beacon_id == result.beacon_id
    assert update.entity == Ref("visitor", "v-1")
    assert update.mode is Mode.PIXEL
    assert update.ip == "203.0.113.0"
    assert [beacon.entity for beacon in world.saved] == ["visitor:v-1"]


def test_inline_entity_without_an_id_records_the_created_id(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    track(tracker, ring, TokenClaims(mode=Mode.PIXEL, entity=Ref("visitor")))
    assert [beacon.entity for beacon in world.saved] == ["visitor:inline-1"]
    assert len(world.inline_made[0].updates) == 1


# --- forward_query ------------------------------------------------------------------------------


def test_forward_query_appends_the_visitors_parameters_and_the_targets_win(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["fwd"] = Page("https://example.com/landing?ref=mail&utm_source=link", forward_query=True)
    query = {"utm_source": "x", "q": "shoes", "page": "2"}
    result = track(tracker, ring, redirect_claims("fwd"), incoming(query=query))
    assert result.location == "https://example.com/landing?ref=mail&utm_source=link&q=shoes&page=2"
    assert safe_location(result.location) == result.location
    assert len(world.saved) == 1


def test_without_forward_query_the_visitors_parameters_stay_behind(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["plain"] = Page("https://example.com/plain?ref=mail")
    result = track(tracker, ring, redirect_claims("plain"), incoming(query={"q": "shoes"}))
    assert result.location == "https://example.com/plain?ref=mail"


def test_forwarded_parameters_cannot_smuggle_anything_into_the_location(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["fwd"] = Page("https://example.com/landing", forward_query=True)
    query = {
        "next": "javascript:alert(1)",
        "crlf": "a\r\nSet-Cookie: x=1",
        "sp ace": "ü #frag",
        "back": "\\evil",
        "at": "user@evil.net",
    }
    result = track(tracker, ring, redirect_claims("fwd"), incoming(query=query))
    location = result.location
    assert safe_location(location) == location
    assert location.startswith("https://example.com/landing?")
    assert location.isascii()
    assert "\r" not in location
    assert "\n" not in location
    assert "#" not in location  # a visitor's '#' is encoded, not a fragment
    assert "@" not in location.split("?")[0]


def test_forward_query_keeps_the_targets_fragment(tracker: Tracker, ring: KeyRing, world: World) -> None:
    world.pages["frag"] = Page("https://example.com/doc?a=1#part-2", forward_query=True)
    result = track(tracker, ring, redirect_claims("frag"), incoming(query={"b": "2"}))
    assert result.location == "https://example.com/doc?a=1&b=2#part-2"


def test_forwarding_appends_and_leaves_the_targets_own_query_as_stored(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["raw"] = Page("https://example.com/landing?flag&q=a+b", forward_query=True)
    without = track(tracker, ring, redirect_claims("raw"))
    assert without.location == "https://example.com/landing?flag&q=a+b"
    forwarded = track(tracker, ring, redirect_claims("raw"), incoming(query={"x": "1"}))
    assert forwarded.location == "https://example.com/landing?flag&q=a+b&x=1"


# --- chained links ------------------------------------------------------------------------------


def test_a_link_to_a_tracked_link_of_this_service_is_followed_internally(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["final"] = Page("https://example.com/final")
    world.pages["outer"] = Page(redirect_url(ring, "final"))
    result = track(tracker, ring, redirect_claims("outer"))
    assert result.location == "https://example.com/final"
    assert sorted(beacon.target for beacon in world.saved) == ["page:final", "page:outer"]
    assert result.beacon_id == next(b.id for b in world.saved if b.target == "page:outer")
    assert all(beacon.mode == "redirect" for beacon in world.saved)


def test_a_host_header_with_a_port_still_counts_as_own_host(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["final"] = Page("https://example.com/final")
    world.pages["outer"] = Page(redirect_url(ring, "final"))
    result = track(tracker, ring, redirect_claims("outer"), incoming(host=f"{HOST.upper()}:443"))
    assert result.location == "https://example.com/final"
    assert len(world.saved) == 2


def test_a_tracked_link_of_another_host_is_just_a_destination(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["final"] = Page("https://example.com/final")
    elsewhere = redirect_url(ring, "final", host="other.example.net")
    world.pages["outer"] = Page(elsewhere)
    result = track(tracker, ring, redirect_claims("outer"))
    assert result.location == elsewhere
    assert [beacon.target for beacon in world.saved] == ["page:outer"]


def test_tracking_hosts_count_as_own_hosts(registry: Registry, ring: KeyRing, world: World) -> None:
    world.pages["final"] = Page("https://example.com/final")
    world.pages["outer"] = Page(redirect_url(ring, "final", host=HOST))
    request = incoming(host=OTHER_HOST)  # e.g. the API's own domain, behind a CloudFront domain

    plain = make_tracker(registry, ring)
    assert track(plain, ring, redirect_claims("outer"), request).location == world.pages["outer"].url
    assert len(world.saved) == 1
    world.saved.clear()

    aware = make_tracker(registry, ring, tracking_hosts=(HOST,))
    result = track(aware, ring, redirect_claims("outer"), request)
    assert result.location == "https://example.com/final"
    assert sorted(beacon.target for beacon in world.saved) == ["page:final", "page:outer"]


def chain_of(world: World, ring: KeyRing, links: int) -> str:
    """``links`` pages, each a tracked link to the next, the last to example.com; the first's id."""
    world.pages[f"c{links - 1}"] = Page("https://example.com/end-of-chain")
    for index in range(links - 2, -1, -1):
        world.pages[f"c{index}"] = Page(redirect_url(ring, f"c{index + 1}"))
    return "c0"


def test_a_chain_of_max_chain_links_is_followed(tracker: Tracker, ring: KeyRing, world: World) -> None:
    first = chain_of(world, ring, MAX_CHAIN)
    result = track(tracker, ring, redirect_claims(first))
    assert result.location == "https://example.com/end-of-chain"
    assert sorted(beacon.target for beacon in world.saved) == sorted(f"page:c{i}" for i in range(MAX_CHAIN))


def test_a_chain_longer_than_max_chain_is_not_found_and_records_nothing(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    first = chain_of(world, ring, MAX_CHAIN + 1)
    with pytest.raises(NotFoundError, match="chain"):
        track(tracker, ring, redirect_claims(first))
    assert world.saved == []


def test_a_loop_of_links_is_not_found_and_records_nothing(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["a"] = Page(redirect_url(ring, "b"))
    world.pages["b"] = Page(redirect_url(ring, "a"))
    with pytest.raises(NotFoundError):
        track(tracker, ring, redirect_claims("a"))
    assert world.saved == []


def test_a_link_to_itself_is_not_found(tracker: Tracker, ring: KeyRing, world: World) -> None:
    world.pages["self"] = Page(redirect_url(ring, "self"))
    with pytest.raises(NotFoundError):
        track(tracker, ring, redirect_claims("self"))
    assert world.saved == []


def test_head_on_a_chain_answers_and_records_nothing(tracker: Tracker, ring: KeyRing, world: World) -> None:
    world.pages["final"] = Page("https://example.com/final")
    world.pages["outer"] = Page(redirect_url(ring, "final"))
    result = track(tracker, ring, redirect_claims("outer", entity=Ref("visitor", "v-9")), incoming("HEAD"))
    assert result.location == "https://example.com/final"
    assert (result.stored, result.beacon_id) == (False, None)
    assert world.saved == []
    assert world.inline_made == []


def test_a_chained_link_to_a_missing_target_is_not_found_and_records_nothing(
    tracker: Tracker, ring: KeyRing, world: World
) -> None:
    world.pages["outer"] = Page(redirect_url(ring, "gone"))
    with pytest.raises(NotFoundError):
        track(tracker, ring, redirect_claims("outer"))
    assert world.saved == []


def test_a_chained_pixel_token_is_not_a_redirect(tracker: Tracker, ring: KeyRing, world: World) -> None:
    pixel = tracking_url(f"https://{HOST}", TokenClaims(mode=Mode.PIXEL), ring)
    # A pixel URL lives under /p/, not /r/: not a chain, just a (strange) destination.
    world.pages["outer"] = Page(pixel)
    result = track(tracker, ring, redirect_claims("outer"))
    assert result.location == pixel
    assert len(world.saved) == 1


def test_forward_query_reaches_the_end_of_a_chain(tracker: Tracker, ring: KeyRing, world: World) -> None:
    world.pages["final"] = Page("https://example.com/final?own=1", forward_query=True)
    world.pages["outer"] = Page(redirect_url(ring, "final"))
    result = track(tracker, ring, redirect_claims("outer"), incoming(query={"own": "visitor", "q": "1"}))
    assert result.location == "https://example.com/final?own=1&q=1"
    assert len(world.saved) == 2
