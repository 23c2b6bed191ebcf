"""A database that accepts connections and never answers must not hold a visitor for long.

The track function's DynamoDB calls have sub-second timeouts and one retry, so a stalled table
costs the visitor about a second, after which the pixel is served and the beacon is logged.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from webbugger import runtime
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_cli.template import load_handler, load_template

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
RING_JSON = json.dumps({"current": "k1", "k1": "s" * 48})


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def stalled_env(black_hole: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    template = load_template(ROOT)
    env = {
        **template.function_environment("TrackFunction", {table: table for table in template.tables()}),
        "DYNAMODB_ENDPOINT": black_hole,
        "WEBBUGGER_SIGNING_KEYS": RING_JSON,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SIGNING_SECRET_ARN", raising=False)
    runtime.reset()
    yield
    runtime.reset()


def _event(path: str, route_key: str, token: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"user-agent": "Mozilla/5.0 (test)"},
        "pathParameters": {"token": token},
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.9"},
            "requestId": "stall-test",
            "routeKey": route_key,
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


class _Context:
    function_name = "TrackFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:TrackFunction"
    aws_request_id = "stall-test"


@pytest.mark.usefixtures("stalled_env")
def test_pixel_is_served_within_about_a_second_when_dynamodb_stalls(caplog: pytest.LogCaptureFixture) -> None:
    route = next(r for r in load_template(ROOT).routes() if r.path == "/p/{token}")
    handler = load_handler(route.code_uri, route.handler)
    url = tracking_url("https://t.example", TokenClaims(mode=Mode.PIXEL), KeyRing.from_json(RING_JSON))
    token = url.rsplit("/", 1)[1]

    started = time.monotonic()
    response = handler(_event(f"/p/{token}", "GET /p/{token}", token), _Context())
    elapsed = time.monotonic() - started

    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "image/gif"
    # Two attempts of at most 0.4 s each plus backoff; generous for a loaded machine, far below
    # botocore's defaults (60 s read timeout, several retries).
    assert elapsed < 2.5, f"visitor waited {elapsed:.2f}s"
    # The whole beacon is in one log record, ready to be replayed.
    spilled = [
        record.__dict__["spilled_beacon"] for record in caplog.records if "spilled_beacon" in record.__dict__
    ]
    assert len(spilled) == 1
    assert spilled[0]["mode"] == "pixel"
    assert spilled[0]["ip"] == "198.51.100.0"
    assert len(spilled[0]["id"]) == 26
