"""The email guide (docs/email-guide.md) works: its two minting snippets run as printed (only the stack's
Outputs and the ids put in), and the URLs they mint answer as the guide says.

Against the local stack, the offline snippet reads the key ring from moto's Secrets Manager,
holding the local stack's ring (a local stack has no secret in AWS); against a deployed stack it
reads the real secret named by ``SigningSecretArn``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from webbugger.gif import TRANSPARENT_GIF
from webbugger.tokens import KeyRing, verify
from webbugger_cli.admin_client import region_of
from webbugger_cli.commands.doctor.fetch import fetch

if TYPE_CHECKING:
    from conftest import E2EStack

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "email-guide.md").read_text()


def _snippet(name: str) -> str:
    """The guide's Python block that starts with ``# NAME``."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, flags=re.DOTALL)
    found = [block for block in blocks if block.startswith(f"# {name}")]
    assert len(found) == 1, f"docs/email-guide.md has no single ```python block starting with '# {name}'"
    return found[0]


def _with(code: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in code, f"the guide's snippet no longer contains {old!r}"
        code = code.replace(old, new)
    return code


def _assign(code: str, name: str, value: str) -> str:
    """Replace the snippet's ``NAME = "..."`` line's value."""
    pattern = re.compile(rf'^{name} = "[^"]*"', flags=re.MULTILINE)
    assert pattern.search(code), f"the guide's snippet no longer sets {name}"
    return pattern.sub(f"{name} = {json.dumps(value)}", code, count=1)


@pytest.fixture(scope="module")
def send(e2e_stack: E2EStack) -> dict[str, str]:
    """A campaign (made with the CLI, as the guide says) and a link, unique to this module's run."""
    run = uuid.uuid4().hex[:10]
    campaign = f"e2e-{run}"
    env = {**os.environ, **e2e_stack.cli_env}
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "webbugger_cli.main",
            *e2e_stack.cli_options,
            "source",
            "create",
            f"campaign:{campaign}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    url = f"https://example.com/e2e/{run}"
    link = e2e_stack.admin.request(
        "POST", "/links", payload={"url": url, "id": f"e2e-{run}", "tags": ["e2e"]}
    )
    return {"run": run, "campaign": campaign, "link": link.json()["id"], "url": url}


def _ids(send: dict[str, str]) -> dict[str, str]:
    return {
        "spring-2026": send["campaign"],
        "spring-sale": send["link"],
        "alice@example.com": f"alice-{send['run']}@example.com",
        "bob@example.com": f"bob-{send['run']}@example.com",
    }


def _check_click(url: str, send: dict[str, str]) -> None:
    answer = fetch(url, {"User-Agent": "webbugger-e2e"})
    assert (answer.status, answer.headers.get("location")) == (302, send["url"])


def test_batch_mint_snippet(
    e2e_stack: E2EStack, send: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_url = e2e_stack.outputs["AdminApiUrl"]
    if not e2e_stack.cli_options:  # the local admin API does not check signatures; boto3 must find some
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
    code = _with(_snippet("mint_batch.py"), _ids(send))
    code = _assign(code, "ADMIN_API_URL", admin_url)
    code = _assign(code, "REGION", region_of(admin_url) or "us-east-1")
    scope: dict[str, Any] = {}
    exec(compile(code, "docs/email-guide.md:mint_batch.py", "exec"), scope)  # noqa: S102 - the guide's own code
    urls = scope["urls"]
    assert len(urls) == 2
    for item in urls:
        assert item["pixel_url"].startswith(e2e_stack.tracking_url.rstrip("/") + "/p/")
        assert fetch(item["pixel_url"]).body == TRANSPARENT_GIF
        _check_click(item["redirect_url"], send)


def test_local_batch_mint_snippet(e2e_stack: E2EStack, send: dict[str, str]) -> None:
    if e2e_stack.cli_options:
        pytest.skip("the local variant is for the local stack")
    blocks = re.findall(r"```sh\n(# mint_batch_local\.sh.*?)```", GUIDE, flags=re.DOTALL)
    assert len(blocks) == 1, (
        "docs/email-guide.md has no single ```sh block starting with '# mint_batch_local.sh'"
    )
    ids = {name: value for name, value in _ids(send).items() if name != "bob@example.com"}
    code = _with(blocks[0], {**ids, "http://127.0.0.1:3001": e2e_stack.outputs["AdminApiUrl"]})
    # No AWS credentials at all: the local admin API needs none.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        ["bash", "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)["urls"]
    assert fetch(item["pixel_url"]).body == TRANSPARENT_GIF
    _check_click(item["redirect_url"], send)


def test_offline_mint_snippet(
    e2e_stack: E2EStack, send: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _with(_snippet("mint_offline.py"), _ids(send))
    code = _assign(code, "TRACKING_URL", e2e_stack.tracking_url)
    local = not e2e_stack.cli_options
    if local:
        from moto import mock_aws

        ring_json = (Path(e2e_stack.cli_env["WEBBUGGER_STATE_DIR"]) / "signing-keys.json").read_text()
        for name, value in {
            "AWS_ACCESS_KEY_ID": "t",
            "AWS_SECRET_ACCESS_KEY": "t",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        mocked: Any = mock_aws()
    else:
        mocked = nullcontext()
    with mocked:
        if local:
            import boto3

            arn = boto3.client("secretsmanager").create_secret(Name="signing", SecretString=ring_json)["ARN"]
        else:
            arn = e2e_stack.outputs["SigningSecretArn"]
        code = _assign(code, "SECRET_ARN", arn)
        scope: dict[str, Any] = {}
        exec(compile(code, "docs/email-guide.md:mint_offline.py", "exec"), scope)  # noqa: S102 - the guide's own code
        ring: KeyRing = scope["ring"]
    urls = scope["urls"]
    assert len(urls) == 2
    for minted in urls.values():
        assert fetch(minted["pixel"]).body == TRANSPARENT_GIF
        _check_click(minted["click"], send)
        _check_click(minted["honeypot"], send)
        token = urlsplit(minted["honeypot"]).path.removeprefix("/r/")
        assert verify(token, ring).honeypot
        assert not verify(urlsplit(minted["click"]).path.removeprefix("/r/"), ring).honeypot
