"""template.yaml's edge and operations: CloudFront (switched on by parameters), throttling, the
origin secret, checkov, log retention, alarms and the dashboard.

A real deploy cannot run here, so the settings of the edge are checked with the tools that read
templates: cfn-lint (``sam validate --lint``) on the template as it is (no CloudFront, the HTTP API)
and with every edge parameter on in front of the function URL (FrontDoor=function-url); checkov on
those two and on every edge parameter on in front of the HTTP API. ``sam build`` runs with the "on"
overrides in test_template.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from template_tools import ROOT, checkov, properties, sam
from webbugger.modes import Mode
from webbugger.request import ORIGIN_SECRET_HEADER
from webbugger_cli.template import FRONT_DOORS

if TYPE_CHECKING:
    from webbugger_cli.template import Template

pytestmark = pytest.mark.template

# The managed cache policy "CachingDisabled" (the same id in every account).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
# What the track function reads from a request, and nothing else (no cookies, no Host).
FORWARDED_HEADERS = {
    "CloudFront-Viewer-Address",
    "CloudFront-Viewer-Country",
    "User-Agent",
    "Referer",
    "Accept-Language",
    "Sec-GPC",
    "DNT",
    "Purpose",
    "Sec-Purpose",
    "Sec-Fetch-Mode",
}
# The origin's host: the function URL's (https://HOST/), else the HTTP API's.
FUNCTION_URL_HOST = {
    "Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": ["TrackFunctionUrl", "FunctionUrl"]}]}]
}
HTTP_API_HOST = {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
DISTRIBUTION_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${TrackingDistribution}"
}
EDGE_RESOURCES = {
    "TrackFunctionUrl": "FunctionUrlOn",
    "TrackFunctionUrlAccessControl": "FunctionUrlOn",
    "TrackFunctionUrlPermission": "FunctionUrlOn",
    "TrackFunctionUrlInvokePermission": "FunctionUrlOn",
    "OriginSecret": "CloudFrontOn",
    "TrackingOriginRequestPolicy": "CloudFrontOn",
    "TrackingDistribution": "CloudFrontOn",
    "TrackingWebAcl": "WafOn",
    "TrackingDomainRecords": "DnsRecordsOn",
}
# The AWS metrics the alarms and the dashboard may use, with the dimension each is read by.
AWS_METRICS = {
    "AWS/ApiGateway": ({"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}, "ApiId"),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}, "QueueName"),
    "AWS/Lambda": (
        {"Invocations", "Errors", "Throttles", "ConcurrentExecutions", "Duration"},
        "FunctionName",
    ),
}


def _of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template.resources.items() if res.get("Type") == kind}


# --- Both ways through the tools -------------------------------------------------------------


def test_sam_validate_lint_passes_with_cloudfront_on_in_front_of_the_function_url(
    function_url_template: Path,
) -> None:
    # The default (no CloudFront, the HTTP API) is test_template.py's test_sam_validate_lint_passes.
    # cfn-lint follows every branch of the conditions whatever the defaults: these two runs cover
    # CloudFront in front of the HTTP API too (a third run would cost 25 s).
    result = sam("validate", "--lint", "--template-file", str(function_url_template))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def _declared_skips(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    skips = {}
    for name, resource in data["Resources"].items():
        for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            skips[(name, skip["id"])] = skip.get("comment", "")
    return skips


def test_checkov_reports_no_unsuppressed_failure_with_either_front_door(
    template: Template, cloudfront_on_template: Path, function_url_template: Path
) -> None:
    files = (template.path, cloudfront_on_template, function_url_template)
    paths = [arg for path in files for arg in ("-f", str(path))]
    result = checkov("--framework", "cloudformation", "--output", "json", *paths)
    report = json.loads(result.stdout)
    results = report["results"]
    failed = [
        (c["file_path"], c["resource"], c["check_id"], c["check_name"]) for c in results["failed_checks"]
    ]
    assert not failed, failed
    assert report["summary"]["parsing_errors"] == 0
    assert result.returncode == 0, result.stderr
    # Each file was checked (checkov reports per file), with the distribution and the function URL.
    checked = {Path(c["file_path"]).name for c in results["passed_checks"] + results["skipped_checks"]}
    assert checked == {path.name for path in files}
    passed = {c["resource"].rsplit(".", 1)[1] for c in results["passed_checks"]}
    assert {"TrackingDistribution", "TrackFunctionUrl", "TrackFunctionUrlPermission"} <= passed
    # Every suppression is in the template with a one-line reason, and none is stale: each one
    # silences a check that would fail.
    declared = _declared_skips(template.data)
    for (name, check), comment in declared.items():
        assert comment.strip() and "\n" not in comment, (name, check)
    used = {(c["resource"].rsplit(".", 1)[1], c["check_id"]) for c in results["skipped_checks"]}
    assert used == set(declared)


# --- CloudFront ------------------------------------------------------------------------------


def test_edge_resources_exist_only_when_switched_on(template: Template) -> None:
    for name, condition in EDGE_RESOURCES.items():
        assert template.resources[name]["Condition"] == condition, name
    conditions = template.data["Conditions"]
    assert conditions["CloudFrontOn"] == {"Fn::Equals": [{"Ref": "EnableCloudFront"}, "true"]}
    assert template.parameter_default("EnableCloudFront") == "false"
    assert template.parameter_default("WafRateLimit") == "0"
    for condition in ("HasDomainNames", "DnsRecordsOn", "WafOn", "FunctionUrlOn"):
        assert conditions[condition]["Fn::And"][0] in (
            {"Condition": "CloudFrontOn"},
            {"Condition": "HasDomainNames"},
        )


def test_origin_request_policy_forwards_exactly_what_the_function_reads(template: Template) -> None:
    config = properties(template, "TrackingOriginRequestPolicy")["OriginRequestPolicyConfig"]
    assert config["HeadersConfig"]["HeaderBehavior"] == "whitelist"
    assert set(config["HeadersConfig"]["Headers"]) == FORWARDED_HEADERS
    assert len(config["HeadersConfig"]["Headers"]) == len(FORWARDED_HEADERS)
    assert config["CookiesConfig"] == {"CookieBehavior": "none"}
    assert config["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    # Each forwarded header is one the core library reads (by its lower-case name).
    source = "".join(path.read_text() for path in (ROOT / "layers/core/webbugger").glob("*.py"))
    for header in FORWARDED_HEADERS:
        assert f'"{header.lower()}"' in source, f"{header} is forwarded but never read"


def test_distribution_disables_caching_and_redirects_to_https(template: Template) -> None:
    config = properties(template, "TrackingDistribution")["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == CACHING_DISABLED
    assert behavior["OriginRequestPolicyId"] == {"Ref": "TrackingOriginRequestPolicy"}
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert set(behavior["AllowedMethods"]) == {"GET", "HEAD"}
    assert "CacheBehaviors" not in config  # one behaviour: every path is a tracking route
    assert config["HttpVersion"] == "http2and3"
    assert config["IPV6Enabled"] is True
    [origin] = config["Origins"]
    assert origin["Id"] == behavior["TargetOriginId"]
    assert origin["DomainName"] == {"Fn::If": ["FunctionUrlOn", FUNCTION_URL_HOST, HTTP_API_HOST]}
    assert origin["CustomOriginConfig"] == {
        "OriginProtocolPolicy": "https-only",
        "OriginSSLProtocols": ["TLSv1.2"],
    }


def test_custom_domains_use_the_certificate_with_tls_1_2(template: Template) -> None:
    config = properties(template, "TrackingDistribution")["DistributionConfig"]
    condition, custom, default = config["ViewerCertificate"]["Fn::If"]
    assert condition == "HasDomainNames"
    assert custom == {
        "AcmCertificateArn": {"Ref": "CertificateArn"},
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    assert default == {"CloudFrontDefaultCertificate": True}
    assert config["Aliases"]["Fn::If"][0] == "HasDomainNames"
    assert config["WebACLId"] == {
        "Fn::If": ["WafOn", {"Fn::GetAtt": ["TrackingWebAcl", "Arn"]}, {"Ref": "AWS::NoValue"}]
    }
    records = properties(template, "TrackingDomainRecords")["RecordSets"]
    assert {record["Type"] for record in records} == {"A", "AAAA"}
    for record in records:
        assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["TrackingDistribution", "DomainName"]}
    # Parameter combinations that cannot deploy are refused by rules, before anything is created.
    rules = template.data["Rules"]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]} in [
        assertion["Assert"] for assertion in rules["DomainNamesNeedCloudFrontAndCertificate"]["Assertions"]
    ]


def test_waf_rate_rule_blocks_one_address_over_the_limit(template: Template) -> None:
    acl = properties(template, "TrackingWebAcl")
    assert acl["Scope"] == "CLOUDFRONT"
    assert acl["DefaultAction"] == {"Allow": {}}
    [rule] = acl["Rules"]
    assert rule["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafRateLimit"}
    assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429


def test_cloudfront_sends_the_origin_secret_the_track_function_checks(template: Template) -> None:
    config = properties(template, "TrackingDistribution")["DistributionConfig"]
    [origin] = config["Origins"]
    assert origin["OriginCustomHeaders"] == [
        {
            "HeaderName": ORIGIN_SECRET_HEADER,
            "HeaderValue": {"Fn::Sub": "{{resolve:secretsmanager:${OriginSecret}}}"},
        }
    ]
    generated = properties(template, "OriginSecret")["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32
    assert generated["ExcludePunctuation"] is True  # a plain header value
    track = properties(template, "TrackFunction")
    assert track["Environment"]["Variables"]["ORIGIN_SECRET_ARN"] == {
        "Fn::If": ["CloudFrontOn", {"Ref": "OriginSecret"}, {"Ref": "AWS::NoValue"}]
    }
    conditional = [policy["Fn::If"] for policy in track["Policies"] if "Fn::If" in policy]
    assert conditional == [
        [
            "CloudFrontOn",
            {
                "Statement": [
                    {
                        "Sid": "ReadOriginSecret",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": {"Ref": "OriginSecret"},
                    }
                ]
            },
            {"Ref": "AWS::NoValue"},
        ]
    ]
    # No other function can read it.
    for name, function in _of_type(template, "AWS::Serverless::Function").items():
        if name != "TrackFunction":
            assert "OriginSecret" not in json.dumps(function), name


def test_tracking_url_is_the_custom_domain_else_cloudfront_else_the_api(template: Template) -> None:
    outputs = template.data["Outputs"]
    condition, custom, fallback = outputs["TrackingUrl"]["Value"]["Fn::If"]
    assert condition == "HasDomainNames"
    assert custom["Fn::Sub"][0] == "https://${Domain}"
    assert fallback["Fn::If"][0] == "CloudFrontOn"
    assert fallback["Fn::If"][1] == {"Fn::Sub": "https://${TrackingDistribution.DomainName}"}
    assert fallback["Fn::If"][2] == {"Fn::Sub": f"https://{HTTP_API_HOST['Fn::Sub']}"}
    assert outputs["DistributionDomainName"]["Condition"] == "CloudFrontOn"
    # ApiUrl is CloudFront's origin: the function URL or the HTTP API (the doctor tells them apart).
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::If": [
            "FunctionUrlOn",
            {"Fn::GetAtt": ["TrackFunctionUrl", "FunctionUrl"]},
            fallback["Fn::If"][2],
        ]
    }
    assert outputs["FrontDoor"]["Value"] == {"Fn::If": ["FunctionUrlOn", "function-url", "http-api"]}


def test_the_track_function_knows_the_custom_domains_as_its_own(template: Template) -> None:
    # A stored link to t.example.com/r/... is then followed internally (one redirect), though
    # CloudFront does not forward the Host header.
    env = template.resources["TrackFunction"]["Properties"]["Environment"]["Variables"]
    assert env["TRACKING_HOSTS"] == {"Ref": "DomainNames"}


# --- The function-URL front door -------------------------------------------------------------


def test_the_function_url_front_door_is_an_option_behind_cloudfront(template: Template) -> None:
    # The CLI's choices (webbugger local/cost --front-door) are the parameter's, the default first.
    assert tuple(template.data["Parameters"]["FrontDoor"]["AllowedValues"]) == FRONT_DOORS
    assert template.parameter_default("FrontDoor") == FRONT_DOORS[0] == "http-api"
    assert template.data["Conditions"]["FunctionUrlOn"] == {
        "Fn::And": [{"Condition": "CloudFrontOn"}, {"Fn::Equals": [{"Ref": "FrontDoor"}, "function-url"]}]
    }
    # Asking for the function URL without CloudFront is refused, not silently ignored.
    rule = template.data["Rules"]["FunctionUrlNeedsCloudFront"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "FrontDoor"}, "function-url"]}
    assert [a["Assert"] for a in rule["Assertions"]] == [
        {"Fn::Equals": [{"Ref": "EnableCloudFront"}, "true"]}
    ]


def test_only_the_distribution_can_call_the_function_url(template: Template) -> None:
    url = properties(template, "TrackFunctionUrl")
    assert url == {"TargetFunctionArn": {"Fn::GetAtt": ["TrackFunction", "Arn"]}, "AuthType": "AWS_IAM"}
    oac = properties(template, "TrackFunctionUrlAccessControl")["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "lambda",
        "always",
        "sigv4",
    )
    [origin] = properties(template, "TrackingDistribution")["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == {
        "Fn::If": [
            "FunctionUrlOn",
            {"Fn::GetAtt": ["TrackFunctionUrlAccessControl", "Id"]},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # Both grants a function URL needs, to CloudFront on behalf of this distribution only; the
    # second only through the URL. No other principal may invoke the track function.
    grants = {
        name: props
        for name, props in (
            (name, resource["Properties"])
            for name, resource in _of_type(template, "AWS::Lambda::Permission").items()
        )
        if props["FunctionName"] in ({"Ref": "TrackFunction"}, {"Fn::GetAtt": ["TrackFunction", "Arn"]})
    }
    assert {props["Action"] for props in grants.values()} == {
        "lambda:InvokeFunctionUrl",
        "lambda:InvokeFunction",
    }
    for props in grants.values():
        assert props["Principal"] == "cloudfront.amazonaws.com"
        assert props["SourceArn"] == DISTRIBUTION_ARN
        assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert grants["TrackFunctionUrlPermission"]["FunctionUrlAuthType"] == "AWS_IAM"
    assert grants["TrackFunctionUrlInvokePermission"]["InvokedViaFunctionUrl"] is True
    # Nothing reaches the function around CloudFront: the HTTP API's own endpoint is off.
    assert properties(template, "HttpApi")["DisableExecuteApiEndpoint"] == {
        "Fn::If": ["FunctionUrlOn", True, False]
    }


# --- Throttling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "rate", "burst"),
    [
        ("HttpApi", "TrackingRateLimit", "TrackingBurstLimit"),
        ("AdminApi", "AdminRateLimit", "AdminBurstLimit"),
    ],
)
def test_stage_throttling_with_parameters(template: Template, api: str, rate: str, burst: str) -> None:
    settings = properties(template, api)["DefaultRouteSettings"]
    assert settings == {"ThrottlingRateLimit": {"Ref": rate}, "ThrottlingBurstLimit": {"Ref": burst}}
    rate_default, burst_default = (
        int(template.parameter_default(rate) or 0),
        int(template.parameter_default(burst) or 0),
    )
    # Below API Gateway's account limits (10,000 per second, burst 5,000), so one API cannot starve others.
    assert 0 < rate_default < 10_000
    assert 0 < burst_default <= 5_000


# --- Logs ------------------------------------------------------------------------------------


def test_every_log_group_has_retention_and_every_function_logs_to_one(template: Template) -> None:
    groups = _of_type(template, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    for name, function in _of_type(template, "AWS::Serverless::Function").items():
        # Without an explicit group, Lambda would create /aws/lambda/NAME with no retention.
        assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups, name
    access = properties(template, "AdminApi")["AccessLogSettings"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["AdminApiAccessLogGroup", "Arn"]}
    assert "$context.requestId" in access["Format"]


def test_a_hit_logs_its_metrics_and_what_went_wrong_only(template: Template) -> None:
    # Lambda's START and REPORT lines are INFO system logs: off for the functions invoked per hit
    # (or per batch); the application level is left unset (EMF records have no level, so Lambda
    # would count them INFO and drop them at WARN). The track function's own level is WARNING:
    # spilled beacons (ERROR) and failing hooks (WARNING) are logged, invalid hits only counted.
    for name in ("TrackFunction", "StreamFunction"):
        logging = properties(template, name)["LoggingConfig"]
        assert (logging["LogFormat"], logging["SystemLogLevel"]) == ("JSON", "WARN"), name
        assert "ApplicationLogLevel" not in logging, name
    variables = properties(template, "TrackFunction")["Environment"]["Variables"]
    assert variables["POWERTOOLS_LOG_LEVEL"] == "WARNING"


def test_every_function_logs_with_its_request_id(template: Template) -> None:
    # Powertools' inject_lambda_context puts the Lambda request id on every record; the API
    # functions also set the correlation id to API Gateway's request id.
    for name, function in _of_type(template, "AWS::Serverless::Function").items():
        props = function["Properties"]
        module, handler = props["Handler"].rsplit(".", 1)
        source = (ROOT / props["CodeUri"] / f"{module}.py").read_text()
        decorator = re.search(rf"@logger\.inject_lambda_context(\(.*\))?\n(?:@.*\n)*def {handler}\(", source)
        assert decorator, f"{name}: {handler} is not decorated with logger.inject_lambda_context"
        if any(event["Type"] == "HttpApi" for event in (props.get("Events") or {}).values()):
            assert decorator.group(1) == "(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)", name


# --- Alarms and the dashboard ----------------------------------------------------------------


def _emitted_metrics() -> set[str]:
    """Names the functions emit with Powertools (EMF, namespace "webbugger")."""
    names: set[str] = set()
    for path in [*(ROOT / "layers/core/webbugger").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]:
        source = path.read_text()
        if "add_metric(" not in source:
            continue
        names |= set(re.findall(r'add_metric\(name="(\w+)"', source))
        # add_metric(name=VARIABLE): the names assigned to the variable.
        for variable in re.findall(r"add_metric\(name=(\w+)", source):
            for assigned in re.findall(rf"^ *{variable} = (.*)$", source, re.MULTILINE):
                names |= set(re.findall(r'"(\w+)"', assigned))
        if 'name=f"{mode.capitalize()}Beacons"' in source:
            names |= {f"{mode.capitalize()}Beacons" for mode in Mode}
    return names


def _check_metric(template: Template, namespace: str, name: str, dimensions: dict[str, Any]) -> None:
    if namespace == "webbugger":
        assert name in _emitted_metrics(), f"no function emits {name}"
        assert dimensions == {"service": "webbugger"}, name
        return
    allowed, dimension = AWS_METRICS[namespace]
    assert name in allowed, (namespace, name)
    assert set(dimensions) == {dimension}, (namespace, name)
    value = dimensions[dimension]
    resource = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
    assert resource in template.resources, (namespace, name, value)


def _alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    props = alarm["Properties"]
    stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
    if "MetricName" in props:
        stats.append(props)
    return [
        (m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m.get("Dimensions", [])})
        for m in stats
    ]


def test_every_alarm_watches_a_metric_that_exists_and_notifies(template: Template) -> None:
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    watched = set()
    for name, alarm in alarms.items():
        metrics = _alarm_metrics(alarm)
        assert metrics, name
        for namespace, metric, dimensions in metrics:
            _check_metric(template, namespace, metric, dimensions)
            watched.add(metric)
        # Every alarm notifies the stack's topic (AlarmEmail subscribes to it).
        actions = alarm["Properties"]["AlarmActions"]
        branches = actions["Fn::If"][1:] if isinstance(actions, dict) else [actions]
        assert all({"Ref": "AlarmTopic"} in branch for branch in branches), name
    # The issue's list: beacon write failures, spill-over queue, dead-letter queues, 5xx, p99 latency.
    assert {
        "BeaconWriteFailures",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
    } <= watched
    assert {"5xx", "Count", "Latency"} <= watched
    assert properties(template, "TrackingApiLatencyAlarm")["ExtendedStatistic"] == "p99"
    dead_letters = {
        _alarm_metrics(alarm)[0][2]["QueueName"]["Fn::GetAtt"][0]
        for alarm in alarms.values()
        if _alarm_metrics(alarm)[0][1] == "ApproximateNumberOfMessagesVisible"
    }
    assert dead_letters == {"StreamDeadLetterQueue", "SpillDeadLetterQueue"}


def _dashboard(template: Template) -> dict[str, Any]:
    body = properties(template, "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    # ${Logical.Attribute} and ${Logical} become JSON strings naming the resource, checked below.
    body = re.sub(r"\$\{([\w:]+)(?:\.\w+)?\}", r"REF:\1", body)
    dashboard: dict[str, Any] = json.loads(body)
    return dashboard


def test_dashboard_shows_existing_metrics_and_every_alarm(template: Template) -> None:
    widgets = _dashboard(template)["widgets"]
    shown = set()
    for widget in widgets:
        for line in widget["properties"].get("metrics", []):
            namespace, name, dimension, value = line[:4]
            ref = value.removeprefix("REF:")
            _check_metric(template, namespace, name, {dimension: value if ref == value else {"Ref": ref}})
            shown.add(name)
    alarms = {
        ref.removeprefix("REF:") for widget in widgets for ref in widget["properties"].get("alarms", [])
    }
    # Every alarm of every stack; one that exists only with an option (the hit feed's) notifies
    # the topic all the same (a dashboard cannot name a resource that may not exist).
    unconditional = {
        name
        for name, alarm in _of_type(template, "AWS::CloudWatch::Alarm").items()
        if "Condition" not in alarm
    }
    assert alarms == unconditional
    # Hits are the track function's invocations (a recorded hit emits no metric of its own).
    assert {"Invocations", "BeaconWriteFailures", "BeaconsSpilled"} <= shown
