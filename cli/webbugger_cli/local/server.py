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

import base64
import collections
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from webbugger import runtime
from webbugger.plugins import PLUGINS_VARIABLE

from webbugger_cli.local import state
from webbugger_cli.local.stream_sources import stream_functions
from webbugger_cli.local.tables import PluginTable, plugin_tables
from webbugger_cli.local.wire import HOST, LocalResponse, LocalServer, json_response
from webbugger_cli.template import Route, load_handler
from webbugger_cli.terminal import terminal_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from http.server import BaseHTTPRequestHandler

    from webbugger_cli.template import Template

_NOT_FOUND = {"message": "Not Found"}
_INTERNAL = {"message": "Internal Server Error"}
_ACCOUNT_ID = "123456789012"
_API_ID = "local"
_FUNCTION_URL_ID = "localfunctionurl"
FUNCTION_URL = "function-url"
# Variables that could make a local run use a real AWS identity.
_REAL_CREDENTIAL_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

log = logging.getLogger(__name__)


@dataclass
class FakeLambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_s: float = 3.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        """The function's ARN, as Lambda names it."""
        return f"arn:aws:lambda:{state.LOCAL_REGION}:{_ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout (not enforced locally)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _function_setting(template: Template, function: str, name: str, default: float) -> float:
    value = template.function_property(function, name, default)
    return float(value) if isinstance(value, int | float | str) and str(value).isdigit() else default


def local_functions(template: Template) -> list[str]:
    """The functions the local stack runs: those with HTTP API routes or DynamoDB stream events."""
    return sorted({route.function for route in template.routes()} | stream_functions(template))


# The API of a function's HttpApi event without an ApiId: the one SAM makes implicitly.
IMPLICIT_API = "ServerlessHttpApi"
# The tracking API: served on the port asked for; the other APIs (the admin API) on the next ones.
PRIMARY_API = "HttpApi"
ADMIN_API = "AdminApi"


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


def _plugin_modules(*lists: str | None) -> str:
    names = [name.strip() for text in lists for name in (text or "").split(",") if name.strip()]
    return ",".join(dict.fromkeys(names))


def local_environment(template: Template, stack: state.LocalStack, signing_keys: str) -> dict[str, str]:
    """Every local function's environment with local table names, plus the local stack's variables.

    All functions share this process, hence one environment.
    """
    refs = {logical_id: state.table_name(logical_id) for logical_id in template.tables()}
    env: dict[str, str] = {}
    for function in local_functions(template):
        env.update(template.function_environment(function, refs))
    env.update(stack.environment(signing_keys))
    return env


def _unresolved_variables(template: Template, env: dict[str, str]) -> set[str]:
    """Variables the template declares but that have no local value (e.g. the secret's ARN)."""
    declared: set[str] = set()
    for function in local_functions(template):
        props = template.resources[function].get("Properties", {})
        declared |= set((props.get("Environment") or {}).get("Variables", {}))
    return declared - set(env)


def _parameter_variables(template: Template) -> set[str]:
    """Variables whose template value is a parameter (``!Ref SomeParameter``)."""
    parameters = set(template.data.get("Parameters", {}))
    found: set[str] = set()
    sections = [template.data.get("Globals", {}).get("Function", {})]
    sections += [template.resources[function].get("Properties", {}) for function in local_functions(template)]
    for section in sections:
        for name, value in (section.get("Environment") or {}).get("Variables", {}).items():
            if isinstance(value, dict) and value.get("Ref") in parameters:
                found.add(name)
    return found


def apply_environment(template: Template, stack: state.LocalStack, signing_keys: str) -> dict[str, str]:
    """Put :func:`local_environment` into ``os.environ``; drop what could reach real AWS instead.

    Plugin modules listed in the caller's ``WEBBUGGER_PLUGINS`` are kept, after the template's
    (locally, that variable plays the part of the ``ExtraPlugins`` parameter).
    """
    env = local_environment(template, stack, signing_keys)
    # A deployment's parameters (ALLOWED_REDIRECT_HOSTS, IP_ADDRESSES, ...) can be set locally
    # from the shell, as `sam deploy --parameter-overrides` would.
    for name in _parameter_variables(template) & set(os.environ):
        env[name] = os.environ[name]
    plugins = _plugin_modules(env.get(PLUGINS_VARIABLE), os.environ.get(PLUGINS_VARIABLE))
    if plugins or PLUGINS_VARIABLE in env:
        env[PLUGINS_VARIABLE] = plugins
    # A SIGNING_SECRET_ARN left in the shell would send the core to Secrets Manager.
    for name in (*_REAL_CREDENTIAL_VARIABLES, *_unresolved_variables(template, env)):
        os.environ.pop(name, None)
    os.environ.update(env)
    return env


