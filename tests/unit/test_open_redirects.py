"""Open-redirect attempts against the track function (in-process, moto's DynamoDB; see
fuzz/track_target.py), the link store and the admin API: every one is refused (404 from the
track function, 400 or an error from whatever would store it), and no answer ever carries a
``Location`` outside a stored or allowed target, or a CR/LF in any header.

Allowed for ``url`` targets: ``good.example`` and ``*.good.example``; every stored link goes to
``https://good.example/...``. CR/LF cases run in-process: API Gateway hands the function decoded
query parameters and header values, and a client library refuses to put raw CR/LF on the wire.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from legacy_tokens import signed_before_sealing
from webbugger.destinations import normalise_destination
from webbugger.errors import UnsafeDestinationError
from webbugger.models import utcnow
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_plugins import url as url_target
from webbugger_plugins.link import Link, create_link, update_link
from webbugger_plugins.url import check_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))
import track_target

if TYPE_CHECKING:
    from collections.abc import Iterator

OTHER_RING = KeyRing.from_json(track_target.OTHER_RING_JSON)
CRLF_VALUES = [
    "a\r\nLocation: https://evil.example/",
    "a\rSet-Cookie: session=evil",
    "a\nX-Injected: 1",
    "a%0d%0aLocation:%20https://evil.example/",
    "a%0D%0ASet-Cookie:%20session=evil",
    "\u2028\u0085a",
]
# Never a destination for anybody: not an absolute http(s) URL, user information, control
# characters, bad ports, host names that are no host names, over-long.
MALFORMED = [
    "//evil.example/",
    "\\/\\/evil.example/",
    "/\\evil.example",
    "/\\/evil.example/",
    "https:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "https:/\\evil.example/",
    "https:///evil.example/",
    "  //evil.example",
    "https://good.example@evil.example/",
    "https://evil.example\\@good.example/",
    "https://good.example:secret@evil.example/",
    "https://GOOD.example@evil.example/",
    "https://@evil.example/",
    "https://good.example%2eevil.example/",
    "https://good.example/\r\nLocation: https://evil.example/",
    "https://good.example/x\rSet-Cookie: a=b",
    "https://good.example/x\ny",
    "https://good.example/\x00",
    "https://good.example:99999/",
    "https://good.example:-1/",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://good.example/",
    "https://good.example/" + "a" * 2100,
    "https://good.example/\udcff",  # found: a lone surrogate (a shell's undecodable byte) raised
]
# Well-formed URLs to hosts outside the allowed list: a stored link may go there (its owner
# chose it), a signed ``url`` target may not.
OUTSIDE_HOSTS = [
    "https://evil.example/",
    "https://good.example.evil.example/",
    "https://evilgood.example/",
    "https://good.example.evil.example./",
    "https://evil.example#@good.example/",
    "https://evil.example?@good.example/",
    "https://gооd.example/",  # Cyrillic o's
    "https://xn--gd-fmca.example/",  # the same, as punycode
    "https://ɡood.example/",  # Latin script small g
    "https://good.examplе/",  # Cyrillic e
    "https://good。example.evil.example/",  # ideographic full stop
    "https://gööd.example/",
    "https://[::1]/",
    "https://127.0.0.1/",
    "https://0x7f000001/",
]
# Odd spellings of the allowed host: where each goes (None: refused, 404).
ODD_BUT_ALLOWED = {
    "https://GOOD.EXAMPLE/x": "https://good.example/x",
    "HTTPS://GoOd.ExAmPlE:8443/x": "https://good.example:8443/x",
    "https://good.example./x": None,  # a trailing dot is refused, not guessed at
    "https://a.good.example/x": "https://a.good.example/x",
    "https://ｇｏｏｄ.example/x": "https://good.example/x",  # fullwidth: the host a browser opens
    "https://good.example/x%0d%0aSet-Cookie:%20a=b": "https://good.example/x%0d%0aSet-Cookie:%20a=b",
    "https://good.example/?next=//evil.example": "https://good.example/?next=//evil.example",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[track_target.TrackStack]:
    with track_target.track_stack() as running:
        yield running


def hit(stack: track_target.TrackStack, path: str, **kwargs: Any) -> tuple[dict[str, Any], int]:
    """One hit: its checked answer, and how many beacons it wrote."""
    stack.take_beacons()
    response = stack.call(track_target.event(path, **kwargs))
    track_target.check_response(response)
    return response, len(stack.take_beacons())


def assert_refused(stack: track_target.TrackStack, path: str, **kwargs: Any) -> None:
    response, written = hit(stack, path, **kwargs)
    assert response["statusCode"] in (400, 404), response
    assert "location" not in track_target.response_headers(response)
    assert written == 0


def redirect_to(stack: track_target.TrackStack, target: Ref, ring: KeyRing | None = None) -> str:
    return "/r/" + stack.token(TokenClaims(mode=Mode.REDIRECT, target=target), ring)


def stored_directly(url: str, fallback: str | None = None, *, expired: bool = False) -> str:
    """A link written straight to the table, past create_link's checks (an old or hand-made item)."""
    link = Link(
        id=f"raw-{uuid.uuid4().hex[:10]}",
        url=url,
        created_at=utcnow(),
        fallback_url=fallback,
        short_url_enabled=True,
    )
    if expired:
        link.expires_at = utcnow() - timedelta(days=1)
    link.save()
    return link.id


