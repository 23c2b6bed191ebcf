"""The admin API end to end, through the local stack's admin server (template.yaml's AdminApi,
served without SigV4 locally) and the tracking server it mints URLs for.

Each test uses its own link ids and User-Agent, so tests share one DynamoDB Local.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import pytest
from webbugger.gif import TRANSPARENT_GIF
from webbugger.tokens import verify

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

WAIT_S = 15.0


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    method: str,
    url: str,
    payload: Any = None,
    *,
    agent: str = "webbugger-admin-test",
    query: dict[str, Any] | None = None,
) -> Answer:
    """One request over a fresh connection; redirects are not followed."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if query:
            target += ("&" if "?" in target else "?") + urlencode(
                {k: v for k, v in query.items() if v is not None}
            )
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"User-Agent": agent}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def new_id(prefix: str = "a") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def agent() -> str:
    return f"webbugger-admin-test/{uuid.uuid4().hex}"


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def create(stack: RunningStack, **fields: Any) -> dict[str, Any]:
    answer = call("POST", f"{stack.admin_url}/links", fields)
    assert answer.status == 201, answer.body
    created: dict[str, Any] = answer.json()
    return created


def assert_error(answer: Answer, status: int, code: str | None = None) -> None:
    assert answer.status == status, answer.body
    error = answer.json()["error"]
    assert isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code, error


# --- links ------------------------------------------------------------------------------------


def test_create_and_get_a_link(local_stack: RunningStack) -> None:
    link_id = new_id()
    expires = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    created = create(
        local_stack,
        url="https://bücher.example/über?a=1",
        id=link_id,
        utm={"utm_source": "news"},
        tags=["b", "a"],
        max_hits=10,
        expires_at=expires.isoformat(),
        forward_query=True,
    )
    assert created["id"] == link_id
    assert created["url"] == "https://xn--bcher-kva.example/%C3%BCber?a=1"
    assert (created["short_url_enabled"], created["short_url"]) == (False, None)  # opt-in
    assert created["utm"] == {"utm_source": "news"}
    assert created["tags"] == ["a", "b"]
    assert created["max_hits"] == 10
    assert created["hits"] == 0
    assert created["forward_query"] is True
    assert created["disabled"] is False
    assert datetime.fromisoformat(created["expires_at"]) == expires

    fetched = call("GET", f"{local_stack.admin_url}/links/{link_id}")
    assert fetched.status == 200
    assert fetched.json() == created


def test_a_random_id_when_none_is_given(local_stack: RunningStack) -> None:
    created = create(local_stack, url="https://example.org/")
    assert len(created["id"]) == 8


def test_an_existing_id_is_a_conflict(local_stack: RunningStack) -> None:
    link_id = new_id()
    create(local_stack, url="https://example.org/", id=link_id)
    again = call("POST", f"{local_stack.admin_url}/links", {"url": "https://example.com/", "id": link_id})
    assert_error(again, 409, "link_exists")
    # The first link is untouched.
    assert call("GET", f"{local_stack.admin_url}/links/{link_id}").json()["url"] == "https://example.org/"


@pytest.mark.parametrize(
    "payload",
    [
        {"url": "javascript:alert(1)"},
        {"url": "https://exa mple.org/"},
        {"url": "ftp://example.org/"},
        {"url": "https://user@example.org/"},
        {"url": "https://example.org/", "fallback_url": "not a url"},
        {"url": "https://example.org/", "utm": {"utm_nope": "x"}},
        {"url": "https://example.org/", "max_hits": 0},
        {"url": "https://example.org/", "id": "has space"},
        {"url": "https://example.org/", "expires_at": "2030-01-01T00:00:00"},  # no time zone
        {"url": "https://example.org/", "expires_at": "2020-01-01T00:00:00Z"},  # expired already
        {
            "url": "https://example.org/",
            "valid_from": "2031-01-01T00:00:00Z",
            "expires_at": "2030-01-01T00:00:00Z",
        },
        {"url": "https://example.org/", "surprise": True},
        {},
    ],
)
def test_bad_links_are_refused_with_400(local_stack: RunningStack, payload: dict[str, Any]) -> None:
    answer = call("POST", f"{local_stack.admin_url}/links", payload)
    assert_error(answer, 400)


