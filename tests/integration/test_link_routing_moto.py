"""A/B splits through the track function, in-process against moto: a thousand simulated visitors
split within 3 points of the weights, each sees the same variant again, every click's beacon
records its variant, and the service layer's clicks per variant add the beacons up; and a link
stored before short URLs were opt-in."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import moto_stack
import pytest
from moto import mock_aws
from webbugger import runtime
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.runtime import default_registry
from webbugger.service import links
from webbugger.service.stats import variant_clicks
from webbugger.tokens import KeyRing, TokenClaims

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto_stack import Handler

RING_JSON = json.dumps({"current": "k1", "k1": "S" * 48})
RING = KeyRing.from_json(RING_JSON)
BASE = "https://t.example"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
WEIGHTS = {"a": 50, "b": 30, "c": 20}
VISITORS = 1000
CLICKED = 200


# Loaded at collection: template.yaml parsed once for the fixture and the test.
template_names = moto_stack.template_table_names("split-")


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Handler]:
    moto_stack.fake_aws_environment(monkeypatch)
    moto_stack.reset_caches()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=moto_stack.REGION)
        moto_stack.create_template_tables(dynamodb, template_names, streams=False)
        moto_stack.set_function_environment(monkeypatch, template_names, "TrackFunction")
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        runtime.default_settings()  # binds every model to its table
        yield moto_stack.load_track_handler()
        moto_stack.reset_caches()


def split_link(link_id: str) -> str:
    split = {
        "variants": [
            {"name": name, "url": f"https://example.com/{name}", "weight": weight}
            for name, weight in WEIGHTS.items()
        ]
    }
    links.create_link(default_registry(), "https://example.com/default", link_id, {"split": split})
    return link_id


def visit(handler: Handler, path: str, ip: str, user_agent: str = DESKTOP, method: str = "GET") -> str:
    event = moto_stack.http_event(
        path, method=method, headers={"user-agent": user_agent}, source_ip=ip, request_id=f"r-{ip}"
    )
    answer: dict[str, Any] = handler(event, moto_stack.FakeContext())
    assert answer["statusCode"] == 302, answer
    location: str = answer["headers"]["Location"]
    return location.removeprefix("https://example.com/")


def redirect_path(claims: TokenClaims) -> str:
    return tracking_url(BASE, claims, RING).removeprefix(BASE)


def test_a_thousand_visitors_split_by_the_weights_and_see_their_variant_again(
    handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Which visitors get which variant is a hash of the link id: like any fair draw, 1,000
    # visitors land within 3 points for most links, not all (tests/unit/test_routing.py measures
    # that over 200 links). This link's id is one of those.
    link_id = split_link("launch")
    path = redirect_path(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link_id)))
    # Visitors differ by network (the address is kept to its /24) and by browser version.
    visitors = [(f"198.{18 + n // 250}.{n % 250}.7", f"{DESKTOP} v{n % 7}") for n in range(VISITORS)]
    # The first CLICKED visitors GET (a beacon each); the others' visits, and every second visit,
    # are HEADs (a link checker's, a prefetch's): answered by the same decision, nothing stored,
    # and a tenth of a GET's time under moto.
    first = [
        visit(handler, path, ip, agent, method="GET" if n < CLICKED else "HEAD")
        for n, (ip, agent) in enumerate(visitors)
    ]
    again = [visit(handler, path, ip, agent, method="HEAD") for ip, agent in visitors]
    assert again == first
    shares = Counter(first)
    for name, weight in WEIGHTS.items():
        assert abs(100 * shares[name] / VISITORS - weight) <= 3, shares

    # Clicks per variant are the admin API's to read: the track function is not given the counters.
    moto_stack.set_function_environment(monkeypatch, template_names, "AdminFunction")
    runtime.reset()
    counted = variant_clicks(default_registry(), link_id)
    assert {v.name: v.clicks for v in counted.variants} == dict(Counter(first[:CLICKED]))
    assert [(v.url, v.weight) for v in counted.variants] == [
        (f"https://example.com/{name}", weight) for name, weight in WEIGHTS.items()
    ]


def test_a_recipient_keeps_their_variant_from_any_device_and_the_beacon_names_it(handler: Handler) -> None:
    link_id = split_link("autumn")
    seen = {}
    for recipient in ("alice@example.com", "bob@example.com", "carol@example.com", "dan@example.com"):
        claims = TokenClaims(
            mode=Mode.REDIRECT, target=Ref("link", link_id), entity=Ref("recipient", recipient)
        )
        path = redirect_path(claims)
        answers = {
            visit(handler, path, ip, agent) for ip, agent in [("192.0.2.1", DESKTOP), ("203.0.113.9", "x")]
        }
        assert len(answers) == 1, (recipient, answers)
        seen[recipient] = answers.pop()
    items = boto3.client("dynamodb", region_name=moto_stack.REGION).scan(
        TableName="split-BeaconsTable", ConsistentRead=True
    )["Items"]
    assert len(items) == 8
    assert Counter(item["var"]["S"] for item in items) == Counter(
        variant for variant in seen.values() for _ in range(2)
    )
    assert all("rule" not in item for item in items)


def test_a_link_stored_before_short_urls_were_opt_in_has_none(handler: Handler) -> None:
    """An item written before the field existed (no ``short`` attribute) reads as off: /l/ID is
    404 and records nothing, while its signed URLs still work."""
    client = boto3.client("dynamodb", region_name=moto_stack.REGION)
    item = {
        "id": {"S": "old-link"},
        "url": {"S": "https://example.com/old"},
        "created_at": {"S": "2026-01-01T00:00:00.000000+0000"},
    }
    client.put_item(TableName="split-LinksTable", Item=item)
    event = moto_stack.http_event(
        "/l/old-link", headers={"user-agent": DESKTOP}, source_ip="192.0.2.7", request_id="old"
    )
    assert handler(event, moto_stack.FakeContext())["statusCode"] == 404
    assert client.scan(TableName="split-BeaconsTable")["Items"] == []
    signed = redirect_path(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "old-link")))
    assert visit(handler, signed, "192.0.2.7") == "old"
    # The same item with the attribute set (as `link update --short-url` writes it) answers.
    client.put_item(
        TableName="split-LinksTable", Item=item | {"id": {"S": "old-on"}, "short": {"BOOL": True}}
    )
    assert visit(handler, "/l/old-on", "192.0.2.7") == "old"


def test_unsigned_short_url_hits_never_use_up_a_capped_links_hits(handler: Handler) -> None:
    """Issue 17, item 5: three unsigned hits on /l/ID of a --max-hits 3 link with its short URL on
    leave the recipients' signed URLs working; the cap counts only the URLs the owner minted."""
    links.create_link(
        default_registry(), "https://example.com/offer", "capped", {"max_hits": 3, "short_url_enabled": True}
    )
    client = boto3.client("dynamodb", region_name=moto_stack.REGION)

    def claimed() -> int:
        item = client.get_item(TableName="split-LinksTable", Key={"id": {"S": "capped"}}, ConsistentRead=True)
        return int(item["Item"].get("hits", {"N": "0"})["N"])

    def status(path: str, ip: str) -> int:
        event = moto_stack.http_event(path, headers={"user-agent": DESKTOP}, source_ip=ip, request_id=ip)
        code: int = handler(event, moto_stack.FakeContext())["statusCode"]
        return code

    assert [status("/l/capped", f"198.51.100.{n}") for n in range(3)] == [302, 302, 302]
    assert claimed() == 0
    signed = redirect_path(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "capped")))
    assert [status(signed, f"192.0.2.{n}") for n in range(4)] == [302, 302, 302, 404]
    assert claimed() == 3
    # Spent by the signed URLs, the link refuses its short URL too.
    assert status("/l/capped", "198.51.100.9") == 404
    assert len(client.scan(TableName="split-BeaconsTable")["Items"]) == 6
