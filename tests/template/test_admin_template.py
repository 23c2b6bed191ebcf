"""template.yaml's admin API: IAM (SigV4) on every route, least-privilege policies, and the short
link route on the public tracking API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from template_tools import ROOT

if TYPE_CHECKING:
    from webbugger_cli.template import Template

pytestmark = pytest.mark.template

ADMIN_ROUTES = {
    ("POST", "/links"),
    ("GET", "/links"),
    ("GET", "/links/{id}"),
    ("PATCH", "/links/{id}"),
    ("POST", "/links/{id}/disable"),
    ("GET", "/links/{id}/qr"),
    ("GET", "/links/{id}/variants"),
    ("POST", "/mint"),
    ("POST", "/mint/batch"),
    ("POST", "/rewrite"),
    ("POST", "/rewrite/batch"),
    ("POST", "/sends"),
    ("POST", "/erase"),
    ("POST", "/recount"),
    ("GET", "/beacons"),
    ("GET", "/stats"),
    ("GET", "/stats/campaign"),
    ("GET", "/export"),
    ("GET", "/openapi.json"),
}


def _events(template: Template, function: str) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = template.resources[function]["Properties"]["Events"]
    return events


def _api_routes(template: Template, api: str) -> list[tuple[str, dict[str, Any]]]:
    """(function, event properties) of every HttpApi event of ``api``, across all functions."""
    found = []
    for name, resource in template.resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            props = event.get("Properties", {})
            if event.get("Type") == "HttpApi" and props.get("ApiId") == {"Ref": api}:
                found.append((name, props))
    return found


def test_the_admin_api_requires_iam_by_default(template: Template) -> None:
    api = template.resources["AdminApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    auth = api["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    assert auth["EnableIamAuthorizer"] is True


def test_every_admin_route_is_the_admin_functions_and_none_drops_iam(template: Template) -> None:
    routes = _api_routes(template, "AdminApi")
    assert {(props["Method"], props["Path"]) for _, props in routes} == ADMIN_ROUTES
    for function, props in routes:
        assert function == "AdminFunction"
        authorizer = (props.get("Auth") or {}).get("Authorizer", "AWS_IAM")
        assert authorizer == "AWS_IAM", props
    # ...and the admin function answers nothing else: no route on the public API.
    events = _events(template, "AdminFunction")
    assert all(event["Properties"]["ApiId"] == {"Ref": "AdminApi"} for event in events.values())


def test_the_tracking_api_stays_public_and_has_short_links(template: Template) -> None:
    assert "Auth" not in (template.resources["HttpApi"].get("Properties") or {})
    routes = {(props["Method"], props["Path"]) for _, props in _api_routes(template, "HttpApi")}
    assert {("GET", "/l/{id}"), ("HEAD", "/l/{id}")} <= routes
    events = _events(template, "TrackFunction")
    assert events["ShortLinkGet"]["Properties"] == {
        "ApiId": {"Ref": "HttpApi"},
        "Method": "GET",
        "Path": "/l/{id}",
    }
    assert events["ShortLinkHead"]["Properties"]["Method"] == "HEAD"


def _statements(template: Template, function: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template.resources[function]["Properties"]["Policies"]:
        assert set(policy) == {"Statement"}, "only inline statements (no managed or SAM policy templates)"
        statements += policy["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_admin_function_policies_are_exactly_the_listed_ones(template: Template) -> None:
    granted = set()
    for statement in _statements(template, "AdminFunction"):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                granted.add((action, str(resource)))

    def table(name: str) -> str:
        return str({"Fn::GetAtt": [name, "Arn"]})

    expected = {
        ("dynamodb:GetItem", table("LinksTable")),
        ("dynamodb:PutItem", table("LinksTable")),
        ("dynamodb:UpdateItem", table("LinksTable")),
        ("dynamodb:Scan", table("LinksTable")),
        ("dynamodb:Query", table("BeaconsTable")),
        ("dynamodb:Query", table("CountersTable")),
        # The labels entities' day items keep for the beacons read.
        ("dynamodb:BatchGetItem", table("CountersTable")),
        # Sends: each mark's conditional put and the campaign's total, in one transaction.
        ("dynamodb:PutItem", table("CountersTable")),
        ("dynamodb:UpdateItem", table("CountersTable")),
        ("dynamodb:BatchGetItem", table("BeaconsTable")),
        ("dynamodb:BatchWriteItem", table("BeaconsTable")),
        ("dynamodb:BatchWriteItem", table("CountersTable")),
        ("dynamodb:GetItem", table("IpEntitiesTable")),
        ("dynamodb:DeleteItem", table("IpEntitiesTable")),
        ("dynamodb:GetItem", table("CampaignsTable")),
        ("secretsmanager:GetSecretValue", str({"Ref": "SigningSecret"})),
        # The tombstones of erasures are keyed with it; POST /recount counts visitors with it.
        ("secretsmanager:GetSecretValue", str({"Ref": "VisitorSaltSecret"})),
        # POST /recount: the stream's work (labels, claims, counts, ledgers, person-days), a
        # beacon of an erased entity deleted, a day item written for one meanwhile taken back
        # (no built-in entity has a deferred hook: no entity record written).
        ("dynamodb:GetItem", table("BeaconsTable")),
        ("dynamodb:UpdateItem", table("BeaconsTable")),
        ("dynamodb:DeleteItem", table("BeaconsTable")),
        ("dynamodb:GetItem", table("CountersTable")),
        ("dynamodb:PutItem", table("CountersTable")),
        ("dynamodb:UpdateItem", table("CountersTable")),
        ("dynamodb:DeleteItem", table("CountersTable")),
    }
    assert granted == expected


def test_admin_function_build_and_environment(template: Template) -> None:
    function = template.resources["AdminFunction"]
    props = function["Properties"]
    assert props["CodeUri"] == "functions/admin/"
    assert props["Handler"] == "app.lambda_handler"
    assert props["Layers"] == [{"Ref": "CoreLayer"}, {"Ref": "PluginsLayer"}]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": "AdminFunctionLogGroup"}}
    assert template.resources["AdminFunctionLogGroup"]["Type"] == "AWS::Logs::LogGroup"
    env = props["Environment"]["Variables"]
    assert env["COUNTERS_TABLE"] == {"Ref": "CountersTable"}
    assert env["SIGNING_SECRET_ARN"] == {"Ref": "SigningSecret"}
    assert env["ALLOWED_REDIRECT_HOSTS"] == {"Ref": "AllowedRedirectHosts"}
    outputs = template.data["Outputs"]
    # Minted URLs use the tracking domain: custom domain, else CloudFront's, else the API's.
    assert env["TRACKING_BASE_URL"] == outputs["TrackingUrl"]["Value"]
    assert outputs["AdminApiUrl"]["Value"] == {
        "Fn::Sub": "https://${AdminApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }


def test_the_admin_makefile_ships_pydantic_pinned_as_in_uv_lock() -> None:
    makefile = (ROOT / "functions/admin/Makefile").read_text()
    assert "build-AdminFunction:" in makefile
    assert "--python-platform" in makefile
    assert "--only-binary :all:" in makefile
    pins = dict(
        line.split("==")
        for line in (ROOT / "functions/admin/requirements.txt").read_text().splitlines()
        if "==" in line
    )
    lock = (ROOT / "uv.lock").read_text()
    for name, version in pins.items():
        assert f'name = "{name}"\nversion = "{version}"' in lock, f"{name}=={version} is not uv.lock's"
    assert "pydantic" in pins
    assert "pydantic-core" in pins


def test_the_admin_build_holds_what_its_handler_imports(tmp_path: Path) -> None:
    """The Makefile's artifact, on its own as Lambda's task root, imports its handler (the routers'
    package beside app.py), which serves exactly the template's admin routes."""
    # UV=true: skip the cross-install of pydantic (the test's own environment has it).
    target = ["build-AdminFunction", f"ARTIFACTS_DIR={tmp_path}", "UV=true"]
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "functions/admin"), *target],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    source = sorted(path.name for path in (ROOT / "functions/admin/admin_api").glob("*.py"))
    assert sorted(path.name for path in (tmp_path / "admin_api").iterdir()) == source
    probe = (
        "import json, re, app, admin_api\n"
        "routes = app.app._static_routes + app.app._dynamic_routes\n"
        "print(json.dumps({'package': admin_api.__file__, 'routes': sorted("
        "[route.method, re.sub('<[^>]+>', '{id}', route.path)] for route in routes)}))\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert Path(found["package"]).parent == tmp_path / "admin_api"
    assert {tuple(route) for route in found["routes"]} == ADMIN_ROUTES
