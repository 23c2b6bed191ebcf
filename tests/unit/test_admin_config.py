"""The admin function's binding of the models: it follows the process's settings, endpoint
included (the local stack runs every function in one process; tests run several stacks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pynamodb.models import Model
from webbugger import runtime
from webbugger.models import Beacon
from webbugger_cli.template import load_template

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
_BINDING = (
    "table_name",
    "region",
    "host",
    "connect_timeout_seconds",
    "read_timeout_seconds",
    "max_retry_attempts",
)


def _models() -> list[type[Model]]:
    found, pending = [], list(Model.__subclasses__())
    while pending:
        model = pending.pop()
        found.append(model)
        pending += model.__subclasses__()
    return found


@pytest.fixture
def bindings_kept() -> Iterator[None]:
    """The models' bindings as they were before the test (other tests' moto or stacks)."""
    saved = {model: {name: getattr(model.Meta, name, None) for name in _BINDING} for model in _models()}
    yield
    runtime.reset()
    for model, binding in saved.items():
        for name, value in binding.items():
            setattr(model.Meta, name, value)
        model._connection = None


@pytest.mark.usefixtures("bindings_kept")
def test_the_admin_rebinds_the_models_when_the_endpoint_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    template = load_template(ROOT)
    env = template.function_environment("AdminFunction", {table: table for table in template.tables()})
    for name, value in {**env, "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(ROOT / "functions" / "admin"))
    from admin_api import config

    monkeypatch.setenv("DYNAMODB_ENDPOINT", "http://127.0.0.1:1111")
    runtime.reset()
    assert config.settings().dynamodb_endpoint == "http://127.0.0.1:1111"
    assert Beacon.Meta.host == "http://127.0.0.1:1111"
    # Another stack's DynamoDB Local, the same table names and the admin's own timeouts.
    monkeypatch.setenv("DYNAMODB_ENDPOINT", "http://127.0.0.1:2222")
    runtime.reset()
    config.settings()
    assert Beacon.Meta.host == "http://127.0.0.1:2222"
