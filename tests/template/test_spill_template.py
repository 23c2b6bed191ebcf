"""template.yaml's spill-over chain: queue, dead-letter queue, drain function, alarms, subscription."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from template_tools import arn, grants, properties

if TYPE_CHECKING:
    from webbugger_cli.template import Template

pytestmark = pytest.mark.template


def test_spill_queues_are_encrypted_and_redrive_to_the_dead_letter_queue(template: Template) -> None:
    queue = properties(template, "SpillQueue")
    assert queue["SqsManagedSseEnabled"] is True
    assert properties(template, "SpillDeadLetterQueue")["SqsManagedSseEnabled"] is True
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["SpillDeadLetterQueue", "Arn"]}
    assert 1 < redrive["maxReceiveCount"] <= 100
    # Lambda's SQS event source needs a visibility timeout of at least the function's timeout.
    assert queue["VisibilityTimeout"] >= properties(template, "DrainFunction")["Timeout"]


def test_track_function_knows_the_spill_queue(template: Template) -> None:
    env = properties(template, "TrackFunction")["Environment"]["Variables"]
    assert env["SPILL_QUEUE_URL"] == {"Ref": "SpillQueue"}
    # Locally there is no queue: the variable does not resolve, and the local stack logs instead.
    assert "SPILL_QUEUE_URL" not in template.function_environment("TrackFunction", {})


def test_drain_function_has_least_privilege(template: Template) -> None:
    assert grants(template, "DrainFunction") == {
        ("dynamodb:PutItem", arn("BeaconsTable")),
        # Erased entities' tombstones (a spilled beacon of one is dropped), and their key.
        ("dynamodb:GetItem", arn("CountersTable")),
        ("secretsmanager:GetSecretValue", str({"Ref": "VisitorSaltSecret"})),
        *{
            (action, arn("SpillQueue"))
            for action in (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            )
        },
    }
    # No SAM event: an SQS event would attach AWSLambdaSQSQueueExecutionRole (every queue).
    assert not properties(template, "DrainFunction").get("Events")


def test_drain_reads_the_spill_queue_with_partial_batch_failures(template: Template) -> None:
    mapping = properties(template, "DrainEventSource")
    assert mapping["FunctionName"] == {"Ref": "DrainFunction"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SpillQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_drain_log_group_keeps_logs_like_the_others(template: Template) -> None:
    assert properties(template, "DrainFunction")["LoggingConfig"]["LogGroup"] == {
        "Ref": "DrainFunctionLogGroup"
    }
    assert properties(template, "DrainFunctionLogGroup")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize(
    ("alarm", "queue", "metric"),
    [
        ("SpillDeadLetterAlarm", "SpillDeadLetterQueue", "ApproximateNumberOfMessagesVisible"),
        ("SpillQueueAgeAlarm", "SpillQueue", "ApproximateAgeOfOldestMessage"),
    ],
)
def test_spill_alarms_watch_their_queues(template: Template, alarm: str, queue: str, metric: str) -> None:
    props = properties(template, alarm)
    assert props["Namespace"] == "AWS/SQS"
    assert props["MetricName"] == metric
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_log_subscription_is_optional_and_matches_spilled_records(template: Template) -> None:
    subscription = template.resources["SpilledLogsSubscription"]
    assert subscription["Condition"] == "ReplaySpilledLogsOn"
    assert template.resources["SpilledLogsPermission"]["Condition"] == "ReplaySpilledLogsOn"
    assert template.parameter_default("ReplaySpilledLogs") == "false"
    props = subscription["Properties"]
    assert props["LogGroupName"] == {"Ref": "TrackFunctionLogGroup"}
    assert props["FilterPattern"] == "{ $.spilled_beacon.id = * }"
    assert props["DestinationArn"] == {"Fn::GetAtt": ["DrainFunction", "Arn"]}


def test_outputs_name_the_spill_queue_and_the_track_log_group(template: Template) -> None:
    outputs = template.data["Outputs"]
    assert outputs["SpillQueueUrl"]["Value"] == {"Ref": "SpillQueue"}
    assert outputs["TrackFunctionLogGroupName"]["Value"] == {"Ref": "TrackFunctionLogGroup"}
