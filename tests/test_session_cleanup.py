"""The test session leaves no /tmp/relevance-tests-* folder behind (tests/conftest.py removes it at the end)."""

import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_session_folder_is_removed(tmp_path):
    # A session of one test that starts the local Hub (so the folder holds its storage and log), with its
    # temporary folders under tmp_path; watched while it runs, to see the folder come and go.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "tests/test_hub_server.py::test_unknown_repo_revision_or_file_raise_client_errors"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    seen = set()
    while process.poll() is None:
        seen |= {path.name for path in tmp_path.glob("relevance-tests-*")}
        time.sleep(0.05)
    output = process.stdout.read()
    assert process.returncode == 0, output[-3000:]
    assert seen, "the session folder never appeared under TMPDIR"
    assert not list(tmp_path.glob("relevance-tests-*"))
