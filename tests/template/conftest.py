"""Fixtures of the template tests: template.yaml, and the template with every optional edge feature
switched on (CloudFront, custom domains, DNS records, WAF, alarm e-mail) and the hit feed (events,
analytics)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from template_tools import CLOUDFRONT_ON, FEED_ON, ROOT
from webbugger_cli.template import Template, load_template

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def template() -> Template:
    """template.yaml, loaded once per test module."""
    return load_template(ROOT)


@pytest.fixture(scope="session")
def cloudfront_on() -> dict[str, str]:
    """Parameter overrides that switch every edge condition on, and the hit feed."""
    return {**CLOUDFRONT_ON, **FEED_ON}


@pytest.fixture(scope="session")
def cloudfront_on_template(tmp_path_factory: pytest.TempPathFactory, cloudfront_on: dict[str, str]) -> Path:
    """template.yaml as JSON with the defaults of :data:`CLOUDFRONT_ON`: what cfn-lint and checkov
    see when a stack is deployed with those parameters (neither tool takes parameter values)."""
    template = Template(ROOT / "template.yaml")
    for name, value in cloudfront_on.items():
        template.data["Parameters"][name]["Default"] = value
    path = tmp_path_factory.mktemp("cloudfront-on") / "template.json"
    path.write_text(json.dumps(template.data, indent=1))
    return path
