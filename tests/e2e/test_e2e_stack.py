"""A stack seen from outside: its Outputs, the tracking routes, the admin API, and ``doctor``.

Runs against the deployed stack named by ``AWS_SAM_STACK_NAME``, else against ``webbugger local``
(see conftest.py). What these tests create is tagged ``e2e`` and unique per run: links are
disabled at the end; beacons expire with the stack's retention.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from webbugger.gif import TRANSPARENT_GIF
from webbugger_cli.commands.doctor import FAIL, PASS, Doctor
from webbugger_cli.commands.doctor.fetch import fetch
from webbugger_cli.commands.doctor.subjects import NEEDED_OUTPUTS, local_subject
from webbugger_cli.main import main

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import E2EStack

# Index reads are eventually consistent in AWS: look again for a while.
READBACK_SECONDS = 20.0


def _run_id() -> str:
    return uuid.uuid4().hex[:12]


def _beacons_of(stack: E2EStack, source: str, count: int, since: datetime) -> list[dict[str, Any]]:
    deadline = time.monotonic() + READBACK_SECONDS
    while True:
        page = stack.admin.get_json("/beacons", {"source": source, "from": since.isoformat(), "limit": 100})
        beacons: list[dict[str, Any]] = page["beacons"]
        if len(beacons) >= count or time.monotonic() > deadline:
            return beacons
        time.sleep(0.5)


@pytest.fixture
def e2e_link(e2e_stack: E2EStack) -> Iterator[dict[str, Any]]:
    """A new stored link (through the admin API), disabled after the test."""
    link_id = f"e2e-{_run_id()}"
    payload = {
        "url": f"https://example.com/e2e/{link_id}",
        "id": link_id,
        "tags": ["e2e"],
        "short_url_enabled": True,
    }
    link: dict[str, Any] = e2e_stack.admin.request("POST", "/links", payload=payload).json()
    yield link
    e2e_stack.admin.request("POST", f"/links/{link_id}/disable")


def test_outputs_name_every_url_a_user_needs(e2e_stack: E2EStack) -> None:
    for name in NEEDED_OUTPUTS:
        assert e2e_stack.outputs.get(name), f"no {name} output"
    for name in ("ApiUrl", "TrackingUrl", "AdminApiUrl"):
        assert urlsplit(e2e_stack.outputs[name]).scheme in ("http", "https")


def test_minted_pixel_through_the_tracking_url_is_the_gif(e2e_stack: E2EStack) -> None:
    minted = e2e_stack.admin.request("POST", "/mint", payload={}).json()
    assert minted["pixel_url"].startswith(e2e_stack.tracking_url.rstrip("/") + "/p/")
    answer = fetch(minted["pixel_url"], {"User-Agent": "webbugger-e2e"})
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("image/gif")
    assert answer.body == TRANSPARENT_GIF
    assert len(answer.body) == 43
    assert "no-store" in answer.headers["cache-control"]


def test_redirect_goes_to_the_link_and_a_tampered_one_is_404(
    e2e_stack: E2EStack, e2e_link: dict[str, Any]
) -> None:
    minted = e2e_stack.admin.request("POST", "/mint", payload={"target": f"link:{e2e_link['id']}"}).json()
    answer = fetch(minted["redirect_url"])
    assert answer.status == 302
    assert answer.headers["location"] == e2e_link["url"]
    head, _, tag = minted["redirect_url"].rpartition(".")
    tampered = f"{head}.{'A' if tag[0] != 'A' else 'Q'}{tag[1:]}"
    assert fetch(tampered).status == 404
    short = fetch(f"{e2e_stack.tracking_url.rstrip('/')}/l/{e2e_link['id']}")
    assert (short.status, short.headers.get("location")) == (302, e2e_link["url"])


def test_a_path_that_is_no_route_gets_the_front_doors_404(e2e_stack: E2EStack) -> None:
    answer = fetch(f"{e2e_stack.tracking_url.rstrip('/')}/favicon.ico")
    assert answer.status == 404
    if e2e_stack.outputs.get("FrontDoor") == "function-url":
        # Every path reaches the track function, which answers it as an invalid token.
        assert (answer.headers["content-type"], answer.body) == ("text/plain", b"Not Found")
        assert "no-store" in answer.headers["cache-control"]
    else:
        # API Gateway's own answer: the function is never invoked.
        assert json.loads(answer.body) == {"message": "Not Found"}


def test_batch_minted_pixels_are_read_back_with_their_headers(e2e_stack: E2EStack) -> None:
    run = _run_id()
    source = f"campaign:e2e-{run}"
    items = [{"source": source, "ignore_errors": True} for _ in range(3)]
    since = datetime.now(UTC) - timedelta(minutes=5)
    urls = e2e_stack.admin.request("POST", "/mint/batch", payload={"items": items}).json()["urls"]
    assert len(urls) == 3
    agent = f"webbugger-e2e/{run}"
    for url in urls:
        assert fetch(url["pixel_url"], {"User-Agent": agent, "Accept-Language": "de-AT"}).status == 200
    beacons = _beacons_of(e2e_stack, source, 3, since)
    assert len(beacons) == 3
    assert {(b["mode"], b["source"], b["user_agent"], b["language"]) for b in beacons} == {
        ("pixel", source, agent, "de-AT")
    }


def test_doctor_passes_every_check_and_prints_urls_that_work(
    e2e_stack: E2EStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in e2e_stack.cli_env.items():
        monkeypatch.setenv(name, value)
    assert main([*e2e_stack.cli_options, "doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    checks = [line.split()[:2] for line in lines[1:10]]
    names = [
        "outputs",
        "secret",
        "tables",
        "admin-api",
        "pixel",
        "redirect",
        "tampered",
        "headers",
        "cleanup",
    ]
    assert checks == [["PASS", name] for name in names]
    assert lines[10] == "all 9 checks passed; try:"
    pixel = next(line.split()[-1] for line in lines if line.strip().startswith("pixel URL:"))
    redirect_line = next(line.split() for line in lines if line.strip().startswith("redirect URL:"))
    assert fetch(pixel).body == TRANSPARENT_GIF
    answer = fetch(redirect_line[2])
    assert (answer.status, answer.headers["location"]) == (302, redirect_line[-1])


def test_doctor_fails_headers_behind_a_cloudfront_that_drops_the_country(
    e2e_stack: E2EStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local stack reached by another host name looks like a CloudFront in front of it that
    forwards no CloudFront-Viewer-Country: the doctor must say so (and pass the rest)."""
    if e2e_stack.cli_options:
        pytest.skip("local stack only: a deployed stack's CloudFront cannot be made to drop a header")
    for name, value in e2e_stack.cli_env.items():
        monkeypatch.setenv(name, value)
    subject = local_subject()
    port = urlsplit(subject.outputs["ApiUrl"]).port
    subject.outputs["TrackingUrl"] = f"http://localhost:{port}"
    assert subject.behind_cloudfront
    checks = {check.name: check for check in Doctor(subject).run()}
    assert checks["headers"].status == FAIL
    assert (
        checks["headers"].detail == "the beacon recorded no country (CloudFront-Viewer-Country not forwarded)"
    )
    # In front of a function URL the doctor also tries the URL around "CloudFront": locally nothing
    # signs requests or refuses unsigned ones, so that check fails too, as it should.
    also = ["origin"] if subject.front_door == "function-url" else []
    assert [name for name, check in checks.items() if check.status != PASS] == ["headers", *also]
