"""What a function's code calls on AWS, against what its role in template.yaml grants.

moto checks no IAM: a call the role does not allow passes every moto test and is AccessDenied in a
deployed stack. :func:`recording` records, at the botocore level (PynamoDB and boto3 alike), the
IAM action and resource each call of the project's runtime code (layers/, functions/) needs;
:func:`not_granted` names those the function's ``Policies`` do not allow, by logical id.

Resources are named as the functions find them, through their environment (``BEACONS_TABLE``,
``SIGNING_SECRET_ARN``, ``SPILL_QUEUE_URL``...): a name the template's environment does not give is
reported as it is (a plugin's own table is granted by its deployer, not here).
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.client import BaseClient
from webbugger_cli.template import Template, load_template

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
# The code a deployed function runs; a test's own reads and writes are not its calls.
_RUNTIME = tuple(str(ROOT / part) + os.sep for part in ("layers", "functions"))

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
# Batch operations that IAM authorises with the action of one message.
_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}

Call = tuple[str, str]  # (IAM action, resource as the code names it)


@cache
def _template() -> Template:
    """template.yaml, parsed once (it is read on every check)."""
    return load_template(ROOT)


def permissions(service: str, operation: str, params: dict[str, Any]) -> set[Call]:
    """The IAM (action, resource) pairs one call needs; ``service`` is the signing name."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return {
                (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", body["TableName"])
                for item in params["TransactItems"]
                for kind, body in item.items()
            }
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return {(f"dynamodb:{operation}", table) for table in params["RequestItems"]}
        index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
        return {(f"dynamodb:{operation}", params["TableName"] + index)}
    if service == "secretsmanager":
        return {(f"secretsmanager:{operation}", params["SecretId"])}
    if service == "sqs":
        return {(f"sqs:{_SQS_ACTIONS.get(operation, operation)}", params["QueueUrl"])}
    if service == "events":
        return {(f"events:{operation}", entry.get("EventBusName", "default")) for entry in params["Entries"]}
    if service == "firehose":
        return {(f"firehose:{operation}", params["DeliveryStreamName"])}
    if service == "s3":
        return {(f"s3:{operation}", params["Bucket"] + (f"/{params['Key']}" if "Key" in params else ""))}
    raise AssertionError(f"no IAM mapping for {service}:{operation}: add one to iam_grants.permissions")


def _from_runtime() -> bool:
    """Whether the call being made comes from the project's runtime code."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_RUNTIME):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@contextmanager
def recording() -> Iterator[list[Call]]:
    """Every (IAM action, resource) the runtime code's AWS calls need, while in the block."""
    made: list[Call] = []
    real = BaseClient._make_api_call

    def recorded(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if _from_runtime():
            made.extend(permissions(self.meta.service_model.signing_name, operation_name, api_params))
        return real(self, operation_name, api_params)

    BaseClient._make_api_call = recorded  # type: ignore[method-assign]
    try:
        yield made
    finally:
        BaseClient._make_api_call = real  # type: ignore[method-assign]


@pytest.fixture
def calls() -> Iterator[list[Call]]:
    """:func:`recording` for a whole test (``calls.clear()`` forgets its setup's calls)."""
    with recording() as made:
        yield made


def _logical_id(value: Any) -> str | None:
    """The resource an intrinsic names: ``!Ref X``, ``!GetAtt X.Attr``, ``!If [C, A, B]`` (A:
    conditional grants and names count when on), ``!Sub "...${X}/rest"`` (``X/rest``, its first
    resource reference and what follows it: an index, a bucket's objects)."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((function, argument),) = value.items()
    if function == "Ref":
        return str(argument)
    if function == "Fn::GetAtt":
        return str(argument[0])
    if function == "Fn::Sub":
        text = argument[0] if isinstance(argument, list) else argument
        for found in re.finditer(r"\$\{([^}.]+)[^}]*\}", text):
            if not found.group(1).startswith("AWS::"):
                return found.group(1) + text[found.end() :]
        return None
    if function == "Fn::If":
        return _logical_id(argument[1])
    return None


def _environment_names(template: Template) -> dict[str, str]:
    """``{resource name as the environment gives it: logical id}``, from every function's
    environment in template.yaml (and Globals), read from this process's environment."""
    names: dict[str, str] = {}
    for function, resource in template.resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for variable, value in _variables(template, function).items():
            logical_id = _logical_id(value)
            if logical_id in template.resources and os.environ.get(variable):
                names[os.environ[variable]] = logical_id
    return names


def only_environment_of(
    function: str, monkeypatch: pytest.MonkeyPatch, template: Template | None = None
) -> None:
    """Unset what template.yaml gives other functions and not ``function`` (the moto fixtures set
    several functions' environments at once): a path that reads a variable its function lacks
    must not pass here."""
    template = template or _template()
    functions = [
        name
        for name, resource in template.resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    own = set(_variables(template, function))
    for other in functions:
        for variable in set(_variables(template, other)) - own:
            monkeypatch.delenv(variable, raising=False)


def _variables(template: Template, function: str) -> dict[str, Any]:
    """The environment template.yaml gives ``function`` (Globals, then its own), unresolved."""
    variables = dict(
        template.data.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    own = template.resources[function]["Properties"].get("Environment", {}).get("Variables", {})
    return variables | own


def granted(function: str, template: Template | None = None) -> set[Call]:
    """Every (action, logical id) the policies of ``function`` allow (a conditional one's too)."""
    template = template or _template()
    allowed: set[Call] = set()
    for policy in template.resources[function]["Properties"]["Policies"]:
        for statement in (policy["Fn::If"][1] if "Fn::If" in policy else policy)["Statement"]:
            actions, resources = statement["Action"], statement["Resource"]
            for action in actions if isinstance(actions, list) else [actions]:
                for resource in resources if isinstance(resources, list) else [resources]:
                    allowed.add((action, _logical_id(resource) or str(resource)))
    return allowed


def not_granted(function: str, made: list[Call], template: Template | None = None) -> set[Call]:
    """The calls of ``made`` that the policies of ``function`` do not allow, as (action, logical
    id); a resource the template's environment does not name stays as the code named it."""
    template = template or _template()
    allowed = granted(function, template)
    return {
        (action, resource)
        for action, resource in used(made, template)
        if not any(action == grant and fnmatchcase(resource, pattern) for grant, pattern in allowed)
    }


def used(made: list[Call], template: Template | None = None) -> set[Call]:
    """``made`` as (action, logical id, then what follows the name: ``Table/index/NAME``)."""
    names = _environment_names(template or _template())

    def logical(resource: str) -> str:
        name, slash, rest = resource.partition("/")
        return names[name] + slash + rest if name in names else names.get(resource, resource)

    return {(action, logical(resource)) for action, resource in made}
