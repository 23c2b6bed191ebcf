"""``/openapi.json``: this API's OpenAPI document, derived by Powertools from the routes."""

# No ``from __future__ import annotations``: see admin_api.links.

import json
from functools import cache

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Response, Router

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


@cache
def openapi_document(resolver: ApiGatewayResolver) -> str:
    """The OpenAPI document; no 422 answers (this API answers bad input with 400)."""
    document = json.loads(
        resolver.get_openapi_json_schema(
            title="webbugger admin API",
            version="1",
            description="Links, minting, beacons, stats and exports. Every request needs SigV4 (IAM).",
        )
    )
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return json.dumps(document)


@router.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    """This API's OpenAPI document."""
    resolver = router.api_resolver
    if not isinstance(resolver, ApiGatewayResolver):
        raise TypeError("the openapi router serves only when included in an ApiGatewayResolver")
    return Response(status_code=200, content_type="application/json", body=openapi_document(resolver))