# --- tokens -----------------------------------------------------------------------------------


def test_tampered_resigned_and_rekeyed_tokens_are_not_found(stack: track_target.TrackStack) -> None:
    good = redirect_to(stack, Ref("link", stack.links["plain"]))
    kid, sealed = good.removeprefix("/r/").split(".")
    evil_url = Ref("url", "https://evil.example/")
    paths = [
        f"/r/{kid}.{sealed[:-2]}{'B' if sealed[-2] == 'A' else 'A'}{sealed[-1]}",  # the claims
        f"/r/{kid}.{sealed[:5]}{'B' if sealed[5] == 'A' else 'A'}{sealed[6:]}",  # the SIV
        f"/r/{kid}.{sealed[:-1]}",
        f"/r/{kid}.{sealed}A",
        f"/r/k0.{sealed}",  # sealed by k1 under k0's id
        f"/r/k9.{sealed}",  # a key id this ring does not have
        f"/r/{kid}.",
        f"/r/{kid}.{sealed}.{sealed[:22]}",  # three parts: read as a token of an earlier release
        redirect_to(stack, Ref("link", stack.links["plain"]), OTHER_RING),  # same key id, other key
        redirect_to(stack, evil_url, OTHER_RING),
        # A url target sealed with another key, put in place of a good token's sealed part.
        f"/r/{kid}.{redirect_to(stack, evil_url, OTHER_RING).split('.')[1]}",
        # The same, signed as an earlier release signed, with another key.
        "/r/" + signed_before_sealing(TokenClaims(mode=Mode.REDIRECT, target=evil_url), OTHER_RING),
        "/r/" + "A" * 5000,
        good + "." + "A" * 5000,
    ]
    for path in paths:
        assert_refused(stack, path)


def test_a_redirect_token_is_not_a_pixel_and_back(stack: track_target.TrackStack) -> None:
    token = redirect_to(stack, Ref("url", "https://good.example/x")).removeprefix("/r/")
    assert_refused(stack, f"/p/{token}.gif")
    pixel = stack.token(TokenClaims(mode=Mode.PIXEL, target=Ref("url", "https://evil.example/")))
    assert_refused(stack, f"/r/{pixel}")


# --- signed url targets -------------------------------------------------------------------------


@pytest.mark.parametrize("url", MALFORMED + OUTSIDE_HOSTS)
def test_a_signed_url_target_outside_the_allowed_hosts_is_not_found(
    stack: track_target.TrackStack, url: str
) -> None:
    # Tagged by hand: sign() (and Ref) would refuse some of these before any token exists.
    assert_refused(stack, "/r/" + stack.tagged(["r", 1795474800, 0, f"url:{url}", None, None]))


def test_a_hand_tagged_url_target_to_an_allowed_host_is_followed(stack: track_target.TrackStack) -> None:
    """The control for the refusals above: the same hand-made token with an allowed host works."""
    token = stack.tagged(["r", 1795474800, 0, "url:https://a.good.example/x", None, None])
    response, written = hit(stack, f"/r/{token}")
    assert track_target.response_headers(response)["location"] == "https://a.good.example/x"
    assert written == 1


@pytest.mark.parametrize("url", list(ODD_BUT_ALLOWED))
def test_odd_spellings_of_an_allowed_host_lead_only_to_it(stack: track_target.TrackStack, url: str) -> None:
    response, written = hit(stack, redirect_to(stack, Ref("url", url)))
    expected = ODD_BUT_ALLOWED[url]
    assert track_target.response_headers(response).get("location") == expected
    assert (response["statusCode"], written) == ((302, 1) if expected else (404, 0))


