"""Which functions and HTTP APIs of template.yaml the local stack serves, and on which ports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webbugger_cli.local.stream_sources import stream_functions

if TYPE_CHECKING:
    from webbugger_cli.template import Route, Template

# The API of a function's HttpApi event without an ApiId: the one SAM makes implicitly.
IMPLICIT_API = "ServerlessHttpApi"
# The tracking API: served on the port asked for; the other APIs (the admin API) on the next ones.
PRIMARY_API = "HttpApi"
ADMIN_API = "AdminApi"


def local_functions(template: Template) -> list[str]:
    """The functions the local stack runs: those with HTTP API routes or DynamoDB stream events."""
    return sorted({route.function for route in template.routes()} | stream_functions(template))


def route_api(template: Template, route: Route) -> str:
    """The logical id of the HttpApi that serves ``route``."""
    props = template.resources[route.function].get("Properties", {})
    for event in (props.get("Events") or {}).values():
        ev = event.get("Properties", {})
        if (
            event.get("Type") == "HttpApi"
            and str(ev.get("Path")) == route.path
            and str(ev.get("Method", "ANY")).upper() == route.method
        ):
            api = ev.get("ApiId")
            return str(api["Ref"]) if isinstance(api, dict) and "Ref" in api else IMPLICIT_API
    return IMPLICIT_API


def local_apis(template: Template) -> list[str]:
    """The HTTP APIs with routes, the tracking API first: the order of their local ports."""
    apis = sorted({route_api(template, route) for route in template.routes()})
    return sorted(apis, key=lambda api: api != PRIMARY_API)


def api_url_variables(template: Template) -> dict[str, str]:
    """Variables whose template value is an HTTP API's URL (``!Sub https://${SomeApi}...``), with
    that API's logical id: locally, they name the local server of that API."""
    apis = set(template._of_type("AWS::Serverless::HttpApi")) | {IMPLICIT_API}
    found: dict[str, str] = {}
    for function in local_functions(template):
        props = template.resources[function].get("Properties", {})
        for name, value in (props.get("Environment") or {}).get("Variables", {}).items():
            # Locally every optional edge feature is off (CloudFront, custom domains: their
            # parameters' defaults), so an !If takes its last branch.
            while isinstance(value, dict) and isinstance(value.get("Fn::If"), list):
                value = value["Fn::If"][-1]
            sub = value.get("Fn::Sub") if isinstance(value, dict) else None
            if isinstance(sub, str):
                named = [api for api in apis if f"${{{api}}}" in sub]
                if named:
                    found[name] = named[0]
    return found
