"""The ``webbugger`` plugin verbs against the real local stack: sources created and shown, entities
shown after a hit, signed ``url`` targets, links with UTM parameters and query forwarding.

Each command runs the installed console script in its own process, with the session stack's
environment; the HTTP API runs in this test process (see conftest.py).
"""

from __future__ import annotations

import http.client
import json
import secrets
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import pytest
from webbugger import runtime
from webbugger_plugins import url as url_target

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

ALLOWED = "example.com,*.example.org"


class Hit(NamedTuple):
    status: int
    headers: dict[str, str]


def ok(stack: RunningStack, *args: str) -> str:
    result = stack.cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def refused(stack: RunningStack, *args: str) -> str:
    """The one error line of a command that must fail with exit status 1."""
    result = stack.cli(*args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    return line


def show(stack: RunningStack, kind: str, ref: str) -> dict[str, Any]:
    [line] = ok(stack, kind, "show", ref, "--json").splitlines()
    record: dict[str, Any] = json.loads(line)
    return record


def get(url: str, query: str = "") -> Hit:
    """GET ``url`` (plus ``query``) without following a redirect."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            "GET", parts.path + (f"?{query}" if query else ""), headers={"User-Agent": "cli-plugins"}
        )
        response = conn.getresponse()
        response.read()
        return Hit(response.status, {k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()


@pytest.fixture
def allowed_hosts(local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningStack]:
    """ALLOWED_REDIRECT_HOSTS for the CLI's processes and for the in-process server alike."""
    monkeypatch.setenv(url_target.ALLOWED_HOSTS_VARIABLE, ALLOWED)
    url_target.allowed_hosts.cache_clear()  # the server reads it once per process
    yield local_stack
    url_target.allowed_hosts.cache_clear()


# --- sources ----------------------------------------------------------------------------------------


def test_source_create_and_show(local_stack: RunningStack) -> None:
    campaign_id = f"spring-{secrets.token_hex(4)}"
    assert ok(local_stack, "source", "create", f"campaign:{campaign_id}", "--name", "Spring sale") == (
        f"campaign:{campaign_id}\n"
    )

    record = show(local_stack, "source", f"campaign:{campaign_id}")
    assert record["id"] == campaign_id
    assert record["name"] == "Spring sale"
    assert record["created_at"].startswith("20")

    table = dict(
        line.split(None, 1)
        for line in ok(local_stack, "source", "show", f"campaign:{campaign_id}").splitlines()
    )
    assert table == {"id": campaign_id, "name": "Spring sale", "created_at": record["created_at"]}

    # The new campaign is usable as a source at once.
    pixel = ok(local_stack, "url", "pixel", "--source", f"campaign:{campaign_id}").strip()
    assert get(pixel).status == 200

    line = refused(local_stack, "source", "create", f"campaign:{campaign_id}")
    assert line == f"webbugger: error: campaign {campaign_id!r} already exists"


def test_source_create_json_then_list(local_stack: RunningStack) -> None:
    campaign_id = f"listed-{secrets.token_hex(4)}"
    made = json.loads(
        ok(local_stack, "source", "create", f"campaign:{campaign_id}", "--name", "Listed", "--json")
    )
    assert made == {
        "ref": f"campaign:{campaign_id}",
        "id": campaign_id,
        "name": "Listed",
        "created_at": made["created_at"],
    }
    # Every listable source type, or campaigns only: the new one is among them (bounded: the
    # session's DynamoDB Local holds a few hundred at most).
    for args in ((), ("--type", "campaign")):
        lines = ok(local_stack, "source", "list", "--json", "--limit", "10000", *args).splitlines()
        assert made in [json.loads(line) for line in lines]
    rows = [line.split() for line in ok(local_stack, "source", "list", "--limit", "10000").splitlines()]
    assert rows[0] == ["REF", "NAME", "CREATED"]
    assert [f"campaign:{campaign_id}", "Listed", made["created_at"]] in rows


def test_show_of_missing_records(local_stack: RunningStack) -> None:
    missing = f"missing-{secrets.token_hex(4)}"
    assert refused(local_stack, "source", "show", f"campaign:{missing}", "--json") == (
        f"webbugger: error: no campaign source with id {missing!r}"
    )
    assert refused(local_stack, "entity", "show", f"ip:{missing}") == (
        f"webbugger: error: no ip entity with id {missing!r}"
    )
    # Showing does not create: still missing.
    assert refused(local_stack, "entity", "show", f"ip:{missing}", "--json") == (
        f"webbugger: error: no ip entity with id {missing!r}"
    )


# --- entities -----------------------------------------------------------------------------------------


@pytest.fixture
def generous_hook_budget(local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> RunningStack:
    """A hook budget no cold DynamoDB Local table overruns (an overrun skips the hook, by design)."""
    monkeypatch.setenv("HOOK_BUDGET_MS", "20000")
    runtime.reset()  # the server's tracker reads its settings again (local_stack resets at the end)
    return local_stack


def test_pixel_hit_then_entity_show(generous_hook_budget: RunningStack) -> None:
    local_stack = generous_hook_budget
    visitor = f"visitor-{secrets.token_hex(4)}"
    pixel = ok(local_stack, "url", "pixel", "--entity", f"ip:{visitor}").strip()
    assert get(pixel).status == 200  # the ip entity's hook runs inline: done once answered

    record = show(local_stack, "entity", f"ip:{visitor}")
    assert record["id"] == visitor
    [address] = record["addresses"]
    assert address.startswith("127.0.0.")  # the test's own address, anonymised or not
    assert record["first_seen"] is not None
    assert record["last_seen"] is not None

    table = ok(local_stack, "entity", "show", f"ip:{visitor}").splitlines()
    assert table[0].split() == ["id", visitor]
    assert ["addresses", address] in [line.split() for line in table]

    listed = ok(local_stack, "entity", "list", "--type", "ip", "--json", "--limit", "10000").splitlines()
    assert {"ref": f"ip:{visitor}", **record} in [json.loads(line) for line in listed]


# --- url targets ----------------------------------------------------------------------------------------


def test_url_redirect_to_an_allowed_host(allowed_hosts: RunningStack) -> None:
    path = secrets.token_hex(4)
    redirect = ok(allowed_hosts, "url", "redirect", "--target", f"url:https://News.Example.org/{path}?a=1")
    hit = get(redirect.strip())
    assert hit.status == 302
    assert hit.headers["location"] == f"https://news.example.org/{path}?a=1"  # as normalised and signed


def test_url_redirect_to_a_host_not_allowed(allowed_hosts: RunningStack) -> None:
    line = refused(allowed_hosts, "url", "redirect", "--target", "url:https://evil.example.net/")
    assert line == (
        "webbugger: error: host 'evil.example.net' is not allowed: ALLOWED_REDIRECT_HOSTS allows only "
        "example.com, *.example.org"
    )


# --- links with UTM parameters and query forwarding ------------------------------------------------------


def test_link_with_utm_and_forward_query(local_stack: RunningStack) -> None:
    link_id = f"utm-{secrets.token_hex(4)}"
    created = ok(
        local_stack,
        "link",
        "create",
        "https://example.com/offer?ref=link",
        "--id",
        link_id,
        "--forward-query",
        "--utm",
        "utm_source=newsletter",
        "--utm",
        "utm_campaign=spring",
    )
    assert created.strip() == link_id
    redirect = ok(local_stack, "url", "redirect", "--target", f"link:{link_id}").strip()

    hit = get(redirect, "visitor=42&ref=visitor")
    assert hit.status == 302
    location = urlsplit(hit.headers["location"])
    assert (location.netloc, location.path) == ("example.com", "/offer")
    query = parse_qsl(location.query)
    assert query[0] == ("ref", "link")  # the link's own parameters win over the visitor's
    assert sorted(query[1:3]) == [("utm_campaign", "spring"), ("utm_source", "newsletter")]
    assert query[3:] == [("visitor", "42")]

    # Without --forward-query, the visitor's parameters stay behind.
    plain_id = f"utm-{secrets.token_hex(4)}"
    ok(local_stack, "link", "create", "https://example.com/", "--id", plain_id, "--utm", "utm_medium=email")
    redirect = ok(local_stack, "url", "redirect", "--target", f"link:{plain_id}").strip()
    assert get(redirect, "visitor=42").headers["location"] == "https://example.com/?utm_medium=email"
