"""template.yaml's HTTP API on 127.0.0.1: each request becomes an API Gateway payload-2.0 event.

With the function-URL front door (``webbugger local --front-door function-url``, template parameter
FrontDoor), the tracking port plays the track function's URL instead: every request, whatever its
path and method, goes to that function as a function URL event (``routeKey`` ``$default``, no path
parameters). Deployed, only CloudFront's signed requests get through; locally nothing signs them.

The functions' own handlers answer, exactly as deployed (same code, same event shape), so that
what works locally works behind API Gateway. Like a Lambda container, each function handles one
event at a time: Powertools' resolver keeps the current event in a module-level object.

Functions fed by a DynamoDB stream (``Type: DynamoDB`` events) are loaded too, and invoked
through :meth:`LocalApi.invoke` by :mod:`webbugger_cli.local.streams`. Plugins are loaded once the
environment is set; tables they declare that the template does not define get a local name
here (:attr:`LocalApi.plugin_tables`; :func:`webbugger_cli.local.tables.ensure_plugin_tables`
makes them).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from webbugger import runtime

from webbugger_cli.local.apis import (
    ADMIN_API,
    PRIMARY_API,
    api_url_variables,
    local_apis,
    local_functions,
    route_api,
)
from webbugger_cli.local.environment import apply_environment, stack_parameters
from webbugger_cli.local.fair_lock import FairLock
from webbugger_cli.local.gateway_events import FakeLambdaContext, build_event, response_from_result
from webbugger_cli.local.tables import PluginTable, plugin_tables
from webbugger_cli.local.wire import HOST, LocalResponse, LocalServer, json_response
from webbugger_cli.template import Route, load_handler
from webbugger_cli.terminal import terminal_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from http.server import BaseHTTPRequestHandler

    from webbugger_cli.local import state
    from webbugger_cli.template import Template

_NOT_FOUND = {"message": "Not Found"}
_INTERNAL = {"message": "Internal Server Error"}
FUNCTION_URL = "function-url"

log = logging.getLogger(__name__)


def _function_setting(template: Template, function: str, name: str, default: float) -> float:
    value = template.function_property(function, name, default)
    return float(value) if isinstance(value, int | float | str) and str(value).isdigit() else default


@dataclass(frozen=True)
class _Function:
    name: str
    handler: Callable[[dict[str, Any], Any], Any]
    memory_mb: int
    timeout_s: float
    # One event at a time, like one Lambda execution environment; in arrival order.
    lock: FairLock = field(default_factory=FairLock)


def _load_functions(template: Template) -> dict[str, _Function]:
    """Every local function's handler, imported from its CodeUri, with its memory and timeout."""
    functions = {}
    for function in local_functions(template):
        props = template.resources[function].get("Properties", {})
        functions[function] = _Function(
            name=function,
            handler=load_handler(template.root / str(props["CodeUri"]), str(props["Handler"])),
            memory_mb=int(_function_setting(template, function, "MemorySize", 128)),
            timeout_s=_function_setting(template, function, "Timeout", 3),
        )
    return functions


