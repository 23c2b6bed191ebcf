"""The track function in-process against moto's DynamoDB, for hostile-input tests and fuzzing.

One stack, shared by the atheris harness (``fuzz/fuzz_track.py``) and the unit suites
(``tests/unit/test_hostile_properties.py``, ``tests/unit/test_open_redirects.py``): template.yaml's
tables, the track function's own environment, a local signing key ring, stored links to the one
good host, and :func:`check_response`, the invariants every answer must keep whatever was sent.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import TypeAlias

    from webbugger.tokens import KeyRing, TokenClaims

    Handler: TypeAlias = Callable[[dict[str, Any], Any], dict[str, Any]]

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
GOOD_HOST = "good.example"
ALLOWED_REDIRECT_HOSTS = f"{GOOD_HOST},*.{GOOD_HOST}"
LINK_URL = f"https://{GOOD_HOST}/landing?a=1"
FALLBACK_URL = f"https://{GOOD_HOST}/expired"
RING_JSON = json.dumps({"current": "k1", "k1": "F" * 48, "k0": "E" * 48})
# Another deployment's ring: same key ids, other secrets.
OTHER_RING_JSON = json.dumps({"current": "k1", "k1": "X" * 48, "k0": "Y" * 48})
# Every Location this stack may answer: the good host or a subdomain, http(s), no userinfo.
ALLOWED_LOCATION = re.compile(r"https?://(?:[a-z0-9-]+\.)*good\.example(?::[0-9]{1,5})?/[\x21-\x7e]*\Z")
# What the stack sets over template.yaml's environment: local keys, the allowed hosts, no caching.
ORIGIN_SECRET = "origin-" + "S" * 40  # what this stack's "CloudFront" would send
_OVERRIDES = {
    "WEBBUGGER_SIGNING_KEYS": RING_JSON,
    "WEBBUGGER_ORIGIN_SECRET": ORIGIN_SECRET,
    "ALLOWED_REDIRECT_HOSTS": ALLOWED_REDIRECT_HOSTS,
    "LOOKUP_CACHE_SECONDS": "0",
}
_FORBIDDEN_IN_HEADERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class FakeContext:
    """The parts of a Lambda context that Powertools reads."""

    function_name: str = "TrackFunction"
    aws_request_id: str = "f0220000-0000-4000-8000-000000000001"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:TrackFunction"


def event(
    raw_path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    source_ip: str = "203.0.113.77",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as API Gateway sends it for ``raw_path``.

    ``query`` is the decoded parameters (API Gateway decodes ``%0d%0a`` before the function)."""
    all_headers = {"host": "t.example", "user-agent": "Mozilla/5.0 (X11) Hostile/1.0", **(headers or {})}
    made: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": urlencode(dict(query or {}), errors="surrogatepass"),
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "hostile",
            "domainName": all_headers["host"],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": all_headers["user-agent"],
            },
            "requestId": "hostile-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:23:00:00 +0000",
            "timeEpoch": 1795474800000,
        },
        "isBase64Encoded": False,
    }
    if query:
        made["queryStringParameters"] = dict(query)
    return made


