"""The track function end to end, in-process, against moto's DynamoDB and Secrets Manager.

Tables come from template.yaml; the key ring comes from Secrets Manager through Powertools
parameters, as in AWS; the handler is loaded from its CodeUri as Lambda loads it.
"""

from __future__ import annotations

import base64
import json
import os
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
import moto_stack
import pytest
from legacy_tokens import signed_before_sealing
from moto import mock_aws
from moto_stack import Handler
from webbugger import runtime
from webbugger.gif import NO_CACHE_HEADERS, TRANSPARENT_GIF
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.observability import logger
from webbugger.refs import Ref
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_plugins.link import create_link

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BEACONS = "test-beacons"
LINKS = "test-links"
RING_JSON = json.dumps({"current": "k1", "k1": "K" * 48})
RING = KeyRing.from_json(RING_JSON)
VISITOR_IP = "203.0.113.77"
UA = "Mozilla/5.0 (Windows NT 10.0) TestMail/2.1"
DESTINATION = "https://example.com/landing?utm_source=mail"


FakeContext = partial(moto_stack.FakeContext, aws_request_id="c0ffee00-0000-4000-8000-000000000001")
reset_caches = moto_stack.reset_caches


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Fake AWS with the stack's tables and signing secret; the function's environment set."""
    moto_stack.fake_aws_environment(monkeypatch)
    reset_caches()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        names = moto_stack.template_table_names("test-") | {"BeaconsTable": BEACONS, "LinksTable": LINKS}
        moto_stack.create_template_tables(dynamodb, names)
        # The function's own environment, as template.yaml declares it, tables resolved.
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction")
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        runtime.default_settings()  # binds every model to its table
        yield {"beacons": BEACONS, "links": LINKS}
        reset_caches()


@pytest.fixture
def handler(aws: dict[str, str]) -> Handler:
    return moto_stack.load_track_handler()


def event(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for ``path``, shaped like ``sam local generate-event``'s."""
    return moto_stack.http_event(
        path,
        method=method,
        headers={"user-agent": UA, "accept-language": "en-GB", **(headers or {})},
        source_ip=VISITOR_IP,
        request_id="req-1",
    )


def pixel_path(claims: TokenClaims | None = None) -> str:
    url = tracking_url("https://t.example", claims or TokenClaims(mode=Mode.PIXEL), RING)
    return url.removeprefix("https://t.example")


def redirect_path(target: Ref) -> str:
    url = tracking_url("https://t.example", TokenClaims(mode=Mode.REDIRECT, target=target), RING)
    return url.removeprefix("https://t.example")


def legacy_path(claims: TokenClaims) -> str:
    """The path of a URL minted before tokens were sealed (the claims in clear)."""
    token = signed_before_sealing(claims, RING)
    return f"/p/{token}.gif" if claims.mode is Mode.PIXEL else f"/r/{token}"


def beacons() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=BEACONS)[
        "Items"
    ]
    return items


def header(response: dict[str, Any], name: str) -> str:
    headers = {key.lower(): value for key, value in response["headers"].items()}
    value: str = headers[name.lower()]
    return value


def assert_no_cache(response: dict[str, Any]) -> None:
    for name, value in NO_CACHE_HEADERS.items():
        assert header(response, name) == value


# --- pixels -----------------------------------------------------------------------------------


def test_pixel_answers_the_gif_and_records_one_beacon(handler: Handler) -> None:
    response = handler(event(pixel_path()), FakeContext())

    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == TRANSPARENT_GIF
    assert header(response, "Content-Type") == "image/gif"
    assert_no_cache(response)

    [item] = beacons()
    assert item["mode"] == {"S": "pixel"}
    assert item["method"] == {"S": "GET"}
    assert item["ip"] == {"S": "203.0.113.0"}
    assert item["ua"] == {"S": UA}
    assert item["lang"] == {"S": "en-GB"}
    assert len(item["id"]["S"]) == 26
    assert "target" not in item  # sparse: no index entry for a beacon without a target
    expected_expiry = time.time() + 400 * 86400
    assert abs(float(item["expires"]["N"]) - expected_expiry) < 120


def test_pixel_records_its_references(handler: Handler) -> None:
    link = create_link(DESTINATION)
    claims = TokenClaims(mode=Mode.PIXEL, target=Ref("link", link.id))
    response = handler(event(pixel_path(claims)), FakeContext())
    assert response["statusCode"] == 200
    [item] = beacons()
    assert item["target"] == {"S": f"link:{link.id}"}


def test_each_pixel_load_is_a_beacon(handler: Handler) -> None:
    path = pixel_path()
    for _ in range(3):
        assert handler(event(path), FakeContext())["statusCode"] == 200
    assert len({item["id"]["S"] for item in beacons()}) == 3


def test_pixel_head_answers_without_recording(handler: Handler) -> None:
    response = handler(event(pixel_path(), method="HEAD"), FakeContext())
    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "image/gif"
    assert beacons() == []


# --- URLs: sealed now, signed in clear before ------------------------------------------------

ALICE = Ref("recipient", "alice@example.com")


def test_a_sealed_url_names_nobody_yet_its_beacon_records_who(handler: Handler) -> None:
    link = create_link(DESTINATION)
    path = pixel_path(TokenClaims(mode=Mode.PIXEL, target=Ref("link", link.id), entity=ALICE))
    sealed = path.removeprefix("/p/").removesuffix(".gif").split(".")[1]
    raw = base64.urlsafe_b64decode(sealed + "==")
    assert not [text for text in ("alice", link.id) if text in path or text.encode() in raw]
    assert handler(event(path), FakeContext())["statusCode"] == 200
    [item] = beacons()
    assert (item["target"], item["entity"]) == ({"S": f"link:{link.id}"}, {"S": str(ALICE)})


def test_urls_minted_before_tokens_were_sealed_still_work(handler: Handler) -> None:
    link = create_link(DESTINATION)
    target = Ref("link", link.id)
    pixel = handler(
        event(legacy_path(TokenClaims(mode=Mode.PIXEL, target=target, entity=ALICE))), FakeContext()
    )
    redirect = handler(
        event(legacy_path(TokenClaims(mode=Mode.REDIRECT, target=target, entity=ALICE))), FakeContext()
    )
    assert pixel["statusCode"] == 200
    assert (redirect["statusCode"], header(redirect, "Location")) == (302, DESTINATION)
    recorded = sorted((item["mode"]["S"], item["target"]["S"], item["entity"]["S"]) for item in beacons())
    assert recorded == [("pixel", str(target), str(ALICE)), ("redirect", str(target), str(ALICE))]


def test_a_key_rotation_keeps_sent_urls_until_their_key_leaves_the_ring(handler: Handler) -> None:
    sealed, legacy = pixel_path(), legacy_path(TokenClaims(mode=Mode.PIXEL))

    def rotate(ring: dict[str, str]) -> KeyRing:
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.put_secret_value(SecretId=os.environ["SIGNING_SECRET_ARN"], SecretString=json.dumps(ring))
        reset_caches()  # as the secret's cache expiring would
        return KeyRing.from_json(json.dumps(ring))

    k2 = "k2-" + "R" * 45
    both = rotate({"current": "k2", "k1": "K" * 48, "k2": k2})
    new = tracking_url("https://t.example", TokenClaims(mode=Mode.PIXEL), both).removeprefix(
        "https://t.example"
    )
    assert new.startswith("/p/k2.")  # only the current key seals
    assert [handler(event(path), FakeContext())["statusCode"] for path in (sealed, legacy, new)] == [200] * 3
    rotate({"current": "k2", "k2": k2})  # k1 removed: its URLs, sealed or not, are retired
    assert [handler(event(path), FakeContext())["statusCode"] for path in (sealed, legacy, new)] == [
        404,
        404,
        200,
    ]
    assert len(beacons()) == 4


# --- redirects --------------------------------------------------------------------------------


def test_redirect_sends_the_visitor_to_the_stored_link_and_records_it(handler: Handler) -> None:
    link = create_link(DESTINATION)
    response = handler(event(redirect_path(Ref("link", link.id))), FakeContext())

    assert response["statusCode"] == 302
    assert header(response, "Location") == DESTINATION == link.url
    assert_no_cache(response)
    [item] = beacons()
    assert item["mode"] == {"S": "redirect"}
    assert item["target"] == {"S": f"link:{link.id}"}
    assert item["ip"] == {"S": "203.0.113.0"}


def test_redirect_to_a_link_put_directly(handler: Handler) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=LINKS,
        Item={
            "id": {"S": "handmade"},
            "url": {"S": "https://example.org/x"},
            "created_at": {"S": "2025-01-01T00:00:00.000000+0000"},
        },
    )
    response = handler(event(redirect_path(Ref("link", "handmade"))), FakeContext())
    assert response["statusCode"] == 302
    assert header(response, "Location") == "https://example.org/x"
    assert len(beacons()) == 1


def test_redirect_head_answers_without_recording(handler: Handler) -> None:
    link = create_link(DESTINATION)
    response = handler(event(redirect_path(Ref("link", link.id)), method="HEAD"), FakeContext())
    assert response["statusCode"] == 302
    assert header(response, "Location") == DESTINATION
    assert beacons() == []