class LocalApi:
    """template.yaml's HTTP APIs, served on 127.0.0.1 by the functions' handlers: the tracking API
    on the port asked for, each other API (the admin API) on the ports after it."""

    def __init__(
        self,
        template: Template,
        stack: state.LocalStack,
        signing_keys: str,
        port: int = 0,
        front_door: str = "http-api",
    ) -> None:
        """Set the functions' environment, load their handlers and bind the ports (0: any free ones);
        with ``front_door`` ``function-url``, the tracking port is the track function's URL.

        Raises :class:`OSError` when a port cannot be bound.
        """
        self.routes = template.routes()
        self._route_apis = {route: route_api(template, route) for route in self.routes}
        self.front_door = front_door
        # The function behind the tracking API's routes: the one a function URL would invoke.
        self._url_function = next(
            (route.function for route in self.routes if self._route_apis[route] == PRIMARY_API), None
        )
        # The core reads its settings from the environment once, on first use: set it first.
        self.environment = apply_environment(template, stack, signing_keys)
        self.parameters = stack_parameters(template, self.environment)
        # Then the plugins (a broken one raises PluginLoadError here, as at a cold start), and
        # local names for the tables they declare that the template does not define.
        runtime.reset()
        self.plugin_tables: list[PluginTable] = plugin_tables(runtime.default_registry(), self.environment)
        for table in self.plugin_tables:
            self.environment[table.variable] = os.environ[table.variable] = table.name
        self._functions = _load_functions(template)
        self._servers = self._bind(local_apis(template) or [PRIMARY_API], port)
        self._primary = next(iter(self._servers))
        # What a deployed function finds at the API's URL (the admin function's TRACKING_BASE_URL).
        for variable, api_id in api_url_variables(template).items():
            if api_id in self._servers:
                self.environment[variable] = os.environ[variable] = self.url_of(api_id)
        self._threads: list[threading.Thread] = []

    def _bind(self, api_ids: list[str], port: int) -> dict[str, LocalServer]:
        """A server per API on consecutive ports from ``port`` (0: any free ones); none left bound
        when one port cannot be (:class:`OSError`)."""
        servers: dict[str, LocalServer] = {}
        try:
            for offset, api_id in enumerate(api_ids):
                # The admin API checks no signature locally: it refuses what a web page could send.
                guarded = api_id == ADMIN_API
                servers[api_id] = LocalServer(
                    port + offset if port else 0, self.handle, api_id, guarded=guarded
                )
        except OSError:
            for server in servers.values():
                server.server_close()
            raise
        return servers

    @property
    def port(self) -> int:
        """The tracking API's bound port."""
        port: int = self._servers[self._primary].server_address[1]
        return port

    @property
    def url(self) -> str:
        """The base URL of the tracking routes."""
        return self.url_of(self._primary)

    def url_of(self, api_id: str) -> str:
        """The base URL of one API (``KeyError`` if the template has no such API with routes)."""
        port: int = self._servers[api_id].server_address[1]
        return f"http://{HOST}:{port}"

    @property
    def admin_url(self) -> str | None:
        """The admin API's base URL, when the template has one."""
        return self.url_of(ADMIN_API) if ADMIN_API in self._servers else None

    def match(self, method: str, path: str, api_id: str | None = None) -> tuple[Route, dict[str, str]] | None:
        """The route serving ``method path`` (an exact method wins over ANY) and its path parameters;
        only routes of ``api_id`` when given."""
        fallback: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            if api_id is not None and self._route_apis[route] != api_id:
                continue
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            if route.method == "ANY" and fallback is None:
                fallback = route, found.groupdict()
        return fallback

    def handle(
        self,
        method: str,
        target: str,
        header_pairs: list[tuple[str, str]],
        body: bytes,
        request: BaseHTTPRequestHandler,
        api_id: str | None = None,
    ) -> LocalResponse:
        """Answer one request: route it, call the function, shape its result. Never raises."""
        try:
            client = (request.client_address[0], request.request_version)
            if self.front_door == FUNCTION_URL and api_id == self._primary and self._url_function:
                event = build_event(None, {}, method, target, header_pairs, body, *client)
                return response_from_result(self.invoke(self._url_function, event))
            matched = self.match(method, urlsplit(target).path, api_id)
            if matched is None:
                return json_response(404, _NOT_FOUND)
            route, params = matched
            event = build_event(route, params, method, target, header_pairs, body, *client)
            return response_from_result(self.invoke(route.function, event))
        except Exception:
            # As API Gateway does for a failed invocation; the server itself carries on.
            log.exception("handler failed on %s %s", terminal_text(method), terminal_text(target))
            return json_response(500, _INTERNAL)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke ``function``'s handler once with ``event`` (one event at a time per function,
        like one Lambda execution environment); the handler's result. Raises what it raises."""
        found = self._functions[function]
        context = FakeLambdaContext(found.name, found.memory_mb, found.timeout_s)
        with found.lock:
            return found.handler(event, context)

    def serve_forever(self) -> None:
        """Serve every API until :meth:`shutdown` is called from another thread."""
        self.start_in_thread()
        for thread in list(self._threads):
            thread.join()

    def start_in_thread(self) -> int:
        """Serve each API from a daemon thread; returns the tracking API's port."""
        if not self._threads:
            for api_id, server in self._servers.items():
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.2},
                    name=f"webbugger-local-{api_id}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        return self.port

    def shutdown(self) -> None:
        """Stop serving (waits for the serving threads) and release the ports."""
        if self._threads:
            for server in self._servers.values():
                server.shutdown()
            for thread in self._threads:
                thread.join(timeout=5)
            self._threads = []
        for server in self._servers.values():
            server.server_close()
