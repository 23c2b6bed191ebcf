"""The command line's plugin verbs without a database: ``types``, and every mistake they refuse.

Commands run as a separate process, as in test_cli_errors.py: what the user sees is what is
tested, and the environment and model bindings the CLI sets do not leak into other tests. The
"running stack" is this test process announced in a state dir; nothing listens at its DynamoDB
endpoint, so a command that got as far as the database would fail these tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from webbugger import tokens
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger_cli.commands import display, jsonable, record_fields
from webbugger_plugins.link import Link

if TYPE_CHECKING:
    from pathlib import Path

RING = {"current": "t1", "t1": "k" * 40}
API_URL = "http://127.0.0.1:45678"
BUILT_IN_TYPES = {
    ("target", "link", None, "webbugger_plugins.link"),
    ("target", "url", None, "webbugger_plugins.url"),
    ("entity", "ip", "inline", "webbugger_plugins.ip"),
    ("entity", "recipient", "none", "webbugger_plugins.recipient"),
    ("source", "campaign", None, "webbugger_plugins.campaign"),
}
# A third-party plugin: a source the CLI cannot create, an entity it cannot show (no load), and
# one it lists (none stored).
EXTRA_PLUGIN = """
from webbugger.plugins import HookMode


def register(types):
    types.source("partner", load=lambda partner_id: None)
    types.entity("visitor", get_or_create=lambda entity_id: None, hooks=HookMode.DEFERRED)
    types.entity("guest", get_or_create=lambda entity_id: None, page=lambda limit, after: ([], None))
