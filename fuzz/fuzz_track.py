"""atheris harness over the token decoder and the track function's event → response path.

Each input is up to five fields separated by ``\\x1e``: raw path, query string, a header value (sent
as Host, User-Agent, Referer, Accept-Language and CloudFront-Viewer-Country at once), method, and
source address. The token decoder gets the path's last segment; the handler gets the event, in
process, against moto's DynamoDB (fuzz/track_target.py). A crash is: an exception other than
InvalidTokenError from the decoder, any exception from the handler, a 5xx, a control character in a
response header, a ``Location`` outside the allowed host, or a beacon written for a request that
answered anything but 200/302 to a GET.

Run: ``uv run python fuzz/fuzz_track.py -max_total_time=600 CORPUS_DIR`` (``make fuzz``). Corpus
directories named on the command line are seeded with valid paths first.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from urllib.parse import parse_qsl

# Quiet and fast: no JSON log line and no EMF metrics on stdout for every input.
os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"

import atheris

with atheris.instrument_imports(include=["webbugger", "webbugger_plugins"]):
    from webbugger import runtime, tokens, tracking  # noqa: F401 - instrumented before the handler loads
    from webbugger.errors import InvalidTokenError
    from webbugger.modes import Mode
    from webbugger.observability import metrics
    from webbugger.refs import Ref
    from webbugger.tokens import TokenClaims
    from webbugger_plugins import campaign, link, recipient, url  # noqa: F401 - the same

sys.path.insert(0, str(Path(__file__).resolve().parent))
import track_target

SEPARATOR = "\x1e"
HEADERS = ("host", "user-agent", "referer", "accept-language", "cloudfront-viewer-country")
STACK: track_target.TrackStack | None = None


def seeds(stack: track_target.TrackStack) -> list[str]:
    """Valid inputs: every route with a token (or id) that verifies, and some query and headers."""
    forwarding = Ref("link", stack.links["forwarding"])
    unknown_campaign = TokenClaims(mode=Mode.PIXEL, source=Ref("campaign", "x"), ignore_errors=True)
    paths = [
        "/p/" + stack.token(TokenClaims(mode=Mode.PIXEL, target=forwarding)) + ".gif",
        "/p/" + stack.token(unknown_campaign) + ".gif",
        "/r/" + stack.token(TokenClaims(mode=Mode.REDIRECT, target=forwarding)),
        "/r/"
        + stack.token(TokenClaims(mode=Mode.REDIRECT, target=Ref("url", "https://a.good.example/x?y=1"))),
        "/r/" + stack.token(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", stack.links["expired"]))),
        "/l/" + stack.links["plain"],
        "/l/" + stack.links["forwarding"],
    ]
    extras = [
        ["", "Mozilla/5.0", "GET", "203.0.113.7"],
        ["utm_source=x&next=%2F%2Fevil.example", "t.example", "GET", "2001:db8::1"],
        ["a=1", "DE", "HEAD", "198.51.100.1"],
    ]
    # Inputs that once crashed the handler (500s), kept as regressions.
    found = [
        [paths[3], "", "[::1", "GET", "203.0.113.7"],  # a Host header urlsplit cannot parse
        ["/r/k1.\u00e9.x", "", "", "GET", ""],  # a non-ASCII token
    ]
    return [SEPARATOR.join([path, *extra]) for path in paths for extra in extras] + [
        SEPARATOR.join(fields) for fields in found
    ]


def one_input(data: bytes) -> None:
    """Check one input; raise on any broken invariant (atheris reports it as a crash)."""
    assert STACK is not None
    fields = data.decode("utf-8", "surrogateescape").split(SEPARATOR)
    path, query, header, method, address = [*fields, "", "", "", "GET", ""][:5]
    with contextlib.suppress(InvalidTokenError):  # anything else is a crash
        tokens.verify(path.rsplit("/", 1)[-1].removesuffix(".gif"), STACK.ring)
    event = track_target.event(
        path,
        method=method,
        headers=dict.fromkeys(HEADERS, header),
        query=dict(parse_qsl(query, keep_blank_values=True)),
        source_ip=address,
    )
    response = STACK.call(event)
    metrics.clear_metrics()  # else Powertools prints them every 100 metrics
    track_target.check_response(response)
    written = len(STACK.take_beacons())
    recorded = response["statusCode"] in (200, 302) and method.upper() == "GET"
    if written != (1 if recorded else 0):
        raise AssertionError(f"{written} beacon(s) written for a {method} answered {response['statusCode']}")


def main() -> None:
    """Start the stack, seed the corpus directories given, then fuzz with libFuzzer's arguments."""
    global STACK  # atheris calls a plain function; the stack lives as long as the process
    stack_context = track_target.track_stack()
    STACK = stack_context.__enter__()
    for arg in sys.argv[1:]:
        if not arg.startswith("-"):
            corpus = Path(arg)
            corpus.mkdir(parents=True, exist_ok=True)
            for index, seed in enumerate(seeds(STACK)):
                (corpus / f"seed-{index:02d}").write_bytes(seed.encode())
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
