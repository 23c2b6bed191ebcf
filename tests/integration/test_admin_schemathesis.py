"""The admin API against its own OpenAPI document (/openapi.json), with schemathesis: generated
requests (valid and invalid) to every operation of the local admin server never get a 5xx, and
every answer conforms to the document (status code, content type, headers, body schema).

Bounded: at most 25 examples per operation and generation mode, so the whole file takes well under a
minute. (Each operation is driven through ``APIOperation.as_strategy`` with Hypothesis directly:
schemathesis' lazy pytest loader, ``schemathesis.pytest.from_fixture``, fails on pytest 9.)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.request import urlopen

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

if TYPE_CHECKING:
    from conftest import RunningStack
    from schemathesis import Case

pytestmark = pytest.mark.ddblocal

MAX_EXAMPLES = 25
# A valid listing of all beacons reads 8 partitions a day over up to the retention period (a
# second or more each): fewer examples there keep the file under a minute.
FEWER_EXAMPLES = {("GET", "/beacons"): 8, ("GET", "/export"): 8}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    ("POST", "/links"),
    ("GET", "/links"),
    ("GET", "/links/{link_id}"),
    ("PATCH", "/links/{link_id}"),
    ("POST", "/links/{link_id}/disable"),
    ("GET", "/links/{link_id}/qr"),
    ("GET", "/links/{link_id}/variants"),
    ("POST", "/mint"),
    ("POST", "/mint/batch"),
    ("POST", "/rewrite"),
    ("POST", "/rewrite/batch"),
    ("POST", "/sends"),
    ("GET", "/beacons"),
    ("GET", "/stats"),
    ("GET", "/stats/campaign"),
    ("GET", "/export"),
    ("POST", "/erase"),
    ("POST", "/recount"),
]


def test_the_document_lists_every_operation(local_stack: RunningStack) -> None:
    with urlopen(f"{local_stack.admin_url}/openapi.json", timeout=10) as answer:
        document = json.load(answer)
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert listed == set(OPERATIONS)
    for item in document["paths"].values():
        for operation in item.values():
            assert "422" not in operation["responses"]  # bad input is a 400 here


# An operation whose only input is an unconstrained path parameter has no invalid input to send.
UNCONSTRAINED = {("GET", "/links/{link_id}"), ("POST", "/links/{link_id}/disable")}
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or (method, path) not in UNCONSTRAINED
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=lambda value: str(value))
def test_the_admin_api_keeps_to_its_openapi_document(
    local_stack: RunningStack, method: str, path: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{local_stack.admin_url}/openapi.json")
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=FEWER_EXAMPLES.get((method, path), MAX_EXAMPLES)
        if mode is GenerationMode.POSITIVE
        else MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def check(case: Case) -> None:
        case.call_and_validate(base_url=local_stack.admin_url, checks=CHECKS, timeout=30)

    check()
