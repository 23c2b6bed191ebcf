"""How :mod:`iam_grants` reads a call's IAM needs and a function's grants: the actions a
TransactWriteItems needs (ConditionCheck's is ConditionCheckItem), batches, ``!If`` policies and
``!Sub``, ``!GetAtt`` and ``!Ref`` resources as template.yaml writes them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from iam_grants import granted, not_granted, permissions
from webbugger_cli.template import load_template

if TYPE_CHECKING:
    from pathlib import Path


def test_calls_and_grants_are_read_as_iam_and_the_template_write_them(tmp_path: Path) -> None:
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "t1"}},
            {"Update": {"TableName": "t2"}},
            {"ConditionCheck": {"TableName": "t1"}},
            {"Delete": {"TableName": "t2"}},
        ]
    }
    assert permissions("dynamodb", "TransactWriteItems", transaction) == {
        ("dynamodb:PutItem", "t1"),
        ("dynamodb:UpdateItem", "t2"),
        ("dynamodb:ConditionCheckItem", "t1"),
        ("dynamodb:DeleteItem", "t2"),
    }
    assert permissions("dynamodb", "BatchWriteItem", {"RequestItems": {"t1": [], "t2": []}}) == {
        ("dynamodb:BatchWriteItem", "t1"),
        ("dynamodb:BatchWriteItem", "t2"),
    }
    assert permissions("sqs", "SendMessageBatch", {"QueueUrl": "q"}) == {("sqs:SendMessage", "q")}
    assert permissions("events", "PutEvents", {"Entries": [{"EventBusName": "b"}, {}]}) == {
        ("events:PutEvents", "b"),
        ("events:PutEvents", "default"),
    }
    (tmp_path / "template.yaml").write_text(
        """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:Query]
              Resource: [!GetAtt Table.Arn, !Sub "${Table.Arn}/index/*"]
            - Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Ref Secret
        - !If
          - On
          - Statement:
              - Effect: Allow
                Action: s3:PutObject
                Resource: !Sub "arn:${AWS::Partition}:s3:::${Bucket}/*"
          - !Ref AWS::NoValue
"""
    )
    template = load_template(tmp_path)
    assert granted("Fn", template) == {
        ("dynamodb:GetItem", "Table"),
        ("dynamodb:Query", "Table"),
        ("dynamodb:GetItem", "Table/index/*"),
        ("dynamodb:Query", "Table/index/*"),
        ("secretsmanager:GetSecretValue", "Secret"),
        ("s3:PutObject", "Bucket/*"),
    }
    made = [
        ("dynamodb:Query", "Table/index/by-day"),
        ("s3:PutObject", "Bucket/day/1.json"),
        ("dynamodb:PutItem", "Table"),  # not granted
        ("s3:PutObject", "Other/day/1.json"),  # not granted
    ]
    assert not_granted("Fn", made, template) == {
        ("dynamodb:PutItem", "Table"),
        ("s3:PutObject", "Other/day/1.json"),
    }
