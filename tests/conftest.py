"""Launch the app once per test session (subprocess, free port) for the API and browser tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """A `python app.py` subprocess: its URL, and its output for checking that no traceback was printed."""

    def __init__(self, env_extra: dict[str, str] | None = None, name: str = "app", argv: tuple[str, ...] = ("app.py",)):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = ARTIFACTS / f"{name}-server.log"
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
               "GRADIO_ANALYTICS_ENABLED": "False", **(env_extra or {})}
        self._log = open(self.log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.startup_s = self._wait()

    def _wait(self, timeout: float = 180.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"app did not serve within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


@pytest.fixture(scope="session")
def app():
    running = RunningApp()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


# ---- tests/test_own_data.py's `training.explore` run, started with the session ---------------------------
EXPLORE: dict = {}


def pytest_collection_finish(session):
    """Start the `training.explore` run of tests/test_own_data.py (about a minute, mostly UMAP's one-thread JIT)
    as soon as the tests are collected: it overlaps the tests before it instead of adding its minute to the suite."""
    if any("explore_job" in getattr(item, "fixturenames", ()) for item in session.items):
        start_explore()


@pytest.fixture(scope="session")
def explore_job() -> dict:
    """The background `training.explore` run (this module's own EXPLORE: tests import conftest under another
    module name, so they take it from this fixture rather than importing it)."""
    return start_explore()


def start_explore() -> dict:
    """A 32x32 RGB shapes folder (class subfolders) and `python -m training.explore` on it (tiny epochs) into a
    checkpoint root that also holds the shipped MNIST folder (the app's default dataset); runs in the background."""
    import tempfile

    from tests.fake_data import write_shapes_folder

    if not EXPLORE:
        tmp = Path(tempfile.mkdtemp(prefix="explore-"))
        data = write_shapes_folder(tmp / "shapes", n=300)
        root = tmp / "checkpoints"
        root.mkdir()
        (root / "mnist").symlink_to(ROOT / "checkpoints" / "mnist")
        log = open(tmp / "explore.log", "w+")
        proc = subprocess.Popen([sys.executable, "-m", "training.explore", str(data), "--checkpoints", str(root),
                                 "--epochs", "2", "--k", "5", "--threads", "1"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=log, text=True)
        EXPLORE.update(tmp=tmp, data=data, root=root, proc=proc, log=log)
    return EXPLORE


def pytest_sessionfinish(session, exitstatus):
    if EXPLORE:
        import shutil

        if EXPLORE["proc"].poll() is None:
            EXPLORE["proc"].kill()
        EXPLORE["log"].close()
        shutil.rmtree(EXPLORE["tmp"], ignore_errors=True)
