"""template.yaml: valid for SAM, buildable offline, least privilege, and in step with the models."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import pytest
from template_tools import ROOT, arn, grants
from template_tools import sam as _sam
from webbugger.counters import Counter
from webbugger.ledger import Ledger
from webbugger.models import Beacon
from webbugger.persons import PersonDay
from webbugger_cli.template import Template, load_handler, load_template
from webbugger_plugins.ip import IpEntity
from webbugger_plugins.link import Link

if TYPE_CHECKING:
    from pathlib import Path

    from pynamodb.models import Model

pytestmark = pytest.mark.template


def test_sam_validate_lint_passes() -> None:
    result = _sam("validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_build_cross_builds_the_layer_and_function(tmp_path: Path, cloudfront_on: dict[str, str]) -> None:
    # Built with CloudFront off (the defaults), then with every edge parameter on, from the same
    # cache: both builds pass and give the same template (the conditions stay in it;
    # CloudFormation decides at deploy).
    off_dir, build_dir = tmp_path / "build-off", tmp_path / "build"
    overrides = " ".join(f"{name}={value}" for name, value in cloudfront_on.items())
    for directory, extra in ((off_dir, []), (build_dir, ["--parameter-overrides", overrides])):
        result = _sam(
            "build", "--cached", "--build-dir", str(directory), "--cache-dir", str(tmp_path / "cache"), *extra
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    assert (off_dir / "template.yaml").read_text() == (build_dir / "template.yaml").read_text()
    built = Template(build_dir / "template.yaml")
    assert built.resources["TrackingDistribution"]["Condition"] == "CloudFrontOn"
    assert built.data["Conditions"] == load_template(ROOT).data["Conditions"]
    layer = build_dir / "CoreLayer" / "python"
    # The layer carries the core package and its dependencies, not boto3/botocore (Lambda has them).
    assert (layer / "webbugger" / "tracking.py").is_file()
    assert (layer / "pynamodb").is_dir()
    assert (layer / "aws_lambda_powertools").is_dir()
    assert not (layer / "botocore").exists()
    assert (build_dir / "TrackFunction" / "app.py").is_file()
    assert (build_dir / "StreamFunction" / "app.py").is_file()
    assert (build_dir / "DrainFunction" / "app.py").is_file()
    # The plugin layer is an installed distribution, so its entry points are found in /opt/python.
    entry_points = (
        build_dir / "PluginsLayer" / "python" / "webbugger_plugins-0.1.0.dist-info" / "entry_points.txt"
    )
    assert "link = webbugger_plugins.link" in entry_points.read_text()


def _key_schema(schema: list[dict[str, str]]) -> dict[str, str]:
    return {key["AttributeName"]: key["KeyType"] for key in schema}


@pytest.mark.parametrize(
    ("model", "table"),
    [
        (Beacon, "BeaconsTable"),
        (Link, "LinksTable"),
        (Counter, "CountersTable"),
        (PersonDay, "CountersTable"),
        (Ledger, "CountersTable"),
    ],
)
def test_models_match_the_template_tables(template: Template, model: type[Model], table: str) -> None:
    spec = template.tables()[table]
    schema: dict[str, Any] = model._get_schema()
    assert _key_schema(spec["KeySchema"]) == _key_schema(schema["key_schema"])
    template_indexes = {
        index["IndexName"]: _key_schema(index["KeySchema"])
        for index in spec.get("GlobalSecondaryIndexes", [])
    }
    model_indexes = {
        index["index_name"]: _key_schema(index["key_schema"]) for index in schema["global_secondary_indexes"]
    }
    assert template_indexes == model_indexes


def test_beacon_ttl_attribute_is_the_models(template: Template) -> None:
    assert template.ttl_attribute("BeaconsTable") == Beacon.expires.attr_name


def test_ip_entities_expire_by_the_models_ttl_attribute(template: Template) -> None:
    # An ip entity's addresses go with its last beacon (privacy.md), by DynamoDB's TTL.
    assert template.ttl_attribute("IpEntitiesTable") == IpEntity.expires.attr_name


def test_tables_are_protected_and_encrypted(template: Template) -> None:
    for name in template.tables():
        props = template.resources[name]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert "DeletionProtectionEnabled" in props
        assert template.resources[name]["DeletionPolicy"] == "Retain"


def test_track_function_has_least_privilege(template: Template) -> None:
    # Writes beacons, reads targets/sources and the key; the ip entity's inline hook and capped
    # links' hit claims are the only other writes. No scans, no deletes, nothing on the
    # recipients (deferred) table.
    assert grants(template, "TrackFunction") == {
        ("dynamodb:PutItem", arn("BeaconsTable")),
        ("dynamodb:GetItem", arn("LinksTable")),
        ("dynamodb:UpdateItem", arn("LinksTable")),
        ("dynamodb:GetItem", arn("CampaignsTable")),
        ("dynamodb:GetItem", arn("IpEntitiesTable")),
        ("dynamodb:PutItem", arn("IpEntitiesTable")),
        ("dynamodb:UpdateItem", arn("IpEntitiesTable")),
        ("secretsmanager:GetSecretValue", str({"Ref": "SigningSecret"})),
        ("sqs:SendMessage", arn("SpillQueue")),
        ("secretsmanager:GetSecretValue", str({"Ref": "OriginSecret"})),
    }


def test_stream_function_has_least_privilege(template: Template) -> None:
    assert grants(template, "StreamFunction") == {
        # Labels and counting claims; a beacon read back, an entity's beacons fetched by id.
        ("dynamodb:UpdateItem", arn("BeaconsTable")),
        ("dynamodb:GetItem", arn("BeaconsTable")),
        ("dynamodb:BatchGetItem", arn("BeaconsTable")),
        # A late beacon of an erased entity deleted (webbugger.tombstones).
        ("dynamodb:DeleteItem", arn("BeaconsTable")),
        # Counters and person-days updated, batch ledgers put, both read, an entity's days queried;
        # no scan.
        ("dynamodb:UpdateItem", arn("CountersTable")),
        ("dynamodb:PutItem", arn("CountersTable")),
        ("dynamodb:GetItem", arn("CountersTable")),
        ("dynamodb:Query", arn("CountersTable")),
        ("secretsmanager:GetSecretValue", str({"Ref": "VisitorSaltSecret"})),
        # What it wrote for a beacon erased meanwhile, taken back (webbugger.erase.forget_late_work):
        # the emptied day item, the entity's record (loaded first). No built-in entity has a
        # deferred hook: nothing writes an entity's record from here.
        ("dynamodb:DeleteItem", arn("CountersTable")),
        ("dynamodb:DeleteItem", arn("IpEntitiesTable")),
        ("dynamodb:GetItem", arn("IpEntitiesTable")),
        # The hit feed, each only when switched on (test_feed_template.py): its bus, its delivery
        # stream, its dead-letter queue.
        ("events:PutEvents", arn("HitEventBus")),
        ("firehose:PutRecordBatch", arn("AnalyticsDeliveryStream")),
        ("sqs:SendMessage", arn("HitFeedDeadLetterQueue")),
    }


def test_stream_retries_failed_records_alone_and_keeps_poison_ones(template: Template) -> None:
    event = template.resources["StreamFunction"]["Properties"]["Events"]["NewBeacons"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["BisectBatchOnFunctionError"] is True
    assert event["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StreamDeadLetterQueue", "Arn"]
    }
    # One batch at a time per shard: webbugger.ledger's argument rests on it.
    assert event["ParallelizationFactor"] == 1
    # Retried for an hour whatever the count (an outage of minutes loses no count); what is
    # dead-lettered after that, `webbugger recount` counts.
    assert event["MaximumRetryAttempts"] == -1
    assert event["MaximumRecordAgeInSeconds"] == 3600


def test_stream_batches_are_full_and_only_new_beacons_with_a_reference(template: Template) -> None:
    event = template.resources["StreamFunction"]["Properties"]["Events"]["NewBeacons"]["Properties"]
    assert event["BatchSize"] == 100
    assert event["MaximumBatchingWindowInSeconds"] == {"Ref": "StreamBatchWindowSeconds"}
    assert 0 < int(template.parameter_default("StreamBatchWindowSeconds") or 0) <= 300
    patterns = [json.loads(item["Pattern"]) for item in event["FilterCriteria"]["Filters"]]
    assert patterns == [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {name: {"S": [{"exists": True}]}}}}
        for name in ("target", "entity", "source")
    ]
    # The beacons table has no index: each entry would cost a write unit on every hit.
    assert "GlobalSecondaryIndexes" not in template.resources["BeaconsTable"]["Properties"]


def test_counted_kinds_reach_the_stream_function(template: Template) -> None:
    assert template.parameter_default("CountedKinds") == "target,source"
    variables = template.resources["StreamFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["COUNTED_KINDS"] == {"Ref": "CountedKinds"}


def test_signing_key_is_generated_at_deploy_time(template: Template) -> None:
    generated = template.resources["SigningSecret"]["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "k1"
    assert '"current": "k1"' in generated["SecretStringTemplate"]
    assert generated["PasswordLength"] >= 32


def test_every_route_is_served_by_the_handler(template: Template) -> None:
    routes = {(r.method, r.path) for r in template.routes() if r.function == "TrackFunction"}
    # The track function routes by itself (a function URL sends every path): its router's routes
    # are the template's, each for the same methods.
    track = next(r for r in template.routes() if r.function == "TrackFunction")
    app = sys.modules[load_handler(track.code_uri, track.handler).__module__]
    assert {(method, f"/{prefix}/{{") for prefix in app.ROUTES for method in app.METHODS} == {
        (method, path.partition("{")[0] + "{") for method, path in routes
    }
    assert routes == {
        ("GET", "/p/{token}"),
        ("HEAD", "/p/{token}"),
        ("GET", "/r/{token}"),
        ("HEAD", "/r/{token}"),
        ("GET", "/l/{id}"),
        ("HEAD", "/l/{id}"),
    }


def _allow_statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    """(resource, statement) of every Allow statement of a function's or a role's policies."""
    found = []
    for name, resource in template.resources.items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            documents = [p["Fn::If"][1] if "Fn::If" in p else p for p in props.get("Policies") or []]
        elif resource.get("Type") == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies") or []]
        else:
            continue
        found += [(name, s) for d in documents for s in d["Statement"] if s.get("Effect") == "Allow"]
    return found


def test_no_policy_grants_a_wildcard_or_a_managed_policy(template: Template) -> None:
    # Least privilege everywhere, not only where a test lists the grants: named actions on named
    # resources (a Ref, a GetAtt or a Sub of one), and no SAM policy template or managed policy.
    statements = _allow_statements(template)
    assert {name for name, _ in statements} >= {
        "TrackFunction", "DrainFunction", "AdminFunction", "StreamFunction", "AnalyticsDeliveryRole",
    }  # fmt: skip
    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), (name, actions)
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for resource in resources:
            assert isinstance(resource, dict), (name, resource)  # never a literal "*" or a typed ARN
            if "Fn::Sub" in resource:
                text = resource["Fn::Sub"]
                assert text.startswith(("${", "arn:${AWS::Partition}:")) and not text.endswith(":*"), text
    for name, resource in template.resources.items():
        props = resource.get("Properties") or {}
        assert not props.get("ManagedPolicyArns"), name
        if resource.get("Type") == "AWS::Serverless::Function":
            for policy in props.get("Policies") or []:
                assert isinstance(policy, dict) and ({"Statement"} == set(policy) or "Fn::If" in policy), name
