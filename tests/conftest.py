"""Test set-up shared by every test module.

The HF libraries read HF_ENDPOINT and friends at import time, so they are set here, when pytest imports
this file and before any test module imports transformers / datasets / huggingface_hub. The local Hub
server itself (tools/hub_server.py) is started lazily by the `hub_server` session fixture on the port
reserved here.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SESSION_TMP = Path(tempfile.mkdtemp(prefix="relevance-tests-"))
HUB_PORT = _free_port()
HUB_URL = f"http://127.0.0.1:{HUB_PORT}"
HUB_STORAGE = _SESSION_TMP / "hub-storage"

os.environ["HF_ENDPOINT"] = HUB_URL
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_TOKEN"] = "hf_local_test_token"
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf-home")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_DATASETS_OFFLINE", None)
os.environ.pop("TRANSFORMERS_OFFLINE", None)
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["WANDB_DISABLED"] = "true"
os.environ["DS_BUILD_OPS"] = "0"


# ----------------------------------------------------------------------------------------------------------
# The local Hub server (tools/hub_server.py), one per test session, on the port reserved above.
# ----------------------------------------------------------------------------------------------------------
# A proxy set for the outside world must not capture the calls to the local server.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1", "localhost"]))


class LocalHub:
    """The server as a subprocess: `python -m tools.hub_server`, its log in the session's temp folder."""

    def __init__(self, url: str, port: int, storage: Path, log_path: Path):
        self.url, self.port, self.storage, self.log_path = url, port, storage, log_path
        self.process = None

    def start(self, timeout: float = 60.0) -> None:
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.hub_server", "--storage", str(self.storage),
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub server exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    f"{self.url}/api/whoami-v2", timeout=2
                ):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"hub server did not answer on {self.url} within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, num_lines: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(lines[-num_lines:])


_LOCAL_HUB = LocalHub(HUB_URL, HUB_PORT, HUB_STORAGE, _SESSION_TMP / "hub-server.log")


@pytest.fixture(scope="session")
def hub_server():
    """URL of the running local Hub server (HF_ENDPOINT already points at it); stopped at session end."""
    _LOCAL_HUB.start()
    yield HUB_URL
    _LOCAL_HUB.stop()


@pytest.fixture
def hub_server_control(hub_server):
    """The `LocalHub` object behind `hub_server`, for tests that restart the server or read its log."""
    yield _LOCAL_HUB
    if _LOCAL_HUB.process is None:  # a test that stopped it must not break the tests after it
        _LOCAL_HUB.start()
