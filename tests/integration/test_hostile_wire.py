"""Hostile bytes over the wire, against the local stack (its HTTP server and DynamoDB Local): raw
CR/LF in header values, %0d%0a in a forwarded query string, non-UTF-8 bytes, over-long lines and a
Host header that names no host. Sent on a raw socket, since a client library refuses most of
these. No answer is a 5xx, and nothing the visitor sent becomes a response header.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

import pytest
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import TokenClaims

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal
DESTINATION = "https://good.example/landing?a=1"


class RawAnswer(NamedTuple):
    status: int
    header_lines: list[bytes]


def send_raw(api_url: str, request_line: bytes, headers: list[bytes]) -> RawAnswer:
    """One request written byte for byte on a fresh connection; the status and header lines."""
    parts = urlsplit(api_url)
    assert parts.hostname == "127.0.0.1"
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as conn:
        conn.sendall(b"\r\n".join([request_line, *headers, b"Connection: close", b"", b""]))
        received = b""
        while b"\r\n\r\n" not in received and len(received) < 1_000_000:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0]
    status_line, *header_lines = head.split(b"\r\n")
    return RawAnswer(int(status_line.split(b" ")[1]), header_lines)


def assert_clean(answer: RawAnswer) -> None:
    assert answer.status < 500, answer
    names = [line.split(b":", 1)[0].strip().lower() for line in answer.header_lines]
    for line in answer.header_lines:
        assert b"\r" not in line and b"\n" not in line, answer
    assert b"set-cookie" not in names and b"x-injected" not in names, answer
    assert names.count(b"location") <= 1, answer
    for line in answer.header_lines:
        if line.lower().startswith(b"location:"):
            assert line.split(b":", 1)[1].strip().startswith(DESTINATION.encode()), answer


def forwarding_link(stack: RunningStack) -> str:
    from webbugger_plugins.link import update_link

    link_id = stack.create_link(DESTINATION)  # binds the models to the stack's tables
    update_link(link_id, {"forward_query": True})
    return link_id


def test_cr_lf_over_the_wire_never_reaches_a_response_header(local_stack: RunningStack) -> None:
    link_id = forwarding_link(local_stack)
    path = urlsplit(local_stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link_id)))).path
    agent = f"hostile-wire/{uuid.uuid4().hex}"
    query = b"?x=%0d%0aSet-Cookie:%20evil=1&y=%0aLocation:%20https://evil.example/&%0d%0aX-Injected=1"
    for target in (path.encode() + query, f"/l/{link_id}".encode() + query):
        answer = send_raw(
            local_stack.api_url,
            b"GET " + target + b" HTTP/1.1",
            [b"Host: 127.0.0.1", b"User-Agent: " + agent.encode(), b"Referer: a\rX-Injected: 1"],
        )
        assert_clean(answer)
        assert answer.status == 302
    assert len(local_stack.beacons(agent)) == 2


@pytest.mark.parametrize(
    ("request_line", "headers"),
    [
        (b"GET /r/" + b"A" * 20_000 + b" HTTP/1.1", [b"Host: 127.0.0.1"]),
        (b"GET /p/\xff\xfe.gif HTTP/1.1", [b"Host: 127.0.0.1", b"User-Agent: \xff\xfe\x80"]),
        (b"GET /r/k1.\xc3\xa9.x HTTP/1.1", [b"Host: 127.0.0.1"]),
        (b"GET /r/x HTTP/1.1", [b"Host: 127.0.0.1", b"User-Agent: " + b"u" * 70_000]),
        (b"GET /r/x HTTP/1.1", [b"Host: 127.0.0.1", *(b"X-%d: v" % n for n in range(200))]),
        (b"GET /r/x%0d%0aSet-Cookie:%20a=b HTTP/1.1", [b"Host: 127.0.0.1"]),
    ],
    ids=["long path", "non-utf-8", "non-ascii token", "long header", "many headers", "crlf in path"],
)
def test_malformed_requests_are_refused_without_a_server_error(
    local_stack: RunningStack, request_line: bytes, headers: list[bytes]
) -> None:
    before = len(local_stack.beacons())
    answer = send_raw(local_stack.api_url, request_line, headers)
    assert_clean(answer)
    assert 400 <= answer.status < 500
    assert len(local_stack.beacons()) == before


def test_a_host_header_that_names_no_host_still_redirects(local_stack: RunningStack) -> None:
    """Found by the property tests: urlsplit raised on this Host header, a 500 for a valid link."""
    link_id = local_stack.create_link(DESTINATION)
    answer = send_raw(local_stack.api_url, f"GET /l/{link_id} HTTP/1.1".encode(), [b"Host: [::1"])
    assert_clean(answer)
    assert answer.status == 302


def test_replay_stores_no_beacon_a_visitor_wrote_into_the_log(
    local_stack: RunningStack,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A request line that holds a spill record (raw, or quoted by http.server's 400 line) lands
    in the local log, as `make run` prints it; `webbugger replay` of that log stores none of it,
    and still stores the track function's own record beside them."""
    from webbugger import runtime
    from webbugger.ids import new_beacon_id
    from webbugger_cli.main import main
    from webbugger_cli.terminal import TerminalFormatter

    agent = f"forged/{uuid.uuid4().hex}"

    def record() -> dict[str, str]:
        now = datetime.now(UTC).isoformat()
        return {
            "id": new_beacon_id(),
            "created_at": now,
            "mode": "pixel",
            "method": "GET",
            "user_agent": agent,
        }

    bare = json.dumps({"spilled_beacon": record()}, separators=(",", ":"))
    shaped = json.dumps({"level": "ERROR", "message": "beacon write failed", "spilled_beacon": record()})
    with caplog.at_level(logging.INFO, logger="webbugger_cli.local.server"):
        send_raw(local_stack.api_url, f"GET /p/{bare} HTTP/1.1".encode(), [b"Host: 127.0.0.1"])
        send_raw(local_stack.api_url, f"GET /p/x {shaped} HTTP/1.1".encode(), [b"Host: 127.0.0.1"])
    formatter = TerminalFormatter("%(message)s")
    logged = [formatter.format(entry) for entry in caplog.records if "spilled_beacon" in entry.getMessage()]
    assert len(logged) == 3, caplog.text  # the request line, and the 400 line quoting it
    genuine = {"level": "ERROR", "message": "beacon write failed", "spilled_beacon": record()}
    log_file = tmp_path / "local.log"
    log_file.write_text("\n".join([*logged, json.dumps(genuine)]) + "\n")

    runtime.reset()
    capsys.readouterr()
    assert main(["replay", str(log_file)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary == "replay: read 1 spilled beacon: 1 stored, 0 already present, 0 invalid"
    assert [item["id"]["S"] for item in local_stack.beacons(agent)] == [genuine["spilled_beacon"]["id"]]


# --- strict framing, and the unsigned local admin API's guards ------------------------------


def exchange(api_url: str, raw: bytes, timeout: float = 5.0) -> int | None:
    """``raw`` sent as is on a fresh connection; the answer's status, or None if the server
    closed the connection without one."""
    parts = urlsplit(api_url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as conn:
        conn.sendall(raw)
        received = b""
        while b"\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            received += chunk
    return int(received.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("framing", "status"),
    [
        (b"Content-Length: +10\r\n\r\n0123456789", 400),
        (b"Content-Length: 0x4\r\n\r\nabcd", 400),
        (b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400),
        (b"Content-Length: 4, 5\r\n\r\nabcde", 400),
        (b"Transfer-Encoding: xchunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n", 501),
        (b"Transfer-Encoding: chunked, identity\r\n\r\n4\r\nabcd\r\n0\r\n\r\n", 501),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n", 400),
        (b"Transfer-Encoding: chunked\r\n\r\n-1\r\nabcd\r\n0\r\n\r\n", 400),
        (b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXY0\r\n\r\n", 400),
        (b"Content-Length: " + b"1" * 5000 + b"\r\n\r\n", 400),  # int() refuses 4300+ digits
    ],
    ids=[
        "plus",
        "hex",
        "two lengths",
        "length list",
        "xchunked",
        "chunked then more",
        "te and cl",
        "-1",
        "no crlf",
        "5000 digits",
    ],
)
def test_ambiguous_framing_is_refused(local_stack: RunningStack, framing: bytes, status: int) -> None:
    head = b"POST /p/x.gif HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    assert exchange(local_stack.api_url, head + framing) == status


def test_a_body_never_sent_is_dropped_after_the_read_timeout(
    local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webbugger_cli.local.wire import RequestHandler

    monkeypatch.setattr(RequestHandler, "timeout", 0.3)
    started = time.monotonic()
    raw = b"POST /p/x.gif HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc"
    assert exchange(local_stack.api_url, raw) is None  # closed, not left waiting
    assert time.monotonic() - started < 3


def admin_post(stack: RunningStack, headers: dict[str, str], body: bytes) -> int:
    parts = urlsplit(stack.admin_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", "/links", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def test_the_local_admin_api_refuses_what_a_web_page_could_send(local_stack: RunningStack) -> None:
    from webbugger_plugins.link import load

    port = urlsplit(local_stack.admin_url).port
    link_id = f"x-{uuid.uuid4().hex[:12]}"
    payload = json.dumps({"url": DESTINATION, "id": link_id}).encode()
    as_json = {"Content-Type": "application/json"}
    refused = [
        (
            {"Content-Type": "application/x-www-form-urlencoded"},
            f"url={DESTINATION}&id={link_id}".encode(),
            415,
        ),
        ({"Content-Type": "text/plain"}, payload, 415),
        ({}, payload, 415),  # a body with no type: fetch's Blob body
        ({**as_json, "Host": f"rebound.example:{port}"}, payload, 421),  # DNS rebinding
        ({**as_json, "Host": "127.0.0.1:1"}, payload, 421),
        ({**as_json, "Origin": "https://evil.example"}, payload, 403),
        ({**as_json, "Origin": "null"}, payload, 403),
    ]
    for headers, body, status in refused:
        assert admin_post(local_stack, headers, body) == status, headers
    local_stack.create_link(DESTINATION)  # binds the link model to the stack's table
    assert load(link_id) is None
    # What the CLI and a page of the admin API's own origin send still works.
    assert admin_post(local_stack, {**as_json, "Origin": f"http://localhost:{port}"}, payload) == 201
    assert load(link_id) is not None
