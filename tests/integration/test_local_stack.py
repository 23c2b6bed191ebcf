"""The local stack end to end: real HTTP to 127.0.0.1, the track function, DynamoDB Local.

Each test sends its own User-Agent and reads back only the beacons carrying it, so the tests
share one DynamoDB Local without seeing each other's beacons.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import pytest
from webbugger import runtime
from webbugger.gif import NO_CACHE_HEADERS, TRANSPARENT_GIF
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import TokenClaims
from webbugger_cli.local.gateway_events import build_event, response_from_result
from webbugger_cli.local.wire import MAX_BODY_BYTES
from webbugger_cli.template import Route

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import RunningStack

DESTINATION = "https://example.org/landing?campaign=local"


class Hit(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def send(
    method: str, url: str, agent: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Hit:
    """One request over a fresh connection; redirects are not followed."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers={"User-Agent": agent, **(headers or {})})
        response = conn.getresponse()
        return Hit(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def agent() -> str:
    """A User-Agent unique to one test, to find its beacons."""
    return f"webbugger-local-test/{uuid.uuid4().hex}"


def flip(text: str, index: int) -> str:
    """``text`` with one base64url character changed."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def token_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1].removesuffix(".gif")


def with_token(url: str, token: str) -> str:
    base, _, last = url.rpartition("/")
    return f"{base}/{token}{'.gif' if last.endswith('.gif') else ''}"


# A sealed token is KID.SEALED; SEALED's first 22 characters are the 16-byte SIV (the tag).
SIV_CHARS = 22


def tamper_payload(url: str) -> str:
    kid, sealed = token_of(url).split(".")
    return with_token(url, f"{kid}.{flip(sealed, (SIV_CHARS + len(sealed)) // 2)}")


def tamper_tag(url: str) -> str:
    kid, sealed = token_of(url).split(".")
    return with_token(url, f"{kid}.{flip(sealed, SIV_CHARS // 2)}")


def truncate(url: str) -> str:
    return with_token(url, token_of(url)[:-5])


# --- the event and the answer, without a database -----------------------------------------------


def test_event_has_api_gateway_payload_2_shape(tmp_path: Path) -> None:
    route = Route("GET", "/p/{token}", "TrackFunction", tmp_path, "app.lambda_handler")
    headers = [("Host", "127.0.0.1:3000"), ("X-Multi", "a"), ("x-multi", "b"), ("Cookie", "c1=1; c2=2")]
    event = build_event(
        route,
        {"token": "abc.gif"},
        "GET",
        "/p/abc.gif?x=1&x=2&y=",
        headers,
        b"\xff\x00",
        "10.0.0.1",
        "HTTP/1.1",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /p/{token}"
    assert event["rawPath"] == "/p/abc.gif"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["headers"] == {"host": "127.0.0.1:3000", "x-multi": "a,b"}
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["pathParameters"] == {"token": "abc.gif"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"
    http_context = event["requestContext"]["http"]
    assert http_context == {
        "method": "GET",
        "path": "/p/abc.gif",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.1",
        "userAgent": "",
    }
    assert event["requestContext"]["stage"] == "$default"
    assert uuid.UUID(event["requestContext"]["requestId"])


def test_function_url_event_is_payload_2_and_not_routed() -> None:
    # As Lambda sends a function URL's requests: whatever the path, routeKey $default and no path
    # parameters, the URL's own host as the domain.
    headers = [("Host", "127.0.0.1:3000"), ("User-Agent", "UA/1")]
    event = build_event(None, {}, "POST", "/anything/at/all?q=1", headers, b"text", "10.0.0.1", "HTTP/1.1")
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "$default"
    assert (event["pathParameters"], event["stageVariables"]) == (None, None)
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/anything/at/all"
    assert event["queryStringParameters"] == {"q": "1"}
    assert event["requestContext"]["domainName"] == "127.0.0.1:3000"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert (event["body"], event["isBase64Encoded"]) == ("text", False)


def test_result_becomes_http_answer() -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "image/gif"},
        "multiValueHeaders": {"X-Many": ["1", "2"]},
        "cookies": ["a=1", "b=2"],
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    answer = response_from_result(result)
    assert answer.status == 201
    assert answer.body == b"\x00\x01"
    assert answer.headers == [
        ("Content-Type", "image/gif"),
        ("X-Many", "1"),
        ("X-Many", "2"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


# --- through HTTP, against DynamoDB Local ---------------------------------------------------------


@pytest.mark.ddblocal
def test_pixel_serves_the_gif_and_stores_a_beacon(local_stack: RunningStack) -> None:
    ua = agent()
    hit = send("GET", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), ua)
    assert hit.status == 200
    assert hit.headers["content-type"] == "image/gif"
    for name, value in NO_CACHE_HEADERS.items():
        assert hit.headers[name.lower()] == value
    assert hit.body == TRANSPARENT_GIF
    [beacon] = local_stack.beacons(ua)
    assert beacon["mode"] == {"S": "pixel"}
    assert beacon["method"] == {"S": "GET"}
    assert beacon["ip"] == {"S": "127.0.0.0"}
    assert "target" not in beacon
    assert int(beacon["expires"]["N"]) > 0


@pytest.mark.ddblocal
def test_redirect_goes_to_the_stored_link_and_stores_a_beacon(local_stack: RunningStack) -> None:
    link_id = local_stack.create_link(DESTINATION)
    ua = agent()
    hit = send("GET", local_stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link_id))), ua)
    assert hit.status == 302
    assert hit.headers["location"] == DESTINATION
    assert hit.headers["cache-control"] == NO_CACHE_HEADERS["Cache-Control"]
    [beacon] = local_stack.beacons(ua)
    assert beacon["mode"] == {"S": "redirect"}
    assert beacon["target"] == {"S": f"link:{link_id}"}


@pytest.mark.ddblocal
def test_head_answers_like_get_without_body_or_beacon(local_stack: RunningStack) -> None:
    ua = agent()
    pixel = send("HEAD", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), ua)
    assert (pixel.status, pixel.headers["content-type"], pixel.body) == (200, "image/gif", b"")
    redirect_url = local_stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "demo")))
    redirect = send("HEAD", redirect_url, ua)
    assert (redirect.status, redirect.headers["location"], redirect.body) == (
        302,
        "https://example.com/",
        b"",
    )
    assert local_stack.beacons(ua) == []


def _pixel(stack: RunningStack) -> str:
    return stack.mint(TokenClaims(mode=Mode.PIXEL))


def _redirect(stack: RunningStack) -> str:
    return stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "demo")))


# A well-formed token signed by a key the stack does not know.
STRANGER = json.dumps({"current": "other", "other": "o" * 40})

BAD_URLS: dict[str, Any] = {
    "pixel, payload tampered": lambda s: tamper_payload(_pixel(s)),
    "pixel, tag tampered": lambda s: tamper_tag(_pixel(s)),
    "pixel, truncated": lambda s: truncate(_pixel(s)),
    "redirect, payload tampered": lambda s: tamper_payload(_redirect(s)),
    "redirect, tag tampered": lambda s: tamper_tag(_redirect(s)),
    "redirect, truncated": lambda s: truncate(_redirect(s)),
    "pixel, unknown key id": lambda s: dataclasses.replace(s, signing_keys=STRANGER).mint(
        TokenClaims(mode=Mode.PIXEL)
    ),
    "redirect, unknown key id": lambda s: dataclasses.replace(s, signing_keys=STRANGER).mint(
        TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "demo"))
    ),
    "pixel token on the redirect route": lambda s: _pixel(s).replace("/p/", "/r/").removesuffix(".gif"),
    "redirect token on the pixel route": lambda s: _redirect(s).replace("/r/", "/p/") + ".gif",
    "pixel path without .gif": lambda s: _pixel(s).removesuffix(".gif"),
    "redirect to a missing link": lambda s: s.mint(
        TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "nope"))
    ),
}


@pytest.mark.ddblocal
@pytest.mark.parametrize("case", list(BAD_URLS))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_invalid_urls_are_404_and_record_nothing(local_stack: RunningStack, case: str, method: str) -> None:
    ua = agent()
    hit = send(method, BAD_URLS[case](local_stack), ua)
    assert hit.status == 404
    assert local_stack.beacons(ua) == []


@pytest.mark.ddblocal
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/x/abc"), ("GET", "/p/a/b.gif"), ("POST", "/p/abc.gif"), ("GET", "/p/")],
)
def test_unknown_routes_are_404_like_api_gateway(local_stack: RunningStack, method: str, path: str) -> None:
    hit = send(method, local_stack.api_url + path, agent())
    assert hit.status == 404
    assert json.loads(hit.body) == {"message": "Not Found"}


@pytest.mark.ddblocal
def test_oversized_body_is_413(local_stack: RunningStack) -> None:
    parts = urlsplit(local_stack.api_url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        # Announce a body over the limit; the server must answer without reading it.
        conn.putrequest("POST", "/p/x.gif")
        conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        conn.endheaders()
        assert conn.getresponse().status == 413
    finally:
        conn.close()


@pytest.mark.ddblocal
def test_handler_failure_is_500_and_the_server_carries_on(
    local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings the core cannot read make the handler itself fail.
    monkeypatch.setenv("IP_ADDRESSES", "perhaps")
    runtime.reset()
    hit = send("GET", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), agent())
    assert hit.status == 500
    assert json.loads(hit.body) == {"message": "Internal Server Error"}

    monkeypatch.setenv("IP_ADDRESSES", "anonymised")
    runtime.reset()
    assert send("GET", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), agent()).status == 200


@pytest.mark.ddblocal
def test_beacons_survive_a_dynamodb_local_restart(local_stack: RunningStack) -> None:
    ua = agent()
    for _ in range(3):
        assert send("GET", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), ua).status == 200
    before = sorted(item["id"]["S"] for item in local_stack.beacons(ua))
    assert len(before) == 3

    local_stack.restart_dynamodb()
    runtime.reset()

    assert sorted(item["id"]["S"] for item in local_stack.beacons(ua)) == before
    # And the stack works on: a new beacon joins them.
    assert send("GET", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), ua).status == 200
    assert len(local_stack.beacons(ua)) == 4


@pytest.mark.ddblocal
def test_the_viewer_address_is_taken_only_from_a_request_with_the_origin_secret(
    local_stack: RunningStack,
) -> None:
    viewer = {"cloudfront-viewer-address": "198.51.100.23:50312", "cloudfront-viewer-country": "NL"}
    forged, genuine = agent(), agent()
    send("GET", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), forged, headers=viewer)
    origin = {"x-webbugger-origin-secret": local_stack.origin_secret}
    send("GET", local_stack.mint(TokenClaims(mode=Mode.PIXEL)), genuine, headers={**viewer, **origin})

    [straight] = local_stack.beacons(forged)
    assert straight["ip"]["S"] == "127.0.0.0" and "country" not in straight
    [through] = local_stack.beacons(genuine)
    assert (through["ip"]["S"], through["country"]["S"]) == ("198.51.100.0", "NL")
