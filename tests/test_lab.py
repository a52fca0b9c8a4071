"""`make lab`, the README's first command, starts the course: as root (containers, cloud notebooks), as an
ordinary user, with no browser to open (the URL is printed), and without JupyterLab's news pop-up.

Each test runs `make lab` itself (so it runs the Makefile's own command line) for a few seconds on a free
port, reads the URL the server prints, asks the server for it, and stops the server.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
URL = re.compile(r"(http://127\.0\.0\.1:\d+/)lab\?token=(\w+)")

pytestmark = pytest.mark.skipif(
    Path(sys.prefix).resolve() != VENV.resolve() or shutil.which("make") is None,
    reason="runs `make lab`, which uses the course's .venv: run the tests with `make test`",
)


def _start_lab(prefix: list[str] = ()) -> tuple[subprocess.Popen, str, str, list[str]]:
    """`make lab` on a free port, with no browser and no display; returns (process, base URL, token, log)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "JUPYTER_TOKEN")}
    with socket.socket() as s:  # a free port, so that the URL to ask is the one printed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*prefix, "make", "--no-print-directory", "lab", f"LAB_ARGS=--port={port}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        log.append(line.rstrip())
        # the block for people with no browser: "copy and paste one of these URLs"
        if (m := URL.search(line)) and any("copy and paste" in seen for seen in log):
            return proc, m.group(1), m.group(2), log
    _stop(proc)
    pytest.fail("`make lab` printed no URL to open:\n" + "\n".join(log[-20:]))


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _get(base: str, path: str, token: str) -> tuple[int, bytes]:
    for attempt in range(40):  # the URL is printed as the server starts listening: allow it a moment
        try:
            with urllib.request.urlopen(f"{base}{path}?token={token}", timeout=20) as r:
                return r.status, r.read()
        except urllib.error.URLError as e:
            if not isinstance(e.reason, ConnectionRefusedError) or attempt == 39:
                raise
            time.sleep(0.5)


def _answers(prefix: list[str] = ()) -> dict:
    proc, base, token, log = _start_lab(prefix)
    try:
        status, page = _get(base, "lab", token)
        assert status == 200 and b"JupyterLab" in page
        _, raw = _get(base, "lab/api/settings/@jupyterlab/apputils-extension:notification", token)
        return json.loads(raw)
    finally:
        _stop(proc)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the case of containers and cloud notebooks")
def test_make_lab_starts_as_root_and_prints_the_url():
    assert _answers()["id"] == "@jupyterlab/apputils-extension:notification"


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_make_lab_starts_as_an_ordinary_user():
    # A user namespace in which we are uid 1000: Jupyter sees an ordinary user, files stay readable.
    prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"] if os.geteuid() == 0 else []
    if prefix and subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("user namespaces are not available here")
    assert _answers(prefix)["id"] == "@jupyterlab/apputils-extension:notification"


def test_no_news_pop_up():
    """The setting JupyterLab's front end reads to decide whether to ask about news, as the server serves it:
    "false" (never fetch, never ask) instead of the default "none" (ask on first open)."""
    settings = _answers()
    defaults = settings["schema"]["properties"]
    assert defaults["fetchNews"]["default"] == "false"
    assert defaults["checkForUpdates"]["default"] is False
