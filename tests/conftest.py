"""Fixtures shared by the unit and integration tests: signing key rings, and clean global state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from webbugger.observability import metrics
from webbugger.tokens import KeyRing

if TYPE_CHECKING:
    from collections.abc import Iterator

# Keys are at least 32 characters; the deployed secret holds 48 (see template.yaml).
KEY_K1 = "k1-secret-" + "a" * 38
KEY_K0 = "k0-secret-" + "b" * 38


@pytest.fixture
def ring_json() -> str:
    """A one-key ring in the form the Secrets Manager secret holds."""
    return json.dumps({"current": "k1", "k1": KEY_K1})


@pytest.fixture
def ring(ring_json: str) -> KeyRing:
    """The key ring of :func:`ring_json`."""
    return KeyRing.from_json(ring_json)


@pytest.fixture(autouse=True)
def _clear_metrics() -> Iterator[None]:
    """Powertools Metrics accumulate in a module-level object: start and end every test empty."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
