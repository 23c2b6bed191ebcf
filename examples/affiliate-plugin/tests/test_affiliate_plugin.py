"""The example plugin against moto's DynamoDB: registration, the product target, the affiliate
source, the deferred hit counter (once per beacon), and its template snippet."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import yaml
from moto import mock_aws
from webbugger.deferred import apply_deferred_hooks
from webbugger.errors import InvalidReferenceError
from webbugger.ids import new_beacon_id
from webbugger.models import Beacon, beacon_partition, bind, utcnow
from webbugger.observability import metrics
from webbugger.plugins import ENTRY_POINT_GROUP, load_plugins
from webbugger.registry import HookMode, Kind, Registry, resolve_target_url
from webbugger.settings import Settings
from webbugger_affiliate import (
    Affiliate,
    AffiliateExistsError,
    Product,
    ProductExistsError,
    create_affiliate,
    create_product,
    get_or_create_affiliate,
)
from webbugger_cli.stack import table_variables
from webbugger_cli.template import Template, load_template

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLE = Path(__file__).resolve().parents[1]
ROOT = EXAMPLE.parents[1]
SNIPPET = EXAMPLE / "template-snippet.yaml"
PLUGIN = "webbugger_affiliate"
REGION = "us-east-1"
BEACONS = "test-beacons"
AFFILIATES = "test-affiliates"
PRODUCTS = "test-products"


def make_settings(**values: Any) -> Settings:
    """Settings from keyword arguments, giving only the fields this version of the core has
    (``links_table`` left the core when the link target became a plugin)."""
    names = set(Settings._fields)
    return Settings(**{name: value for name, value in values.items() if name in names})


@pytest.fixture(autouse=True)
def _clear_metrics() -> Iterator[None]:
    """The deferred hooks add Powertools metrics to a module-level object: start and end empty."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Fake AWS with the beacons table (from template.yaml) and the plugin's tables (from its
    models), every model bound to its table."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "DYNAMODB_ENDPOINT", "PRODUCT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        settings = make_settings(beacons_table=BEACONS, links_table="test-links", region=REGION)
        beacons_spec = load_template(ROOT).tables()["BeaconsTable"]
        boto3.client("dynamodb", region_name=REGION).create_table(TableName=BEACONS, **beacons_spec)
        bind(Beacon, BEACONS, settings)
        for model, table in ((Affiliate, AFFILIATES), (Product, PRODUCTS)):
            bind(model, table, settings)
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        yield settings


@pytest.fixture
def registry() -> Registry:
    """A fresh registry with only this plugin loaded, by module name."""
    registry = Registry()
    assert load_plugins(registry, [PLUGIN]) == [PLUGIN]
    return registry


def new_beacon(entity: str, target: str | None = None, source: str | None = None) -> Beacon:
    """A stored redirect beacon with these references, as the track function writes it."""
    beacon_id = new_beacon_id()
    beacon = Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=utcnow(),
        mode="redirect",
        method="GET",
        ip="203.0.113.0",
        user_agent="TestBrowser/1.0",
        target=target,
        entity=entity,
        source=source,
    )
    beacon.save()
    return beacon


# --- registration -------------------------------------------------------------------------------


def test_types_are_registered_with_the_plugin_as_origin(registry: Registry) -> None:
    listed = {(kind, registered.name): registered.origin for kind, registered in registry.listing()}
    assert listed == {
        (Kind.TARGET, "product"): PLUGIN,
        (Kind.ENTITY, "affiliate"): PLUGIN,
        (Kind.SOURCE, "affiliate"): PLUGIN,
    }
    assert registry.entity("affiliate").hooks is HookMode.DEFERRED
    assert registry.entity("affiliate").load is not None
    assert registry.tables == [(Affiliate, "AFFILIATES_TABLE"), (Product, "PRODUCTS_TABLE")]


def test_the_distribution_names_the_module_in_the_entry_point_group() -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert project["project"]["entry-points"][ENTRY_POINT_GROUP] == {"affiliate": PLUGIN}
    assert project["project"]["dependencies"] == []  # webbugger and PynamoDB come from the core layer
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if "affiliate" in installed:  # when the example is installed in this environment
        assert installed["affiliate"] == PLUGIN


