"""The plugin API: discovery (entry points, ``WEBBUGGER_PLUGINS``), origins, and load failures.

The test plugins live in ``tests/plugins_for_tests`` and are imported by their absolute name
(``tests.plugins_for_tests.<module>``), so the repository root goes on ``sys.path`` here.
"""

from __future__ import annotations

import sys
from importlib.metadata import PathDistribution, entry_points
from pathlib import Path

import pytest
from webbugger.plugins import (
    ENTRY_POINT_GROUP,
    PLUGINS_VARIABLE,
    PluginLoadError,
    discover_plugin_modules,
    entry_point_modules,
    load_plugins,
)
from webbugger.registry import HookMode, Kind, Registry

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "tests.plugins_for_tests"
GOOD = f"{PACKAGE}.good"
BROKEN_IMPORT = f"{PACKAGE}.broken_import"
NO_REGISTER = f"{PACKAGE}.no_register"
RAISING_REGISTER = f"{PACKAGE}.raising_register"
CLASHING = f"{PACKAGE}.clashing"
BUILT_INS = {
    "webbugger_plugins.link",
    "webbugger_plugins.url",
    "webbugger_plugins.ip",
    "webbugger_plugins.recipient",
    "webbugger_plugins.campaign",
}
# What each built-in registers: (kind, name) -> origin.
BUILT_IN_TYPES = {
    (Kind.TARGET, "link"): "webbugger_plugins.link",
    (Kind.TARGET, "url"): "webbugger_plugins.url",
    (Kind.ENTITY, "ip"): "webbugger_plugins.ip",
    (Kind.ENTITY, "recipient"): "webbugger_plugins.recipient",
    (Kind.SOURCE, "campaign"): "webbugger_plugins.campaign",
}


@pytest.fixture(autouse=True)
def importable_test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tests.plugins_for_tests`` importable; no ``WEBBUGGER_PLUGINS`` from the caller's shell."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.delenv(PLUGINS_VARIABLE, raising=False)


# --- discovery --------------------------------------------------------------------------------


def test_entry_points_find_the_five_built_ins() -> None:
    found = discover_plugin_modules("")
    assert set(found) == BUILT_INS
    assert len(found) == len(BUILT_INS)


def test_the_entry_point_scan_finds_what_importlib_metadata_finds(tmp_path: Path) -> None:
    # Our scan parses entry_points.txt itself (cheaper at cold start): it must agree with the
    # standard library's reading, on the environment's own distributions and on a tricky file.
    expected = [ep.value.split(":", 1)[0].strip() for ep in entry_points(group=ENTRY_POINT_GROUP)]
    assert entry_point_modules() == expected
    dist = tmp_path / "tricky_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text(
        "# [webbugger.plugins] in a comment\n[console_scripts]\nx = a:b\n"
        "[webbugger.plugins]\nCamel = tricky.Plugin:register [extra]\nplain = tricky.other\n",
        encoding="utf-8",
    )
    found = PathDistribution(dist).entry_points.select(group=ENTRY_POINT_GROUP)
    assert [ep.value.split(":", 1)[0].strip() for ep in found] == ["tricky.Plugin", "tricky.other"]
    sys.path.insert(0, str(tmp_path))
    try:
        assert entry_point_modules()[:2] == ["tricky.Plugin", "tricky.other"]
    finally:
        sys.path.remove(str(tmp_path))


def test_the_environment_variable_is_read_when_no_list_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_VARIABLE, GOOD)
    assert discover_plugin_modules()[-1] == GOOD
    monkeypatch.setenv(PLUGINS_VARIABLE, "")
    assert set(discover_plugin_modules()) == BUILT_INS


def test_listed_modules_come_after_the_entry_points_in_order_each_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        PLUGINS_VARIABLE,
        f" {CLASHING} ,,{GOOD},webbugger_plugins.url, {CLASHING},{NO_REGISTER} , ",
    )
    found = discover_plugin_modules()
    assert set(found[: len(BUILT_INS)]) == BUILT_INS  # an entry point listed again stays where it was
    assert found[len(BUILT_INS) :] == [CLASHING, GOOD, NO_REGISTER]


