"""The template tests' tools (SAM, checkov), each in its own uv tool environment, the
parameters that switch every optional edge feature on, and readers of a resource's properties
and IAM grants."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webbugger_cli.template import Template

ROOT = Path(__file__).resolve().parents[2]


def _makefile_pin(name: str) -> str:
    """A tool's version as the Makefile pins it (``NAME := x.y.z``): one pin for make and tests."""
    found = re.search(rf"^{name} := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    if found is None:
        raise LookupError(f"the Makefile pins no {name}")
    return found.group(1)


SAM_VERSION = _makefile_pin("SAM_VERSION")
CHECKOV_VERSION = _makefile_pin("CHECKOV_VERSION")

# Parameters that switch on every condition of the edge: CloudFront, two custom domains with their
# certificate, the Route 53 alias records, the WAF rate rule, and the alarm e-mail subscription.
CLOUDFRONT_ON = {
    "EnableCloudFront": "true",
    "DomainNames": "t.example.com,t2.example.com",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8091-a2b3c4d5e6f7",
    "HostedZoneId": "Z0123456789ABCDEFGHIJ",
    "WafRateLimit": "2000",
    "AlarmEmail": "ops@example.com",
}
# The same with the cheaper front door: CloudFront in front of the track function's URL.
FUNCTION_URL_ON = {**CLOUDFRONT_ON, "FrontDoor": "function-url"}


# Parameters that switch the optional hit feed on: EventBridge events and the analytics export.
FEED_ON = {"EnableHitEvents": "true", "EnableAnalytics": "true"}


def run_tool(package: str, command: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``command`` of ``package`` in its own uv tool environment (never the app's)."""
    uv = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run(
        [uv, "tool", "run", "--from", package, command, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def sam(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_tool(f"aws-sam-cli=={SAM_VERSION}", "sam", *args, cwd=cwd)


def checkov(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # --skip-download: no call to Prisma Cloud for guidelines (no network in CI).
    return run_tool(f"checkov=={CHECKOV_VERSION}", "checkov", "--skip-download", *args, cwd=cwd)


def properties(template: Template, name: str) -> dict[str, Any]:
    """The Properties of resource ``name``."""
    props: dict[str, Any] = template.resources[name]["Properties"]
    return props


def grants(template: Template, function: str) -> set[tuple[str, str]]:
    """Every (action, resource) the policies of ``function`` allow."""
    policies = properties(template, function)["Policies"]
    # A conditional policy (!If [CONDITION, POLICY, !Ref AWS::NoValue]) grants its policy.
    policies = [policy["Fn::If"][1] if "Fn::If" in policy else policy for policy in policies]
    granted = set()
    for statement in (statement for policy in policies for statement in policy["Statement"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        granted |= {(action, str(resource)) for action in actions for resource in resources}
    return granted


def arn(name: str) -> str:
    """``!GetAtt NAME.Arn`` as the template's resources hold it (as a string)."""
    return str({"Fn::GetAtt": [name, "Arn"]})
