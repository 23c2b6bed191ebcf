"""template.yaml's DynamoDB tables, created in DynamoDB Local when missing (data is kept).

Plugins' own tables (declared with ``types.table(Model, variable=...)``) that template.yaml does
not define are made too, from the PynamoDB model's schema (:func:`plugin_tables`): a third-party
plugin whose table lives only in its own template snippet works locally with no other edits.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from webbugger_cli.local import state

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from pynamodb.models import Model
    from webbugger.registry import Registry

    from webbugger_cli.template import Template

# DynamoDB Local is on this machine: fail fast rather than wait out botocore's defaults.
log = logging.getLogger(__name__)
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
        _create_missing(client, existing, name, spec)
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
        key = _placeholder_key(spec)
        client.get_item(TableName=name, Key=key)
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.put_item(
                TableName=name,
                Item=key,
                # Never true for a key that does not exist: the write path runs, nothing is stored.
                ConditionExpression="attribute_exists(#k)",
                ExpressionAttributeNames={"#k": spec["KeySchema"][0]["AttributeName"]},
            )


def _create_missing(client: DynamoDBClient, existing: set[str], name: str, spec: dict[str, Any]) -> None:
    """Create table ``name`` from ``spec`` unless it is in ``existing``, and wait until it is."""
    if name not in existing:
        client.create_table(TableName=name, **spec)
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def _placeholder_key(spec: dict[str, Any]) -> dict[str, Any]:
    """A key of the table ``spec`` describes, with placeholder values (for warm-up calls)."""
    types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
    return {k["AttributeName"]: _placeholder(types[k["AttributeName"]]) for k in spec["KeySchema"]}


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


# --- plugins' own tables ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginTable:
    """A table a plugin declared (``types.table(Model, variable=...)``) that template.yaml does not define."""

    model: type[Model]
    variable: str
    name: str


def plugin_tables(registry: Registry, environment: Mapping[str, str]) -> list[PluginTable]:
    """The plugin tables to make locally: those whose variable ``environment`` (the template's
    function environment) does not set. Tables the template defines keep coming from it."""
    found: dict[str, PluginTable] = {}
    for model, variable in registry.tables:
        if variable in environment:
            continue
        if variable in found:
            if found[variable].model is not model:
                log.warning(
                    "%s and %s both name their table %s; the local table follows %s",
                    found[variable].model.__name__,
                    model.__name__,
                    variable,
                    found[variable].model.__name__,
                )
            continue
        found[variable] = PluginTable(model, variable, state.table_name(variable))
    return list(found.values())


def _key_schema(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # PynamoDB lists key attributes in attribute order; DynamoDB wants the hash key first.
    return sorted(
        ({"AttributeName": e["AttributeName"], "KeyType": e["KeyType"]} for e in entries),
        key=lambda e: e["KeyType"] != "HASH",
    )


def _index_spec(index: dict[str, Any]) -> dict[str, Any]:
    return {
        "IndexName": index["index_name"],
        "KeySchema": _key_schema(index["key_schema"]),
        "Projection": index["projection"],
    }


def model_table_spec(model: type[Model]) -> dict[str, Any]:
    """CreateTable arguments (without a name) from a PynamoDB model's own schema, billed on demand."""
    schema: Any = model._get_schema()
    spec: dict[str, Any] = {
        "KeySchema": _key_schema(schema["key_schema"]),
        "AttributeDefinitions": [
            {"AttributeName": d["AttributeName"], "AttributeType": d["AttributeType"]}
            for d in schema["attribute_definitions"]
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if schema.get("global_secondary_indexes"):
        spec["GlobalSecondaryIndexes"] = [_index_spec(i) for i in schema["global_secondary_indexes"]]
    if schema.get("local_secondary_indexes"):
        spec["LocalSecondaryIndexes"] = [_index_spec(i) for i in schema["local_secondary_indexes"]]
    view_type = getattr(model.Meta, "stream_view_type", None)
    if view_type:
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": str(view_type)}
    return spec


def ensure_plugin_tables(tables: list[PluginTable], client: DynamoDBClient) -> None:
    """Create each plugin table that does not exist yet (TTL on when the model has a TTL
    attribute), then read each once so that the hot path's timeouts hold from the first hit."""
    existing = set(_all_table_names(client))
    for table in tables:
        spec = model_table_spec(table.model)
        _create_missing(client, existing, table.name, spec)
        ttl = table.model._ttl_attribute()  # type: ignore[no-untyped-call]
        if ttl is not None:
            _enable_ttl(client, table.name, ttl.attr_name)
        client.get_item(TableName=table.name, Key=_placeholder_key(spec))