def response_headers(response: Mapping[str, Any]) -> dict[str, str]:
    """A response's headers (single and multi-value), names in lower case."""
    found = {str(name).lower(): str(value) for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        found[str(name).lower()] = ",".join(str(value) for value in values)
    return found


def check_response(response: Mapping[str, Any]) -> None:
    """What every answer keeps, whatever the request: no 5xx, no control character in a header, and
    a ``Location`` (only on a 302) to the good host only. Raises AssertionError otherwise."""
    status = response["statusCode"]
    if status not in (200, 302, 400, 404, 405):
        raise AssertionError(f"status {status}: {response!r}"[:2000])
    headers = response_headers(response)
    for name, value in headers.items():
        if _FORBIDDEN_IN_HEADERS.search(name) or _FORBIDDEN_IN_HEADERS.search(value):
            raise AssertionError(f"control character in response header {name!r}: {value!r}")
    location = headers.get("location")
    if status == 302:
        if location is None or not ALLOWED_LOCATION.match(location):
            raise AssertionError(f"302 to {location!r}, not a stored or allowed destination")
    elif location:
        raise AssertionError(f"Location {location!r} on a {status}")


@dataclass
class TrackStack:
    """The running stack: the handler, a client of the fake DynamoDB and the stored links."""

    handler: Handler
    beacons_table: str
    dynamodb: Any
    ring: KeyRing
    tables: dict[str, str]
    links: dict[str, str] = field(default_factory=dict)

    def load_function(self, function: str) -> Handler:
        """Another function of template.yaml (its environment added to this one's), loaded as Lambda
        loads it."""
        from webbugger import runtime
        from webbugger_cli.template import load_handler, load_template

        template = load_template(ROOT)
        environment = template.function_environment(function, self.tables)
        environment.pop("SIGNING_SECRET_ARN", None)
        environment.setdefault("TRACKING_BASE_URL", "https://t.example")  # a !Sub in the template
        os.environ.update(environment | _OVERRIDES)
        _forget_caches()
        runtime.default_settings()
        route = next(r for r in template.routes() if r.function == function)
        handler: Handler = load_handler(route.code_uri, route.handler)
        return handler

    def call(self, made: dict[str, Any]) -> dict[str, Any]:
        """Invoke the handler with one event."""
        return self.handler(made, FakeContext())

    def take_beacons(self) -> list[dict[str, Any]]:
        """Every beacon item in the table (DynamoDB's JSON form), deleted from it: each check
        starts from an empty table, and stays quick."""
        items: list[dict[str, Any]] = self.dynamodb.scan(TableName=self.beacons_table)["Items"]
        for item in items:
            key = {"pk": item["pk"], "id": item["id"]}
            self.dynamodb.delete_item(TableName=self.beacons_table, Key=key)
        return items

    def beacon_count(self) -> int:
        """How many beacons the table holds."""
        count: int = self.dynamodb.scan(TableName=self.beacons_table, Select="COUNT")["Count"]
        return count

    def tagged(self, body: object, kid: str = "k1") -> str:
        """A token for any JSON ``body`` under this stack's key ``kid``: what only a key holder could
        make, including payloads that sign() would refuse (a control character in a reference)."""
        return tag_payload(json.dumps(body).encode(), self.ring.keys[kid], kid)

    def token(self, claims: TokenClaims, ring: KeyRing | None = None) -> str:
        """A token for ``claims`` signed with this stack's ring (or ``ring``)."""
        from webbugger.tokens import sign

        return sign(claims, ring or self.ring)


def tag_payload(raw: bytes, key: bytes, kid: str = "k1") -> str:
    """``KID.PAYLOAD.TAG`` for the raw payload bytes, as webbugger.tokens documents the format."""
    payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    mac = hmac.new(key, f"{kid}.{payload}".encode(), hashlib.sha256).digest()[:16]
    return f"{kid}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@contextlib.contextmanager
def track_stack() -> Iterator[TrackStack]:
    """Start moto, create template.yaml's tables and the stored links, load the track function."""
    import boto3
    from moto import mock_aws

    saved = dict(os.environ)
    for name in (
        "SIGNING_SECRET_ARN",
        "ORIGIN_SECRET_ARN",
        "DYNAMODB_ENDPOINT",
        "AWS_PROFILE",
        "TRACKING_HOSTS",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
    )
    try:
        with mock_aws():
            yield _start(boto3.client("dynamodb", region_name=REGION))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _forget_caches()


def _forget_caches() -> None:
    from webbugger import runtime
    from webbugger_plugins import url

    runtime.reset()
    url.allowed_hosts.cache_clear()


def _start(dynamodb: Any) -> TrackStack:
    from datetime import timedelta

    from webbugger import runtime
    from webbugger.models import utcnow
    from webbugger.tokens import KeyRing
    from webbugger_cli.template import load_handler, load_template
    from webbugger_plugins.link import create_link, update_link

    template = load_template(ROOT)
    names = {logical: f"hostile-{logical}" for logical in template.tables()}
    for logical, spec in template.tables().items():
        dynamodb.create_table(TableName=names[logical], **spec)
    environment = template.function_environment("TrackFunction", names)
    environment.pop("SIGNING_SECRET_ARN", None)
    os.environ.update(environment | _OVERRIDES)
    _forget_caches()
    runtime.default_settings()  # binds every model to its table
    # Their short URLs are on: /l/ID is part of what the hostile suites send.
    links = {
        "plain": create_link(LINK_URL, short_url_enabled=True).id,
        "forwarding": create_link(LINK_URL, forward_query=True, short_url_enabled=True).id,
        "expired": create_link(LINK_URL, short_url_enabled=True).id,
    }
    update_link(links["expired"], {"expires_at": utcnow() - timedelta(days=1), "fallback_url": FALLBACK_URL})
    route = next(r for r in template.routes() if r.function == "TrackFunction")
    handler: Handler = load_handler(route.code_uri, route.handler)
    return TrackStack(handler, names["BeaconsTable"], dynamodb, KeyRing.from_json(RING_JSON), names, links)
