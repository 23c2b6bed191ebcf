"""DynamoDB Streams records in the form Lambda hands them to a function."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from webbugger_cli.local import state


def _json_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """One attribute value as Lambda's JSON event has it (binary values in base64)."""
    out: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B" and isinstance(inner, bytes | bytearray):
            out[kind] = base64.b64encode(inner).decode("ascii")
        elif kind == "BS":
            out[kind] = [base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for v in inner]
        elif kind == "M":
            out[kind] = {k: _json_attribute(v) for k, v in inner.items()}
        elif kind == "L":
            out[kind] = [_json_attribute(v) for v in inner]
        else:
            out[kind] = inner
    return out


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str = state.LOCAL_REGION) -> dict[str, Any]:
    """A DynamoDB Streams ``GetRecords`` record (as boto3 parses it) in Lambda's event form."""
    ddb: dict[str, Any] = {}
    for key, value in raw.get("dynamodb", {}).items():
        if key in ("Keys", "NewImage", "OldImage"):
            ddb[key] = {name: _json_attribute(attr) for name, attr in value.items()}
        elif key == "ApproximateCreationDateTime" and isinstance(value, datetime):
            ddb[key] = int(value.timestamp())
        else:
            ddb[key] = value
    record: dict[str, Any] = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        # DynamoDB Local says "ddblocal"; the functions run in the local stack's region.
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:
        record["userIdentity"] = raw["userIdentity"]
    return record


def sequence_number(record: dict[str, Any]) -> str:
    """The record's sequence number (the ``itemIdentifier`` of a partial batch response)."""
    return str(record["dynamodb"]["SequenceNumber"])
