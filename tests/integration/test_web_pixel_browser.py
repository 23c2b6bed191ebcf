"""A web page's pixel and link, as the seed meant them: minted when the page renders, fetched and
followed by a real browser within a second, and both hits labelled ``human``.

A tiny page server on 127.0.0.1 mints a fresh pixel URL and a fresh link URL (``web``, as
``webbugger url`` mints them) into each page it serves; the page's script follows the link once
the pixel has loaded, and the link redirects back to the page server. Headless Chromium (Debian's
``chromium``, installed by ``make setup``) loads the page against the session's local stack; the
stream feed labels the two beacons.

Chromium is told to send the user agent of the same Chromium with a screen: its headless mode
adds "HeadlessChrome" to the user agent, which the bot lists rightly take for automation; a
person's browser does not.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from test_report_browser import chromium
from webbugger.classify import SECONDS_AFTER_MINT
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import Purpose, TokenClaims, verify

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

LANDED_WITHIN_S = 60.0
LABELLED_WITHIN_S = 20.0


class PageServer:
    """Serves ``/page`` (a page with a freshly minted pixel and link) and ``/landed``."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.minted: list[str] = []
        self.landed = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/landed":
                    server.landed.set()
                    self._answer(b"<!doctype html><title>landed</title><p>landed</p>")
                elif self.path == "/page":
                    self._answer(server.page().encode())
                else:
                    self.send_error(404)

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.link_id = stack.create_link(f"{self.url}/landed")

    def page(self) -> str:
        # Minted now, as a web page's template would while rendering.
        pixel = self.stack.mint(TokenClaims(mode=Mode.PIXEL, target=Ref("link", self.link_id)))
        link = self.stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", self.link_id)))
        self.minted += [pixel, link]
        return (
            "<!doctype html><title>article</title>"
            f'<img id="pixel" alt="" width="1" height="1" src="{pixel}">'
            f'<a id="more" href="{link}">read more</a>'
            "<script>document.getElementById('pixel').addEventListener('load',"
            " () => document.getElementById('more').click());</script>"
        )

    def __enter__(self) -> PageServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def user_agent_with_a_screen(binary: str) -> str:
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=True)
    major = re.search(r"(\d+)\.\d+\.\d+\.\d+", version.stdout)
    assert major, version.stdout
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major.group(1)}.0.0.0 Safari/537.36 webbugger-test/{uuid.uuid4().hex[:8]}"
    )


@contextlib.contextmanager
def browsing(binary: str, url: str, user_agent: str, profile: str) -> Iterator[None]:
    """Headless Chromium on ``url`` while the block runs; its whole process group killed after."""
    argv = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--user-agent={user_agent}",
        url,
    ]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ),
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def labelled(stack: RunningStack, user_agent: str) -> dict[str, str]:
    """The stored class of the browser's beacons by mode, once both are labelled."""
    deadline = time.monotonic() + LABELLED_WITHIN_S
    while True:
        items = stack.beacons(user_agent)
        classes = {item["mode"]["S"]: item["class"]["S"] for item in items if "class" in item}
        if len(classes) == 2 or time.monotonic() > deadline:
            return classes
        time.sleep(0.3)


def test_a_browser_on_a_web_page_makes_two_human_beacons(local_stack: RunningStack, tmp_path: Any) -> None:
    binary = chromium()
    agent = user_agent_with_a_screen(binary)
    with (
        PageServer(local_stack) as pages,
        browsing(binary, f"{pages.url}/page", agent, str(tmp_path / "profile")),
    ):
        assert pages.landed.wait(LANDED_WITHIN_S), "the browser never followed the page's link"
    assert [
        str(verify(url.rsplit("/", 1)[1].removesuffix(".gif"), local_stack.ring).purpose)
        for url in pages.minted
    ] == [
        Purpose.WEB,
        Purpose.WEB,
    ]
    items = local_stack.beacons(agent)
    assert sorted(item["mode"]["S"] for item in items) == ["pixel", "redirect"]
    for item in items:
        # Seconds after minting (the signal that used to make such a hit a machine's), and the
        # headers a browser sends: Sec-Fetch-Mode (no "nofetch" hint) and Accept-Language.
        made = datetime.strptime(item["ts"]["S"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        assert made - int(item["minted"]["N"]) < SECONDS_AFTER_MINT
        assert "nofetch" not in item.get("hints", {}).get("SS", [])
        assert item.get("lang", {}).get("S")
    assert labelled(local_stack, agent) == {"pixel": "human", "redirect": "human"}
