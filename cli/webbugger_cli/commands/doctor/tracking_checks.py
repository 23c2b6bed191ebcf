"""The doctor's checks of the tracking routes: a pixel, a redirect, a tampered token and, behind
CloudFront with the function-URL front door, the origin that must refuse unsigned requests."""

from __future__ import annotations

import http
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from webbugger.gif import TRANSPARENT_GIF
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import TokenClaims

from webbugger_cli.admin_client import AdminApiError
from webbugger_cli.commands.doctor.fetch import CheckFailedError, fetch
from webbugger_cli.commands.doctor.subjects import API_OUTPUT

if TYPE_CHECKING:
    from webbugger_cli.commands.doctor.run_state import RunState

DOCTOR_LINK_ID = "webbugger-doctor"
DOCTOR_LINK_URL = "https://example.com/"
DOCTOR_LANGUAGE = "en-GB, da;q=0.5"


def check_pixel(run: RunState) -> str:
    """A pixel minted with the stack's key answers 200 and the 43-byte GIF, not to be cached."""
    claims = TokenClaims(mode=Mode.PIXEL, entity=run.entity, source=run.source, ignore_errors=True)
    run.pixel_url = run.mint(claims)
    run.pixel_sent_at = datetime.now(UTC)
    headers = {"User-Agent": run.user_agent, "Accept-Language": DOCTOR_LANGUAGE}
    answer = fetch(run.pixel_url, headers)
    kind = answer.headers.get("content-type", "")
    if answer.status != http.HTTPStatus.OK or answer.body != TRANSPARENT_GIF:
        shown = f"{answer.status} {kind or 'no content type'}, {len(answer.body)} bytes"
        raise CheckFailedError(f"expected 200 and the 43-byte GIF, got {shown}")
    if not kind.startswith("image/gif"):
        raise CheckFailedError(f"the GIF came as {kind or 'no content type'}, not image/gif")
    caching = answer.headers.get("cache-control", "")
    if "no-store" not in caching:
        raise CheckFailedError(f"Cache-Control is {caching!r}: opens would be cached, not counted")
    return f"200 image/gif, {len(answer.body)} bytes, Cache-Control no-store"


def _ensure_link(run: RunState) -> str:
    """The doctor's link's destination (the link is created on the first run)."""
    assert run.admin is not None
    path = f"/links/{quote(DOCTOR_LINK_ID, safe='')}"
    try:
        link = run.admin.get_json(path)
    except AdminApiError as exc:
        if exc.status != http.HTTPStatus.NOT_FOUND:
            raise
        payload = {"url": DOCTOR_LINK_URL, "id": DOCTOR_LINK_ID, "tags": ["webbugger-doctor"]}
        link = run.admin.request("POST", "/links", payload=payload).json()
    if not isinstance(link, dict) or not isinstance(link.get("url"), str):
        raise CheckFailedError(f"the admin API's answer for link {DOCTOR_LINK_ID!r} is malformed")
    if link.get("disabled"):
        raise CheckFailedError(f"link {DOCTOR_LINK_ID!r} is disabled: enable it or delete it")
    return str(link["url"])


def check_redirect(run: RunState) -> str:
    """A redirect to the doctor's link answers 302 to the link's destination."""
    expected = _ensure_link(run)
    target = Ref("link", DOCTOR_LINK_ID)
    url = run.mint(TokenClaims(mode=Mode.REDIRECT, target=target, entity=run.entity))
    answer = fetch(url, {"User-Agent": run.user_agent})
    location = answer.headers.get("location")
    if answer.status != http.HTTPStatus.FOUND or location != expected:
        raise CheckFailedError(f"expected 302 to {expected}, got {answer.status} to {location or 'nowhere'}")
    # The URL to try afterwards has no entity: its hits are the user's, not the doctor's.
    run.link_url = run.mint(TokenClaims(mode=Mode.REDIRECT, target=target))
    run.link_destination = expected
    return f"302 to {expected} (link {DOCTOR_LINK_ID})"


def check_tampered(run: RunState) -> str:
    """The pixel's token with one character changed answers 404."""
    claims = TokenClaims(mode=Mode.PIXEL, source=run.source, ignore_errors=True)
    url = run.mint(claims)
    # Change the first character of the sealed token (its SIV, all six bits count): it no longer opens.
    head, _, tag = url.removesuffix(".gif").rpartition(".")
    changed = f"{head}.{'A' if tag[0] != 'A' else 'Q'}{tag[1:]}.gif"
    answer = fetch(changed, {"User-Agent": run.user_agent})
    if answer.status != http.HTTPStatus.NOT_FOUND:
        raise CheckFailedError(f"a tampered token answered {answer.status}, not 404")
    return "404 for a token with one character changed"


def check_origin(run: RunState) -> str:
    """A pixel sent straight to the function URL, unsigned by CloudFront, answers 403."""
    assert run.ring is not None  # the secret check passed
    claims = TokenClaims(mode=Mode.PIXEL, source=run.source, ignore_errors=True)
    url = tracking_url(run.subject.outputs[API_OUTPUT], claims, run.ring)
    answer = fetch(url, {"User-Agent": run.user_agent})
    if answer.status != http.HTTPStatus.FORBIDDEN:
        raise CheckFailedError(
            f"the function URL answered a request CloudFront did not sign with {answer.status}, not 403"
        )
    return "403 for a pixel sent to the function URL around CloudFront (only signed requests pass)"