def test_the_allowed_hosts_setting_is_read_in_lower_case_punycode_without_trailing_dots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(url_target.ALLOWED_HOSTS_VARIABLE, " Bücher.Example. , *.GOOD.example ,, ")
    url_target.allowed_hosts.cache_clear()
    try:
        assert url_target.allowed_hosts() == ("xn--bcher-kva.example", "*.good.example")
    finally:
        url_target.allowed_hosts.cache_clear()


def test_allowed_hosts_match_whole_labels_in_punycode() -> None:
    patterns = ("xn--bcher-kva.example", "*.good.example")  # bücher.example as configured
    assert check_url("https://bücher.example/a", patterns) == "https://xn--bcher-kva.example/a"
    assert check_url("https://BÜCHER.example/a", patterns).startswith("https://xn--bcher-kva.example/")
    for url in (
        "https://bucher.example/",
        "https://xn--bcher-kva.example.evil.example/",
        "https://evilxn--bcher-kva.example/",
        "https://good.example/",  # *.good.example is its subdomains, not itself
        "https://xgood.example/",
    ):
        with pytest.raises(UnsafeDestinationError):
            check_url(url, patterns)


# --- stored links -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_stored_destination_is_refused_when_stored_and_when_hit(
    stack: track_target.TrackStack, url: str
) -> None:
    with pytest.raises(UnsafeDestinationError):
        create_link(url)
    with pytest.raises(UnsafeDestinationError):
        update_link(stack.links["plain"], {"url": url})
    with pytest.raises(UnsafeDestinationError):
        update_link(stack.links["expired"], {"fallback_url": url})
    if url.encode(errors="replace").decode() != url:
        return  # not valid Unicode: DynamoDB cannot hold it, so no stored link can carry it
    # Put in the table by hand all the same: the track function still will not send it.
    link_id = stored_directly(url)
    assert_refused(stack, f"/l/{link_id}")
    assert_refused(stack, redirect_to(stack, Ref("link", link_id)))
    assert_refused(stack, f"/l/{stored_directly(track_target.LINK_URL, url, expired=True)}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["link", "create", b"https://good.example/\xff"], "URL is not valid Unicode"),
        (["url", "redirect", "--target", b"url:https://good.example/\xff"], "not valid Unicode"),
    ],
)
def test_the_cli_refuses_an_undecodable_url_in_one_line(argv: list[str | bytes], message: str) -> None:
    """Found: a shell's undecodable byte became a lone surrogate, and a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "webbugger_cli.main", *argv], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("webbugger: error: ") and message in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_an_expired_link_goes_to_its_stored_fallback_only(stack: track_target.TrackStack) -> None:
    response, written = hit(stack, f"/l/{stack.links['expired']}")
    assert response["statusCode"] == 302
    assert track_target.response_headers(response)["location"] == track_target.FALLBACK_URL
    assert written == 1


def test_a_chained_link_cannot_launder_a_foreign_or_disallowed_token(stack: track_target.TrackStack) -> None:
    """A stored link to this service's own /r/ URL is followed internally: the inner token is
    verified like any other, so neither another key's token nor a disallowed url target gets out."""
    for inner in (
        redirect_to(stack, Ref("url", "https://evil.example/"), OTHER_RING),
        redirect_to(stack, Ref("url", "https://evil.example/")),
    ):
        link_id = create_link(f"https://t.example{inner}", short_url_enabled=True).id
        assert_refused(stack, f"/l/{link_id}", headers={"host": "t.example"})


# --- forwarded query strings and headers ---------------------------------------------------


def test_forwarded_query_strings_stay_in_the_query(stack: track_target.TrackStack) -> None:
    path = redirect_to(stack, Ref("link", stack.links["forwarding"]))
    hostile = {f"k{index}": value for index, value in enumerate(CRLF_VALUES)} | {
        "next": "//evil.example",
        "u": "https://good.example@evil.example",
        "\r\nSet-Cookie": "x",
        "a": "overridden?",  # the link's own a=1 wins
        "%0d%0a": "%0d%0a",
    }
    response, written = hit(stack, path, query=hostile)
    location = track_target.response_headers(response)["location"]
    assert response["statusCode"] == 302
    assert location.startswith(track_target.LINK_URL + "&")
    assert "a=overridden" not in location
    assert written == 1


def test_a_forwarded_lone_surrogate_is_replaced_not_a_server_error(stack: track_target.TrackStack) -> None:
    """Found by fuzzing: urlencode raised UnicodeEncodeError on a JSON-escaped lone surrogate."""
    response, written = hit(stack, f"/l/{stack.links['forwarding']}", query={"x\udcff": "\ud800y"})
    assert track_target.response_headers(response)["location"] == track_target.LINK_URL + "&x%3F=%3Fy"
    assert written == 1