def stack_parameters(template: Template, env: dict[str, str]) -> dict[str, str]:
    """What the functions see of the template's parameters and of the plugin list ("" when
    unset): published in stack.json for the CLI (:func:`webbugger_cli.stack.adopt_local_parameters`)."""
    return {name: env.get(name, "") for name in sorted(_parameter_variables(template) | {PLUGINS_VARIABLE})}


class FairLock:
    """A lock taken in the order it was asked for (first come, first served).

    ``threading.Lock`` lets a newcomer take a lock just released ahead of the threads already
    waiting: under load (bench/load.py, 50 connections) some requests waited over 30 s while the
    median waited 2 s. Here the releaser hands the lock to the longest waiter.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: collections.deque[threading.Lock] = collections.deque()
        self._held = False

    def __enter__(self) -> FairLock:
        with self._guard:
            if not self._held:
                self._held = True
                return self
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by __exit__ when this thread's turn comes; held from then on
        return self

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock."""
        with self._guard:
            return len(self._waiting)

    def __exit__(self, *exc: object) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()  # handed over: stays held
            else:
                self._held = False


@dataclass(frozen=True)
class _Function:
    name: str
    handler: Callable[[dict[str, Any], Any], Any]
    memory_mb: int
    timeout_s: float
    # One event at a time, like one Lambda execution environment; in arrival order.
    lock: FairLock = field(default_factory=FairLock)


def build_event(
    route: Route | None,
    match_params: dict[str, str],
    method: str,
    target: str,
    header_pairs: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    protocol: str,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload-2.0 event for one request; with no ``route``, the Lambda
    function URL event (payload 2.0 too, not routed)."""
    parts = urlsplit(target)
    headers: dict[str, list[str]] = {}
    for name, value in header_pairs:
        headers.setdefault(name.lower(), []).append(value)
    cookies = [c.strip() for value in headers.pop("cookie", []) for c in value.split(";") if c.strip()]
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    route_key = f"{route.method} {route.path}" if route is not None else "$default"
    api_id = _API_ID if route is not None else _FUNCTION_URL_ID
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": {name: ",".join(values) for name, values in headers.items()},
        "requestContext": {
            "accountId": _ACCOUNT_ID,
            "apiId": api_id,
            "domainName": headers.get("host", [HOST])[0],
            "domainPrefix": api_id,
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", [""])[0],
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if route is None:  # a function URL names what it does not have
        event.update(pathParameters=None, stageVariables=None)
    # API Gateway leaves out what a request does not have.
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in query.items()}
    if match_params:
        event["pathParameters"] = {name: unquote(value) for name, value in match_params.items()}
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def response_from_result(result: Any) -> LocalResponse:
    """Turn a handler's payload-2.0 result into an HTTP answer, as API Gateway does."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 lets a handler return bare JSON: API Gateway answers it with 200.
        return LocalResponse(200, [("Content-Type", "application/json")], json.dumps(result).encode())
    headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name), str(value)) for value in values]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    raw = result.get("body")
    body = b""
    if raw is not None:
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return LocalResponse(int(result["statusCode"]), headers, body)


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
        self._functions: dict[str, _Function] = {}
        for function in local_functions(template):
            props = template.resources[function].get("Properties", {})
            self._functions[function] = _Function(
                name=function,
                handler=load_handler(template.root / str(props["CodeUri"]), str(props["Handler"])),
                memory_mb=int(_function_setting(template, function, "MemorySize", 128)),
                timeout_s=_function_setting(template, function, "Timeout", 3),
            )
        self._servers: dict[str, LocalServer] = {}
        try:
            for offset, api_id in enumerate(local_apis(template) or [PRIMARY_API]):
                # The admin API checks no signature locally: it refuses what a web page could send.
                guarded = api_id == ADMIN_API
                self._servers[api_id] = LocalServer(
                    port + offset if port else 0, self.handle, api_id, guarded=guarded
                )
        except OSError:
            for server in self._servers.values():
                server.server_close()
            raise
        self._primary = next(iter(self._servers))
        # What a deployed function finds at the API's URL (the admin function's TRACKING_BASE_URL).
        for variable, api_id in api_url_variables(template).items():
            if api_id in self._servers:
                self.environment[variable] = os.environ[variable] = self.url_of(api_id)
        self._threads: list[threading.Thread] = []

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
            if self.front_door == FUNCTION_URL and api_id == self._primary and self._url_function:
                event = build_event(
                    None,
                    {},
                    method,
                    target,
                    header_pairs,
                    body,
                    request.client_address[0],
                    request.request_version,
                )
                return response_from_result(self.invoke(self._url_function, event))
            matched = self.match(method, urlsplit(target).path, api_id)
            if matched is None:
                return json_response(404, _NOT_FOUND)
            route, params = matched
            event = build_event(
                route,
                params,
                method,
                target,
                header_pairs,
                body,
                source_ip=request.client_address[0],
                protocol=request.request_version,
            )
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
