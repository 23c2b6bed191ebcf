"""``webbugger cost``: the template's settings, the dated prices and the per-hit figures, combined."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from webbugger_cli.commands import cost, cost_estimate, cost_inputs
from webbugger_cli.main import main
from webbugger_cli.template import Template, TemplateError

if TYPE_CHECKING:
    from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SERVICES_IN_BRIEF = ("CloudFront", "API Gateway", "Lambda", "DynamoDB", "CloudWatch Logs")


def _loader() -> Any:
    from webbugger_cli.template import _CfnLoader

    return _CfnLoader


def test_settings_come_from_template_yaml() -> None:
    settings = cost_inputs.stack_settings()
    data = yaml.load((ROOT / "template.yaml").read_text(), Loader=_loader())  # noqa: S506
    globals_ = data["Globals"]["Function"]
    track = data["Resources"]["TrackFunction"]["Properties"]
    assert settings.track.memory_mb == track.get("MemorySize", globals_["MemorySize"])
    assert settings.track.architecture == track.get("Architectures", globals_["Architectures"])[0]
    assert settings.log_retention_days == int(data["Parameters"]["LogRetentionDays"]["Default"])
    assert settings.batch_size >= 1


def test_track_duration_cost_follows_memory_and_architecture() -> None:
    settings = cost_inputs.stack_settings()

    def track_duration(memory_mb: int, architecture: str) -> float:
        changed = dataclasses.replace(settings, track=cost_inputs.FunctionSettings(memory_mb, architecture))
        found = cost_estimate.estimate(1_000_000, "pixel", changed)
        return next(
            line.dollars for line in found.lines if line.what.startswith("track: ") and "ms" in line.what
        )

    base = track_duration(256, "arm64")
    assert track_duration(512, "arm64") == pytest.approx(2 * base)
    prices = cost_inputs.load_prices()
    ratio = cost_inputs.unit_price(prices, "lambda_x86_64_gb_second") / cost_inputs.unit_price(
        prices, "lambda_arm64_gb_second"
    )
    assert track_duration(256, "x86_64") == pytest.approx(ratio * base)


def test_a_function_without_its_own_memory_size_takes_the_globals(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Globals:\n  Function:\n    MemorySize: 1024\n    Architectures: [arm64]\n"
        "Resources:\n  TrackFunction:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {MemorySize: 128}\n"
        "  StreamFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n"
        "        New: {Type: DynamoDB, Properties: {BatchSize: 10, MaximumBatchingWindowInSeconds: 5}}\n"
        "  TrackFunctionLogGroup:\n    Type: AWS::Logs::LogGroup\n    Properties: {RetentionInDays: 14}\n"
    )
    settings = cost_inputs.stack_settings(Template(path))
    assert settings.track == cost_inputs.FunctionSettings(128, "arm64")
    assert settings.stream == cost_inputs.FunctionSettings(1024, "arm64")
    assert (settings.batch_size, settings.batching_window_s) == (10, 5.0)
    assert settings.log_retention_days == 14


def test_per_million_figures_are_the_prices_times_the_units() -> None:
    prices, figures = cost_inputs.load_prices(), cost_inputs.load_hit_figures()
    settings = cost_inputs.stack_settings()
    for profile, units in figures["profiles"].items():
        found = cost_estimate.estimate(3_000_000, profile, settings, cloudfront=True)
        services = found.by_service()
        assert found.per_million(services["CloudFront"]) == pytest.approx(
            1e6 * cost_inputs.unit_price(prices, "cloudfront_https_request")
        )
        assert found.per_million(services["API Gateway"]) == pytest.approx(
            1e6 * cost_inputs.unit_price(prices, "http_api_request")
        )
        # A batch's own units are shared by the beacons of a batch (as full as the traffic allows).
        rate = 3_000_000 / cost_estimate.SECONDS_PER_MONTH
        batch = min(max(rate * settings.batching_window_s, 1), settings.batch_size)
        wru = units["track_wru"]["value"] + units["stream_wru"]["value"]
        wru += units["stream_wru_per_batch"]["value"] / batch
        rru = units["track_rru"]["value"] + units["stream_rru"]["value"]
        rru += units["stream_rru_per_batch"]["value"] / batch
        dynamodb = 1e6 * (
            wru * cost_inputs.unit_price(prices, "dynamodb_on_demand_wru")
            + rru * cost_inputs.unit_price(prices, "dynamodb_on_demand_rru")
        )
        assert found.per_million(services["DynamoDB"]) == pytest.approx(dynamodb)
        assert found.total == pytest.approx(sum(services.values()))


def test_without_cloudfront_there_is_no_cloudfront_line() -> None:
    found = cost_estimate.estimate(1_000_000, "pixel", cost_inputs.stack_settings(), cloudfront=False)
    assert found.by_service()["CloudFront"] == 0
    with_cf = cost_estimate.estimate(1_000_000, "pixel", cost_inputs.stack_settings(), cloudfront=True)
    assert with_cf.total - found.total == pytest.approx(with_cf.by_service()["CloudFront"])


def test_stream_batches_fill_with_traffic() -> None:
    settings = cost_inputs.stack_settings()

    def stream_requests_per_million(hits: int) -> float:
        found = cost_estimate.estimate(hits, "click", settings)
        line = next(line for line in found.lines if line.what.startswith("stream: requests"))
        return found.per_million(line.dollars)

    low, high = stream_requests_per_million(10_000), stream_requests_per_million(10_000_000_000)
    assert low == pytest.approx(
        1e6 * cost_inputs.unit_price(cost_inputs.load_prices(), "lambda_request")
    )  # one a beacon
    assert high == pytest.approx(low / settings.batch_size)  # full batches


def test_a_hit_the_stream_filters_out_costs_no_stream_invocation() -> None:
    pixel = cost_estimate.estimate(1_000_000, "pixel", cost_inputs.stack_settings())
    stream = [line for line in pixel.lines if line.what.startswith("stream: ")]
    assert stream and all(line.dollars == 0 for line in stream)


def test_a_batch_shares_its_write_units_among_its_beacons() -> None:
    settings = cost_inputs.stack_settings()
    click = cost_inputs.load_hit_figures()["profiles"]["click"]

    def write_units(hits: int) -> float:
        found = cost_estimate.estimate(hits, "click", settings)
        line = next(line for line in found.lines if line.what.endswith("write units a hit"))
        return float(line.what.split()[0])

    per_beacon = click["track_wru"]["value"] + click["stream_wru"]["value"]
    assert write_units(10_000) == pytest.approx(per_beacon + click["stream_wru_per_batch"]["value"], rel=1e-2)
    full = per_beacon + click["stream_wru_per_batch"]["value"] / settings.batch_size
    assert write_units(10_000_000_000) == pytest.approx(full, rel=1e-2)


def test_every_price_is_dated_and_has_its_source() -> None:
    prices = cost_inputs.load_prices()
    assert prices["region"] == "us-east-1"
    date.fromisoformat(prices["recorded"])
    needed = {
        "cloudfront_https_request",
        "http_api_request",
        "lambda_request",
        "lambda_arm64_gb_second",
        "dynamodb_on_demand_wru",
        "dynamodb_on_demand_rru",
        "dynamodb_streams_read_request",
        "cloudwatch_logs_ingestion_gb",
        "secrets_manager_api_call",
    }
    assert needed <= set(prices["prices"])
    for name, entry in prices["prices"].items():
        assert re.match(r"https://aws\.amazon\.com/[\w/-]+/\Z", entry["source"]), name
        date.fromisoformat(entry["as_of"])
        assert entry["usd"] >= 0 and entry["per"] > 0, name


def test_every_hit_figure_says_where_it_comes_from() -> None:
    figures = cost_inputs.load_hit_figures()
    entries = [value for value in figures.values() if isinstance(value, dict) and "value" in value]
    for units in figures["profiles"].values():
        entries += [value for value in units.values() if isinstance(value, dict)]
    assert len(entries) > 10
    for entry in entries:
        assert entry["kind"] in {"measured", "counted", "derived", "estimate", "documented"}
        assert len(entry["source"]) > 20
    # The track function's write units are the benchmarked ones (docs/benchmarks.md).
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    assert figures["profiles"]["pixel"]["track_wru"]["value"] == 1
    assert "| **1 WCU**" in benchmarks
    # No index: a beacon with references is one write unit too (docs/benchmarks.md's case (c)).
    assert figures["profiles"]["click"]["track_wru"]["value"] == 1
    assert figures["profiles"]["open"]["track_wru"]["value"] == 1
    assert "| write units: redirect with target + entity + source | 1 WCU" in benchmarks


def test_docs_cost_table_is_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--hits", "1000000", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    assert table.splitlines()[0].startswith("| per million hits |")
    for service in SERVICES_IN_BRIEF:
        assert f"| {service} |" in table
    cost_page = (ROOT / "docs" / "cost.md").read_text()
    assert table in cost_page, "docs/cost.md's table is out of date: rerun the command"
    assert main(["cost", "--hits", "1000000", "--front-door", "function-url", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() in cost_page, "docs/cost.md's function-URL table is out of date"


def test_the_function_url_front_door_bills_no_api_gateway_request() -> None:
    settings = cost_inputs.stack_settings()
    assert settings.has_function_url
    api = cost_estimate.estimate(1_000_000, "pixel", settings, front_door="http-api")
    url = cost_estimate.estimate(1_000_000, "pixel", settings, front_door="function-url")
    assert url.by_service()["API Gateway"] == 0
    assert api.total - url.total == pytest.approx(
        1e6 * cost_inputs.unit_price(cost_inputs.load_prices(), "http_api_request")
    )
    with pytest.raises(ValueError, match="function-url behind CloudFront"):
        cost_estimate.estimate(1_000_000, "pixel", settings, cloudfront=False, front_door="function-url")


def test_platform_log_lines_count_only_where_the_template_keeps_them() -> None:
    settings = cost_inputs.stack_settings()
    # The template turns them off for the track and stream functions (SystemLogLevel WARN).
    assert (settings.track.platform_logs, settings.stream.platform_logs) == (False, False)
    chatty = dataclasses.replace(settings, track=dataclasses.replace(settings.track, platform_logs=True))

    def logs(found: cost_estimate.Estimate) -> float:
        return found.by_service()["CloudWatch Logs"]

    figures = cost_inputs.load_hit_figures()
    extra_bytes = (
        figures["platform_log_bytes_per_invocation"]["value"]
        + 3 * figures["log_event_overhead_bytes"]["value"]
    )
    ingestion = cost_inputs.unit_price(cost_inputs.load_prices(), "cloudwatch_logs_ingestion_gb")
    added = logs(cost_estimate.estimate(1_000_000, "pixel", chatty)) - logs(
        cost_estimate.estimate(1_000_000, "pixel", settings)
    )
    assert added > 1e6 * extra_bytes / cost_estimate.GB * ingestion  # ingestion, plus storage


@pytest.mark.parametrize("text", ["2000000", "2,000,000", "2_000_000", "2e6", "2.0E6"])
def test_hits_are_written_as_people_write_them(text: str) -> None:
    assert cost._hits(text) == 2_000_000


def test_secret_reads_are_at_most_one_an_invocation() -> None:
    few = cost_estimate.estimate(15, "pixel", cost_inputs.stack_settings())
    secrets = few.by_service()["Secrets Manager"]
    assert secrets <= 30 * cost_inputs.unit_price(cost_inputs.load_prices(), "secrets_manager_api_call")


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--hits", "2e6", "--profile", "pixel", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hits"] == 2_000_000
    assert set(data["profiles"]) == {"pixel"}
    pixel = data["profiles"]["pixel"]
    assert pixel["per_million"] == pytest.approx(pixel["total"] / 2, rel=1e-4)
    assert set(pixel["by_service"]) == set(cost_estimate.SERVICES)
    assert data["settings"]["track"]["architecture"] == cost_inputs.stack_settings().track.architecture


def test_measured_durations_replace_the_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--hits", "1000000", "--profile", "pixel", "--json", "--track-ms", "50"]) == 0
    slow = json.loads(capsys.readouterr().out)["profiles"]["pixel"]["by_service"]["Lambda"]
    assert main(["cost", "--hits", "1000000", "--profile", "pixel", "--json", "--track-ms", "5"]) == 0
    fast = json.loads(capsys.readouterr().out)["profiles"]["pixel"]["by_service"]["Lambda"]
    assert slow > fast


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--hits", "0"], 1, "webbugger: error: --hits must be between 1 and 10,000,000,000,000"),
        (["--hits", "lots"], 2, "webbugger cost: error: argument --hits: not a number of hits: 'lots'"),
        (["--hits", "inf"], 2, "webbugger cost: error: argument --hits: not a number of hits: 'inf'"),
        (["--hits", "1,5"], 2, "webbugger cost: error: argument --hits: not a number of hits: '1,5'"),
        (["--hits", "-5"], 2, "webbugger cost: error: argument --hits: not a number of hits: '-5'"),
        (["--hits", "1e20"], 1, "webbugger: error: --hits must be between 1 and"),
        (
            ["--hits", "5", "--track-ms", "-1"],
            2,
            "webbugger cost: error: argument --track-ms: must be above 0",
        ),
        (
            ["--hits", "5", "--front-door", "function-url", "--no-cloudfront"],
            1,
            "webbugger: error: --front-door function-url is CloudFront's origin: leave out --no-cloudfront",
        ),
    ],
)
def test_bad_arguments_are_one_line(
    args: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        got = main(["cost", *args])
    except SystemExit as exc:  # argparse's refusal
        got = int(exc.code or 0)
    assert got == status
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(message)


def test_a_template_without_a_stream_event_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n  StreamFunction:\n    Type: AWS::Serverless::Function\n    Properties: {}\n"
    )
    with pytest.raises(TemplateError, match="no DynamoDB stream event"):
        cost_inputs.stack_settings(Template(path))
