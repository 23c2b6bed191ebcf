"""``webbugger url``: a URL is minted for the web unless ``--for email`` says it goes in a mail."""

from __future__ import annotations

import pytest
from webbugger.modes import Mode
from webbugger.runtime import default_registry
from webbugger.tokens import Purpose
from webbugger_cli.commands import url
from webbugger_cli.main import build_parser


@pytest.mark.parametrize(
    ("args", "purpose"),
    [
        (["url", "pixel"], Purpose.WEB),
        (["url", "pixel", "--for", "email"], Purpose.EMAIL),
        (["url", "redirect", "--target", "link:abc", "--for", "email"], Purpose.EMAIL),
        (["url", "redirect", "--target", "link:abc", "--for", "web"], Purpose.WEB),
    ],
)
def test_the_url_command_says_what_its_url_is_for(args: list[str], purpose: Purpose) -> None:
    parsed = build_parser().parse_args(args)
    claims = url._claims(parsed, Mode(parsed.mode), default_registry())
    assert claims.purpose is purpose