"""


def webbugger(
    *args: str, state_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("ALLOWED_REDIRECT_HOSTS", "WEBBUGGER_PLUGINS")}
    return subprocess.run(
        [sys.executable, "-m", "webbugger_cli.main", *args],
        capture_output=True,
        text=True,
        env={
            **base,
            "WEBBUGGER_STATE_DIR": str(state_dir),
            "AWS_EC2_METADATA_DISABLED": "true",
            **(env or {}),
        },
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"webbugger: error: {expected}"]
    assert result.stdout == ""


@pytest.fixture
def running_stack(tmp_path: Path) -> Path:
    """A state dir announcing a local stack run by this (live) process, with a signing key file."""
    (tmp_path / "signing-keys.json").write_text(json.dumps(RING))
    stack = {
        "api_url": API_URL,
        "dynamodb_endpoint": "http://127.0.0.1:9",  # nothing listens: no test here needs the database
        "pid": os.getpid(),
        "outputs": {"ApiUrl": API_URL, "BeaconsTableName": "beacons", "LinksTableName": "links"},
    }
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    return tmp_path


@pytest.fixture
def extra_plugin(tmp_path: Path) -> dict[str, str]:
    """The environment that loads EXTRA_PLUGIN in the CLI process."""
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "wb_test_extra.py").write_text(EXTRA_PLUGIN)
    path = os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "WEBBUGGER_PLUGINS": "wb_test_extra"}


# --- types ------------------------------------------------------------------------------------------


def test_types_table(tmp_path: Path) -> None:
    # No stack runs in tmp_path: listing types needs none.
    result = webbugger("types", state_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    header, *rows = [line.split() for line in result.stdout.splitlines()]
    assert header == ["KIND", "NAME", "HOOKS", "ORIGIN"]
    listed = {(kind, name, None if hooks == "-" else hooks, origin) for kind, name, hooks, origin in rows}
    assert listed >= BUILT_IN_TYPES
    kinds = [row[0] for row in rows]
    assert kinds == sorted(kinds, key=["target", "entity", "source"].index), "by kind, then name"


def test_types_json(tmp_path: Path) -> None:
    result = webbugger("types", "--json", state_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(entry) == {"kind", "name", "hooks", "origin"} for entry in entries)
    assert {(e["kind"], e["name"], e["hooks"], e["origin"]) for e in entries} == BUILT_IN_TYPES


def test_types_include_plugins_from_the_environment(tmp_path: Path, extra_plugin: dict[str, str]) -> None:
    result = webbugger("types", "--json", state_dir=tmp_path, env=extra_plugin)
    assert result.returncode == 0, result.stderr
    entries = {(e["kind"], e["name"]): e for e in map(json.loads, result.stdout.splitlines())}
    assert entries["source", "partner"]["origin"] == "wb_test_extra"
    assert entries["entity", "visitor"]["hooks"] == "deferred"


def test_types_with_a_broken_plugin(tmp_path: Path) -> None:
    result = webbugger("types", state_dir=tmp_path, env={"WEBBUGGER_PLUGINS": "no_such_plugin_module"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("webbugger: error: plugin no_such_plugin_module failed to import")


# --- source create, entity/source show: refused before any database --------------------------------


def test_source_create_of_a_type_without_a_creator(tmp_path: Path, extra_plugin: dict[str, str]) -> None:
    result = webbugger("source", "create", "partner:p1", state_dir=tmp_path, env=extra_plugin)
    assert_one_line_error(result, "source type partner cannot be created from the command line")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("source", "create", "gadget:g1"), "no source type named 'gadget' is registered"),
        (
            ("source", "create", f"campaign:{'x' * 2000}"),
            "id of 'campaign' reference is longer than 1900 bytes",
        ),
        (("source", "create", "campaign:"), "empty id in reference to type 'campaign'"),
        (("source", "create", "spring"), "give the source as TYPE:ID (e.g. campaign:spring), not 'spring'"),
        (("source", "list", "--type", "gadget"), "no source type named 'gadget' is registered"),
        (
            ("source", "create", "campaign:a\x01b"),
            "id of 'campaign' reference contains control characters",
        ),
        (("entity", "show", "ip"), "expected TYPE:ID, got 'ip'"),
        (("entity", "show", "ip:"), "empty id in reference to type 'ip'"),
        (("entity", "show", "user:1"), "no entity type named 'user' is registered"),
        (("entity", "show", "campaign:1"), "no entity type named 'campaign' is registered"),
        (("source", "show", "ip:1", "--json"), "no source type named 'ip' is registered"),
    ],
)
def test_record_commands_refuse_before_the_stack(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    # No stack runs in tmp_path: each mistake is reported, not the missing stack.
    assert_one_line_error(webbugger(*args, state_dir=tmp_path), message)


def test_source_create_in_the_older_two_argument_form(tmp_path: Path) -> None:
    # Still understood, with a note; here refused for its id, as the TYPE:ID form would be.
    result = webbugger("source", "create", "campaign", "", state_dir=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "webbugger: note: `source create campaign ` is deprecated: write `source create campaign:`",
        "webbugger: error: empty id in reference to type 'campaign'",
    ]


def test_list_of_a_type_without_page(tmp_path: Path, extra_plugin: dict[str, str]) -> None:
    result = webbugger("entity", "list", "--type", "visitor", state_dir=tmp_path, env=extra_plugin)
    assert_one_line_error(
        result,
        "entity type visitor cannot be listed: its plugin registers no page(limit, after); "
        "its beacons are: webbugger beacons list --entity visitor:ID, webbugger export --entity visitor:ID",
    )
    # The built-in recipient has no store to list: its figures are folded from its day items.
    result = webbugger("entity", "list", "--type", "recipient", state_dir=tmp_path)
    assert_one_line_error(
        result,
        "entity type recipient cannot be listed: its plugin registers no page(limit, after); "
        "its beacons are: webbugger beacons list --entity recipient:ID, "
        "webbugger export --entity recipient:ID",
    )


def test_an_empty_list_says_so_in_english(running_stack: Path, extra_plugin: dict[str, str]) -> None:
    result = webbugger("entity", "list", "--type", "guest", state_dir=running_stack, env=extra_plugin)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "no stored entities\n")


def test_entity_show_of_a_type_without_load(tmp_path: Path, extra_plugin: dict[str, str]) -> None:
    result = webbugger("entity", "show", "visitor:v1", state_dir=tmp_path, env=extra_plugin)
    assert_one_line_error(
        result,
        "entity type visitor cannot be shown: its plugin registers no load(id) "
        "(only get_or_create, which would create one)",
    )


def test_show_needs_a_stack(tmp_path: Path) -> None:
    result = webbugger("source", "show", "campaign:c1", state_dir=tmp_path)
    assert_one_line_error(result, "no local stack is running: start it with `make run`")


# --- url redirect --target url:... ------------------------------------------------------------------


def _claims(stdout: str, mode: str = "r") -> tokens.TokenClaims:
    url = stdout.strip()
    assert url.startswith(f"{API_URL}/{mode}/")
    token = url.removeprefix(f"{API_URL}/{mode}/").removesuffix(".gif")
    return tokens.verify(token, tokens.KeyRing.from_json(json.dumps(RING)))


@pytest.mark.parametrize("allowed", [None, "", " , "])
def test_url_target_needs_allowed_hosts(running_stack: Path, allowed: str | None) -> None:
    env = {} if allowed is None else {"ALLOWED_REDIRECT_HOSTS": allowed}
    result = webbugger(
        "url", "redirect", "--target", "url:https://example.com/", state_dir=running_stack, env=env
    )
    assert_one_line_error(
        result,
        "ALLOWED_REDIRECT_HOSTS is empty or not set: set it to the hosts the stack may redirect to, "
        "comma-separated, as in the stack's AllowedRedirectHosts parameter",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "https://evil.example.net/",
            "host 'evil.example.net' is not allowed: ALLOWED_REDIRECT_HOSTS allows only example.com, "
            "*.example.org",
        ),
        (
            "https://example.org/",  # *.example.org is the subdomains only
            "host 'example.org' is not allowed: ALLOWED_REDIRECT_HOSTS allows only example.com, "
            "*.example.org",
        ),
        ("javascript:alert(1)", "URL must start with http:// or https://"),
        ("https://user@example.com/", "URL must not carry user information (user@host)"),
        ("https://example.com/a b", "URL contains spaces, control characters or backslashes"),
    ],
)
def test_url_target_refused(running_stack: Path, url: str, message: str) -> None:
    env = {"ALLOWED_REDIRECT_HOSTS": "example.com,*.example.org"}
    for mode in ("redirect", "pixel"):
        result = webbugger("url", mode, "--target", f"url:{url}", state_dir=running_stack, env=env)
        assert_one_line_error(result, message)


def test_url_target_signs_the_normalised_url(running_stack: Path) -> None:
    env = {"ALLOWED_REDIRECT_HOSTS": "Example.COM, *.example.org"}
    result = webbugger(
        "url", "redirect", "--target", "url:HTTPS://Example.com/ä?q=1", state_dir=running_stack, env=env
    )
    assert result.returncode == 0, result.stderr
    claims = _claims(result.stdout)
    assert claims.mode is Mode.REDIRECT
    assert claims.target == Ref("url", "https://example.com/%C3%A4?q=1")

    result = webbugger(
        "url", "redirect", "--target", "url:https://news.example.org/x", state_dir=running_stack, env=env
    )
    assert result.returncode == 0, result.stderr
    assert _claims(result.stdout).target == Ref("url", "https://news.example.org/x")


# --- link create --utm/--forward-query: refused before the stack -------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--utm", "utm_foo=1"),
            "unknown UTM parameter 'utm_foo': use utm_source, utm_medium, "
            "utm_campaign, utm_term, utm_content",
        ),
        (
            ("--utm", "source=x"),
            "unknown UTM parameter 'source': use utm_source, utm_medium, utm_campaign, utm_term, utm_content",
        ),
        (("--utm", "utm_source"), "--utm expects KEY=VALUE, got 'utm_source'"),
        (("--utm", "=news"), "--utm expects KEY=VALUE, got '=news'"),
        (("--utm", "utm_medium="), "--utm utm_medium has an empty value"),
        (("--utm", "utm_source=a", "--utm", "utm_source=b"), "--utm utm_source given more than once"),
        (
            ("--forward-query", "--id", "bad\x07id"),
            "invalid link id 'bad\\x07id': letters, digits, '-' and '_' only, at most 64 (it is the path "
            "of the link's short URL)",
        ),
    ],
)
def test_link_create_bad_options(tmp_path: Path, options: tuple[str, ...], message: str) -> None:
    result = webbugger("link", "create", "https://example.com/", *options, state_dir=tmp_path)
    assert_one_line_error(result, message)


def test_link_create_options_in_help(tmp_path: Path) -> None:
    result = webbugger("link", "create", "--help", state_dir=tmp_path)
    assert result.returncode == 0
    assert "--forward-query" in result.stdout
    assert "--utm KEY=VALUE" in result.stdout


# --- how records are printed ----------------------------------------------------------------------


def test_record_fields_of_a_model_without_to_record() -> None:
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    link = Link(id="l1", url="https://example.com/", created_at=created, utm={"utm_source": "news"})
    fields = record_fields(link)
    assert next(iter(fields)) == "id"
    assert fields["url"] == "https://example.com/"
    assert fields["created_at"] == "2024-05-01T12:00:00+00:00"
    assert fields["utm"] == {"utm_source": "news"}
    assert fields["disabled"] is False
    json.dumps(fields)


def test_record_fields_prefers_to_record_then_dataclass_fields() -> None:
    class WithRecord:
        def to_record(self) -> dict[str, object]:
            return {"id": "a", "seen": {"b", "a"}}

    @dataclasses.dataclass
    class Plain:
        id: str
        when: datetime

    assert record_fields(WithRecord()) == {"id": "a", "seen": ["a", "b"]}
    when = datetime(2024, 1, 2, tzinfo=UTC)
    assert record_fields(Plain("p", when)) == {"id": "p", "when": when.isoformat()}


def test_display_cells() -> None:
    assert display(jsonable(None)) == "-"
    assert display(jsonable({"b", "a"})) == "a, b"
    assert display(jsonable([])) == "-"
    assert display(jsonable(True)) == "yes"
    assert display(jsonable({"k": 1})) == "k=1"
