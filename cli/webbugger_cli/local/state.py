"""What the local stack keeps under ``.local/`` and tells other processes (the CLI, tests).

- ``.local/ddb/``: DynamoDB Local's data files (survive restarts);
- ``.local/signing-keys.json``: the local signing key ring, made once (old URLs keep working);
- ``.local/visitor-salt``, ``.local/origin-secret``: the other secrets a deployment generates;
- ``.local/stack.json``: written while the stack runs: its URLs, table names and process id,
  under the same Outputs names a deployed stack has, its parameters and its plugins' types.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from webbugger_cli.template import find_project_root

LOCAL_REGION = "us-east-1"
STACK_NAME = "webbugger-local"


def state_dir() -> Path:
    """``.local/`` of the project (``WEBBUGGER_STATE_DIR`` overrides it, e.g. for tests)."""
    override = os.environ.get("WEBBUGGER_STATE_DIR")
    return Path(override) if override else find_project_root() / ".local"


def table_name(logical_id: str) -> str:
    """The local name of a template table."""
    return f"{STACK_NAME}-{logical_id}"


def _load_or_create(name: str, make: str, directory: Path | None) -> str:
    """A secret file of the local state: made on first use, private to the user, never rotated."""
    path = (directory or state_dir()) / name
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make)
    return make


def load_or_create_signing_keys(directory: Path | None = None) -> str:
    """The local key ring's JSON (old URLs keep working across restarts)."""
    ring = json.dumps({"current": "local1", "local1": secrets.token_urlsafe(36)})
    return _load_or_create("signing-keys.json", ring, directory)


def load_or_create_visitor_salt(directory: Path | None = None) -> str:
    """The local visitor-salt secret."""
    return _load_or_create("visitor-salt", secrets.token_urlsafe(36), directory)


def load_or_create_origin_secret(directory: Path | None = None) -> str:
    """The local stand-in for the secret CloudFront adds to every request it forwards: a request
    carrying it (header ``x-webbugger-origin-secret``) may say the viewer's address and country."""
    return _load_or_create("origin-secret", secrets.token_urlsafe(36), directory)


@dataclass(frozen=True)
class LocalStack:
    """A running local stack, as other processes find it."""

    api_url: str
    dynamodb_endpoint: str
    pid: int
    outputs: dict[str, str] = field(default_factory=dict)
    # Where this stack keeps its state (.local/ unless overridden): its secrets live there.
    state_dir: str = ""
    # What its functions see of the template's parameters and of WEBBUGGER_PLUGINS ("" when
    # unset), for the CLI to see the same; None when not recorded (a stack a test starts).
    parameters: dict[str, str] | None = None
    # The types its plugins registered, as `webbugger types --json` lists them (kind, name,
    # hooks, origin): the CLI loads only the plugins a URL names (bench/cli.py). None: unknown.
    types: list[dict[str, str | None]] | None = None

    def environment(self, signing_keys: str) -> dict[str, str]:
        """Variables that point the core at this stack (tables, endpoint, keys, fake credentials)."""
        directory = Path(self.state_dir) if self.state_dir else None
        salt = load_or_create_visitor_salt(directory)
        return {
            "BEACONS_TABLE": self.outputs["BeaconsTableName"],
            "LINKS_TABLE": self.outputs["LinksTableName"],
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "WEBBUGGER_SIGNING_KEYS": signing_keys,
            "WEBBUGGER_VISITOR_SALT": salt,
            "WEBBUGGER_ORIGIN_SECRET": load_or_create_origin_secret(directory),
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            # DynamoDB Local accepts any credentials; never let a real profile be used by mistake.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }


def _running_path(directory: Path | None) -> Path:
    return (directory or state_dir()) / "stack.json"


def write_running(stack: LocalStack, directory: Path | None = None) -> None:
    """Announce a running stack."""
    path = _running_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(stack), indent=2))


def clear_running(directory: Path | None = None) -> None:
    """Withdraw the announcement (on shutdown)."""
    _running_path(directory).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_running(directory: Path | None = None) -> LocalStack | None:
    """The running local stack, or None when none runs (a stale file is ignored)."""
    path = _running_path(directory)
    try:
        data = json.loads(path.read_text())
        stack = LocalStack(**data)
    except (OSError, ValueError, TypeError):
        return None
    return stack if _alive(stack.pid) else None
