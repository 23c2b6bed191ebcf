"""The shared pieces of the in-process moto tests: fake AWS, template.yaml's tables, the signing
secret, a Lambda context and API Gateway v2 (HTTP API, payload 2.0) events.

Plain functions and classes; each test module builds its own fixture from them (table names,
extra environment and teardown differ from one module to the next).
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import boto3
from aws_lambda_powertools.utilities import parameters
from webbugger import runtime
from webbugger_cli.template import Template, load_handler, load_template

if TYPE_CHECKING:
    import pytest
    from webbugger.entity_figures import EntityFigures

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
EVENT_TEMPLATE = json.loads((ROOT / "tests" / "events" / "http_api_proxy.json").read_text())

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region; no real profile, endpoint, plain signing keys or IP setting."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("WEBBUGGER_SIGNING_KEYS", "DYNAMODB_ENDPOINT", "AWS_PROFILE", "IP_ADDRESSES"):
        monkeypatch.delenv(name, raising=False)


def reset_caches() -> None:
    """Forget the core's settings and bindings, and Powertools' cached parameters (the key ring)."""
    runtime.reset()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def template_table_names(prefix: str, template: Template | None = None) -> dict[str, str]:
    """``{logical id: prefix + logical id}`` for every table of template.yaml."""
    tables = (template or load_template(ROOT)).tables()
    return {logical_id: f"{prefix}{logical_id}" for logical_id in tables}


def create_template_tables(
    client: Any, names: Mapping[str, str], *, template: Template | None = None, streams: bool = True
) -> None:
    """Create every table of template.yaml, named by ``names`` (logical id → name), with ``client``.

    ``streams=False`` leaves out the tables' StreamSpecification."""
    for logical_id, spec in (template or load_template(ROOT)).tables().items():
        if not streams:
            spec = {key: value for key, value in spec.items() if key != "StreamSpecification"}
        client.create_table(TableName=names[logical_id], **spec)


def set_function_environment(
    monkeypatch: pytest.MonkeyPatch,
    names: Mapping[str, str],
    *functions: str,
    template: Template | None = None,
) -> dict[str, str]:
    """Set the environment template.yaml declares for ``functions`` (tables resolved by ``names``)."""
    template = template or load_template(ROOT)
    environment: dict[str, str] = {}
    for function in functions:
        environment |= template.function_environment(function, dict(names))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


def create_signing_secret(monkeypatch: pytest.MonkeyPatch, ring_json: str) -> str:
    """Store the key ring in (fake) Secrets Manager and point SIGNING_SECRET_ARN at it; its ARN."""
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="webbugger-signing", SecretString=ring_json
    )
    arn: str = secret["ARN"]
    monkeypatch.setenv("SIGNING_SECRET_ARN", arn)
    return arn


@contextmanager
def fresh_handler(code_uri: Path, handler: str = "app.lambda_handler") -> Iterator[Handler]:
    """A function's handler loaded anew (a cold start) under the current environment.

    load_handler caches the module, which binds its registry at import: the one a test session
    loaded before (the local stack's) is put back afterwards, untouched."""
    name = f"webbugger_function_{code_uri.name}_{handler.rpartition('.')[0]}"
    previous = sys.modules.pop(name, None)
    try:
        loaded: Handler = load_handler(code_uri, handler)
        yield loaded
    finally:
        sys.modules.pop(name, None)
        if previous is not None:
            sys.modules[name] = previous


def load_track_handler() -> Handler:
    """The track function's handler, loaded from its CodeUri as Lambda loads it."""
    route = next(r for r in load_template(ROOT).routes() if r.function == "TrackFunction")
    found: Handler = load_handler(route.code_uri, route.handler)
    return found


@dataclass(frozen=True)
class FakeContext:
    """The parts of a Lambda context the functions (and Powertools) read."""

    function_name: str = "TrackFunction"
    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000001"
    memory_limit_in_mb: int = 256

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"


def http_event(
    path: str,
    *,
    headers: dict[str, str],
    source_ip: str,
    request_id: str,
    method: str = "GET",
    query: dict[str, str] | None = None,
    domain_name: str | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for ``path``, shaped like ``sam local generate-event``'s.

    The route is ``<method> <prefix>/{token}``; the user agent is ``headers["user-agent"]``."""
    prefix, _, token = path.rpartition("/")
    route_key = f"{method} {prefix}/{{token}}"
    user_agent = headers["user-agent"]
    made: dict[str, Any] = copy.deepcopy(EVENT_TEMPLATE)
    made.update(
        routeKey=route_key,
        rawPath=path,
        rawQueryString=urlencode(query or {}),
        headers=dict(headers),
        pathParameters={"token": token},
        isBase64Encoded=False,
    )
    for absent in ("body", "queryStringParameters", "cookies"):
        made.pop(absent, None)
    if query:
        made["queryStringParameters"] = dict(query)
    made["requestContext"].update(routeKey=route_key, requestId=request_id)
    if domain_name is not None:
        made["requestContext"]["domainName"] = domain_name
    made["requestContext"]["http"].update(method=method, path=path, sourceIp=source_ip, userAgent=user_agent)
    return made


def entity_figures_in(client: Any, counters_table: str, entity: str) -> EntityFigures | None:
    """``entity``'s figures (:func:`webbugger.entity_figures.fold_days`) from its day items in
    ``counters_table``, read with ``client`` (a DynamoDB client of any endpoint)."""
    from webbugger.entity_figures import fold_days
    from webbugger.persons import Day, entity_person

    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": counters_table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {
            ":pk": {"S": entity_person(entity)},
            ":first": {"S": "0000-00-00"},
            ":last": {"S": "9999-99-99"},
        },
        "ConsistentRead": True,
    }
    for _ in range(100):  # bounded: a test's entity has a few day items
        page = client.query(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return fold_days(entity, map(Day.of, items))
