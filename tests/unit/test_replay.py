"""``webbugger replay``: its arguments, its counting, and reading a deployed stack's log group
(moto: CloudFormation outputs, CloudWatch Logs, DynamoDB, all in-process)."""

from __future__ import annotations

import io
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from webbugger import runtime, spill
from webbugger.ids import new_beacon_id
from webbugger.models import Beacon, beacon_partition
from webbugger_cli.commands.replay import Tally, replay_lines, since_time
from webbugger_cli.main import main
from webbugger_cli.template import load_template

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REGION = "eu-west-1"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _beacon(mode: str = "pixel") -> Beacon:
    beacon_id = new_beacon_id()
    return Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=datetime.now(UTC),
        mode=mode,
        method="GET",
        user_agent="Replay/1.0",
    )


def _line(beacon: Beacon) -> str:
    return json.dumps(
        {"level": "ERROR", "message": "beacon write failed", "spilled_beacon": beacon.to_record()}
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("6h", NOW - timedelta(hours=6)),
        ("2d", NOW - timedelta(days=2)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T10:00:00+01:00", datetime(2026, 11, 20, 9, tzinfo=UTC)),
    ],
)
def test_since_takes_a_duration_or_a_time(text: str, expected: datetime) -> None:
    assert since_time(text, NOW) == expected


def test_replay_counts_stored_present_and_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()

    def store(record: Any) -> bool:
        if record["id"] in seen:
            return False
        seen.add(record["id"])
        return True

    monkeypatch.setattr(spill, "store_record", store)  # replay imports it when it runs
    first, second = _beacon(), _beacon("redirect")
    lines = [
        "START RequestId: x",
        _line(first),
        f"2026-11-23T10:00:00.000Z {_line(second)}",
        _line(first),  # twice in the log: already present the second time
        '{"spilled_beacon": {"id": "broken',
        json.dumps({"message": "nothing to see"}),
    ]
    tally = replay_lines(lines, Tally())
    assert (tally.read, tally.stored, tally.present, tally.invalid) == (4, 2, 1, 1)
    assert tally.summary() == "replay: read 4 spilled beacons: 2 stored, 1 already present, 1 invalid"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "/nonexistent/track.log"], "cannot read /nonexistent/track.log"),
        (["replay", "--since", "2h"], "--since needs --stack NAME"),
        (["--stack", "wb", "replay", "--since", "2h", "x.log"], "it does not apply to FILE"),
    ],
)
def test_user_mistakes_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err


def test_nothing_to_replay_from_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["replay"]) == 1
    assert "nothing to replay" in capsys.readouterr().err


# --- a deployed stack: its track function's log group ----------------------------------------


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A moto stack with the outputs the CLI reads, the beacons table and the track log group."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "DYNAMODB_ENDPOINT", "WEBBUGGER_SIGNING_KEYS", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    runtime.reset()
    with mock_aws():
        spec = load_template().tables()["BeaconsTable"]
        boto3.client("dynamodb", region_name=REGION).create_table(TableName="wb-beacons", **spec)
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName="/wb/track")
        logs.create_log_stream(logGroupName="/wb/track", logStreamName="s1")
        outputs = {
            # Every table's output, as a deployed stack has (the CLI binds each plugin's model).
            **{f"{logical_id}Name": f"wb-{logical_id}" for logical_id in load_template().tables()},
            "ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com",
            "BeaconsTableName": "wb-beacons",
            "SigningSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wb",
            "TrackFunctionLogGroupName": "/wb/track",
        }
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="wb", TemplateBody=json.dumps(template)
        )
        yield outputs
    runtime.reset()
    os.environ.clear()
    os.environ.update(before)


def test_replay_reads_the_stacks_log_group_since_a_time(
    deployed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    old, recent, stored_already = _beacon(), _beacon("redirect"), _beacon()
    now_ms = int(time.time() * 1000)
    events = [
        {"timestamp": now_ms - 3 * 3600 * 1000, "message": _line(old)},  # before --since 2h
        {"timestamp": now_ms - 600 * 1000, "message": "START RequestId: 1 Version: $LATEST"},
        {"timestamp": now_ms - 500 * 1000, "message": _line(recent)},
        {"timestamp": now_ms - 400 * 1000, "message": _line(stored_already)},
    ]
    boto3.client("logs", region_name=REGION).put_log_events(
        logGroupName="/wb/track", logStreamName="s1", logEvents=events
    )
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    # The drain got this one first.
    dynamodb.put_item(
        TableName="wb-beacons", Item={"pk": {"S": stored_already.pk}, "id": {"S": stored_already.id}}
    )

    assert main(["replay", "--stack", "wb", "--region", REGION, "--since", "2h"]) == 0

    out = capsys.readouterr().out.strip()
    assert out == "replay: read 2 spilled beacons: 1 stored, 1 already present, 0 invalid"
    items = dynamodb.scan(TableName="wb-beacons")["Items"]
    assert sorted(item["id"]["S"] for item in items) == sorted([recent.id, stored_already.id])
    [restored] = [item for item in items if item["id"]["S"] == recent.id]
    assert restored["mode"]["S"] == "redirect"
    assert restored["ua"]["S"] == "Replay/1.0"


def test_replay_json(deployed: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--stack", "wb", "--region", REGION, "--since", "2h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"read": 0, "stored": 0, "present": 0, "invalid": 0}


def test_replay_from_a_stack_without_the_log_group_output_is_one_line(
    deployed: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    outputs = {key: {"Value": value} for key, value in deployed.items() if key != "TrackFunctionLogGroupName"}
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
    cloudformation.create_stack(StackName="older", TemplateBody=json.dumps(template))
    assert main(["replay", "--stack", "older", "--region", REGION]) == 1
    assert "has no output TrackFunctionLogGroupName" in capsys.readouterr().err
