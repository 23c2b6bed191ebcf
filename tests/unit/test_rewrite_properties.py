"""Bad HTML never breaks the rewrite: whatever text comes in, no exception, and every character
outside the rewritten ``href`` values and the inserted pixel is kept (checked by aligning the two
documents, :mod:`rewrite_checks`)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rewrite_checks import BASE, rewritten_parts, text_tokens
from webbugger.minting import tracking_url
from webbugger.refs import Ref
from webbugger.rewrite import rewrite_message
from webbugger.tokens import KeyRing

RING = KeyRing("k1", {"k1": b"p" * 32})
# Pieces of markup that matter to the rewrite, to be shuffled with arbitrary text.
FRAGMENTS = [
    '<a href="https://a.example/x?y=1&amp;z=2">',
    "<a href='http://b.example/'>",
    "<a href=https://c.example/>",
    '<area href="https://d.example/">',
    "</a>",
    "<a",
    " href=",
    " HREF = ",
    "https://e.example/",
    "mailto:x@example.com",
    "#top",
    "Unsubscribe",
    ' data-webbugger="no-track"',
    "<!--",
    "-->",
    "<!-- webbugger:pixel -->",
    "<body>",
    "</body>",
    "<html>",
    "</html>",
    "<head>",
    "<textarea>",
    "</textarea>",
    "<script>",
    "</script>",
    "<style>",
    "<title>",
    "<template>",
    "<svg>",
    "<math>",
    "<select>",
    "<table>",
    "<tr>",
    "<p>",
    "<b>",
    "</b>",
    "<![CDATA[",
    "]]>",
    "<!doctype html>",
    "<?xml?>",
    "&amp;",
    "&region=",
    "&#",
    "&",
    '"',
    "'",
    "<",
    ">",
    "=",
    "/",
    " ",
    "\r\n",
    "\x00",
    "\ufeff",
]
markup = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), max_size=40).map("".join)
# Every character, lone surrogates included (a file read with errors="surrogateescape" has them).
any_text = st.text(st.characters(exclude_categories=()), max_size=200)
text_parts = st.none() | st.lists(
    st.sampled_from(["https://f.example/p.", " ", "\n", "Unsubscribe: ", "<", ">", "(", ")"])
    | st.text(max_size=8),
    max_size=20,
).map("".join)


def _mint(claims: object) -> str:
    return tracking_url(BASE, claims, RING)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, database=None)
@given(source=markup | any_text, text=text_parts, honeypot=st.booleans())
@example(source='<a href="https://a.example/"><!-- ', text=None, honeypot=True)
@example(source="<select><!-- webbugger:pixel --></select></body>", text=None, honeypot=False)
@example(source="\ufeff<a href=x\x00>", text="https://f.example/\ud800", honeypot=True)
def test_any_input_is_rewritten_without_error_and_only_where_it_says(
    source: str, text: str | None, honeypot: bool
) -> None:
    result = rewrite_message(
        source,
        text,
        recipient=Ref("recipient", "ada@example.com"),
        campaign=Ref("campaign", "c"),
        link_id_for=lambda url: "l1",
        mint=_mint,
        honeypot=honeypot,
    )
    parts = rewritten_parts(source, result.html)
    assert len(parts.link_tokens) == result.wrapped
    assert len(parts.pixel_tokens) == int(result.pixel)
    assert len(parts.honeypot_tokens) == int(result.honeypot)
    if text is not None:
        assert result.text is not None
        assert len(text_tokens(text, result.text)[1]) == result.text_wrapped
