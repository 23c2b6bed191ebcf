"""The template tests' tools (SAM, checkov), each in its own uv tool environment, and the
parameters that switch every optional edge feature on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAM_VERSION = "1.170.0"
CHECKOV_VERSION = "3.3.30"

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
