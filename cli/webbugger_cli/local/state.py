"""What the local stack keeps under ``.local/`` and tells other processes (the CLI, tests).

- ``.local/ddb/``: DynamoDB Local's data files (survive restarts);
- ``.local/signing-keys.json``: the local signing key ring, made once (old URLs keep working);
- ``.local/stack.json``: written while the stack runs: its URLs, table names and process id,
  under the same Outputs names a deployed stack has.
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


def load_or_create_signing_keys(directory: Path | None = None) -> str:
    """The local key ring's JSON; made on first use and kept private to the user."""
    path = (directory or state_dir()) / "signing-keys.json"
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    ring = json.dumps({"current": "local1", "local1": secrets.token_urlsafe(36)})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(ring)
    return ring


def load_or_create_visitor_salt(directory: Path | None = None) -> str:
    """The local visitor-salt secret; made on first use, kept private, never rotated."""
    path = (directory or state_dir()) / "visitor-salt"
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_urlsafe(36)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(salt)
    return salt


@dataclass(frozen=True)
class LocalStack:
    """A running local stack, as other processes find it."""

    api_url: str
    dynamodb_endpoint: str
    pid: int
    outputs: dict[str, str] = field(default_factory=dict)
    # Where this stack keeps its state (.local/ unless overridden): its secrets live there.
    state_dir: str = ""

    def environment(self, signing_keys: str) -> dict[str, str]:
        """Variables that point the core at this stack (tables, endpoint, keys, fake credentials)."""
        salt = load_or_create_visitor_salt(Path(self.state_dir) if self.state_dir else None)
        return {
            "BEACONS_TABLE": self.outputs["BeaconsTableName"],
            "LINKS_TABLE": self.outputs["LinksTableName"],
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "WEBBUGGER_SIGNING_KEYS": signing_keys,
            "WEBBUGGER_VISITOR_SALT": salt,
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
