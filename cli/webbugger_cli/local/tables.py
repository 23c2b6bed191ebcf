"""template.yaml's DynamoDB tables, created in DynamoDB Local when missing (data is kept)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from webbugger_cli.local import state

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from webbugger_cli.template import Template

# DynamoDB Local is on this machine: fail fast rather than wait out botocore's defaults.
_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})


def local_client(stack: state.LocalStack) -> DynamoDBClient:
    """A DynamoDB client for the stack's DynamoDB Local, with the local stack's fake credentials."""
    env = stack.environment(signing_keys="")
    return boto3.client(
        "dynamodb",
        endpoint_url=stack.dynamodb_endpoint,
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=_CONFIG,
    )


def table_outputs(template: Template) -> dict[str, str]:
    """The template's Outputs that name a table (``!Ref SomeTable``), with the local table names."""
    tables = template.tables()
    outputs: dict[str, str] = {}
    for key, output in (template.data.get("Outputs") or {}).items():
        value = output.get("Value") if isinstance(output, dict) else None
        if isinstance(value, dict) and value.get("Ref") in tables:
            outputs[key] = state.table_name(value["Ref"])
    return outputs


def ensure_tables(template: Template, client: DynamoDBClient) -> dict[str, str]:
    """Create every template table that does not exist yet, and enable TTL where the template does.

    Idempotent: existing tables (and their items) are left as they are. Every table is then
    warmed up (:func:`warm_up`). Returns the local table name of each logical id.
    """
    names: dict[str, str] = {}
    existing = set(_all_table_names(client))
    for logical_id, spec in template.tables().items():
        name = state.table_name(logical_id)
        names[logical_id] = name
        if name not in existing:
            kwargs: dict[str, Any] = {"TableName": name, **spec}
            client.create_table(**kwargs)
            client.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
        ttl = template.ttl_attribute(logical_id)
        if ttl is not None:
            _enable_ttl(client, name, ttl)
    warm_up(template, client)
    return names


def warm_up(template: Template, client: DynamoDBClient) -> None:
    """One read and one refused write on every table, storing nothing.

    A freshly started DynamoDB Local takes most of a second over its first calls on a table;
    the hot path's sub-second timeouts would turn the first visitor's beacon into a log line.
    """
    for logical_id, spec in template.tables().items():
        name = state.table_name(logical_id)
        types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
        key = {k["AttributeName"]: _placeholder(types[k["AttributeName"]]) for k in spec["KeySchema"]}
        client.get_item(TableName=name, Key=key)
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.put_item(
                TableName=name,
                Item=key,
                # Never true for a key that does not exist: the write path runs, nothing is stored.
                ConditionExpression="attribute_exists(#k)",
                ExpressionAttributeNames={"#k": spec["KeySchema"][0]["AttributeName"]},
            )


def _placeholder(attribute_type: str) -> Any:
    values: dict[str, Any] = {"S": {"S": "webbugger-warm-up"}, "N": {"N": "0"}, "B": {"B": b"warm-up"}}
    return values[attribute_type]


def _all_table_names(client: DynamoDBClient) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {}
    # Bounded: a local database has a handful of tables, 100 per page.
    for _ in range(100):
        page = client.list_tables(**kwargs)
        names += page.get("TableNames", [])
        last = page.get("LastEvaluatedTableName")
        if not last:
            break
        kwargs = {"ExclusiveStartTableName": last}
    return names


def _enable_ttl(client: DynamoDBClient, table: str, attribute: str) -> None:
    current = client.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
    enabled = current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    if enabled and current.get("AttributeName") == attribute:
        return
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )
