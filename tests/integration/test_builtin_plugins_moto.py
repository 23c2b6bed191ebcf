"""The built-in plugins (link, url, ip, campaign, recipient) end to end through the track function,
in-process, against moto: API Gateway v2 events in, the handler's answer and the stored items out.

Same harness as test_handler_moto.py: tables from template.yaml, the function's environment as
the template declares it, the key ring from Secrets Manager, the handler loaded from its CodeUri.
"""

from __future__ import annotations

import base64
import json
import re
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import moto_stack
import pytest
from moto import mock_aws
from moto_stack import Handler
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model
from webbugger import runtime
from webbugger.applied import AppliedBeacons
from webbugger.deferred import apply_deferred_hooks
from webbugger.gif import TRANSPARENT_GIF
from webbugger.minting import tracking_url
from webbugger.models import Beacon, expiry
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.settings import get_settings
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_plugins import url as url_plugin
from webbugger_plugins.campaign import create_campaign
from webbugger_plugins.ip import IpEntity
from webbugger_plugins.link import create_link

if TYPE_CHECKING:
    from collections.abc import Iterator

RING_JSON = json.dumps({"current": "k1", "k1": "P" * 48})
RING = KeyRing.from_json(RING_JSON)
BASE = "https://t.example"
VISITOR_IP = "203.0.113.77"
UA = "Mozilla/5.0 (X11) BuiltinPlugins/1.0"
ALLOWED = "example.com,*.example.org"
NEW_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}\Z")

FakeContext = partial(moto_stack.FakeContext, aws_request_id="c0ffee00-0000-4000-8000-000000000002")


def reset_caches() -> None:
    moto_stack.reset_caches()
    url_plugin.allowed_hosts.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Fake AWS with every template table and the signing secret; the function's environment set,
    with ``ALLOWED_REDIRECT_HOSTS`` and a hook budget that moto's first calls fit in."""
    moto_stack.fake_aws_environment(monkeypatch)
    reset_caches()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        names = moto_stack.template_table_names("bp-")
        moto_stack.create_template_tables(dynamodb, names)
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction")
        monkeypatch.setenv("ALLOWED_REDIRECT_HOSTS", ALLOWED)
        monkeypatch.setenv("HOOK_BUDGET_MS", "5000")
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        runtime.default_settings()  # loads the plugins, binds every model to its table
        yield names
        reset_caches()


@pytest.fixture
def handler(aws: dict[str, str]) -> Handler:
    return moto_stack.load_track_handler()


