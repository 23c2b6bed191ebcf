"""Track function: API Gateway HTTP API (payload 2.0) → the core's tracker → GIF or 302.

Thin on purpose: turn the event into an ``IncomingRequest``, call the tracker, shape the answer.
Routes are declared in template.yaml; the resolver's routes below must match them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
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
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver()
_EMPTY: dict[str, str] = {}

# Plugins load at init: a broken plugin stops this container with one clear line, rather than
# failing on every hit.
try:
    default_registry()
except PluginLoadError as exc:
    logger.critical(str(exc))
    raise


def _incoming() -> IncomingRequest:
    event = app.current_event
    return IncomingRequest(
        method=event.request_context.http.method.upper(),
        headers=event.headers or _EMPTY,
        source_ip=event.request_context.http.source_ip,
        query=event.query_string_parameters or _EMPTY,
    )


@app.route("/p/<token>", method=["GET", "HEAD"])
def pixel(token: str) -> Response[bytes]:
    """Record an open and answer the transparent GIF."""
    if not token.endswith(PIXEL_SUFFIX):
        raise NotFoundError("pixel paths end in .gif")
    incoming = _incoming()
    default_tracker().track(token.removesuffix(PIXEL_SUFFIX), Mode.PIXEL, incoming)
    body = b"" if incoming.method == "HEAD" else TRANSPARENT_GIF
    return Response(status_code=200, content_type="image/gif", body=body, headers=dict(NO_CACHE_HEADERS))


@app.route("/r/<token>", method=["GET", "HEAD"])
def redirect(token: str) -> Response[str]:
    """Record a click and send the visitor on to the target."""
    result = default_tracker().track(token, Mode.REDIRECT, _incoming())
    headers = {"Location": result.location or "", **NO_CACHE_HEADERS}
    return Response(status_code=302, content_type="text/plain", body="", headers=headers)


@app.route("/l/<link_id>", method=["GET", "HEAD"])
def short_link(link_id: str) -> Response[str]:
    """A stored link's short public URL: record a click and send the visitor on, as /r/ does."""
    result = default_tracker().track_short_link(link_id, _incoming())
    headers = {"Location": result.location or "", **NO_CACHE_HEADERS}
    return Response(status_code=302, content_type="text/plain", body="", headers=headers)


@app.exception_handler(NotFoundError)  # type: ignore[untyped-decorator]
def not_found(exc: NotFoundError) -> Response[str]:
    """Anything invalid: 404 and nothing recorded. The reason goes to the log, not the visitor."""
    logger.info("not found", extra={"reason": str(exc), "error": type(exc).__name__})
    metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=404, content_type="text/plain", body="Not Found", headers=dict(NO_CACHE_HEADERS)
    )


@app.exception_handler(StoreUnavailableError)  # type: ignore[untyped-decorator]
def unavailable(exc: StoreUnavailableError) -> Response[str]:
    """The target could not be read in time: ask the visitor to retry rather than guess."""
    logger.error("store unavailable", extra={"reason": str(exc)})
    headers = {"Retry-After": "1", **NO_CACHE_HEADERS}
    return Response(status_code=503, content_type="text/plain", body="Service Unavailable", headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
