"""``webbugger --stack NAME doctor`` against a "deployed" stack in moto's CloudFormation.

moto holds the stack, its tables and its Secrets Manager secret; its URLs point at a closed port
on 127.0.0.1, so the route checks must fail, one line each, and the command must exit 1. The
passing run (every route answering) is tests/e2e/test_e2e_stack.py, against a real stack.
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from moto import mock_aws
from webbugger_cli.local.ddblocal import free_port
from webbugger_cli.main import main

if TYPE_CHECKING:
    from collections.abc import Iterator

REGION = "eu-west-1"
RING = json.dumps({"current": "k1", "k1": "k1-secret-" + "a" * 38, "k0": "k0-secret-" + "b" * 38})


def _table(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        },
    }


def _template(secret: str, outputs: dict[str, Any]) -> str:
    """The stack's template; its secret is made beside it (moto's CloudFormation cannot make one)."""
    import boto3

    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"signing-{free_port()}", SecretString=secret
    )["ARN"]
    outputs = {**outputs, "SigningSecretArn": arn} if "SigningSecretArn" in outputs else outputs
    return json.dumps(
        {
            "Resources": {"BeaconsTable": _table("wb-beacons"), "LinksTable": _table("wb-links")},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
    )


def _closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def _outputs() -> dict[str, Any]:
    return {
        "ApiUrl": _closed_url(),
        "TrackingUrl": _closed_url(),
        "AdminApiUrl": _closed_url(),
        "BeaconsTableName": {"Ref": "BeaconsTable"},
        "LinksTableName": {"Ref": "LinksTable"},
        "SigningSecretArn": "set by _template",
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def _doctor(stack: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, tuple[str, str]], str]:
    status = main(["--stack", stack, "--region", REGION, "doctor", "--json"])
    out = capsys.readouterr()
    report = json.loads(out.out)
    return status, {c["name"]: (c["status"], c["detail"]) for c in report["checks"]}, out.err


def test_deployed_stack_checks_outputs_secret_and_tables_and_fails_unreachable_routes(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.create_stack(StackName="wb", TemplateBody=_template(RING, _outputs()))
    status, checks, _ = _doctor("wb", capsys)
    assert status == 1
    assert checks["outputs"][0] == "PASS"
    assert checks["secret"] == ("PASS", "signing key ring readable: 2 keys, current 'k1'")
    assert checks["tables"] == ("PASS", "2 tables ACTIVE (Beacons, Links)")
    assert checks["admin-api"][0] == "FAIL"
    assert checks["admin-api"][1].startswith("cannot reach the admin API at http://127.0.0.1:")
    for name in ("pixel", "tampered"):
        assert checks[name][0] == "FAIL"
        assert checks[name][1].startswith("cannot reach http://127.0.0.1:"), checks[name]
    assert checks["redirect"] == ("SKIP", "not run: the admin-api check failed")
    assert checks["headers"] == ("SKIP", "not run: the pixel, admin-api check failed")
    assert checks["cleanup"] == ("SKIP", "not run: the admin-api check failed")


def test_each_check_is_one_line_and_the_summary_counts_failures(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.create_stack(StackName="wb", TemplateBody=_template(RING, _outputs()))
    assert main(["--stack", "wb", "--region", REGION, "doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("webbugger doctor: stack wb (http://127.0.0.1:")
    assert [line.split()[:2] for line in lines[1:10]] == [
        ["PASS", "outputs"],
        ["PASS", "secret"],
        ["PASS", "tables"],
        ["FAIL", "admin-api"],
        ["FAIL", "pixel"],
        ["SKIP", "redirect"],
        ["FAIL", "tampered"],
        ["SKIP", "headers"],
        ["SKIP", "cleanup"],
    ]
    assert lines[10:] == ["6 of 9 checks did not pass"]


def test_missing_outputs_a_bad_secret_and_a_missing_table_fail_their_checks(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = _outputs()
    del outputs["TrackingUrl"], outputs["AdminApiUrl"]
    outputs["CountersTableName"] = "wb-counters-gone"
    aws.create_stack(StackName="old", TemplateBody=_template("not a key ring", outputs))
    status, checks, _ = _doctor("old", capsys)
    assert status == 1
    assert checks["outputs"] == ("FAIL", "missing Outputs: TrackingUrl, AdminApiUrl")
    assert checks["secret"] == ("FAIL", "ConfigurationError: signing secret is not JSON")
    assert checks["tables"][0] == "FAIL"
    assert "ResourceNotFoundException" in checks["tables"][1]
    assert checks["admin-api"] == ("FAIL", "no AdminApiUrl output")
    assert checks["pixel"] == ("SKIP", "not run: the secret check failed")


def test_unknown_stack_is_one_line(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "nope", "--region", REGION, "doctor"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"webbugger: error: stack 'nope' not found in {REGION}"]
    assert captured.out == ""


def test_no_local_stack_is_one_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBBUGGER_STATE_DIR", str(tmp_path))
    assert main(["doctor"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "webbugger: error: no local stack is running: start it with `make run`"
    ]


class _Origin(http.server.BaseHTTPRequestHandler):
    """A stand-in function URL: answers every GET with the status the test sets."""

    status = 403

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "verdict"), [(403, "PASS"), (200, "FAIL")])
def test_the_function_url_must_refuse_what_cloudfront_did_not_sign(
    aws: Any, capsys: pytest.CaptureFixture[str], status: int, verdict: str
) -> None:
    _Origin.status = status
    server = http.server.HTTPServer(("127.0.0.1", 0), _Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outputs = {
            **_outputs(),
            "ApiUrl": f"http://127.0.0.1:{server.server_port}/",
            "FrontDoor": "function-url",
        }
        aws.create_stack(StackName="url", TemplateBody=_template(RING, outputs))
        _, checks, _ = _doctor("url", capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert (
        checks["outputs"][1]
        .split(" (")[1]
        .startswith("CloudFront/custom domain in front of the function-url")
    )
    assert checks["origin"][0] == verdict
    if verdict == "FAIL":
        assert (
            checks["origin"][1]
            == "the function URL answered a request CloudFront did not sign with 200, not 403"
        )