def test_an_explicit_list_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_VARIABLE, BROKEN_IMPORT)
    found = discover_plugin_modules(GOOD)
    assert BROKEN_IMPORT not in found
    assert found[-1] == GOOD


# --- loading and origins ----------------------------------------------------------------------


def test_default_loading_registers_the_built_ins_with_their_module_as_origin() -> None:
    registry = Registry()
    loaded = load_plugins(registry)
    assert set(loaded) == BUILT_INS
    listing = {(kind, registered.name): registered.origin for kind, registered in registry.listing()}
    assert listing == BUILT_IN_TYPES
    assert registry.entity("recipient").hooks is HookMode.NONE  # its figures are folded when read
    assert registry.entity("ip").hooks is HookMode.INLINE
    # Plugins' own tables, with the variable naming each.
    assert {variable for _model, variable in registry.tables} == {
        "LINKS_TABLE",
        "IP_ENTITIES_TABLE",
        "CAMPAIGNS_TABLE",
    }


def test_a_listed_plugin_is_loaded_after_the_built_ins_and_recorded_as_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PLUGINS_VARIABLE, GOOD)
    registry = Registry()
    loaded = load_plugins(registry)
    assert loaded[-1] == GOOD
    assert set(loaded[:-1]) == BUILT_INS
    origins = {(kind, registered.name): registered.origin for kind, registered in registry.listing()}
    assert origins == {
        **BUILT_IN_TYPES,
        (Kind.TARGET, "shelf"): GOOD,
        (Kind.ENTITY, "reader"): GOOD,
        (Kind.SOURCE, "fair"): GOOD,
    }
    assert registry.target("shelf").load("poetry").get_absolute_url() == "https://example.com/shelves/poetry"


def test_listing_is_by_kind_then_name() -> None:
    registry = Registry()
    load_plugins(registry, [GOOD, "webbugger_plugins.link", "webbugger_plugins.url"])
    assert [(kind, registered.name) for kind, registered in registry.listing()] == [
        (Kind.TARGET, "link"),
        (Kind.TARGET, "shelf"),
        (Kind.TARGET, "url"),
        (Kind.ENTITY, "reader"),
        (Kind.SOURCE, "fair"),
    ]


# --- load failures: PluginLoadError naming the plugin and the reason ---------------------------


def load_error(modules: list[str]) -> str:
    with pytest.raises(PluginLoadError) as caught:
        load_plugins(Registry(), modules)
    return str(caught.value)


def test_a_plugin_that_fails_to_import() -> None:
    message = load_error([BROKEN_IMPORT])
    assert message.startswith(f"plugin {BROKEN_IMPORT} ")
    assert "failed to import" in message
    assert "webbugger_test_missing_dependency" in message  # the reason: what it could not import
    assert BROKEN_IMPORT not in sys.modules  # no half-imported module left behind


def test_a_plugin_module_that_does_not_exist() -> None:
    message = load_error([f"{PACKAGE}.no_such_plugin"])
    assert f"plugin {PACKAGE}.no_such_plugin failed to import" in message


def test_a_plugin_without_register() -> None:
    message = load_error([NO_REGISTER])
    assert message == f"plugin {NO_REGISTER} has no register(types) function"


def test_a_plugin_whose_register_raises() -> None:
    message = load_error([RAISING_REGISTER])
    assert message.startswith(f"plugin {RAISING_REGISTER} failed in register()")
    assert "PluginSetupError" in message
    assert "settings for the halfway source are missing" in message


def test_a_plugin_registering_a_taken_type_name_names_both_plugins() -> None:
    message = load_error(["webbugger_plugins.link", CLASHING])
    assert message.startswith(f"plugin {CLASHING}: ")
    assert "target type 'link'" in message
    assert "webbugger_plugins.link" in message  # the plugin that has the name already


def test_the_first_broken_plugin_stops_loading() -> None:
    registry = Registry()
    with pytest.raises(PluginLoadError, match=NO_REGISTER):
        load_plugins(registry, [NO_REGISTER, GOOD])
    assert not registry.has(Kind.TARGET, "shelf")


def test_load_errors_come_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_VARIABLE, f"{GOOD},{CLASHING}")
    with pytest.raises(PluginLoadError, match=f"plugin {CLASHING}: target type 'link'"):
        load_plugins(Registry())
