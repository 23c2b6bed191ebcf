"""The ``webbugger`` command against the real local stack: links, URLs that work, beacons listed.

Each command runs the installed console script in its own process, as a user would run it, with
the session stack's environment (its state dir, whose stack.json names this test process).
"""

from __future__ import annotations

import http.client
import json
import secrets
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

DESTINATION = "https://example.com/landing?from=cli"


class Hit(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def ok(stack: RunningStack, *args: str) -> str:
    result = stack.cli(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def get(url: str, user_agent: str) -> Hit:
    """GET ``url`` without following a redirect."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path, headers={"User-Agent": user_agent})
        response = conn.getresponse()
        return Hit(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def beacons(stack: RunningStack, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(stack, "beacons", "list", "--json", *args).splitlines()]


def test_link_redirect_pixel_and_beacons(local_stack: RunningStack) -> None:
    link_id = f"cli-{secrets.token_hex(4)}"
    agent = f"webbugger-cli-test/{link_id}"
    assert ok(local_stack, "link", "create", DESTINATION, "--id", link_id).strip() == link_id

    redirect_url = ok(local_stack, "url", "redirect", "--target", f"link:{link_id}").strip()
    assert redirect_url.startswith(f"{local_stack.api_url.rstrip('/')}/r/")
    hit = get(redirect_url, agent)
    assert hit.status == 302
    assert hit.headers["location"] == DESTINATION

    pixel_url = ok(local_stack, "url", "pixel", "--target", f"link:{link_id}").strip()
    assert pixel_url.startswith(f"{local_stack.api_url.rstrip('/')}/p/")
    hit = get(pixel_url, agent)
    assert hit.status == 200
    assert hit.headers["content-type"] == "image/gif"
    assert hit.body.startswith(b"GIF8")

    everything = beacons(local_stack, "--days", "1", "--limit", "1000")
    ids = [beacon["id"] for beacon in everything]
    assert ids == sorted(ids, reverse=True), "newest first"
    ours = [beacon for beacon in everything if beacon["target"] == f"link:{link_id}"]
    assert [beacon["mode"] for beacon in ours] == ["pixel", "redirect"]
    assert all(beacon["user_agent"] == agent for beacon in ours)

    # The same beacons by target; compared by id, as the stream may label them between the calls.
    by_target = beacons(local_stack, "--target", f"link:{link_id}")
    assert [b["id"] for b in by_target] == [b["id"] for b in ours]

    assert [b["mode"] for b in beacons(local_stack, "--target", f"link:{link_id}", "--limit", "1")] == [
        "pixel"
    ]

    table = ok(local_stack, "beacons", "list", "--target", f"link:{link_id}").splitlines()
    assert table[0].split()[:4] == ["TIME", "MODE", "CLASS", "TARGET"]
    assert table[0].split()[-1] == "REASONS"
    assert [line.split()[2] for line in table[1:]] == ["pixel", "redirect"]
    assert all(f"link:{link_id}" in line for line in table[1:])

    trap = ok(local_stack, "url", "redirect", "--target", f"link:{link_id}", "--honeypot").strip()
    assert get(trap, agent).status == 302
    [trapped] = [
        b for b in beacons(local_stack, "--target", f"link:{link_id}") if "honeypot" in (b["hints"] or "")
    ]
    # "nofetch": this test's HTTP client sends no Sec-Fetch-Mode, as no browser would.
    assert (trapped["mode"], trapped["hints"]) == ("redirect", "honeypot nofetch")


def test_redirect_to_a_missing_link_is_refused(local_stack: RunningStack) -> None:
    result = local_stack.cli("url", "redirect", "--target", "link:no-such-link")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "webbugger: error: no link with id 'no-such-link' (create one with `webbugger link create URL`)"
    ]


def test_link_id_taken(local_stack: RunningStack) -> None:
    link_id = f"cli-{secrets.token_hex(4)}"
    ok(local_stack, "link", "create", DESTINATION, "--id", link_id)
    result = local_stack.cli("link", "create", "https://example.org/", "--id", link_id)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"webbugger: error: link {link_id!r} already exists"]


def test_link_create_and_disable_json(local_stack: RunningStack) -> None:
    link_id = f"cli-{secrets.token_hex(4)}"
    made = json.loads(ok(local_stack, "link", "create", DESTINATION, "--id", link_id, "--json"))
    shown = (made["id"], made["url"], made["disabled"], made["short_url"])
    assert shown == (link_id, DESTINATION, False, None)
    disabled = json.loads(ok(local_stack, "link", "disable", link_id, "--json"))
    assert (disabled["id"], disabled["disabled"]) == (link_id, True)


def test_no_beacons_for_an_unused_link(local_stack: RunningStack) -> None:
    # A link that exists and was never hit (one that does not exist is refused:
    # test_no_silent_wrong_answers.py).
    link_id = f"never-{secrets.token_hex(4)}"
    ok(local_stack, "link", "create", DESTINATION, "--id", link_id)
    assert beacons(local_stack, "--target", f"link:{link_id}") == []