def event(
    path: str,
    method: str = "GET",
    *,
    query: dict[str, str] | None = None,
    ip: str = VISITOR_IP,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for ``path`` (and a query string)."""
    return moto_stack.http_event(
        path,
        method=method,
        headers={"user-agent": UA, "host": "t.example"},
        source_ip=ip,
        request_id="req-bp",
        query=query,
        domain_name="t.example",
    )


def path_of(claims: TokenClaims) -> str:
    return tracking_url(BASE, claims, RING).removeprefix(BASE)


def pixel(**refs: Any) -> str:
    return path_of(TokenClaims(mode=Mode.PIXEL, **refs))


def redirect(target: str, **refs: Any) -> str:
    return path_of(TokenClaims(mode=Mode.REDIRECT, target=Ref.parse(target), **refs))


def header(response: dict[str, Any], name: str) -> str:
    headers = {key.lower(): value for key, value in response["headers"].items()}
    value: str = headers[name.lower()]
    return value


def stored() -> list[Beacon]:
    return list(Beacon.scan(consistent_read=True))


def assert_gif(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 200
    assert base64.b64decode(response["body"]) == TRANSPARENT_GIF


def assert_not_found(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 404
    assert "location" not in {key.lower() for key in response["headers"]}


# --- link: utm and forward_query -----------------------------------------------------------------


def test_link_with_utm_and_forward_query(handler: Handler) -> None:
    link = create_link("https://example.com/shop?ref=news", utm={"utm_source": "mail"}, forward_query=True)
    response = handler(
        event(redirect(f"link:{link.id}"), query={"utm_source": "x", "gclid": "abc"}), FakeContext()
    )
    assert response["statusCode"] == 302
    location = header(response, "Location")
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "example.com", "/shop")
    assert parse_qsl(parts.query) == [("ref", "news"), ("utm_source", "mail"), ("gclid", "abc")]
    [beacon] = stored()
    assert beacon.target == f"link:{link.id}"


def test_link_with_utm_and_no_visitor_query(handler: Handler) -> None:
    link = create_link("https://example.com/shop", utm={"utm_source": "mail"}, forward_query=True)
    response = handler(event(redirect(f"link:{link.id}")), FakeContext())
    assert header(response, "Location") == "https://example.com/shop?utm_source=mail"


def test_link_without_forward_query_drops_the_visitors_query(handler: Handler) -> None:
    link = create_link("https://example.com/shop", utm={"utm_campaign": "spring"})
    response = handler(event(redirect(f"link:{link.id}"), query={"gclid": "abc"}), FakeContext())
    assert header(response, "Location") == "https://example.com/shop?utm_campaign=spring"


# --- url: allowed hosts only ---------------------------------------------------------------------


ALLOWED_TARGETS = {
    "url:https://example.com/a": "https://example.com/a",
    "url:https://sub.example.org/": "https://sub.example.org/",
    "url:https://deep.sub.example.org/x?y=1": "https://deep.sub.example.org/x?y=1",
}
REFUSED_TARGETS = [
    "url:https://evil.example/",
    "url:https://example.com.evil.net/",
    "url:https://evil.net/?x=https://example.com",
    "url:https://xn--exmple-cua.com/",  # punycode of exämple.com: a look-alike
    "url:https://exämple.com/",
    "url:https://example.org/",  # *.example.org allows subdomains only
    "url:https://notexample.org/",
    "url:https://evil.net/.example.org",
    "url:https://example.com@evil.net/",
    "url:javascript:alert(1)",
    "url:ftp://example.com/",
]


def test_url_target_to_an_allowed_host_redirects(handler: Handler) -> None:
    # One table set for all the cases (moto's setup is the slow part); every case is reported.
    answers = {}
    for target in ALLOWED_TARGETS:
        response = handler(event(redirect(target)), FakeContext())
        answers[target] = (response["statusCode"], header(response, "Location"))
    assert answers == {target: (302, location) for target, location in ALLOWED_TARGETS.items()}
    assert sorted(beacon.target for beacon in stored()) == sorted(ALLOWED_TARGETS)


def test_url_target_to_any_other_host_is_not_found_and_records_nothing(handler: Handler) -> None:
    answers = {}
    for target in REFUSED_TARGETS:
        claims = TokenClaims(mode=Mode.PIXEL, target=Ref.parse(target))
        answers[target] = (
            handler(event(redirect(target)), FakeContext())["statusCode"],
            handler(event(path_of(claims)), FakeContext())["statusCode"],
        )
    assert answers == dict.fromkeys(REFUSED_TARGETS, (404, 404))
    assert stored() == []


def test_url_target_with_no_allowed_hosts_is_not_found(
    handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_REDIRECT_HOSTS", "")
    url_plugin.allowed_hosts.cache_clear()
    assert_not_found(handler(event(redirect("url:https://example.com/a")), FakeContext()))
    assert stored() == []


# --- ip entity (inline hook) ---------------------------------------------------------------------


def test_ip_entity_remembers_the_anonymised_addresses(handler: Handler) -> None:
    assert_gif(handler(event(pixel(entity=Ref("ip", "visitor-1"))), FakeContext()))
    first = IpEntity.get("visitor-1", consistent_read=True)
    assert first.addresses == {"203.0.113.0"}
    assert first.first_seen is not None
    assert first.last_seen == first.first_seen
    [beacon] = stored()
    assert beacon.entity == "ip:visitor-1"
    assert beacon.ip == "203.0.113.0"

    assert_gif(handler(event(pixel(entity=Ref("ip", "visitor-1")), ip="198.51.100.23"), FakeContext()))
    second = IpEntity.get("visitor-1", consistent_read=True)
    assert second.addresses == {"203.0.113.0", "198.51.100.0"}
    assert second.first_seen == first.first_seen
    assert second.last_seen > first.last_seen
    assert len(stored()) == 2


def test_ip_entity_expires_with_its_last_hit_like_a_beacon(handler: Handler) -> None:
    # The addresses it remembers are kept as long as its last beacon, not for ever.
    assert_gif(handler(event(pixel(entity=Ref("ip", "visitor-3"))), FakeContext()))
    first = IpEntity.get("visitor-3", consistent_read=True)
    retention = get_settings().retention_days
    assert first.expires == expiry(first.last_seen, retention)
    [beacon] = stored()
    assert abs(first.expires - beacon.expires) <= 1
    assert_gif(handler(event(pixel(entity=Ref("ip", "visitor-3"))), FakeContext()))
    second = IpEntity.get("visitor-3", consistent_read=True)
    assert second.expires == expiry(second.last_seen, retention) >= first.expires


def test_ip_entity_on_a_redirect(handler: Handler) -> None:
    link = create_link("https://example.com/x")
    response = handler(event(redirect(f"link:{link.id}", entity=Ref("ip", "visitor-2"))), FakeContext())
    assert header(response, "Location") == "https://example.com/x"
    assert IpEntity.get("visitor-2", consistent_read=True).addresses == {"203.0.113.0"}


def test_ip_entity_without_an_id_is_created_and_named_in_the_beacon(handler: Handler) -> None:
    assert_gif(handler(event(pixel(entity=Ref("ip"))), FakeContext()))
    [beacon] = stored()
    entity_type, _, entity_id = beacon.entity.partition(":")
    assert entity_type == "ip"
    assert NEW_ID.match(entity_id), beacon.entity
    made = IpEntity.get(entity_id, consistent_read=True)
    assert made.addresses == {"203.0.113.0"}
    assert [entity.id for entity in IpEntity.scan()] == [entity_id]


# --- campaign source -----------------------------------------------------------------------------


def test_unknown_campaign_is_not_found_and_records_nothing(handler: Handler) -> None:
    link = create_link("https://example.com/c")
    assert_not_found(handler(event(pixel(source=Ref("campaign", "nope"))), FakeContext()))
    assert_not_found(
        handler(event(redirect(f"link:{link.id}", source=Ref("campaign", "nope"))), FakeContext())
    )
    assert stored() == []


def test_unknown_campaign_is_recorded_when_the_token_ignores_errors(handler: Handler) -> None:
    link = create_link("https://example.com/c")
    assert_gif(handler(event(pixel(source=Ref("campaign", "later"), ignore_errors=True)), FakeContext()))
    response = handler(
        event(redirect(f"link:{link.id}", source=Ref("campaign", "later"), ignore_errors=True)), FakeContext()
    )
    assert header(response, "Location") == "https://example.com/c"
    assert sorted(beacon.mode for beacon in stored()) == ["pixel", "redirect"]
    assert {beacon.source for beacon in stored()} == {"campaign:later"}


def test_known_campaign_is_recorded_as_the_source(handler: Handler) -> None:
    create_campaign("spring-2025", "Spring sale")
    assert_gif(handler(event(pixel(source=Ref("campaign", "spring-2025"))), FakeContext()))
    [beacon] = stored()
    assert beacon.source == "campaign:spring-2025"


# --- recipient entity (no hook: its figures are folded from its day items) ---------------------


def test_a_recipients_hit_writes_its_beacon_alone_and_leaves_nothing_for_a_hook(handler: Handler) -> None:
    assert_gif(handler(event(pixel(entity=Ref("recipient", "r-1"))), FakeContext()))
    [opened] = stored()
    assert opened.entity == "recipient:r-1"
    registry, settings = runtime.default_registry(), runtime.default_settings()
    # No hook to run from the stream, and no record: its figures come from the stream's
    # registration of the beacon on its day item (test_recipient_figures_moto.py).
    assert apply_deferred_hooks(opened, registry, settings) is False


def test_recipient_without_an_id_gets_one_in_the_beacon(handler: Handler) -> None:
    assert_gif(handler(event(pixel(entity=Ref("recipient"))), FakeContext()))
    [beacon] = stored()
    recipient_id = beacon.entity.removeprefix("recipient:")
    assert NEW_ID.match(recipient_id), beacon.entity
    assert apply_deferred_hooks(beacon, runtime.default_registry(), runtime.default_settings()) is False


class _Applied(Model):
    """A deferred hook's record that keeps the beacons applied to it (a third-party plugin's)."""

    class Meta:
        table_name = "bp-applied"
        region = "us-east-1"

    id = UnicodeAttribute(hash_key=True)
    opens = NumberAttribute(default=0)
    applied = AppliedBeacons(null=True)


def test_a_records_applied_beacons_forget_what_no_redelivery_can_bring_back(aws: dict[str, str]) -> None:
    """update_once keeps the ids applied in the last 26 hours (the stream redelivers a record
    within 24): older ones are dropped by the next write, recent ones still refuse a redelivery."""
    import time

    from webbugger.applied import RETAIN_SECONDS, applying
    from webbugger.ids import new_beacon_id
    from webbugger.plugins import update_once

    _Applied.create_table(read_capacity_units=1, write_capacity_units=1, wait=True)
    now = int(time.time())
    old, recent, new = new_beacon_id(), new_beacon_id(), new_beacon_id()
    _Applied(id="r-applied", opens=2, applied={old: now - RETAIN_SECONDS - 60, recent: now - 60}).save()
    with applying(new):
        assert update_once(_Applied.get("r-applied"), [_Applied.opens.add(1)]) is True
    with applying(recent) as again:
        assert update_once(_Applied.get("r-applied"), [_Applied.opens.add(1)]) is False
    assert again.refused
    stored = _Applied.get("r-applied", consistent_read=True)
    assert stored.opens == 3
    assert set(stored.applied.as_dict()) == {recent, new}