@pytest.mark.parametrize(
    "body",
    [b"{nope", b'{"url":' + b"[" * 50_000 + b"]" * 50_000 + b"}", b'{"max_hits":' + b"9" * 5000 + b"}"],
    ids=["not json", "deep nesting", "5000 digits"],  # json.loads: RecursionError, ValueError
)
def test_a_body_that_is_not_json_is_a_400(local_stack: RunningStack, body: bytes) -> None:
    parts = urlsplit(local_stack.admin_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", "/links", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 400, response.read()
    finally:
        conn.close()


def test_unknown_links_are_404(local_stack: RunningStack) -> None:
    admin = local_stack.admin_url
    assert_error(call("GET", f"{admin}/links/{new_id()}"), 404, "not_found")
    assert_error(call("PATCH", f"{admin}/links/{new_id()}", {"disabled": True}), 404)
    assert_error(call("POST", f"{admin}/links/{new_id()}/disable"), 404)
    assert_error(call("GET", f"{admin}/links/not%20an%20id"), 404)


def test_list_links_page_by_page(local_stack: RunningStack) -> None:
    made = {create(local_stack, url="https://example.org/", id=new_id("p"))["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(1000):  # bounded: the session stores a few hundred links at most
        page = call("GET", f"{local_stack.admin_url}/links", query={"limit": 2, "cursor": cursor})
        assert page.status == 200, page.body
        data = page.json()
        assert len(data["links"]) <= 2
        seen += [link["id"] for link in data["links"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert made <= set(seen)
    assert len(seen) == len(set(seen))


def test_a_bad_cursor_is_a_400(local_stack: RunningStack) -> None:
    for cursor in ("%%%", "bm90IGpzb24", "eyJpZCI6IDF9"):
        answer = call("GET", f"{local_stack.admin_url}/links?cursor={cursor}")
        assert_error(answer, 400)
    assert_error(call("GET", f"{local_stack.admin_url}/links", query={"limit": 0}), 400)
    assert_error(call("GET", f"{local_stack.admin_url}/beacons", query={"cursor": "x"}), 400)


def test_update_a_link(local_stack: RunningStack) -> None:
    link_id = new_id()
    create(local_stack, url="https://example.org/", id=link_id, tags=["x"], max_hits=5)
    answer = call(
        "PATCH",
        f"{local_stack.admin_url}/links/{link_id}",
        {
            "url": "https://Example.COM/neu-é",
            "tags": None,
            "max_hits": None,
            "fallback_url": "https://example.net/",
        },
    )
    assert answer.status == 200, answer.body
    updated = answer.json()
    assert updated["url"] == "https://example.com/neu-%C3%A9"
    assert updated["tags"] == []
    assert updated["max_hits"] is None
    assert updated["fallback_url"] == "https://example.net/"
    assert call("GET", f"{local_stack.admin_url}/links/{link_id}").json() == updated

    bad = call("PATCH", f"{local_stack.admin_url}/links/{link_id}", {"url": "mailto:x@example.org"})
    assert_error(bad, 400, "bad_url")
    assert_error(call("PATCH", f"{local_stack.admin_url}/links/{link_id}", {"url": None}), 400)


def test_disable_a_link(local_stack: RunningStack) -> None:
    link_id = new_id()
    create(local_stack, url="https://example.org/", id=link_id)
    answer = call("POST", f"{local_stack.admin_url}/links/{link_id}/disable")
    assert answer.status == 200, answer.body
    assert answer.json()["disabled"] is True
    assert call("GET", f"{local_stack.api_url}/l/{link_id}").status == 404


# --- link rules on the tracking routes ----------------------------------------------------------


def test_the_short_url_redirects_without_a_token(local_stack: RunningStack) -> None:
    created = create(
        local_stack,
        url="https://example.org/short",
        id=new_id(),
        utm={"utm_medium": "sms"},
        short_url_enabled=True,
    )
    hit = call("GET", created["short_url"])
    assert hit.status == 302, hit.body
    assert hit.headers["location"] == "https://example.org/short?utm_medium=sms"
    assert call("HEAD", created["short_url"]).status == 302
    assert call("GET", f"{local_stack.api_url}/l/{new_id()}").status == 404


def expire(stack: RunningStack, link: dict[str, Any]) -> dict[str, Any]:
    """``link`` expired a minute ago (a link is not created expired: 400)."""
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    answer = call("PATCH", f"{stack.admin_url}/links/{link['id']}", {"expires_at": past})
    assert answer.status == 200, answer.body
    return link


def test_an_expired_link_is_404_or_its_fallback(local_stack: RunningStack) -> None:
    expired = expire(local_stack, create(local_stack, url="https://example.org/", short_url_enabled=True))
    assert call("GET", expired["short_url"]).status == 404
    fallback = "https://example.net/sorry"
    with_fallback = expire(
        local_stack,
        create(local_stack, url="https://example.org/", fallback_url=fallback, short_url_enabled=True),
    )
    hit = call("GET", with_fallback["short_url"])
    assert hit.status == 302
    assert hit.headers["location"] == "https://example.net/sorry"


def test_a_capped_link_stops_after_max_hits(local_stack: RunningStack) -> None:
    created = create(
        local_stack, url="https://example.org/capped", id=new_id(), max_hits=2, short_url_enabled=True
    )
    # Its short URL (unsigned) redirects without spending a hit: only minted URLs count.
    assert call("GET", created["short_url"]).status == 302
    minted = call("POST", f"{local_stack.admin_url}/mint", {"target": f"link:{created['id']}"}).json()
    statuses = [call("GET", minted["redirect_url"]).status for _ in range(3)]
    assert statuses == [302, 302, 404]
    assert call("GET", f"{local_stack.admin_url}/links/{created['id']}").json()["hits"] == 2


# --- minting ------------------------------------------------------------------------------------


def test_minted_urls_work_on_the_tracking_server(local_stack: RunningStack) -> None:
    link_id = create(local_stack, url="https://example.org/minted", id=new_id())["id"]
    answer = call("POST", f"{local_stack.admin_url}/mint", {"target": f"link:{link_id}", "entity": "ip"})
    assert answer.status == 200, answer.body
    urls = answer.json()
    assert urls["pixel_url"].startswith(f"{local_stack.api_url}/p/")
    assert urls["redirect_url"].startswith(f"{local_stack.api_url}/r/")
    redirect = call("GET", urls["redirect_url"])
    assert redirect.status == 302
    assert redirect.headers["location"] == "https://example.org/minted"
    pixel = call("GET", urls["pixel_url"])
    assert pixel.status == 200
    assert pixel.body == TRANSPARENT_GIF

    only_pixel = call("POST", f"{local_stack.admin_url}/mint", {}).json()
    assert only_pixel.get("redirect_url") is None
    assert call("GET", only_pixel["pixel_url"]).status == 200


def test_a_honeypot_redirect_is_marked_on_its_beacon(local_stack: RunningStack) -> None:
    link_id = create(local_stack, url="https://example.org/trap", id=new_id())["id"]
    urls = call(
        "POST", f"{local_stack.admin_url}/mint", {"target": f"link:{link_id}", "honeypot": True}
    ).json()
    assert call("GET", urls["redirect_url"]).status == 302
    assert call("GET", urls["pixel_url"]).status == 200
    hints = {
        item["mode"]["S"]: set(item.get("hints", {}).get("SS", []))
        for item in local_stack.beacons()
        if item.get("target", {}).get("S") == f"link:{link_id}"
    }
    # Only the link is the trap ("nofetch": this test's client sends no Sec-Fetch-Mode).
    assert hints == {"redirect": {"honeypot", "nofetch"}, "pixel": {"nofetch"}}


def test_mint_is_for_the_web_and_mint_batch_for_email_unless_asked(local_stack: RunningStack) -> None:
    def purpose(url: str) -> str:
        return str(verify(url.rsplit("/", 1)[1].removesuffix(".gif"), local_stack.ring).purpose)

    admin = local_stack.admin_url
    assert purpose(call("POST", f"{admin}/mint", {}).json()["pixel_url"]) == "web"
    assert purpose(call("POST", f"{admin}/mint", {"purpose": "email"}).json()["pixel_url"]) == "email"
    batch = call("POST", f"{admin}/mint/batch", {"items": [{}, {"purpose": "web"}]}).json()["urls"]
    assert [purpose(urls["pixel_url"]) for urls in batch] == ["email", "web"]


def test_mint_batch(local_stack: RunningStack) -> None:
    link_id = create(local_stack, url="https://example.org/batch", id=new_id())["id"]
    items = [{"target": f"link:{link_id}", "entity": f"ip:10.0.0.{n}"} for n in range(3)] + [{}]
    answer = call("POST", f"{local_stack.admin_url}/mint/batch", {"items": items})
    assert answer.status == 200, answer.body
    urls = answer.json()["urls"]
    assert len(urls) == 4
    assert len({u["pixel_url"] for u in urls}) == 4
    for minted in urls[:3]:
        assert call("GET", minted["redirect_url"]).headers["location"] == "https://example.org/batch"
    assert urls[3].get("redirect_url") is None


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"target": "nosuchtype:1"}, "unknown_type"),
        ({"source": "nosuchtype:1"}, "unknown_type"),
        ({"entity": "nosuchtype"}, "unknown_type"),
        ({"target": "no colon"}, "bad_reference"),
        ({"target": "url:https://not-allowed.example/"}, "bad_url"),
        ({"target": "url:javascript:alert(1)"}, "bad_url"),
        ({"target": "link:x", "nope": 1}, "invalid_request"),
        ({"honeypot": True}, "bad_reference"),
        # Ids that are not what they look like: each would be a recipient of its own.
        ({"entity": "recipient:alice@example.com "}, "bad_reference"),
        ({"entity": "recipient:al\u202eice@example.com"}, "bad_reference"),
    ],
)
def test_bad_mint_requests_are_400(local_stack: RunningStack, payload: dict[str, Any], code: str) -> None:
    assert_error(call("POST", f"{local_stack.admin_url}/mint", payload), 400, code)


def test_a_batch_over_1000_is_400(local_stack: RunningStack) -> None:
    answer = call("POST", f"{local_stack.admin_url}/mint/batch", {"items": [{}] * 1001})
    assert_error(answer, 400, "invalid_request")
    bad_item = call("POST", f"{local_stack.admin_url}/mint/batch", {"items": [{}, {"target": "zzz:1"}]})
    assert_error(bad_item, 400, "unknown_type")
    assert "items[1]" in bad_item.json()["error"]["message"]
    invisible = {"items": [{}, {"entity": "recipient:bob\u200b@example.com"}]}
    bad_id = call("POST", f"{local_stack.admin_url}/mint/batch", invisible)
    assert_error(bad_id, 400, "bad_reference")
    assert "items[1]" in bad_id.json()["error"]["message"]
    assert "U+200B" in bad_id.json()["error"]["message"]


# --- beacons, stats, export ---------------------------------------------------------------------


def _hits(stack: RunningStack, count: int) -> tuple[str, list[str]]:
    """A new link hit ``count`` times through its short URL; its id and the agents, in order."""
    created = create(stack, url="https://example.org/counted", id=new_id("h"), short_url_enabled=True)
    agents = []
    for _ in range(count):
        agents.append(agent())
        assert call("GET", created["short_url"], agent=agents[-1]).status == 302
        time.sleep(0.002)  # distinct milliseconds: a strict newest-first order
    return created["id"], agents


def test_beacons_newest_first_with_a_cursor(local_stack: RunningStack) -> None:
    link_id, agents = _hits(local_stack, 5)
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        page = call(
            "GET",
            f"{local_stack.admin_url}/beacons",
            query={"target": f"link:{link_id}", "limit": 2, "cursor": cursor},
        )
        assert page.status == 200, page.body
        data = page.json()
        assert len(data["beacons"]) <= 2
        seen += data["beacons"]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert [b["user_agent"] for b in seen] == list(reversed(agents))
    assert [b["id"] for b in seen] == sorted((b["id"] for b in seen), reverse=True)
    assert all(b["target"] == f"link:{link_id}" for b in seen)

    everything = call("GET", f"{local_stack.admin_url}/beacons", query={"limit": 1000}).json()["beacons"]
    ids = [b["id"] for b in everything]
    assert ids == sorted(ids, reverse=True)
    assert {b["id"] for b in seen} <= set(ids)


@pytest.mark.parametrize(
    "query",
    [
        {"target": "nosuchtype:1"},
        {"target": "link:a", "entity": "ip:1"},
        {"from": "yesterday"},
        {"from": "2030-01-01", "to": "2029-01-01"},
        {"limit": 5000},
    ],
)
def test_bad_beacon_queries_are_400(local_stack: RunningStack, query: dict[str, Any]) -> None:
    assert_error(call("GET", f"{local_stack.admin_url}/beacons", query=query), 400)


def test_stats_after_hits(local_stack: RunningStack) -> None:
    link_id, _ = _hits(local_stack, 3)
    today = datetime.now(UTC).date()
    query = {
        "ref": f"link:{link_id}",
        "kind": "target",
        "from": str(today - timedelta(days=1)),
        "to": str(today),
    }

    def counted() -> dict[str, Any] | None:
        answer = call("GET", f"{local_stack.admin_url}/stats", query=query)
        assert answer.status == 200, answer.body
        data: dict[str, Any] = answer.json()
        return data if data["totals"]["total"] == 3 else None

    stats = wait_for("the stream to count 3 hits", counted)
    assert stats["ref"] == f"link:{link_id}"
    assert stats["kind"] == "target"
    assert stats["totals"]["unique"] == 3
    # The headline figures, and the human/machine split, are part of the answer.
    assert set(stats["totals"]) == {
        "unique_human_opens",
        "unique_human_clicks",
        "total",
        "unique",
        "human",
        "machine",
    }
    assert stats["totals"]["human"] + stats["totals"]["machine"] == 3
    assert [day["day"] for day in stats["days"]] == [query["from"], query["to"]]
    assert stats["days"][-1]["total"] == 3

    bad = {**query, "from": "2000-01-01"}
    assert_error(call("GET", f"{local_stack.admin_url}/stats", query=bad), 400)
    assert_error(call("GET", f"{local_stack.admin_url}/stats", query={"ref": "nosuch:1"}), 400)
    assert_error(call("GET", f"{local_stack.admin_url}/stats", query={"ref": "link:x", "kind": "x"}), 400)


def test_stats_without_kind_reads_the_kind_the_type_is_registered_as(local_stack: RunningStack) -> None:
    campaign = f"campaign:kindless-{uuid.uuid4().hex[:8]}"
    created = local_stack.cli("source", "create", campaign)
    assert created.returncode == 0, created.stderr
    answer = call("GET", f"{local_stack.admin_url}/stats", query={"ref": campaign})
    assert answer.status == 200, answer.body  # was 400: "no target type named 'campaign'"
    assert answer.json()["kind"] == "source"
    as_target = {"ref": campaign, "kind": "target"}
    assert_error(call("GET", f"{local_stack.admin_url}/stats", query=as_target), 400)
    assert_error(call("GET", f"{local_stack.admin_url}/stats", query={"ref": "campaign:never-made"}), 404)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_page_by_page(local_stack: RunningStack, fmt: str) -> None:
    link_id, agents = _hits(local_stack, 5)
    bodies: list[str] = []
    cursor = None
    for _ in range(10):
        query = {"target": f"link:{link_id}", "format": fmt, "limit": 2, "cursor": cursor}
        page = call("GET", f"{local_stack.admin_url}/export", query=query)
        assert page.status == 200, page.body
        expected_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
        assert page.headers["content-type"].startswith(expected_type)
        bodies.append(page.body.decode())
        cursor = page.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert len(bodies) == 3
    text = "".join(bodies)
    if fmt == "csv":
        # RFC 4180: each record ends with CRLF, the last one of each page too (pages concatenate).
        assert all(body.endswith("\r\n") for body in bodies)
        assert text.count("\n") == text.count("\r\n") == 1 + 5, text
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert [row["user_agent"] for row in rows] == list(reversed(agents))
    assert all(row["target"] == f"link:{link_id}" for row in rows)