def test_disabled_link_is_not_found(handler: Handler) -> None:
    link = create_link(DESTINATION)
    link.update(actions=[type(link).disabled.set(True)])
    response = handler(event(redirect_path(Ref("link", link.id))), FakeContext())
    assert response["statusCode"] == 404
    assert beacons() == []


# --- invalid requests: 404, nothing recorded --------------------------------------------------


def tampered(path: str) -> str:
    """``path`` with one character of its sealed claims changed (past the 22 of the SIV)."""
    prefix, _, token = path.rpartition("/")
    kid, sealed = token.removesuffix(".gif").split(".")
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    suffix = ".gif" if token.endswith(".gif") else ""
    return f"{prefix}/{kid}.{flipped}{suffix}"


def invalid_paths() -> dict[str, Callable[[], str]]:
    other_ring = KeyRing.from_json(json.dumps({"current": "k1", "k1": "Z" * 48}))
    return {
        "forged pixel": lambda: (
            "/p/" + tracking_url("https://t", TokenClaims(mode=Mode.PIXEL), other_ring).rsplit("/", 1)[1]
        ),
        "tampered pixel": lambda: tampered(pixel_path()),
        "tampered pixel of an earlier release": lambda: legacy_path(TokenClaims(mode=Mode.PIXEL)).replace(
            ".", ".A", 1
        ),
        "tampered redirect": lambda: tampered(redirect_path(Ref("link", create_link(DESTINATION).id))),
        "garbage pixel": lambda: "/p/hello.gif",
        "pixel without .gif": lambda: pixel_path().removesuffix(".gif"),
        "pixel token on redirect route": lambda: (
            "/r/" + pixel_path().removeprefix("/p/").removesuffix(".gif")
        ),
        "redirect token on pixel route": lambda: (
            "/p/" + redirect_path(Ref("link", create_link(DESTINATION).id)).removeprefix("/r/") + ".gif"
        ),
        "unknown link": lambda: redirect_path(Ref("link", "nosuchid")),
        "unknown target type": lambda: redirect_path(Ref("page", "1")),
    }


@pytest.mark.parametrize("case", list(invalid_paths()))
def test_invalid_requests_are_not_found_and_record_nothing(case: str, handler: Handler) -> None:
    path = invalid_paths()[case]()
    response = handler(event(path), FakeContext())
    assert response["statusCode"] == 404
    assert response["body"] == "Not Found"
    assert "location" not in {key.lower() for key in response["headers"]}
    assert_no_cache(response)
    assert beacons() == []


def test_unrouted_path_is_not_found(handler: Handler) -> None:
    response = handler(event("/x/" + pixel_path().rsplit("/", 1)[1]), FakeContext())
    assert response["statusCode"] == 404
    assert beacons() == []


# --- fail open --------------------------------------------------------------------------------


def spilled(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The "beacon write failed" records, as the function's JSON log lines."""
    lines = [
        json.loads(logger.registered_formatter.format(record))
        for record in caplog.records
        if record.getMessage() == "beacon write failed"
    ]
    caplog.clear()
    return lines


def test_a_missing_beacons_table_still_answers_and_spills_the_beacon(
    handler: Handler, caplog: pytest.LogCaptureFixture
) -> None:
    link = create_link(DESTINATION)
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName=BEACONS)
    caplog.clear()

    pixel_response = handler(event(pixel_path()), FakeContext())
    assert pixel_response["statusCode"] == 200
    assert base64.b64decode(pixel_response["body"]) == TRANSPARENT_GIF
    assert header(pixel_response, "Content-Type") == "image/gif"
    [pixel_log] = spilled(caplog)

    redirect_response = handler(event(redirect_path(Ref("link", link.id))), FakeContext())
    assert redirect_response["statusCode"] == 302
    assert header(redirect_response, "Location") == DESTINATION
    [redirect_log] = spilled(caplog)

    assert pixel_log["level"] == "ERROR"
    assert "ResourceNotFoundException" in pixel_log["error"]
    pixel_beacon = pixel_log["spilled_beacon"]
    assert len(pixel_beacon["id"]) == 26
    assert pixel_beacon["mode"] == "pixel"
    assert pixel_beacon["ip"] == "203.0.113.0"
    assert pixel_beacon["user_agent"] == UA
    assert pixel_beacon["expires"] > time.time() + 399 * 86400
    redirect_beacon = redirect_log["spilled_beacon"]
    assert redirect_beacon["mode"] == "redirect"
    assert redirect_beacon["target"] == f"link:{link.id}"
    assert redirect_beacon["id"] != pixel_beacon["id"]
