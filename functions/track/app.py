"""Track function: a payload-2.0 event (HTTP API or Lambda function URL) → the core's tracker → GIF or 302.

Thin on purpose: match the path to a route, turn the event into an ``IncomingRequest``, call the
tracker, shape the answer. The routes are template.yaml's TrackFunction events; :data:`ROUTES`
must match them (tests/template checks it).

Its own router, not Powertools' ``APIGatewayHttpResolver``: importing the resolver cost a fifth of
this function's cold start (bench/cold_start.py). Both front doors send payload 2.0, but only the
HTTP API routes: it sends only template.yaml's routes and names the route in ``routeKey``, while
a function URL (behind CloudFront) sends every path and method with ``routeKey`` ``$default``. So
the path is matched here, from ``rawPath``, whichever door the event came through.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

# The tracker's modules load at init, not on the first hit (webbugger.runtime imports them only
# when asked, for the command line's sake: bench/cli.py).
import webbugger.tracking  # noqa: F401
from aws_lambda_powertools.logging import correlation_paths
from webbugger.errors import NotFoundError, StoreUnavailableError
from webbugger.gif import NO_CACHE_HEADERS, TRANSPARENT_GIF
from webbugger.minting import PIXEL_SUFFIX
from webbugger.modes import Mode
from webbugger.observability import MetricUnit, logger, metrics
from webbugger.plugins import PluginLoadError
from webbugger.request import IncomingRequest
from webbugger.runtime import default_registry, default_tracker

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias

    from aws_lambda_powertools.utilities.typing import LambdaContext

    # A payload-2.0 answer; a route's handler takes its path parameter and the request.
    Answer: TypeAlias = dict[str, Any]
    Handler: TypeAlias = Callable[[str, IncomingRequest], Answer]
_EMPTY: dict[str, str] = {}
METHODS = frozenset({"GET", "HEAD"})
# A path parameter: RFC 3986's unreserved and sub-delimiter characters, and those API Gateway
# passes on undecoded (the class Powertools' resolver matched). Percent-escapes stay as sent.
_PARAMETER = re.compile(r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+")

# Plugins load at init: a broken plugin stops this container with one clear line, rather than
# failing on every hit.
try:
    default_registry()
except PluginLoadError as exc:
    logger.critical(str(exc))
    raise


def _answer(status: int, content_type: str, body: str | bytes, headers: dict[str, str]) -> Answer:
    """A payload-2.0 response; a ``bytes`` body goes base64-encoded (no binary media types needed)."""
    return {
        "statusCode": status,
        "body": base64.b64encode(body).decode("ascii") if isinstance(body, bytes) else body,
        "isBase64Encoded": isinstance(body, bytes),
        "headers": {**headers, "Content-Type": content_type},
        "cookies": [],
    }


def _redirect(location: str | None) -> Answer:
    return _answer(302, "text/plain", "", {"Location": location or "", **NO_CACHE_HEADERS})


def pixel(token: str, incoming: IncomingRequest) -> Answer:
    """Record an open and answer the transparent GIF."""
    if not token.endswith(PIXEL_SUFFIX):
        raise NotFoundError("pixel paths end in .gif")
    default_tracker().track(token.removesuffix(PIXEL_SUFFIX), Mode.PIXEL, incoming)
    body = b"" if incoming.method == "HEAD" else TRANSPARENT_GIF
    return _answer(200, "image/gif", body, dict(NO_CACHE_HEADERS))


def redirect(token: str, incoming: IncomingRequest) -> Answer:
    """Record a click and send the visitor on to the target."""
    return _redirect(default_tracker().track(token, Mode.REDIRECT, incoming).location)


def short_link(link_id: str, incoming: IncomingRequest) -> Answer:
    """A stored link's short public URL: record a click and send the visitor on, as /r/ does."""
    return _redirect(default_tracker().track_short_link(link_id, incoming).location)


# template.yaml's paths (/p/{token}, /r/{token}, /l/{id}) by first segment, each for GET and HEAD.
ROUTES: dict[str, Handler] = {"p": pixel, "r": redirect, "l": short_link}


def not_found(exc: NotFoundError) -> Answer:
    """Anything invalid: 404 and nothing recorded. The reason goes to the log, not the visitor."""
    logger.info("not found", extra={"reason": str(exc), "error": type(exc).__name__})
    metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
    return _answer(404, "text/plain", "Not Found", dict(NO_CACHE_HEADERS))


def unavailable(exc: StoreUnavailableError) -> Answer:
    """The target could not be read in time: ask the visitor to retry rather than guess."""
    logger.error("store unavailable", extra={"reason": str(exc)})
    return _answer(503, "text/plain", "Service Unavailable", {"Retry-After": "1", **NO_CACHE_HEADERS})


def _match(method: str, path: str) -> tuple[Handler, str] | None:
    """The route of ``method path`` and its path parameter, or None."""
    lead, _, rest = path.partition("/")
    prefix, _, parameter = rest.partition("/")
    handler = ROUTES.get(prefix)
    if lead or handler is None or method not in METHODS or not _PARAMETER.fullmatch(parameter):
        return None
    return handler, parameter


def route(event: dict[str, Any]) -> Answer:
    """Answer one event: the route its method and path name, else 404."""
    http = event["requestContext"]["http"]
    method = http["method"].upper()
    try:
        matched = _match(method, event.get("rawPath") or "")
        if matched is None:
            raise NotFoundError(f"no route for {method} on this path")
        handler, parameter = matched
        incoming = IncomingRequest(
            method=method,
            # The core reads lower-case names: payload 2.0 sends them so, and a hand-made event
            # with other case still works (as with the resolver's case-insensitive headers).
            headers={name.lower(): value for name, value in (event.get("headers") or _EMPTY).items()},
            source_ip=http.get("sourceIp"),
            query=event.get("queryStringParameters") or _EMPTY,
        )
        return handler(parameter, incoming)
    except NotFoundError as exc:
        return not_found(exc)
    except StoreUnavailableError as exc:
        return unavailable(exc)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Answer:
    """Lambda entry point."""
    return route(event)
