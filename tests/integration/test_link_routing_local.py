"""Links through the local stack: routing rules by device and by country (only through the trusted
origin header), short URLs off until a link turns them on (so an unsigned URL cannot spend a
capped link's hits), QR codes of short URLs read back with a real decoder, and the CLI's rule,
split and stats verbs (run in-process against the stack, to keep the file quick).

Each test uses its own link ids and user agents, so tests share one DynamoDB Local.
"""

from __future__ import annotations

import http.client
import io
import json
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import pytest
import resvg_py
import zxingcpp
from PIL import Image
from webbugger import runtime
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import TokenClaims
from webbugger_cli.main import main

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
)
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture(autouse=True)
def uncached(local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests change links between hits: the track function reads each link on every hit
    (LOOKUP_CACHE_SECONDS=0) rather than within 30 s of a change."""
    monkeypatch.setenv("LOOKUP_CACHE_SECONDS", "0")
    runtime.reset()  # the core reads its settings once per process


def call(method: str, url: str, payload: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """One request, redirects not followed."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        sent = {"Content-Type": "application/json"} if body is not None else {}
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=sent | (headers or {}))
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def hit(url: str, user_agent: str, **headers: str) -> tuple[int, str | None]:
    answer = call("GET", url, headers={"User-Agent": user_agent, **headers})
    return answer.status, answer.headers.get("location")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(stack: RunningStack, **fields: Any) -> dict[str, Any]:
    answer = call("POST", f"{stack.admin_url}/links", fields)
    assert answer.status == 201, answer.body
    created: dict[str, Any] = json.loads(answer.body)
    return created


def beacons_of(stack: RunningStack, user_agent: str) -> list[dict[str, Any]]:
    return stack.beacons(user_agent=user_agent)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``webbugger ARGV`` in this process, against the local stack; (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def decoded(png: bytes) -> list[str]:
    """The texts of the QR codes a real decoder (zxing-cpp) finds in ``png``."""
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def svg_decoded(svg: bytes) -> list[str]:
    """The same for an SVG, rendered by resvg first."""
    png = resvg_py.svg_to_bytes(svg_string=svg.decode(), background="#ffffff", skip_system_fonts=True)
    return decoded(bytes(png))


# --- rules ------------------------------------------------------------------------------------


def test_an_iphone_an_android_and_a_desktop_reach_their_three_destinations(local_stack: RunningStack) -> None:
    link_id = new_id("devices")
    rules = [
        {"name": "ios", "url": "https://apps.example/ios", "device": ["ios"]},
        {"name": "android", "url": "https://apps.example/android", "device": ["android"]},
        {"name": "desktop", "url": "https://www.example.com/desktop", "device": ["desktop"]},
    ]
    created = create(
        local_stack, id=link_id, url="https://www.example.com/", short_url_enabled=True, rules=rules
    )
    assert [rule["name"] for rule in created["rules"]] == ["ios", "android", "desktop"]
    short = created["short_url"]
    tag = uuid.uuid4().hex[:8]
    agents = {
        name: f"{agent} t/{tag}"
        for name, agent in (("ios", IPHONE), ("android", ANDROID), ("desktop", DESKTOP))
    }
    assert hit(short, agents["ios"]) == (302, "https://apps.example/ios")
    assert hit(short, agents["android"]) == (302, "https://apps.example/android")
    assert hit(short, agents["desktop"]) == (302, "https://www.example.com/desktop")
    assert hit(short, f"curl/8.5.0 t/{tag}") == (302, "https://www.example.com/")  # no rule: the link's url
    for name, agent in agents.items():
        (beacon,) = beacons_of(local_stack, agent)
        assert beacon["rule"] == {"S": name}
        assert "var" not in beacon
    (plain,) = beacons_of(local_stack, f"curl/8.5.0 t/{tag}")
    assert "rule" not in plain


def test_a_country_rule_holds_only_through_the_trusted_origin_header(local_stack: RunningStack) -> None:
    rules = [{"name": "dach", "url": "https://www.example.de/", "country": ["DE", "AT", "CH"]}]
    link = create(local_stack, url="https://www.example.com/", short_url_enabled=True, rules=rules)
    agent = f"{DESKTOP} country/{uuid.uuid4().hex[:8]}"
    # Anyone can send CloudFront's header straight to the API: not believed without the secret.
    assert hit(link["short_url"], agent, **{"CloudFront-Viewer-Country": "DE"}) == (
        302,
        "https://www.example.com/",
    )
    forged = {"CloudFront-Viewer-Country": "DE", "X-Webbugger-Origin-Secret": "guessed"}
    assert hit(link["short_url"], agent, **forged) == (302, "https://www.example.com/")
    trusted = {"CloudFront-Viewer-Country": "DE", "X-Webbugger-Origin-Secret": local_stack.origin_secret}
    assert hit(link["short_url"], agent, **trusted) == (302, "https://www.example.de/")
    trusted_fr = trusted | {"CloudFront-Viewer-Country": "FR"}
    assert hit(link["short_url"], agent, **trusted_fr) == (302, "https://www.example.com/")
    routed = sorted(
        ((b.get("country", {}).get("S"), b.get("rule", {}).get("S")) for b in beacons_of(local_stack, agent)),
        key=str,
    )
    assert routed == [("DE", "dach"), ("FR", None), (None, None), (None, None)]


# --- short URLs and the hit cap (issue 17, item 5) ----------------------------------------------


def test_hits_on_an_unsigned_short_url_do_not_use_up_a_capped_link(
    local_stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone who sees a tracking URL can read the link id in it: three unsigned hits on /l/ID of
    a --max-hits 3 link must not make the recipient's signed URL answer 404."""
    code, out, err = cli(capsys, "link", "create", "https://example.com/offer", "--max-hits", "3")
    assert code == 0, err
    link_id = out.strip()
    short = f"{local_stack.api_url}/l/{link_id}"
    agent = f"{DESKTOP} cap/{link_id}"
    assert [hit(short, agent)[0] for _ in range(3)] == [404, 404, 404]  # off unless turned on
    assert beacons_of(local_stack, agent) == []
    signed = local_stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link_id)))
    assert hit(signed, agent) == (302, "https://example.com/offer")

    # Turned on, the short URL redirects, but only the URLs the owner minted spend the cap.
    code, out, err = cli(capsys, "link", "update", link_id, "--short-url", "--json")
    assert code == 0, err
    assert json.loads(out)["short_url"] == short
    assert err == (
        f"note: the short URL of link {link_id} (and its QR code) is not capped: only URLs minted "
        "for the link spend its 3 hits\n"
    )
    assert [hit(short, agent)[0] for _ in range(3)] == [302, 302, 302]
    assert [hit(signed, agent)[0] for _ in range(3)] == [302, 302, 404]  # the first hit above was one
    assert hit(short, agent)[0] == 404  # spent: the short URL is refused too
    assert len(beacons_of(local_stack, agent)) == 6


# --- QR codes -----------------------------------------------------------------------------------


def test_the_qr_code_decodes_to_the_links_short_url(
    local_stack: RunningStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    link_id = new_id("qr")
    create(local_stack, id=link_id, url="https://example.com/menu")
    # No short URL yet: nothing to encode, said in one line (CLI) or a 409 (admin API).
    code, out, err = cli(capsys, "link", "qr", link_id, "--out", str(tmp_path / "none.png"))
    assert (code, out) == (1, "")
    assert err.startswith("webbugger: error: ") and "has no short URL" in err and len(err.splitlines()) == 1
    refused = call("GET", f"{local_stack.admin_url}/links/{link_id}/qr")
    assert (refused.status, json.loads(refused.body)["error"]["code"]) == (409, "no_short_url")

    call("PATCH", f"{local_stack.admin_url}/links/{link_id}", {"short_url_enabled": True})
    short = f"{local_stack.api_url}/l/{link_id}"
    code, _, err = cli(capsys, "link", "qr", link_id, "--out", str(tmp_path / "menu.png"))
    assert code == 0, err
    assert decoded((tmp_path / "menu.png").read_bytes()) == [short]
    code, _, err = cli(capsys, "link", "qr", link_id, "--svg", "--out", str(tmp_path / "menu.svg"))
    assert code == 0, err
    assert svg_decoded((tmp_path / "menu.svg").read_bytes()) == [short]

    for fmt, read in (("png", decoded), ("svg", svg_decoded)):
        answer = call("GET", f"{local_stack.admin_url}/links/{link_id}/qr?format={fmt}")
        assert answer.status == 200, answer.body
        assert answer.headers["content-type"] == {"png": "image/png", "svg": "image/svg+xml"}[fmt]
        assert read(answer.body) == [short] == [answer.headers["x-short-url"]]
    assert hit(short, f"{DESKTOP} qr/{link_id}") == (302, "https://example.com/menu")


# --- the CLI's rule and split verbs, and clicks per variant ---------------------------------------


def test_rules_and_a_split_from_the_cli_and_clicks_per_variant_in_stats(
    local_stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    link_id = new_id("cli")
    create(local_stack, id=link_id, url="https://example.com/", short_url_enabled=True)
    code, _, err = cli(
        capsys, "link", "rule", "add", link_id, "--device", "ios,android", "--url", "https://apps.example/"
    )
    assert code == 0, err
    code, out, err = cli(
        capsys, "link", "rule", "add", link_id, "--query", "from=qr", "--url", "https://example.com/qr",
        "--name", "qr", "--position", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert [(rule["name"], rule["url"]) for rule in json.loads(out)] == [
        ("qr", "https://example.com/qr"),
        ("r1", "https://apps.example/"),
    ]
    # A mistake is one line, before any stack is looked for.
    code, _, err = cli(
        capsys, "link", "rule", "add", link_id, "--device", "phone", "--url", "https://a.example/"
    )
    assert code == 1 and "not a valid value" in err and len(err.splitlines()) == 1
    code, out, err = cli(
        capsys, "link", "split", "set", link_id,
        "--variant", "old", "1", "https://example.com/old",
        "--variant", "new", "1", "https://example.com/new",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0].split() == ["VARIANT", "WEIGHT", "SHARE", "URL"]

    short = f"{local_stack.api_url}/l/{link_id}"
    tag = uuid.uuid4().hex[:8]
    assert hit(f"{short}?from=qr", f"{IPHONE} {tag}")[1] == "https://example.com/qr"  # the first rule wins
    assert hit(short, f"{IPHONE} {tag}")[1] == "https://apps.example/"  # then the second
    landed = [hit(short, f"{DESKTOP} {tag}/{n}")[1] for n in range(8)]  # no rule: the split
    assert set(landed) == {"https://example.com/old", "https://example.com/new"}

    code, out, err = cli(capsys, "stats", f"link:{link_id}", "--days", "1", "--json")
    assert code == 0, err
    clicks = {v["name"]: v["clicks"] for v in json.loads(out)["variants"]}
    assert clicks == {name: landed.count(f"https://example.com/{name}") for name in ("old", "new")}

    code, _, err = cli(capsys, "link", "split", "end", link_id, "--winner", "new")
    assert code == 0, err
    code, _, err = cli(capsys, "link", "rule", "remove", link_id, "r1")
    assert code == 0, err
    assert hit(short, f"{IPHONE} {tag}")[1] == "https://example.com/new"  # no rule left for it; the winner
