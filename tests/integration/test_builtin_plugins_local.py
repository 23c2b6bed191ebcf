"""The built-in plugins through the real local stack: HTTP on 127.0.0.1, DynamoDB Local.

Each request goes over HTTP with http.client (redirects are not followed); what was stored is
read back from DynamoDB Local. Each test sends its own User-Agent and reads back only its own
beacons. The server runs in this process, so environment changes made here (allowed hosts, hook
budget) reach it once the cached settings are forgotten.
"""

from __future__ import annotations

import http.client
import os
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from webbugger import runtime
from webbugger.gif import TRANSPARENT_GIF
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.settings import load_settings
from webbugger.tokens import TokenClaims
from webbugger_plugins import url as url_plugin

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal


class Hit(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def stack(local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningStack]:
    """The local stack with allowed redirect hosts and a hook budget DynamoDB Local fits in."""
    monkeypatch.setenv("ALLOWED_REDIRECT_HOSTS", "example.com,*.example.org")
    monkeypatch.setenv("HOOK_BUDGET_MS", "5000")
    runtime.reset()
    url_plugin.allowed_hosts.cache_clear()
    yield local_stack
    url_plugin.allowed_hosts.cache_clear()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def agent() -> str:
    return f"webbugger-plugins-local/{uuid.uuid4().hex}"


def send(url: str, user_agent: str, *, query: dict[str, str] | None = None) -> Hit:
    """One GET over a fresh connection; redirects are not followed."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    try:
        target = parts.path + (f"?{urlencode(query)}" if query else "")
        conn.request("GET", target, headers={"User-Agent": user_agent})
        response = conn.getresponse()
        return Hit(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def with_core_bound() -> None:
    """Bind the models for writes made by the test (a person's timeouts, not the hot path's)."""
    settings = load_settings()._replace(ddb_connect_timeout=3, ddb_read_timeout=10)
    runtime.bind_tables(runtime.default_registry(), settings)


def redirect(stack: RunningStack, target: str, **refs: Any) -> str:
    return stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref.parse(target), **refs))


def pixel(stack: RunningStack, **refs: Any) -> str:
    return stack.mint(TokenClaims(mode=Mode.PIXEL, **refs))


def attribute(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


# --- link: utm and forward_query -----------------------------------------------------------------


def test_link_with_utm_and_forward_query(stack: RunningStack) -> None:
    from webbugger_plugins.link import create_link

    with_core_bound()
    link = create_link(
        "https://example.com/shop?ref=news", unique("utm"), forward_query=True, utm={"utm_source": "mail"}
    )
    ua = agent()
    hit = send(redirect(stack, f"link:{link.id}"), ua, query={"utm_source": "x", "gclid": "abc"})
    assert hit.status == 302
    parts = urlsplit(hit.headers["location"])
    assert (parts.netloc, parts.path) == ("example.com", "/shop")
    assert parse_qsl(parts.query) == [("ref", "news"), ("utm_source", "mail"), ("gclid", "abc")]
    [item] = stack.beacons(ua)
    assert attribute(item, "target") == f"link:{link.id}"


# --- url: allowed hosts only ---------------------------------------------------------------------


def test_url_target_to_an_allowed_host_redirects(stack: RunningStack) -> None:
    ua = agent()
    hit = send(redirect(stack, "url:https://sub.example.org/welcome"), ua)
    assert hit.status == 302
    assert hit.headers["location"] == "https://sub.example.org/welcome"
    [item] = stack.beacons(ua)
    assert attribute(item, "target") == "url:https://sub.example.org/welcome"


def test_url_target_to_other_hosts_is_not_found_and_records_nothing(stack: RunningStack) -> None:
    ua = agent()
    refused = [
        "url:https://evil.example/",
        "url:https://example.com.evil.net/",
        "url:https://xn--exmple-cua.com/",
        "url:https://example.org/",
    ]
    statuses = {target: send(redirect(stack, target), ua).status for target in refused}
    assert statuses == dict.fromkeys(refused, 404)
    assert stack.beacons(ua) == []


# --- ip entity (inline hook) ---------------------------------------------------------------------


def test_ip_entity_remembers_the_address(stack: RunningStack) -> None:
    entity_id = unique("visitor")
    ua = agent()
    hit = send(pixel(stack, entity=Ref("ip", entity_id)), ua)
    assert hit.status == 200
    assert hit.body == TRANSPARENT_GIF
    [beacon] = stack.beacons(ua)
    assert attribute(beacon, "entity") == f"ip:{entity_id}"
    item = stack.client.get_item(
        TableName=os.environ["IP_ENTITIES_TABLE"], Key={"id": {"S": entity_id}}, ConsistentRead=True
    )["Item"]
    assert item["addresses"] == {"SS": ["127.0.0.0"]}  # 127.0.0.1, anonymised to its /24
    assert "first_seen" in item
    assert "last_seen" in item


# --- campaign source -----------------------------------------------------------------------------


def test_unknown_campaign_is_not_found_unless_the_token_ignores_errors(stack: RunningStack) -> None:
    campaign = Ref("campaign", unique("nope"))
    ua = agent()
    assert send(pixel(stack, source=campaign), ua).status == 404
    assert stack.beacons(ua) == []
    hit = send(pixel(stack, source=campaign, ignore_errors=True), ua)
    assert hit.status == 200
    assert [attribute(item, "source") for item in stack.beacons(ua)] == [str(campaign)]


def test_known_campaign_is_the_source(stack: RunningStack) -> None:
    from webbugger_plugins.campaign import create_campaign

    with_core_bound()
    campaign = create_campaign(unique("spring"), "Spring")
    ua = agent()
    assert send(pixel(stack, source=Ref("campaign", campaign.id)), ua).status == 200
    assert [attribute(item, "source") for item in stack.beacons(ua)] == [f"campaign:{campaign.id}"]


# --- chained links -------------------------------------------------------------------------------


def test_a_link_to_another_tracked_link_is_one_redirect_and_two_beacons(stack: RunningStack) -> None:
    from webbugger_plugins.link import create_link

    with_core_bound()
    inner = create_link("https://example.com/chain-end", unique("inner"))
    outer = create_link(redirect(stack, f"link:{inner.id}"), unique("outer"))
    assert outer.url.startswith(f"{stack.api_url}/r/")
    ua = agent()
    hit = send(redirect(stack, f"link:{outer.id}"), ua)
    assert hit.status == 302
    assert hit.headers["location"] == "https://example.com/chain-end"
    assert sorted(attribute(item, "target") for item in stack.beacons(ua)) == sorted(
        [f"link:{inner.id}", f"link:{outer.id}"]
    )
