"""``make deploy``: what it would run (it cannot run here: no AWS account), read with ``make -n``.

Build, validate and deploy with samconfig.toml's environment, then ``webbugger doctor`` on the
stack that environment names: checked for every environment samconfig.toml has.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
MAKE = shutil.which("make")


def _dry_run(*args: str) -> list[str]:
    assert MAKE is not None
    done = subprocess.run(
        [MAKE, "-n", "deploy", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return [line for line in done.stdout.splitlines() if " sam " in line or " webbugger " in line]


@pytest.mark.skipif(MAKE is None, reason="no make")
@pytest.mark.parametrize("environment", sorted(SAMCONFIG.keys() - {"version"}))
def test_deploy_builds_validates_deploys_then_checks_the_environments_stack(environment: str) -> None:
    lines = _dry_run(f"ENV={environment}")
    assert [re.search(r" sam (\w+)", line)[1] for line in lines[:3]] == ["build", "validate", "deploy"]  # type: ignore[index]
    assert all(f"--config-env {environment}" in line for line in lines[:3])
    assert "--lint" in lines[1]
    assert "--guided" not in lines[2]
    doctor = lines[3]
    assert doctor.rstrip().endswith(" doctor")
    # The stack options are computed by a command in $( ... ): run it as the shell would.
    command = re.search(r"\$\((.*)\) doctor", doctor)
    assert command is not None
    printed = subprocess.run(
        ["bash", "-c", command[1]], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    parameters = {
        **SAMCONFIG[environment].get("global", {}).get("parameters", {}),
        **SAMCONFIG[environment].get("deploy", {}).get("parameters", {}),
    }
    assert printed[:2] == ["--stack", parameters["stack_name"]]


@pytest.mark.skipif(MAKE is None, reason="no make")
def test_guided_deploy_asks_the_questions() -> None:
    assert "--guided" in _dry_run("GUIDED=1")[2]


def test_every_environment_deploys_without_questions() -> None:
    for environment in SAMCONFIG.keys() - {"version"}:
        deploy = SAMCONFIG[environment]["deploy"]["parameters"]
        assert "CAPABILITY_IAM" in deploy["capabilities"]
        assert deploy["resolve_s3"] is True  # no bucket to name
        assert deploy["fail_on_empty_changeset"] is False  # make deploy twice is not an error
        assert SAMCONFIG[environment]["global"]["parameters"]["stack_name"].startswith("webbugger")
    assert "EnableCloudFront=true" in SAMCONFIG["prod"]["deploy"]["parameters"]["parameter_overrides"]
