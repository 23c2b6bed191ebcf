"""Ref and TokenClaims keep a frozen dataclass's behaviour without being one (webbugger.frozen):
equal and hashed by their fields, immutable, copied with changes only through validation."""

from __future__ import annotations

import copy
import pickle

import pytest
from webbugger.errors import InvalidReferenceError
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import Purpose, TokenClaims

CLICK = TokenClaims(mode=Mode.REDIRECT, target=Ref("link", "l-1"), entity=Ref("recipient", "r@x"))


def test_equal_and_hashed_by_their_fields_and_by_nothing_else() -> None:
    assert Ref("link", "a") == Ref("link", "a")
    assert {Ref("link", "a"): 1}[Ref("link", "a")] == 1
    assert Ref("link", "a") != Ref("link", "b")
    assert Ref("link", "a") != ("link", "a")  # not a tuple
    assert TokenClaims(Mode.REDIRECT, Ref("link", "l-1"), Ref("recipient", "r@x")) == CLICK
    assert hash(CLICK) == hash(TokenClaims(Mode.REDIRECT, Ref("link", "l-1"), Ref("recipient", "r@x")))
    assert CLICK.replace(honeypot=True) != CLICK


def test_fields_cannot_be_changed_or_added() -> None:
    ref = Ref("link", "a")
    with pytest.raises(AttributeError, match="immutable"):
        ref.id = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del CLICK.target  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ref.extra = 1  # type: ignore[attr-defined]
    assert ref == Ref("link", "a")


def test_replace_changes_a_copy_and_validates_it() -> None:
    pixel = CLICK.replace(mode=Mode.PIXEL, target=None, purpose=Purpose.EMAIL)
    assert (pixel.mode, pixel.target, pixel.entity, pixel.purpose) == (
        Mode.PIXEL,
        None,
        Ref("recipient", "r@x"),
        Purpose.EMAIL,
    )
    assert CLICK.mode is Mode.REDIRECT
    with pytest.raises(InvalidReferenceError, match="a redirect needs a target"):
        CLICK.replace(target=None)
    with pytest.raises(InvalidReferenceError, match="invalid type name"):
        Ref("link", "a").replace(type="Not A Type")


def test_repr_names_the_fields_and_copies_and_pickles_survive() -> None:
    assert repr(Ref("link", "a")) == "Ref(type='link', id='a')"
    assert repr(CLICK).startswith("TokenClaims(mode=<Mode.REDIRECT: 'redirect'>, target=Ref(type='link'")
    for value in (Ref("ip"), CLICK):
        assert copy.copy(value) == value
        assert copy.deepcopy(value) == value
        assert pickle.loads(pickle.dumps(value)) == value  # noqa: S301 - our own bytes
