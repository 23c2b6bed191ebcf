"""Headless Chromium for the tests that look at a page: Debian's ``chromium`` (installed by
``make setup``), one process group per run, killed whole if it overruns, with no network to speak
of (no background networking, QUIC, sync or component updates)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

CHROMIUM_TIMEOUT_S = 90.0
WINDOW = (1200, 1600)


@dataclass
class Browser:
    returncode: int
    stdout: str
    stderr: str


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "chromium is not installed: `make setup` installs Debian's chromium "
            "(apt-get install chromium); without it no page can be checked in a browser"
        )
    return found


def run_browser(binary: str, work: Path, url: str, *extra: str, window: tuple[int, int] = WINDOW) -> Browser:
    """Headless Chromium on ``url``, in its own process group, killed whole if it overruns."""
    profile = work / f"profile-{uuid.uuid4().hex[:8]}"
    argv = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={window[0]},{window[1]}",
        *extra,
        url,
    ]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "HOME": str(work)},
    )
    try:
        stdout, stderr = process.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT_S:.0f} s on {url}")
    finally:
        # Whatever of its group (renderer, GPU, zygote) outlived it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return Browser(process.returncode, stdout, stderr)
