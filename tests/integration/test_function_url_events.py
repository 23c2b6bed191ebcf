"""The track function behind its other front door: CloudFront's origin requests to its function URL.

A function URL event is payload 2.0 like the HTTP API's, but it is not routed: every path and method
arrives, with ``routeKey`` ``$default``, no path parameters, the URL's own domain and CloudFront's
forwarding headers, and a body base64-encoded when it is not text. The event comes from
tests/events/function_url_via_cloudfront.json (the documented shape, CloudFront's headers as its
origin request policy forwards them); the handler runs in-process against moto, as in
test_handler_moto.py, and must answer it as it answers the HTTP API.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import moto_stack
import pytest
from moto import mock_aws
from webbugger import runtime
from webbugger.gif import NO_CACHE_HEADERS, TRANSPARENT_GIF
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.request import ORIGIN_SECRET_HEADER
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_plugins.link import create_link

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto_stack import Handler

ROOT = Path(__file__).resolve().parents[2]
URL_EVENT = json.loads((ROOT / "tests" / "events" / "function_url_via_cloudfront.json").read_text())
RING_JSON = json.dumps({"current": "k1", "k1": "U" * 48})
RING = KeyRing.from_json(RING_JSON)
ORIGIN_SECRET = "origin-secret-" + "o" * 34
DESTINATION = "https://example.com/offer"


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Handler]:
    """The track handler with template.yaml's tables and environment, the origin secret CloudFront sends."""
    moto_stack.fake_aws_environment(monkeypatch)
    moto_stack.reset_caches()
    with mock_aws():
        names = moto_stack.template_table_names("url-")
        moto_stack.create_template_tables(boto3.client("dynamodb", region_name=moto_stack.REGION), names)
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction")
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        monkeypatch.setenv("WEBBUGGER_ORIGIN_SECRET", ORIGIN_SECRET)
        runtime.default_settings()
        create_link(DESTINATION, "offer", short_url_enabled=True)
        yield moto_stack.load_track_handler()
        moto_stack.reset_caches()


def url_event(path: str, method: str = "GET", **changes: Any) -> dict[str, Any]:
    """The function URL event for ``method path``, as CloudFront's signed origin request arrives."""
    event: dict[str, Any] = copy.deepcopy(URL_EVENT)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"][ORIGIN_SECRET_HEADER] = ORIGIN_SECRET
    event.update(changes)
    return event


def path_of(claims: TokenClaims) -> str:
    return tracking_url("https://t.example", claims, RING).removeprefix("https://t.example")


def stored() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name=moto_stack.REGION).scan(
        TableName="url-BeaconsTable"
    )["Items"]
    return items


def test_a_pixel_through_the_function_url_is_recorded_with_cloudfronts_viewer(handler: Handler) -> None:
    answer = handler(url_event(path_of(TokenClaims(mode=Mode.PIXEL))), moto_stack.FakeContext())
    assert answer["statusCode"] == 200
    assert answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == TRANSPARENT_GIF
    assert answer["headers"] == {**NO_CACHE_HEADERS, "Content-Type": "image/gif"}
    [beacon] = stored()
    # The viewer CloudFront saw, not CloudFront's own address (the request carries the origin secret).
    assert beacon["ip"] == {"S": "198.51.100.0"}
    assert beacon["country"] == {"S": "DK"}
    assert beacon["ua"]["S"].startswith("Mozilla/5.0 (Macintosh")
    assert beacon["lang"] == {"S": "da-DK,da;q=0.9"}


def test_redirects_and_short_links_through_the_function_url(handler: Handler) -> None:
    for path in (path_of(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "offer"))), "/l/offer"):
        for method in ("GET", "HEAD"):
            answer = handler(url_event(path, method), moto_stack.FakeContext())
            assert (answer["statusCode"], answer["headers"]["Location"]) == (302, DESTINATION), path
    assert len(stored()) == 2  # a HEAD is answered, not recorded


# What the HTTP API never sends (no such route), and a function URL sends like anything else.
NOT_ROUTES = [
    ("GET", "/"),
    ("GET", "/favicon.ico"),
    ("GET", "/robots.txt"),
    ("GET", "/p/"),
    ("GET", "/p/a/b.gif"),
    ("GET", "/x/TOKEN"),
    ("POST", "/p/TOKEN.gif"),
    ("OPTIONS", "/r/TOKEN"),
    ("DELETE", "/l/offer"),
]


def test_what_only_a_function_url_passes_on_is_the_track_404(handler: Handler) -> None:
    body = base64.b64encode(b"\x00\xffbinary").decode()
    for method, path in NOT_ROUTES:
        answer = handler(url_event(path, method, body=body, isBase64Encoded=True), moto_stack.FakeContext())
        assert (answer["statusCode"], answer["body"]) == (404, "Not Found"), (method, path)
        assert answer["headers"] == {**NO_CACHE_HEADERS, "Content-Type": "text/plain"}
    assert stored() == []


def test_a_body_is_ignored_and_both_front_doors_get_the_same_answer(handler: Handler) -> None:
    path = path_of(TokenClaims(mode=Mode.PIXEL, source=Ref("campaign", "x"), ignore_errors=True))
    with_body = url_event(path, body=base64.b64encode(b"\x89PNG").decode(), isBase64Encoded=True)
    through_url = handler(with_body, moto_stack.FakeContext())
    through_api = handler(
        moto_stack.http_event(
            path, headers=dict(URL_EVENT["headers"]), source_ip="130.176.89.12", request_id="r"
        ),
        moto_stack.FakeContext(),
    )
    assert through_url == through_api
    assert through_url["statusCode"] == 200
    assert len(stored()) == 2
