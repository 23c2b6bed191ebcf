"""``type:id`` references: the text form every beacon stores and every token carries."""

from __future__ import annotations

import re

import pytest
from webbugger.errors import InvalidReferenceError
from webbugger.refs import MAX_ID_BYTES, Ref, check_new_ref, parse_optional


@pytest.mark.parametrize(
    ("text", "type_name", "ident"),
    [
        ("link:abc123", "link", "abc123"),
        ("url:https://x/y", "url", "https://x/y"),
        ("url:https://x:8443/a:b?c=d:e", "url", "https://x:8443/a:b?c=d:e"),
        ("user.profile:42", "user.profile", "42"),
        ("a_b-c.d:ü-ß", "a_b-c.d", "ü-ß"),
    ],
)
def test_text_form_round_trips(text: str, type_name: str, ident: str) -> None:
    ref = Ref.parse(text)
    assert (ref.type, ref.id) == (type_name, ident)
    assert str(ref) == text
    assert Ref.parse(str(ref)) == ref


def test_id_splits_at_the_first_colon_only() -> None:
    assert Ref.parse("url:https://x/y").id == "https://x/y"
    assert Ref.parse("t::").id == ":"


def test_bare_type_is_a_new_entity_only_when_allowed() -> None:
    ref = Ref.parse("visitor", allow_new=True)
    assert ref == Ref("visitor")
    assert ref.id is None
    assert str(ref) == "visitor"
    with pytest.raises(InvalidReferenceError):
        Ref.parse("visitor")


@pytest.mark.parametrize(
    "text",
    [
        ":x",
        "Link:x",
        "1link:x",
        "_link:x",
        "li nk:x",
        "lïnk:x",
        "link/x:y",
        "a" * 41 + ":x",
        "link\n:x",
    ],
)
def test_invalid_type_names_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        Ref.parse(text)


def test_longest_type_name_is_accepted() -> None:
    assert Ref.parse("a" * 40 + ":x").type == "a" * 40


def test_empty_id_is_refused() -> None:
    with pytest.raises(InvalidReferenceError, match="empty id"):
        Ref.parse("link:")
    with pytest.raises(InvalidReferenceError):
        Ref("link", "")


@pytest.mark.parametrize("char", ["\x00", "\n", "\r", "\t", "\x1b", "\x7f"])
def test_control_characters_in_id_are_refused(char: str) -> None:
    with pytest.raises(InvalidReferenceError, match="control"):
        Ref.parse(f"link:ab{char}cd")


def test_id_length_is_bounded_in_utf8_bytes() -> None:
    assert Ref("url", "x" * MAX_ID_BYTES).id == "x" * MAX_ID_BYTES
    with pytest.raises(InvalidReferenceError, match="longer"):
        Ref("url", "x" * (MAX_ID_BYTES + 1))
    # 950 two-byte characters are exactly the bound; one more is over it.
    assert Ref("url", "é" * (MAX_ID_BYTES // 2)).id is not None
    with pytest.raises(InvalidReferenceError):
        Ref("url", "é" * (MAX_ID_BYTES // 2 + 1))


def test_invalid_reference_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="TYPE:ID"):
        Ref.parse("nope")


def test_parse_optional() -> None:
    assert parse_optional(None) is None
    assert parse_optional("link:x") == Ref("link", "x")
    assert parse_optional("visitor", allow_new=True) == Ref("visitor")
    with pytest.raises(InvalidReferenceError):
        parse_optional("visitor")


@pytest.mark.parametrize(
    "ident",
    [
        "alice@example.com",
        "o'brien+news@example.org",
        "Jane Doe",  # spaces inside an id are text like any other
        "ü-ß-中文",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian with a zero-width non-joiner
        "\U0001f469\u200d\U0001f4bb",  # an emoji sequence: its zero-width joiner stays
        "https://example.com/a b",
    ],
)
def test_a_plain_id_may_be_given_out(ident: str) -> None:
    ref = Ref("recipient", ident)
    assert check_new_ref(ref) is ref
    assert check_new_ref(Ref("recipient")) == Ref("recipient")  # a new one: no id to check


@pytest.mark.parametrize(
    ("ident", "message"),
    [
        (" alice@example.com", "starts or ends with whitespace"),
        ("alice@example.com ", "starts or ends with whitespace"),
        ("alice@example.com\u00a0", "starts or ends with whitespace"),  # a no-break space
        ("\u3000alice", "starts or ends with whitespace"),  # an ideographic space
        ("ab\x85cd", "U+0085"),  # a C1 control (NEL): invisible, a line break to some readers
        ("ab\x9bcd", "U+009B"),  # a C1 CSI: starts a terminal escape sequence
        ("ab\u2028cd", "U+2028"),  # a line separator
        ("ab\u202ecd", "U+202E"),  # a right-to-left override
        ("ab\u2066cd", "U+2066"),  # a bidi isolate
        ("ab\u200bcd", "U+200B"),  # a zero-width space
        ("\ufeffabcd", "U+FEFF"),  # a byte order mark pasted from a file
    ],
)
def test_an_id_that_is_not_what_it_looks_like_is_not_given_out(ident: str, message: str) -> None:
    ref = Ref("recipient", ident)  # still a reference: signed tokens and stored beacons may hold it
    with pytest.raises(InvalidReferenceError, match=re.escape(message)):
        check_new_ref(ref)
