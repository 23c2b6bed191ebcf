"""The command line's answers to mistakes: one line on stderr, a non-zero exit, never a traceback.

Commands run as a separate process (``python -m webbugger_cli.main``) so that what the user sees is
what is tested, and so that the process-wide state the CLI sets (environment, model bindings)
does not leak into other tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from moto import mock_aws
from webbugger import tokens
from webbugger.modes import Mode
from webbugger_cli.stack import StackError, deployed_stack

if TYPE_CHECKING:
    from pathlib import Path

RING = {"current": "t1", "t1": "k" * 40}
API_URL = "http://127.0.0.1:45678"


def webbugger(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEBBUGGER_STATE_DIR": str(state_dir), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, "-m", "webbugger_cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert result.stdout == ""


@pytest.fixture
def running_stack(tmp_path: Path) -> Path:
    """A state dir announcing a local stack run by this (live) process, with a signing key file."""
    (tmp_path / "signing-keys.json").write_text(json.dumps(RING))
    stack = {
        "api_url": API_URL,
        # Nothing listens here: the tests below must not need the database.
        "dynamodb_endpoint": "http://127.0.0.1:9",
        "pid": os.getpid(),
        "outputs": {"ApiUrl": API_URL, "BeaconsTableName": "beacons", "LinksTableName": "links"},
    }
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    return tmp_path


def test_no_local_stack_running(tmp_path: Path) -> None:
    result = webbugger("url", "pixel", state_dir=tmp_path)
    assert_one_line_error(result, "no local stack is running: start it with `make run`")


def test_outside_the_project_one_line_not_a_traceback(tmp_path: Path) -> None:
    # No WEBBUGGER_STATE_DIR, run from a directory with no template.yaml above it (the sender's
    # own folder with message.html): reading the local stack's parameters must not crash.
    env = {k: v for k, v in os.environ.items() if k != "WEBBUGGER_STATE_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "webbugger_cli.main", "source", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert_one_line_error(result, "no template.yaml in")


def test_stale_stack_file_means_no_stack(running_stack: Path) -> None:
    data = json.loads((running_stack / "stack.json").read_text())
    data["pid"] = 2**22 + 12345  # above Linux's pid_max default: no such process
    (running_stack / "stack.json").write_text(json.dumps(data))
    assert_one_line_error(webbugger("url", "pixel", state_dir=running_stack), "no local stack is running")


@pytest.mark.parametrize("ref", ["link", "link:", "Link:1", "1link:x"])
def test_malformed_target(running_stack: Path, ref: str) -> None:
    result = webbugger("url", "redirect", "--target", ref, state_dir=running_stack)
    assert_one_line_error(result, "error:")


def test_malformed_target_names_the_form(running_stack: Path) -> None:
    result = webbugger("url", "pixel", "--target", "link", state_dir=running_stack)
    assert_one_line_error(result, "expected TYPE:ID, got 'link'")


@pytest.mark.parametrize(
    ("option", "ref", "message"),
    [
        ("--target", "gadget:1", "no target type named 'gadget' is registered"),
        ("--entity", "user", "no entity type named 'user' is registered"),
        ("--source", "partner:7", "no source type named 'partner' is registered"),
    ],
)
def test_unknown_type(running_stack: Path, option: str, ref: str, message: str) -> None:
    assert_one_line_error(webbugger("url", "pixel", option, ref, state_dir=running_stack), message)


def test_an_entity_id_with_trailing_whitespace_is_not_minted(running_stack: Path) -> None:
    result = webbugger("url", "pixel", "--entity", "recipient:alice@example.com ", state_dir=running_stack)
    assert_one_line_error(result, "starts or ends with whitespace")


def test_a_source_id_with_a_bidi_override_is_not_created(tmp_path: Path) -> None:
    # Refused before any stack is looked for: none runs in this state dir.
    result = webbugger("source", "create", "campaign:spring\u202e2026", state_dir=tmp_path)
    assert_one_line_error(result, "invisible character, U+202E")


def test_redirect_needs_a_target(running_stack: Path) -> None:
    result = webbugger("url", "redirect", state_dir=running_stack)
    assert_one_line_error(result, "a redirect URL needs --target TYPE:ID")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.com/", "https://user@example.com/"])
def test_unsafe_link_url(tmp_path: Path, url: str) -> None:
    # Refused before any stack is looked for: none runs in this state dir.
    assert_one_line_error(webbugger("link", "create", url, state_dir=tmp_path), "URL")


def test_a_link_id_that_is_not_url_safe_is_refused(tmp_path: Path) -> None:
    # Refused by the core before any stack is looked for (its short URL /l/a/b could never work).
    result = webbugger("link", "create", "https://example.com/", "--id", "a/b", state_dir=tmp_path)
    assert_one_line_error(result, "invalid link id 'a/b': letters, digits, '-' and '_' only")


def test_a_link_that_has_expired_already_is_refused(tmp_path: Path) -> None:
    # Refused before any stack is looked for: none runs in this state dir.
    result = webbugger(
        "link", "create", "https://example.com/", "--expires-at", "2020-01-01", state_dir=tmp_path
    )
    assert_one_line_error(result, "expires_at 2020-01-01T00:00:00+00:00 is in the past")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = webbugger("beacons", "list", "--target", "link:a", "--source", "s:b", state_dir=tmp_path)
    assert result.returncode == 2
    assert "not allowed with" in result.stderr
    assert "Traceback" not in result.stderr


def test_pixel_url_uses_the_local_stack_api_url(running_stack: Path) -> None:
    result = webbugger("url", "pixel", state_dir=running_stack)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith(f"{API_URL}/p/")
    assert url.endswith(".gif")
    token = url.removeprefix(f"{API_URL}/p/").removesuffix(".gif")
    claims = tokens.verify(token, tokens.KeyRing.from_json(json.dumps(RING)))
    assert claims.mode is Mode.PIXEL
    assert claims.target is None


# --- a deployed stack, through moto's CloudFormation ----------------------------------------------

_FAKE_STACK_TEMPLATE = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        "ApiUrl": {"Value": "https://abc.execute-api.eu-west-1.amazonaws.com"},
        "BeaconsTableName": {"Value": "wb-beacons"},
        "LinksTableName": {"Value": "wb-links"},
        "SigningSecretArn": {"Value": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wb"},
    },
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.usefixtures("aws")
def test_deployed_stack_from_outputs() -> None:
    import boto3

    with mock_aws():
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="wb", TemplateBody=json.dumps(_FAKE_STACK_TEMPLATE)
        )
        stack = deployed_stack("wb", "eu-west-1")
    assert stack.api_url == "https://abc.execute-api.eu-west-1.amazonaws.com"
    assert stack.settings.beacons_table == "wb-beacons"
    assert os.environ["LINKS_TABLE"] == "wb-links"  # from the LinksTableName output
    assert stack.settings.signing_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wb"
    assert stack.settings.region == "eu-west-1"
    assert stack.settings.ddb_read_timeout > 1  # relaxed for a person, not a visitor


@pytest.mark.usefixtures("aws")
def test_deployed_stack_missing() -> None:
    with mock_aws(), pytest.raises(StackError, match="stack 'nope' not found in eu-west-1"):
        deployed_stack("nope", "eu-west-1")


def test_a_taken_port_says_how_make_run_picks_another(tmp_path: Path) -> None:
    # `make run` is how the README starts the stack, and `make run --port` is no make option:
    # the refusal names PORT=N too. Refused before DynamoDB Local starts, hence cheap.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = webbugger("local", "--port", str(port), state_dir=tmp_path)
    assert_one_line_error(result, f"port {port} or {port + 1} on 127.0.0.1 is already in use")
    assert "`PORT=N make run`" in result.stderr


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (("stats", "link:a", "--from", "2026-12-01"), "webbugger stats"),
        (("link", "create", "https://example.com/", "--bogus"), "webbugger link create"),
        (("sql", "SELECT", "count(*)", "FROM", "beacons"), "webbugger sql"),
    ],
)
def test_an_unknown_option_points_at_its_commands_help(
    tmp_path: Path, args: tuple[str, ...], command: str
) -> None:
    # `webbugger --help` lists commands, not the options a newcomer got wrong: name the command's.
    result = webbugger(*args, state_dir=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, f"{command}: error: unrecognized arguments: ")
    assert result.stderr.rstrip().endswith(f"(see `{command} --help`)")
