"""Test set-up shared by every test module.

The HF libraries read HF_ENDPOINT and friends at import time, so they are set here, when pytest imports
this file and before any test module imports transformers / datasets / huggingface_hub. The local Hub
server itself (tools/hub_server.py) is started lazily by the `hub_server` session fixture on the port
reserved here.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
# tools.hub_server imports no HF library (its main() imports transformers lazily), so this precedes the variables.
from tools.hub_server import LocalHub, free_port  # noqa: E402


_SESSION_TMP = Path(tempfile.mkdtemp(prefix="relevance-tests-"))
HUB_PORT = free_port()
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


_LOCAL_HUB = LocalHub(HUB_STORAGE, _SESSION_TMP / "hub-server.log", port=HUB_PORT)


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


def pytest_sessionfinish(session, exitstatus):
    """The session's folder (Hub storage and log, HF_HOME and its caches) goes with the session."""
    _LOCAL_HUB.stop()  # already stopped by the fixture, unless the session was interrupted
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
