"""The inputs of ``webbugger cost``, each with one home: the stack's settings read from
template.yaml, what one hit costs in billed units (``data/hits.json``) and the dated prices
(``data/prices.json``, us-east-1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from webbugger_cli.template import TemplateError, load_template

if TYPE_CHECKING:
    from webbugger_cli.template import Template

DEFAULT_MEMORY_MB = 128
DEFAULT_ARCHITECTURE = "x86_64"


def _data(name: str) -> dict[str, Any]:
    text = resources.files("webbugger_cli").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_prices() -> dict[str, Any]:
    """``data/prices.json``: the dated prices with their sources."""
    return _data("prices.json")


def load_hit_figures() -> dict[str, Any]:
    """``data/hits.json``: what one hit costs in billed units, with where each figure comes from."""
    return _data("hits.json")


def unit_price(prices: dict[str, Any], name: str) -> float:
    """The price of one unit (dollars), from an entry priced ``usd`` per ``per`` units."""
    entry = prices["prices"][name]
    return float(entry["usd"]) / float(entry["per"])


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """What the bill of one function depends on."""

    memory_mb: int
    architecture: str
    # Lambda's START/END/REPORT lines: off when LoggingConfig's SystemLogLevel is WARN.
    platform_logs: bool = True


@dataclass(frozen=True, slots=True)
class StackSettings:
    """The template's settings that the cost depends on."""

    track: FunctionSettings
    stream: FunctionSettings
    batch_size: int
    batching_window_s: float
    log_retention_days: int
    has_cloudfront: bool
    has_function_url: bool = False


def _function(template: Template, name: str) -> FunctionSettings:
    if name not in template.resources:
        raise TemplateError(f"template.yaml has no {name}")
    memory = template.function_property(name, "MemorySize", DEFAULT_MEMORY_MB)
    architectures = template.function_property(name, "Architectures", [DEFAULT_ARCHITECTURE])
    logging = template.function_property(name, "LoggingConfig", {})
    quiet = isinstance(logging, dict) and logging.get("SystemLogLevel") == "WARN"
    return FunctionSettings(int(memory), str(architectures[0]), platform_logs=not quiet)


def _stream_event(template: Template) -> dict[str, Any]:
    events = template.resources["StreamFunction"].get("Properties", {}).get("Events") or {}
    for event in events.values():
        if event.get("Type") == "DynamoDB":
            found: dict[str, Any] = event.get("Properties", {})
            return found
    raise TemplateError("template.yaml's StreamFunction has no DynamoDB stream event")


def _number(template: Template, value: Any, what: str) -> float:
    if isinstance(value, dict) and "Ref" in value:
        value = template.parameter_default(str(value["Ref"]))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TemplateError(f"template.yaml: {what} is not a number ({value!r})") from None


def stack_settings(template: Template | None = None) -> StackSettings:
    """The settings of template.yaml (parameters at their defaults)."""
    template = template or load_template()
    event = _stream_event(template)
    log_group = template.resources.get("TrackFunctionLogGroup", {}).get("Properties", {})
    retention = _number(template, log_group.get("RetentionInDays"), "TrackFunctionLogGroup's RetentionInDays")
    return StackSettings(
        track=_function(template, "TrackFunction"),
        stream=_function(template, "StreamFunction"),
        batch_size=int(_number(template, event.get("BatchSize", 100), "the stream's BatchSize")),
        batching_window_s=_number(
            template, event.get("MaximumBatchingWindowInSeconds", 0), "the batching window"
        ),
        log_retention_days=int(retention),
        has_cloudfront="EnableCloudFront" in template.data.get("Parameters", {}),
        has_function_url="FrontDoor" in template.data.get("Parameters", {}),
    )
