"""Fixtures of the template tests: template.yaml, and the template with every optional edge feature
switched on (CloudFront, custom domains, DNS records, WAF, alarm e-mail) and the hit feed (events,
analytics), in front of the HTTP API or of the track function's URL."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from template_tools import CLOUDFRONT_ON, FEED_ON, FUNCTION_URL_ON, ROOT
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


def _with_defaults(directory: Path, overrides: dict[str, str], file_name: str) -> Path:
    """template.yaml as JSON with ``overrides`` as its parameters' defaults: what cfn-lint and
    checkov see when a stack is deployed with those parameters (neither tool takes parameter values)."""
    template = Template(ROOT / "template.yaml")
    for name, value in overrides.items():
        template.data["Parameters"][name]["Default"] = value
    path = directory / file_name
    path.write_text(json.dumps(template.data, indent=1))
    return path


@pytest.fixture(scope="session")
def cloudfront_on_template(tmp_path_factory: pytest.TempPathFactory, cloudfront_on: dict[str, str]) -> Path:
    """The template with the defaults of :data:`CLOUDFRONT_ON` (CloudFront in front of the HTTP API)."""
    return _with_defaults(tmp_path_factory.mktemp("cloudfront-on"), cloudfront_on, "template-cloudfront.json")


@pytest.fixture(scope="session")
def function_url_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with the defaults of :data:`FUNCTION_URL_ON` (CloudFront in front of the function URL)."""
    return _with_defaults(tmp_path_factory.mktemp("function-url-on"), FUNCTION_URL_ON, "template-url.json")
