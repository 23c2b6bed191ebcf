"""An HTTP request as the Lambda event API Gateway (payload 2.0) or a function URL makes of it,
the handler's result back as the HTTP answer, and the context object Lambda passes along."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from webbugger_cli.local import state
from webbugger_cli.local.wire import HOST, LocalResponse

if TYPE_CHECKING:
    from webbugger_cli.template import Route

_ACCOUNT_ID = "123456789012"
_API_ID = "local"
_FUNCTION_URL_ID = "localfunctionurl"


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


def _multi_values(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Each name's values, in order."""
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values


def _request_context(
    api_id: str, route_key: str, http: dict[str, str], headers: dict[str, list[str]]
) -> dict[str, Any]:
    """The event's ``requestContext``: who asked, through which API, when."""
    now = datetime.now(UTC)
    return {
        "accountId": _ACCOUNT_ID,
        "apiId": api_id,
        "domainName": headers.get("host", [HOST])[0],
        "domainPrefix": api_id,
        "http": {**http, "userAgent": headers.get("user-agent", [""])[0]},
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }


def _put_body(event: dict[str, Any], body: bytes) -> None:
    """The body as text, or in base64 when it is not UTF-8."""
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True


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
    headers = _multi_values([(name.lower(), value) for name, value in header_pairs])
    cookies = [c.strip() for value in headers.pop("cookie", []) for c in value.split(";") if c.strip()]
    query = _multi_values(parse_qsl(parts.query, keep_blank_values=True))
    route_key = f"{route.method} {route.path}" if route is not None else "$default"
    api_id = _API_ID if route is not None else _FUNCTION_URL_ID
    http = {"method": method, "path": parts.path, "protocol": protocol, "sourceIp": source_ip}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": {name: ",".join(values) for name, values in headers.items()},
        "requestContext": _request_context(api_id, route_key, http, headers),
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
        _put_body(event, body)
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
