"""The service layer (:mod:`webbugger.service`) with types registered through the plugin API alone:
an in-memory link store and a target type that checks its ids stand in for the built-in ``link``
and ``url`` plugins. The admin API and the CLI call this layer, so they work with any plugin
that offers the same capabilities (no DynamoDB here: the built-ins are covered end to end by the
admin API and CLI tests).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
from webbugger import tokens
from webbugger.errors import (
    BatchItemError,
    ConfigurationError,
    InvalidCursorError,
    InvalidReferenceError,
    InvalidTimeError,
    LinkExistsError,
    UnknownRecordError,
    UnknownTypeError,
    UnsafeDestinationError,
    WebbuggerError,
)
from webbugger.plugins import PluginTypes
from webbugger.refs import Ref
from webbugger.registry import Registry
from webbugger.service import links
from webbugger.service.mint import MintRequest, mint, mint_batch

if TYPE_CHECKING:
    from collections.abc import Mapping

BASE = "https://t.example.com"
RING = tokens.KeyRing.from_json('{"current": "k1", "k1": "' + "s" * 32 + '"}')
SPRING = datetime(2026, 3, 1, tzinfo=UTC)
SUMMER = datetime(2026, 6, 1, tzinfo=UTC)


class MemoryLinks:
    """A :class:`webbugger.plugins.LinkStore` in a dict (times kept as ISO 8601, as records have them)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def create(
        self, url: str, link_id: str | None, *, forward_query: bool, utm: Mapping[str, str]
    ) -> dict[str, Any]:
        link_id = link_id or f"n{len(self.records)}"
        if link_id in self.records:
            raise LinkExistsError(f"link {link_id!r} already exists")
        record = {"id": link_id, "url": url, "forward_query": forward_query, "utm": dict(utm)}
        self.records[link_id] = record
        return dict(record)

    def get(self, link_id: str) -> dict[str, Any] | None:
        found = self.records.get(link_id)
        return None if found is None else dict(found)

    def update(self, link_id: str, changes: Mapping[str, object]) -> dict[str, Any] | None:
        if link_id not in self.records:
            return None
        for name, value in changes.items():
            self.records[link_id][name] = value.isoformat() if isinstance(value, datetime) else value
        return dict(self.records[link_id])

    def page(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        ids = sorted(link_id for link_id in self.records if after is None or link_id > after)
        page = ids[:limit]
        return [dict(self.records[link_id]) for link_id in page], page[-1] if len(ids) > limit else None


def _checked_host(url: str) -> str:
    if not url.startswith("https://ok.example/"):
        raise UnsafeDestinationError(f"{url} is not on ok.example")
    return url.lower()


@pytest.fixture
def store() -> MemoryLinks:
    return MemoryLinks()


class Page(NamedTuple):
    """A target record: where a hit goes."""

    url: str

    def get_beacon_url(self) -> str:
        return self.url


class Reads:
    """Loaders that count their reads: ``link`` records from the store, ``campaign`` ids from a set."""

    def __init__(self, store: MemoryLinks) -> None:
        self.store = store
        self.campaigns = {"spring"}
        self.calls: list[str] = []

    def link(self, link_id: str) -> Page | None:
        self.calls.append(f"link:{link_id}")
        found = self.store.get(link_id)
        return None if found is None else Page(found["url"])

    def campaign(self, campaign_id: str) -> str | None:
        self.calls.append(f"campaign:{campaign_id}")
        return campaign_id if campaign_id in self.campaigns else None


@pytest.fixture
def reads(store: MemoryLinks) -> Reads:
    return Reads(store)


@pytest.fixture
def registry(store: MemoryLinks, reads: Reads) -> Registry:
    found = Registry()
    types = PluginTypes(found, "test_service")
    types.target("link", load=reads.link, store=store)
    types.target("dest", load=lambda url: Page(url), check=_checked_host)
    types.entity("person", get_or_create=lambda person_id: person_id)
    types.source("campaign", load=reads.campaign, create=lambda campaign_id, name: None)
    return found


# --- links ------------------------------------------------------------------------------------------


def test_a_link_is_created_with_every_field_through_the_types_store(
    registry: Registry, store: MemoryLinks
) -> None:
    created = links.create_link(
        registry,
        "https://example.com/a",
        "spring",
        {"tags": ["news"], "valid_from": SPRING, "forward_query": True, "utm": {"utm_source": "mail"}},
    )
    assert created == store.records["spring"]
    assert created["tags"] == ["news"]
    assert created["valid_from"] == SPRING.isoformat()
    assert created["forward_query"] is True
    assert created["utm"] == {"utm_source": "mail"}
    with pytest.raises(LinkExistsError):
        links.create_link(registry, "https://example.com/b", "spring")


@pytest.mark.parametrize("link_id", ["a/b", "a b", "a?b", "é", "x" * 65])
def test_a_link_id_its_short_url_could_not_carry_is_refused(
    registry: Registry, store: MemoryLinks, link_id: str
) -> None:
    with pytest.raises(InvalidReferenceError, match=r"letters, digits, '-' and '_' only"):
        links.create_link(registry, "https://example.com/", link_id)
    assert store.records == {}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"valid_from": SUMMER, "expires_at": SPRING}, "valid_from must be before expires_at"),
        ({"fallback_url": "javascript:alert(1)"}, "URL must start with http:// or https://"),
        ({"forward_query": None}, "forward_query cannot be null"),
    ],
)
def test_a_link_that_cannot_work_is_refused_before_anything_is_stored(
    registry: Registry, store: MemoryLinks, changes: dict[str, object], error: str
) -> None:
    with pytest.raises(WebbuggerError, match=error):
        links.create_link(registry, "https://example.com/", "bad", changes)
    assert store.records == {}


