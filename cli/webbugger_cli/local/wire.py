"""The local stack's HTTP/1.1 server: strict request framing, and the guards of the unsigned
admin API.

Deployed, API Gateway (or CloudFront) parses requests and SigV4 guards the admin API. Locally
this server does both, so it refuses what a front door would not pass on:

- a body framed two ways or ambiguously (request smuggling's tools): a ``Content-Length`` that
  is not digits only (``+10``, ``1_0``, ``0x10``) or has over 19 of them, differing
  ``Content-Length`` values, ``Transfer-Encoding`` with ``Content-Length``, a chunk size that is
  not hex digits (``-1``): 400; a ``Transfer-Encoding`` other than exactly ``chunked``: 501;
- a client that stops sending: every read has a timeout (:attr:`RequestHandler.timeout`), after
  which the connection is closed;
- on the admin API, which locally checks no signature, what a web page could make a browser
  send: a ``Host`` other than 127.0.0.1 or localhost on its port (DNS rebinding): 421; an
  ``Origin`` other than its own: 403; a ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` whose body
  (or ``Content-Type``) is not JSON (a cross-site form post): 415.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from webbugger_cli.terminal import terminal_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import Message

    # What answers a request once it is read (LocalApi.handle): method, target, header pairs,
    # body, the request, and the API's id.
    Answerer = Callable[
        [str, str, list[tuple[str, str]], bytes, BaseHTTPRequestHandler, str], "LocalResponse"
    ]

HOST = "127.0.0.1"
LOCAL_NAMES = (HOST, "localhost")
# API Gateway's own limits and answers.
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_CHUNKS = 100_000
# A client that sends nothing for this long (mid-request, or between keep-alive requests) is
# disconnected: a body announced and never sent cannot hold a thread for ever.
READ_TIMEOUT_S = 15.0
# Bounded: int() refuses a string of over 4300 digits (ValueError, not an answer).
_DIGITS = re.compile(r"[0-9]{1,19}\Z")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n\Z")
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MESSAGES = {
    400: "Bad Request",
    403: "Forbidden",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    501: "Not Implemented",
}

log = logging.getLogger("webbugger_cli.local.server")


@dataclass(frozen=True, slots=True)
class LocalResponse:
    """An HTTP answer: status, header lines (repeats allowed) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_response(status: int, payload: object) -> LocalResponse:
    """A JSON answer."""
    return LocalResponse(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


class RefusedError(Exception):
    """A request this server will not pass on; ``status`` is the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def body_length(headers: Message) -> int | None:
    """The body's length from ``Content-Length``, or None when the body is chunked; raises
    :class:`RefusedError` for any other framing."""
    codings = headers.get_all("Transfer-Encoding") or []
    lengths = [part.strip() for value in headers.get_all("Content-Length") or [] for part in value.split(",")]
    if codings:
        if [coding.strip().lower() for coding in codings] != ["chunked"]:
            raise RefusedError(501, f"unsupported Transfer-Encoding {codings!r:.60}")
        if lengths:
            raise RefusedError(400, "both Transfer-Encoding and Content-Length")
        return None
    if not lengths:
        return 0
    if any(not _DIGITS.match(length) for length in lengths) or len(set(map(int, lengths))) > 1:
        raise RefusedError(400, f"bad Content-Length {lengths!r:.60}")
    length = int(lengths[0])
    if length > MAX_BODY_BYTES:
        raise RefusedError(413, "body too large")
    return length


def admin_refusal(method: str, headers: Message, port: int, has_body: bool) -> RefusedError | None:
    """Why the unsigned local admin API on ``port`` refuses this request, or None."""
    own = {f"{name}:{port}" for name in LOCAL_NAMES} | set(LOCAL_NAMES)
    host = (headers.get("Host") or "").strip().lower()
    if host not in own:
        return RefusedError(421, f"Host {host!r:.60} is not this server")
    origin = headers.get("Origin")
    if origin is not None and origin.strip().lower() not in {f"http://{name}:{port}" for name in LOCAL_NAMES}:
        return RefusedError(403, f"Origin {origin!r:.60} is not this server")
    content_type = headers.get("Content-Type")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if method in _UNSAFE_METHODS and (has_body or content_type) and media_type != "application/json":
        return RefusedError(415, f"Content-Type {content_type!r:.60} is not application/json")
    return None


class RequestHandler(BaseHTTPRequestHandler):
    """One connection: reads each request strictly, then hands it to the server's API."""

    server: LocalServer
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S
    # Headers and body go out as two small writes: without this, Nagle holds the GIF back ~40 ms
    # on a keep-alive connection (bench/load.py saw it).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        # The request line is the visitor's: escaped, it cannot drive the terminal showing the log.
        log.info("%s %s", self.address_string(), terminal_text(format % args))

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            refusal = None
            if self.server.guarded:
                refusal = admin_refusal(self.command, self.headers, self.server.server_address[1], bool(body))
            if refusal is not None:
                raise refusal
        except RefusedError as exc:
            self.close_connection = True
            self._send(json_response(exc.status, {"message": _MESSAGES[exc.status]}))
            return
        self._send(
            self.server.answer(self.command, self.path, self.headers.items(), body, self, self.server.api_id)
        )

    def _read_body(self) -> bytes:
        length = body_length(self.headers)
        if length is None:
            return self._read_chunked()
        return self._read_exactly(length) if length else b""

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise RefusedError(400, "body cut short")
        return data

    def _read_chunked(self) -> bytes:
        data = bytearray()
        for _ in range(MAX_CHUNKS):
            found = _CHUNK_SIZE.match(self.rfile.readline(64))
            if found is None:
                raise RefusedError(400, "bad chunk size")
            size = int(found.group(1), 16)
            if size == 0:
                # Skip trailers, up to the blank line that ends the message.
                for _ in range(100):
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        return bytes(data)
                raise RefusedError(400, "too many trailers")
            if len(data) + size > MAX_BODY_BYTES:
                raise RefusedError(413, "body too large")
            data += self._read_exactly(size)
            if self.rfile.readline(8) not in (b"\r\n", b"\n"):
                raise RefusedError(400, "chunk not ended by CRLF")
        raise RefusedError(413, "too many chunks")

    def _send(self, response: LocalResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch  # noqa: N815


class LocalServer(ThreadingHTTPServer):
    """One API's port; ``guarded`` for the admin API (Host, Origin and Content-Type checked)."""

    daemon_threads = True
    # A restarted stack must be able to take its port back at once.
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes a burst of new connections wait for retries.
    request_queue_size = 128

    def __init__(self, port: int, answer: Answerer, api_id: str, *, guarded: bool = False) -> None:
        self.answer = answer
        self.api_id = api_id
        self.guarded = guarded
        super().__init__((HOST, port), RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback to stderr itself: through the log, it is escaped.
        log.exception("request from %s failed", client_address[0] if client_address else "?")
