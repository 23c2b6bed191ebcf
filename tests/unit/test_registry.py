"""The registry: the seam plugins register target, entity and source types through."""

from __future__ import annotations

from typing import Any

import pytest
from webbugger.errors import NotFoundError, TypeClashError, UnknownTypeError, WebbuggerError
from webbugger.registry import HookMode, Kind, Registry, resolve_target_url


def load_nothing(_ident: str) -> None:
    return None


def make_nothing(_ident: str | None) -> None:
    return None


def test_register_and_look_up_each_kind() -> None:
    registry = Registry()
    registry.register_target("page", load_nothing, origin="cms")
    registry.register_entity("visitor", make_nothing, origin="crm", hooks=HookMode.DEFERRED)
    registry.register_source("mail", load_nothing, origin="mailer")

    target = registry.target("page")
    assert (target.name, target.load, target.origin) == ("page", load_nothing, "cms")
    entity = registry.entity("visitor")
    assert (entity.name, entity.get_or_create, entity.origin, entity.hooks) == (
        "visitor",
        make_nothing,
        "crm",
        HookMode.DEFERRED,
    )
    source = registry.source("mail")
    assert (source.name, source.load, source.origin) == ("mail", load_nothing, "mailer")
    assert registry.has(Kind.TARGET, "page")
    assert not registry.has(Kind.SOURCE, "page")


def test_entity_hooks_default_to_inline_and_origin_to_core() -> None:
    registry = Registry()
    registry.register_entity("visitor", make_nothing)
    assert registry.entity("visitor").hooks is HookMode.INLINE
    assert registry.entity("visitor").origin == "core"


def test_clash_within_a_kind_names_both_origins() -> None:
    registry = Registry()
    registry.register_target("page", load_nothing, origin="plugin-one")
    with pytest.raises(TypeClashError) as caught:
        registry.register_target("page", load_nothing, origin="plugin-two")
    assert "plugin-one" in str(caught.value)
    assert "plugin-two" in str(caught.value)
    assert "page" in str(caught.value)
    assert registry.target("page").origin == "plugin-one"  # the first registration stands


def test_same_name_in_two_kinds_is_fine() -> None:
    registry = Registry()
    registry.register_target("user", load_nothing, origin="a")
    registry.register_entity("user", make_nothing, origin="b")
    registry.register_source("user", load_nothing, origin="c")
    assert [(kind, registered.origin) for kind, registered in registry.listing()] == [
        (Kind.TARGET, "a"),
        (Kind.ENTITY, "b"),
        (Kind.SOURCE, "c"),
    ]


@pytest.mark.parametrize("kind", ["target", "entity", "source"])
def test_unknown_type_is_a_not_found(kind: str) -> None:
    registry = Registry()
    registry.register_target("page", load_nothing)
    with pytest.raises(UnknownTypeError, match="nope"):
        getattr(registry, kind)("nope")
    with pytest.raises(NotFoundError):
        getattr(registry, kind)("nope")


@pytest.mark.parametrize("name", ["", "Page", "1page", "pa ge", "pa:ge", "a" * 41, "pägé"])
def test_invalid_type_name_is_refused(name: str) -> None:
    registry = Registry()
    with pytest.raises(WebbuggerError, match="invalid"):
        registry.register_target(name, load_nothing)
    assert registry.listing() == []


def test_listing_is_sorted_by_kind_then_name() -> None:
    registry = Registry()
    for name in ("zeta", "alpha", "mid"):
        registry.register_source(name, load_nothing)
    registry.register_target("only", load_nothing)
    assert [(kind, registered.name) for kind, registered in registry.listing()] == [
        (Kind.TARGET, "only"),
        (Kind.SOURCE, "alpha"),
        (Kind.SOURCE, "mid"),
        (Kind.SOURCE, "zeta"),
    ]


class BothUrls:
    def get_beacon_url(self) -> str:
        return "https://beacon.example/"

    def get_absolute_url(self) -> str:
        return "https://absolute.example/"


class AbsoluteOnly:
    def get_absolute_url(self) -> str:
        return "https://absolute.example/"


class Neither:
    url = "https://attribute.example/"


class NotAString:
    def get_beacon_url(self) -> Any:
        return 42


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (BothUrls(), "https://beacon.example/"),
        (AbsoluteOnly(), "https://absolute.example/"),
        (Neither(), None),
        (NotAString(), None),
        (None, None),
    ],
    ids=["beacon-url-wins", "absolute-only", "neither", "not-a-string", "none"],
)
def test_resolve_target_url(record: object, expected: str | None) -> None:
    assert resolve_target_url(record) == expected