# --- product target -----------------------------------------------------------------------------


def test_product_target_resolves_to_the_url_built_from_its_fields(
    settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_product("p1", slug="red-runner", category="shoes", price_cents=8900)
    record = registry.target("product").load("p1")
    assert isinstance(record, Product)
    assert record.price_cents == 8900
    assert resolve_target_url(record) == "https://shop.example.com/shoes/red-runner?ref=webbugger"

    # The base URL is read when the URL is built, not at import.
    monkeypatch.setenv("PRODUCT_BASE_URL", "https://eu.shop.example/")
    assert resolve_target_url(record) == "https://eu.shop.example/shoes/red-runner?ref=webbugger"


def test_product_fields_are_quoted_and_price_is_optional(settings: Settings, registry: Registry) -> None:
    create_product("p2", slug="a/b c", category="hats & caps")
    record = registry.target("product").load("p2")
    assert record is not None
    assert record.price_cents is None
    assert resolve_target_url(record) == "https://shop.example.com/hats%20%26%20caps/a%2Fb%20c?ref=webbugger"


def test_unknown_product_is_none_and_ids_are_unique(settings: Settings, registry: Registry) -> None:
    assert registry.target("product").load("nope") is None
    create_product("p3", slug="s", category="c")
    with pytest.raises(ProductExistsError):
        create_product("p3", slug="other", category="c")
    assert Product.get("p3").slug == "s"


# --- affiliate source ---------------------------------------------------------------------------


def test_affiliate_source_loads_known_affiliates_and_none_for_unknown_ids(
    settings: Settings, registry: Registry
) -> None:
    assert registry.source("affiliate").load("unknown") is None
    create_affiliate("acme", "Acme Deals")
    found = registry.source("affiliate").load("acme")
    assert isinstance(found, Affiliate)
    assert found.to_record() == {
        "id": "acme",
        "name": "Acme Deals",
        "hits": 0,
        "created_at": found.created_at.isoformat(),
    }


def test_create_affiliate_is_conditional_and_checks_the_id(settings: Settings) -> None:
    create_affiliate("acme", "Acme Deals")
    with pytest.raises(AffiliateExistsError):
        create_affiliate("acme", "Someone Else")
    assert Affiliate.get("acme").name == "Acme Deals"
    with pytest.raises(InvalidReferenceError):
        create_affiliate("bad\nid", "Control Characters")


# --- affiliate entity: the deferred hit counter -------------------------------------------------


def test_deferred_hook_counts_a_beacon_once_even_when_applied_twice(
    settings: Settings, registry: Registry
) -> None:
    create_affiliate("acme", "Acme Deals")
    beacon = new_beacon("affiliate:acme", target="product:p1", source="affiliate:acme")

    assert apply_deferred_hooks(beacon, registry, settings) is True
    assert Affiliate.get("acme").hits == 1

    # Redelivered as the stream first delivered it (no mark in the image): the transaction's
    # condition on the beacon's mark fails, and the count is not written either.
    assert apply_deferred_hooks(beacon, registry, settings) is False
    # Redelivered after the mark is visible: skipped before any write.
    stored = Beacon.get(beacon.pk, beacon.id)
    assert stored.hooks_applied == {"affiliate"}
    assert apply_deferred_hooks(stored, registry, settings) is False

    assert Affiliate.get("acme").hits == 1
    # Another beacon counts again.
    assert apply_deferred_hooks(new_beacon("affiliate:acme"), registry, settings) is True
    assert Affiliate.get("acme").hits == 2


def test_unknown_affiliate_entity_is_stored_unnamed_so_its_hits_are_kept(
    settings: Settings, registry: Registry
) -> None:
    beacon = new_beacon("affiliate:newcomer")
    assert apply_deferred_hooks(beacon, registry, settings) is True
    stored = Affiliate.get("newcomer")
    assert stored.to_record()["name"] is None
    assert stored.hits == 1
    # get_or_create finds it afterwards rather than replacing it.
    assert get_or_create_affiliate("newcomer").hits == 1


def test_hook_outside_a_transaction_updates_directly(settings: Settings) -> None:
    affiliate = create_affiliate("acme", "Acme Deals")
    affiliate.beacon_update(None)  # type: ignore[arg-type]  # the hook does not read the request
    affiliate.beacon_update(None)  # type: ignore[arg-type]
    assert Affiliate.get("acme").hits == 2


# --- template snippet ---------------------------------------------------------------------------


def merge(base: Any, extra: Any) -> Any:
    """The snippet's merge rule: mappings key by key, lists appended."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(extra, list):
        return base + extra
    return extra


def references(value: Any) -> set[str]:
    """Logical ids named by ``Ref`` and ``Fn::GetAtt`` anywhere in ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            found.add(value["Ref"])
        elif set(value) == {"Fn::GetAtt"}:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


@pytest.fixture
def merged(tmp_path: Path) -> Template:
    """A copy of template.yaml with the snippet merged in, read back by the CLI's template reader."""
    base = Template(ROOT / "template.yaml").data
    snippet = Template(SNIPPET).data  # the same CloudFormation-aware loader (!Ref, !GetAtt, !If)
    path = tmp_path / "template.yaml"
    # Intrinsics were read into their long form ({"Ref": ...}), which CloudFormation accepts too.
    path.write_text(yaml.safe_dump(merge(base, snippet), sort_keys=False))
    return Template(path)


def test_snippet_adds_the_plugin_tables(merged: Template) -> None:
    tables = merged.tables()
    assert {"AffiliatesTable", "ProductsTable"} <= set(tables)
    assert {"BeaconsTable", "LinksTable"} <= set(tables)  # nothing of the original lost
    for name in ("AffiliatesTable", "ProductsTable"):
        assert tables[name]["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
        props = merged.resources[name]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert merged.resources[name]["DeletionPolicy"] == "Retain"


def test_snippet_wires_layers_environment_and_permissions(merged: Template) -> None:
    refs = {"AffiliatesTable": AFFILIATES, "ProductsTable": PRODUCTS, "BeaconsTable": BEACONS}
    for function in ("TrackFunction", "StreamFunction"):
        props = merged.resources[function]["Properties"]
        assert props["Layers"][-1] == {"Ref": "AffiliateLayer"}
        assert {"Ref": "CoreLayer"} in props["Layers"]
        env = merged.function_environment(function, refs)
        assert (env["AFFILIATES_TABLE"], env["PRODUCTS_TABLE"]) == (AFFILIATES, PRODUCTS)

    def statements(function: str) -> dict[str, dict[str, Any]]:
        policies = merged.resources[function]["Properties"]["Policies"]
        return {s["Sid"]: s for p in policies if isinstance(p, dict) for s in p.get("Statement", [])}

    reads = statements("TrackFunction")["AffiliatePluginReads"]
    assert reads["Action"] == "dynamodb:GetItem"
    assert references(reads["Resource"]) == {"AffiliatesTable", "ProductsTable"}
    hook = statements("StreamFunction")["AffiliateDeferredHook"]
    assert set(hook["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert references(hook["Resource"]) == {"AffiliatesTable"}

    layer = merged.resources["AffiliateLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert (ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text().count("build-AffiliateLayer:")


def test_snippet_refers_only_to_what_the_merged_template_defines(merged: Template) -> None:
    snippet = Template(SNIPPET).data
    defined = set(merged.resources) | set(merged.data.get("Parameters", {}))
    assert references(snippet) <= defined
    conditions = {node["Fn::If"][0] for node in _walk(snippet) if "Fn::If" in node}
    assert conditions <= set(merged.data.get("Conditions", {}))


def test_snippet_outputs_name_the_tables_for_the_command_line(merged: Template) -> None:
    outputs = {
        name: str(output["Value"]["Ref"])
        for name, output in merged.data["Outputs"].items()
        if isinstance(output["Value"], dict) and "Ref" in output["Value"]
    }
    variables = table_variables(outputs)
    assert variables["AFFILIATES_TABLE"] == "AffiliatesTable"
    assert variables["PRODUCTS_TABLE"] == "ProductsTable"


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
