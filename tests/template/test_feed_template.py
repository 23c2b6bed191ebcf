"""template.yaml's optional hit feed: the EventBridge bus, the analytics export (Firehose →
Parquet on S3, the Glue table, the Athena workgroup and named queries) and their dead-letter
queue. cfn-lint and checkov run on the template with the feed on in test_edge_template.py (the
"on" template switches every option on); here, what each resource may do and what it is wired to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from template_tools import arn, properties
from webbugger.feed.shapes import hit_row
from webbugger.models import Beacon
from webbugger.settings import ANALYTICS_ENTITIES
from webbugger_cli.analytics import COLUMN_TYPES, analytics_columns, named_queries

if TYPE_CHECKING:
    from webbugger_cli.template import Template

pytestmark = pytest.mark.template

FEED_RESOURCES = {
    "HitEventBus": "HitEventsOn",
    "HitFeedDeadLetterQueue": "HitFeedOn",
    "HitFeedDeadLetterAlarm": "HitFeedOn",
    "AnalyticsBucket": "AnalyticsOn",
    "AnalyticsBucketPolicy": "AnalyticsOn",
    "AnalyticsDatabase": "AnalyticsOn",
    "AnalyticsTable": "AnalyticsOn",
    "AnalyticsDeliveryLogGroup": "AnalyticsOn",
    "AnalyticsDeliveryLogStream": "AnalyticsOn",
    "AnalyticsDeliveryRole": "AnalyticsOn",
    "AnalyticsDeliveryStream": "AnalyticsOn",
    "AnalyticsWorkGroup": "AnalyticsOn",
    "UniqueHumansByCampaignQuery": "AnalyticsOn",
    "UniqueHumansByLinkQuery": "AnalyticsOn",
    "UniqueHumansByDayQuery": "AnalyticsOn",
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def test_the_feed_is_off_by_default_and_each_part_exists_only_when_on(template: Template) -> None:
    assert template.parameter_default("EnableHitEvents") == "false"
    assert template.parameter_default("EnableAnalytics") == "false"
    for name, condition in FEED_RESOURCES.items():
        assert template.resources[name]["Condition"] == condition, name
    # Either switch (spelt out: checkov does not resolve an Fn::Or of Condition references).
    assert template.data["Conditions"]["HitFeedOn"] == {
        "Fn::Or": [
            {"Fn::Equals": [{"Ref": "EnableHitEvents"}, "true"]},
            {"Fn::Equals": [{"Ref": "EnableAnalytics"}, "true"]},
        ]
    }


def test_the_stream_function_learns_of_each_sink_only_when_it_is_on(template: Template) -> None:
    env = properties(template, "StreamFunction")["Environment"]["Variables"]
    no_value = {"Ref": "AWS::NoValue"}
    assert env["EVENT_BUS_NAME"] == {"Fn::If": ["HitEventsOn", {"Ref": "HitEventBus"}, no_value]}
    assert env["ANALYTICS_STREAM_NAME"] == {
        "Fn::If": ["AnalyticsOn", {"Ref": "AnalyticsDeliveryStream"}, no_value]
    }
    assert env["FEED_DEAD_LETTER_QUEUE_URL"] == {
        "Fn::If": ["HitFeedOn", {"Ref": "HitFeedDeadLetterQueue"}, no_value]
    }
    # Rows name entities by pseudonym unless the stack asks for them in clear (webbugger.feed.shapes).
    assert env["ANALYTICS_ENTITIES"] == {"Ref": "AnalyticsEntities"}
    parameter = template.data["Parameters"]["AnalyticsEntities"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("pseudonymised", list(ANALYTICS_ENTITIES))
    assert ANALYTICS_ENTITIES[0] == "pseudonymised"  # the settings' default, as the template's
    # Each grant exists under its sink's condition only (the whole set: test_template.py).
    conditional = {
        policy["Fn::If"][0]: policy["Fn::If"][1]["Statement"]
        for policy in properties(template, "StreamFunction")["Policies"]
        if "Fn::If" in policy
    }
    assert conditional["HitEventsOn"][0]["Action"] == "events:PutEvents"
    assert conditional["HitEventsOn"][0]["Resource"] == {"Fn::GetAtt": ["HitEventBus", "Arn"]}
    assert conditional["AnalyticsOn"][0]["Action"] == "firehose:PutRecordBatch"
    assert conditional["AnalyticsOn"][0]["Resource"] == {"Fn::GetAtt": ["AnalyticsDeliveryStream", "Arn"]}
    assert conditional["HitFeedOn"][0]["Action"] == "sqs:SendMessage"
    assert conditional["HitFeedOn"][0]["Resource"] == {"Fn::GetAtt": ["HitFeedDeadLetterQueue", "Arn"]}


def _role_grants(template: Template, role: str) -> set[tuple[str, str]]:
    granted = set()
    for policy in properties(template, role)["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            granted |= {(action, str(resource)) for action in actions for resource in resources}
    return granted


def test_firehose_may_write_its_prefixes_read_the_schema_and_log_nothing_more(template: Template) -> None:
    role = properties(template, "AnalyticsDeliveryRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    objects = [str(_sub("${AnalyticsBucket.Arn}/beacons/*")), str(_sub("${AnalyticsBucket.Arn}/errors/*"))]
    assert _role_grants(template, "AnalyticsDeliveryRole") == {
        *{
            (action, resource)
            for action in ("s3:PutObject", "s3:AbortMultipartUpload")
            for resource in objects
        },
        ("s3:GetBucketLocation", arn("AnalyticsBucket")),
        ("s3:ListBucket", arn("AnalyticsBucket")),
        ("s3:ListBucketMultipartUploads", arn("AnalyticsBucket")),
        *{
            (action, str(_sub(resource)))
            for action in ("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions")
            for resource in (
                f"{glue}:catalog",
                f"{glue}:database/${{AnalyticsDatabase}}",
                f"{glue}:table/${{AnalyticsDatabase}}/beacons",
            )
        },
        ("logs:PutLogEvents", arn("AnalyticsDeliveryLogGroup")),
    }


def test_firehose_converts_to_parquet_with_the_table_partitioned_by_the_hits_day(template: Template) -> None:
    destination = properties(template, "AnalyticsDeliveryStream")["ExtendedS3DestinationConfiguration"]
    table = properties(template, "AnalyticsTable")
    schema = destination["DataFormatConversionConfiguration"]["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == (
        {"Ref": "AnalyticsDatabase"},
        table["TableInput"]["Name"],
    )
    assert destination["DataFormatConversionConfiguration"]["OutputFormatConfiguration"]["Serializer"] == {
        "ParquetSerDe": {"Compression": "SNAPPY"}
    }
    assert destination["Prefix"] == "beacons/day=!{partitionKeyFromQuery:day}/"
    processors = {
        p["Type"]: {x["ParameterName"]: x["ParameterValue"] for x in p["Parameters"]}
        for p in destination["ProcessingConfiguration"]["Processors"]
    }
    # Several rows to a record (webbugger.feed.sinks packs them): split, then read each row's day.
    assert processors["RecordDeAggregation"] == {"SubRecordType": "JSON"}
    assert processors["MetadataExtraction"]["MetadataExtractionQuery"] == "{day: .day}"
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    # Where Firehose writes is where the table (and its projection) reads.
    location = table["TableInput"]["StorageDescriptor"]["Location"]
    assert location == _sub("s3://${AnalyticsBucket}/beacons/")
    parameters = table["TableInput"]["Parameters"]
    assert parameters["storage.location.template"] == _sub("s3://${AnalyticsBucket}/beacons/day=${!day}/")
    assert parameters["projection.day.format"] == "yyyy-MM-dd"
    assert table["TableInput"]["PartitionKeys"] == [
        {"Name": "day", "Type": "string", "Comment": "the hit's UTC day (YYYY-MM-DD)"}
    ]


def test_the_tables_columns_are_the_rows_the_stream_function_sends(template: Template) -> None:
    beacon = Beacon(pk="2026-11-20#0", id="01JDB5YQ8000000000000000AB", mode="pixel", method="GET")
    beacon.created_at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    row = hit_row(beacon, b"salt", datetime(2026, 11, 20, 9, 1, tzinfo=UTC))
    columns = analytics_columns(template)
    assert {name for name, _ in columns} | {"day"} == set(row)
    assert all(kind in COLUMN_TYPES for _, kind in columns)


def test_the_bucket_is_private_tls_only_and_forgets_hits_with_the_table(template: Template) -> None:
    bucket = properties(template, "AnalyticsBucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["beacons"]["Prefix"] == "beacons/"
    assert rules["beacons"]["ExpirationInDays"] == {"Ref": "BeaconRetentionDays"}
    (deny,) = properties(template, "AnalyticsBucketPolicy")["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Action"], deny["Condition"]) == (
        "Deny",
        "s3:*",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_the_workgroup_keeps_results_in_the_bucket_and_the_queries_use_the_table(template: Template) -> None:
    config = properties(template, "AnalyticsWorkGroup")["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"]["OutputLocation"] == _sub("s3://${AnalyticsBucket}/athena-results/")
    queries = {
        name: res for name, res in template.resources.items() if res.get("Type") == "AWS::Athena::NamedQuery"
    }
    assert len(queries) == 3
    for res in queries.values():
        props: dict[str, Any] = res["Properties"]
        assert props["Database"] == {"Ref": "AnalyticsDatabase"}
        assert props["WorkGroup"] == {"Ref": "AnalyticsWorkGroup"}
        assert "FROM beacons b" in props["QueryString"]
    # The CLI runs the same texts by the same names.
    assert {q.name: q.sql for q in named_queries(template)} == {
        res["Properties"]["Name"]: res["Properties"]["QueryString"] for res in queries.values()
    }