def test_a_link_that_has_expired_already_is_not_created(registry: Registry, store: MemoryLinks) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    for expires_at in (past, past.isoformat()):  # as the CLI's local backend and the admin API give it
        with pytest.raises(InvalidTimeError, match=r"expires_at .* is in the past"):
            links.create_link(registry, "https://example.com/", "gone", {"expires_at": expires_at})
    assert store.records == {}
    # A change may expire a link now: `link update ID --expires-at` a moment ago.
    links.create_link(registry, "https://example.com/", "later", {"expires_at": past + timedelta(days=1)})
    changed = links.update_link(registry, "later", {"expires_at": past})
    assert changed is not None
    assert changed["expires_at"] == past.isoformat()


def test_a_change_is_checked_against_the_stored_link(registry: Registry, store: MemoryLinks) -> None:
    links.create_link(registry, "https://example.com/", "timed", {"valid_from": SUMMER})
    with pytest.raises(WebbuggerError, match="valid_from must be before expires_at"):
        links.update_link(registry, "timed", {"expires_at": SPRING})
    with pytest.raises(WebbuggerError, match="url cannot be null"):
        links.update_link(registry, "timed", {"url": None})
    assert "expires_at" not in store.records["timed"]
    assert links.update_link(registry, "missing", {"max_hits": 3}) is None
    assert links.disable_link(registry, "missing") is None
    disabled = links.disable_link(registry, "timed")
    assert disabled is not None
    assert disabled["disabled"] is True
    assert links.get_link(registry, "timed") == disabled


def test_links_are_listed_a_page_at_a_time(registry: Registry) -> None:
    for name in ("a", "b", "c", "d", "e"):
        links.create_link(registry, f"https://example.com/{name}", name)
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = links.list_links(registry, 2, cursor)
        seen += [record["id"] for record in page]
        pages += 1
        if cursor is None:
            break
    assert (seen, pages) == (["a", "b", "c", "d", "e"], 3)
    for cursor in ("not-base64!", "e30", "eyJpZCI6eyJTIjoiJCQkIn19"):  # garbage, {}, an id no link has
        with pytest.raises(InvalidCursorError):
            links.list_links(registry, 2, cursor)


def test_without_a_link_store_links_cannot_be_managed() -> None:
    registry = Registry()
    with pytest.raises(UnknownTypeError):
        links.get_link(registry, "a")
    PluginTypes(registry, "storeless").target("link", load=lambda link_id: None)
    with pytest.raises(ConfigurationError, match=r"'link' \(from storeless\) offers no link store"):
        links.create_link(registry, "https://example.com/", "a")


# --- minting ----------------------------------------------------------------------------------------


def test_minting_signs_the_id_the_target_type_checked(registry: Registry) -> None:
    urls = mint(registry, MintRequest(target="dest:https://ok.example/A", entity="person"), RING, BASE)
    assert urls.pixel_url.startswith(f"{BASE}/p/")
    assert urls.redirect_url is not None
    token = urls.redirect_url.removeprefix(f"{BASE}/r/")
    claims = tokens.verify(token, RING)
    assert claims.target == Ref("dest", "https://ok.example/a")  # as the type's check made it
    assert claims.entity == Ref("person", None)
    with pytest.raises(UnsafeDestinationError, match=r"is not on ok\.example"):
        mint(registry, MintRequest(target="dest:https://elsewhere.example/"), RING, BASE)
    with pytest.raises(UnknownTypeError, match="no source type named 'nope' is registered"):
        mint(registry, MintRequest(source="nope:1"), RING, BASE)
    with pytest.raises(InvalidReferenceError, match="a honeypot link needs a target"):
        mint(registry, MintRequest(entity="person:p1", honeypot=True), RING, BASE)


def test_one_bad_item_refuses_a_batch_naming_its_index(registry: Registry, store: MemoryLinks) -> None:
    store.create("https://example.com/a", "a", forward_query=False, utm={})
    good = MintRequest(target="link:a")
    assert len(mint_batch(registry, [good, good], RING, BASE)) == 2
    with pytest.raises(BatchItemError, match=r"^items\[1\]: .* is not on ok\.example") as refused:
        mint_batch(registry, [good, MintRequest(target="dest:https://x.example/"), good], RING, BASE)
    assert isinstance(refused.value.cause, UnsafeDestinationError)
    assert refused.value.index == 1


def test_a_target_or_source_that_does_not_exist_is_refused_at_mint_time(
    registry: Registry, store: MemoryLinks
) -> None:
    # The track function would answer these URLs with 404: a broken image in a sent mail.
    with pytest.raises(UnknownRecordError, match=r"^no link with id 'nope' \(create one with"):
        mint(registry, MintRequest(target="link:nope"), RING, BASE)
    with pytest.raises(UnknownRecordError, match=r"^no campaign source with id 'nope' \(create it first"):
        mint(registry, MintRequest(source="campaign:nope"), RING, BASE)
    store.create("https://example.com/a", "a", forward_query=False, utm={})
    assert mint(registry, MintRequest(target="link:a", source="campaign:spring"), RING, BASE).redirect_url
    # As the track function: ignore_errors records a hit whatever the source, and a pixel
    # whatever its target; a redirect needs its target all the same.
    assert mint(registry, MintRequest(source="campaign:later", ignore_errors=True), RING, BASE)
    with pytest.raises(UnknownRecordError, match="no link with id 'nope'"):
        mint(registry, MintRequest(target="link:nope", ignore_errors=True), RING, BASE)
    # An entity is got or created at the hit: never read here.
    assert mint(registry, MintRequest(entity="person:new"), RING, BASE)


def test_a_batch_reads_each_distinct_reference_once_and_names_the_first_missing_one(
    registry: Registry, store: MemoryLinks, reads: Reads
) -> None:
    store.create("https://example.com/a", "a", forward_query=False, utm={})
    shared = MintRequest(target="link:a", source="campaign:spring", entity="person:p")
    assert len(mint_batch(registry, [shared] * 50, RING, BASE)) == 50
    assert sorted(reads.calls) == ["campaign:spring", "link:a"]

    reads.calls.clear()
    items = [shared, shared, MintRequest(target="link:a", source="campaign:nope"), shared]
    with pytest.raises(BatchItemError, match=r"^items\[2\]: no campaign source with id 'nope'") as refused:
        mint_batch(registry, items, RING, BASE)
    assert isinstance(refused.value.cause, UnknownRecordError)
    assert sorted(reads.calls) == ["campaign:nope", "campaign:spring", "link:a"]
    with pytest.raises(BatchItemError, match=r"^items\[0\]: no link with id 'b'"):
        mint_batch(registry, [MintRequest(target="link:b")], RING, BASE)


# --- sources ----------------------------------------------------------------------------------------


def test_a_source_type_can_offer_to_create_records() -> None:
    created: list[tuple[str, str | None]] = []
    registry = Registry()
    types = PluginTypes(registry, "test_service")
    types.source("partner", load=lambda partner_id: None, create=lambda *args: created.append(args))
    types.source("readonly", load=lambda partner_id: None)
    create = registry.source("partner").create
    assert create is not None
    create("p1", "Partner one")
    assert created == [("p1", "Partner one")]
    assert registry.source("readonly").create is None