def test_an_over_long_forwarded_query_is_dropped_not_the_visitor(stack: track_target.TrackStack) -> None:
    path = f"/l/{stack.links['forwarding']}"
    response, written = hit(stack, path, query={"q": "a" * 5000, "r": "\r\n" * 100})
    assert response["statusCode"] == 302
    assert track_target.response_headers(response)["location"] == track_target.LINK_URL
    assert written == 1


HEADER_NAMES = ["host", "user-agent", "referer", "accept-language", "cloudfront-viewer-country", "x"]


def test_cr_lf_in_any_header_value_never_reaches_a_response_header(stack: track_target.TrackStack) -> None:
    paths = [
        redirect_to(stack, Ref("link", stack.links["plain"])),
        f"/l/{stack.links['forwarding']}",
        "/p/" + stack.token(TokenClaims(mode=Mode.PIXEL)) + ".gif",
        "/r/forged.token.here",
    ]
    for shift in range(len(CRLF_VALUES)):
        # Every header carries one of the values, a different one each round.
        values = CRLF_VALUES[shift:] + CRLF_VALUES[:shift]
        headers = dict(zip(HEADER_NAMES, values, strict=True))
        for path in paths:
            response, _ = hit(stack, path, headers=headers, source_ip=values[0])
            assert response["statusCode"] in (200, 302, 404)  # check_response: nothing injected


def test_cr_lf_in_the_path_is_not_found(stack: track_target.TrackStack) -> None:
    good = redirect_to(stack, Ref("link", stack.links["plain"]))
    for value in CRLF_VALUES:
        assert_refused(stack, good + value)
        assert_refused(stack, f"/l/{stack.links['plain']}{value}")


# --- the admin API refuses what it would store -------------------------------------------------


@pytest.fixture(scope="module")
def admin(stack: track_target.TrackStack) -> track_target.Handler:
    return stack.load_function("AdminFunction")


def admin_call(admin: track_target.Handler, method: str, path: str, body: object) -> dict[str, Any]:
    made = track_target.event(path, method=method, headers={"content-type": "application/json"})
    made["body"] = json.dumps(body)
    return admin(made, track_target.FakeContext(function_name="AdminFunction"))


@pytest.mark.parametrize("url", MALFORMED)
def test_the_admin_api_refuses_a_bad_destination_and_stores_nothing(
    stack: track_target.TrackStack, admin: track_target.Handler, url: str
) -> None:
    links_before = Link.count()
    answers = [
        admin_call(admin, "POST", "/links", {"url": url}),
        admin_call(admin, "POST", "/links", {"url": track_target.LINK_URL, "fallback_url": url}),
        admin_call(admin, "PATCH", f"/links/{stack.links['plain']}", {"url": url}),
        admin_call(admin, "PATCH", f"/links/{stack.links['plain']}", {"fallback_url": url}),
        admin_call(admin, "POST", "/mint", {"target": f"url:{url}"}),
    ]
    for answer in answers:
        assert answer["statusCode"] == 400, answer
    assert Link.count() == links_before
    assert Link.get(stack.links["plain"]).url == track_target.LINK_URL
    assert Link.get(stack.links["plain"]).fallback_url is None


def test_the_admin_api_mints_an_allowed_url_target_that_the_track_function_follows(
    stack: track_target.TrackStack, admin: track_target.Handler
) -> None:
    """The control for the refusals: the same set-up accepts a good URL."""
    answer = admin_call(admin, "POST", "/mint", {"target": "url:https://A.good.example/x"})
    assert answer["statusCode"] == 200, answer
    minted = json.loads(answer["body"])["redirect_url"]
    response, written = hit(stack, minted.removeprefix("https://t.example"))
    assert track_target.response_headers(response)["location"] == "https://a.good.example/x"
    assert written == 1


@pytest.mark.parametrize("url", OUTSIDE_HOSTS)
def test_the_admin_api_mints_no_url_target_outside_the_allowed_hosts(
    admin: track_target.Handler, url: str
) -> None:
    answer = admin_call(admin, "POST", "/mint", {"target": f"url:{url}"})
    assert answer["statusCode"] == 400, answer
    assert "evil" not in answer["body"] or "redirect_url" not in json.loads(answer["body"])


def test_a_link_stored_with_an_odd_spelling_goes_where_a_url_target_would() -> None:
    for url, expected in ODD_BUT_ALLOWED.items():
        if expected is None:
            with pytest.raises(UnsafeDestinationError):
                normalise_destination(url)
        else:
            assert normalise_destination(url) == expected
