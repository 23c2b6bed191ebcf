"""``webbugger email rewrite`` against the real local stack: the rewritten links and pixel work.

A real newsletter (tests/newsletters) goes through the console script for one recipient, then a
batch; its redirects answer 302 to the stored destination and its pixel a GIF, each recorded with
the recipient and the campaign; each destination is one stored link of the campaign, reused by
every recipient and every run.
"""

from __future__ import annotations

import http.client
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from rewrite_checks import rewritten_parts, text_tokens
from webbugger.tokens import verify

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

NEWSLETTER = Path(__file__).resolve().parents[1] / "newsletters" / "leemunroe-email-inlined.html"
TEXT = "Call to action: http://htmlemail.io\nShop: https://shop.example/spring?a=1&b=2\n"


def status_and_location(url: str) -> tuple[int, str | None]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path, headers={"User-Agent": "webbugger-email-test"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("location")
    finally:
        conn.close()


def test_a_rewritten_message_tracks_its_recipient_and_campaign(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    campaign = f"news-{secrets.token_hex(4)}"
    refused = local_stack.cli(
        "email", "rewrite", str(NEWSLETTER), "--recipient", "a@x.example", "--campaign", campaign
    )
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert f"no campaign:{campaign}" in refused.stderr
    assert local_stack.cli("source", "create", f"campaign:{campaign}").returncode == 0

    (tmp_path / "message.txt").write_text(TEXT)
    out = tmp_path / "ada.html"
    done = local_stack.cli(
        "email", "rewrite", str(NEWSLETTER), "--recipient", "ada@example.com", "--campaign", campaign,
        "--text", str(tmp_path / "message.txt"), "--out", str(out), "--honeypot",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "2 links, 2 text links to 2 destination(s), pixel placed, honeypot; left alone: 1 unsubscribe"
        in done.stderr
    )
    original = NEWSLETTER.read_text()
    parts = rewritten_parts(original, out.read_text(), local_stack.api_url)
    claims = [verify(token, local_stack.ring) for token in parts.link_tokens]
    [link_id] = {str(c.target.id) for c in claims if c.target is not None}
    assert {(str(c.entity), str(c.source)) for c in claims} == {
        ("recipient:ada@example.com", f"campaign:{campaign}")
    }

    redirect = f"{local_stack.api_url.rstrip('/')}/r/{parts.link_tokens[0]}"
    assert status_and_location(redirect) == (302, "http://htmlemail.io/")
    pixel = f"{local_stack.api_url.rstrip('/')}/p/{parts.pixel_tokens[0]}.gif"
    assert status_and_location(pixel)[0] == 200
    stored = [
        b for b in local_stack.beacons("webbugger-email-test") if b["source"]["S"] == f"campaign:{campaign}"
    ]
    assert sorted(b["mode"]["S"] for b in stored) == ["pixel", "redirect"]
    assert {b["entity"]["S"] for b in stored} == {"recipient:ada@example.com"}

    originals, text_links = text_tokens(TEXT, (tmp_path / "ada.txt").read_text(), local_stack.api_url)
    assert originals == ["http://htmlemail.io", "https://shop.example/spring?a=1&b=2"]
    assert verify(text_links[0], local_stack.ring).target == claims[0].target  # one link per destination

    (tmp_path / "list.txt").write_text("# subscribers\nbob@example.com\n\ncy@example.com\nbob@example.com\n")
    batch = local_stack.cli(
        "email", "rewrite", str(NEWSLETTER), "--recipients", str(tmp_path / "list.txt"),
        "--campaign", campaign, "--out-dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert batch.returncode == 0, batch.stderr
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == ["0001-bob@example.com.html", "0002-cy@example.com.html"]
    for name, who in zip(written, ["bob@example.com", "cy@example.com"], strict=True):
        batch_parts = rewritten_parts(original, (tmp_path / "out" / name).read_text(), local_stack.api_url)
        batch_claims = [verify(token, local_stack.ring) for token in batch_parts.link_tokens]
        assert {(str(c.target), str(c.entity)) for c in batch_claims} == {
            (f"link:{link_id}", f"recipient:{who}")
        }

    lines = local_stack.cli(
        "email",
        "rewrite",
        str(NEWSLETTER),
        "--recipients",
        str(tmp_path / "list.txt"),
        "--campaign",
        campaign,
    )
    assert lines.returncode == 0, lines.stderr
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [record["recipient"] for record in records] == ["bob@example.com", "cy@example.com"]
    assert len(rewritten_parts(original, records[0]["html"], local_stack.api_url).link_tokens) == 2

    shown = local_stack.cli("link", "show", link_id, "--json")
    assert json.loads(shown.stdout)["url"] == "http://htmlemail.io/"


def test_a_mistake_is_one_line(local_stack: RunningStack, tmp_path: Path) -> None:
    missing = local_stack.cli(
        "email", "rewrite", str(tmp_path / "nope.html"), "--recipient", "a", "--campaign", "c"
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("webbugger: error: cannot read message")
    typed = local_stack.cli(
        "email", "rewrite", str(NEWSLETTER), "--recipient", "a", "--campaign", "campaign:nope-x1"
    )
    assert (typed.returncode, typed.stderr.count("\n")) == (1, 1)
    assert "--campaign takes the campaign's id: `--campaign nope-x1`" in typed.stderr, typed.stderr
    prefixed = local_stack.cli(
        "email", "rewrite", str(NEWSLETTER), "--recipient", "recipient:q@example.com", "--campaign", "c"
    )
    assert (prefixed.returncode, prefixed.stderr.count("\n")) == (1, 1), prefixed.stderr
    assert "a recipient is given by its id: 'q@example.com'" in prefixed.stderr, prefixed.stderr
    both = local_stack.cli("email", "rewrite", str(NEWSLETTER), "--campaign", "c")
    assert (both.returncode, both.stderr.count("\n")) == (1, 1)
    assert "--recipient" in both.stderr
