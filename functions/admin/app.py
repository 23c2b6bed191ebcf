"""Admin function: the admin HTTP API (links, minting, rewriting, beacons, stats, exports), behind IAM.

Every route of this API needs a SigV4-signed request (template.yaml: the AdminApi's default
authorizer is AWS_IAM). The routes are in :mod:`admin_api`, one router per resource; here they
are included and errors mapped to answers, ``{"error": {"code": ..., "message": ...}}``: 400 for
bad input, 404 for an unknown link, 409 for a link id already taken; bad input never gets a 5xx.

Not the hot path: this function may take its time (longer DynamoDB timeouts than the track
function's) and its dependencies (pydantic).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from webbugger.errors import WebbuggerError
from webbugger.observability import logger, metrics
from webbugger.plugins import PluginLoadError
from webbugger.runtime import default_registry

from admin_api import beacons, erase, export, links, mint, openapi, recount, rewrite, stats
from admin_api.errors import error_answer, status_and_code

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _json_body(text: str) -> Any:
    """``json.loads``; its RecursionError (deep nesting) and ValueError (a number of over 4300
    digits) become the JSONDecodeError that Powertools answers as invalid JSON: a 400, not a 500."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None


app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=_json_body)
for module in (links, mint, rewrite, beacons, stats, export, erase, recount, openapi):
    app.include_router(module.router)

# Plugins load at init: a broken plugin stops this container with one clear line.
try:
    default_registry()
except PluginLoadError as exc:
    logger.critical(str(exc))
    raise


@app.exception_handler(WebbuggerError)  # type: ignore[untyped-decorator]
def _domain_error(exc: WebbuggerError) -> Response[str]:
    status, code = status_and_code(exc)
    if status >= 500:
        logger.error("admin request failed", extra={"code": code, "reason": str(exc)})
    else:
        logger.info("admin request refused", extra={"code": code, "reason": str(exc)})
    return error_answer(status, code, str(exc))


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    problems = []
    for error in exc.errors()[:10]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg') or error.get('type')}")
    return error_answer(400, "invalid_request", "; ".join(problems) or "invalid request")


@app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[str]:
    return error_answer(400, "invalid_request", "send the request body as application/json")


@app.exception_handler(UnicodeDecodeError)  # type: ignore[untyped-decorator]
def _not_text(exc: UnicodeDecodeError) -> Response[str]:
    return error_answer(400, "invalid_request", "the request body is not UTF-8 text")


@app.not_found
def _no_route(exc: RouteNotFoundError) -> Response[str]:
    return error_answer(404, "not_found", "no such route")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
