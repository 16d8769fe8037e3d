"""Every row of docs/bad_inputs.md, run as a subprocess: its exit code, its message, no traceback, nothing left behind.

The table is the specification: each row's command runs in a fresh folder `{tmp}` holding the fixtures below, with
HF_ENDPOINT on the session's local Hub (`{hub}`). The commands fail before any model loads, so they are import-bound
(a few seconds each); they run two at a time.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "bad_inputs.md"

_QC_ROW = {"id": 1, "task": "QC", "language": "es", "origin_query": "pelucas lace",
           "category_path": "hair extensions & wigs,human hair wigs,lace front wigs", "label": 1}
_TEST_ROWS = [{k: v for k, v in _QC_ROW.items() if k != "label"} | {"id": i} for i in (1, 2, 3)]


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


# The fixtures named in docs/bad_inputs.md (paths relative to {tmp}).
FIXTURES = {
    # line 2 written in Latin-1: "café" ends with byte 0xe9
    "latin1.jsonl": _jsonl([_QC_ROW]) + json.dumps({**_QC_ROW, "id": 2, "origin_query": "café"},
                                                   ensure_ascii=False).encode("latin-1") + b"\n",
    "image.jsonl": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",  # a PNG renamed
    "unterminated.jsonl": _jsonl([_QC_ROW]) + b'{"id": 2, "origin_query": "abc',  # a file cut mid-line
    "full/notes.txt": b"not written by make_folds.py\n",
    "test_QC.jsonl": _jsonl(_TEST_ROWS),
    "model/config.json": b"{}",  # a folder where a model goes; these commands stop before they read it
    "submit_missing.txt": _jsonl([{k: v for k, v in row.items() if k != "task"} | {"prediction": 1}
                                  for row in _TEST_ROWS[:2]]),  # id 3 missing
    "pipeline_typo.yaml": b"name: demo\nouput_dir: outputs/demo\n",  # output_dir misspelt
    # a trained adapter as make_submission.py checks it (settings, a 2-row score head), its base model given relative
    # to another directory
    "adapter/relevance_config.json": json.dumps({"tasks": ["qc"], "num_labels": 2, "template": "instruct",
                                                 "max_length": 96, "base_model_name_or_path": ".cache/no/model"}
                                                ).encode(),
    "adapter/adapter_model.safetensors": save_safetensors({"base_model.model.score.weight": np.zeros((2, 4),
                                                                                                    np.float32)}),
}


def table_rows() -> list:
    """(bad input, command, exit code, message, left behind) of each row of the doc's tables."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("`") and cells[2].isdigit():
            what, command, code, message, left = cells
            left = [] if left == "nothing" else re.findall(r"`([^`]+)`", left)
            rows.append((what, command.strip("`"), int(code), message.strip("`"), left))
    return rows


ROWS = table_rows()


def write_fixtures(folder: Path) -> dict:
    for name, data in FIXTURES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return files_in(folder)


def files_in(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run_row(command: str, folder: Path, hub: str) -> dict:
    words = shlex.split(command.replace("{tmp}", str(folder)))
    env = {k: v for k, v in os.environ.items() if k != "RELEVANCE_DEBUG"}
    while "=" in words[0]:  # VAR=VALUE prefixes
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "python", command
    before = write_fixtures(folder)
    try:
        # Seconds on a quiet machine; the bound is for a machine shared with training jobs.
        result = subprocess.run([sys.executable, *words[1:]], cwd=REPO_ROOT, env=env, capture_output=True,
                                text=True, timeout=900)
        outcome = {"code": result.returncode, "stdout": result.stdout, "stderr": result.stderr}
    except subprocess.TimeoutExpired:
        outcome = {"code": None, "stdout": "", "stderr": "timed out after 900 s"}
    after = files_in(folder)
    outcome["changed"] = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    return outcome


@pytest.fixture(scope="module")
def results(request, hub_server, tmp_path_factory):
    """command -> (outcome, its {tmp}) for the rows selected in this session (`-k` runs a few), two at a time."""
    selected = {item.callspec.params["command"] for item in request.session.items
                if hasattr(item, "callspec") and "command" in item.callspec.params}
    commands = [command for _, command, _, _, _ in ROWS if command in selected]
    root = tmp_path_factory.mktemp("bad_inputs")
    folders = [root / f"row{i}" for i in range(len(commands))]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda args: run_row(*args, hub_server), zip(commands, folders)))
    return {command: (outcome, folder) for command, outcome, folder in zip(commands, outcomes, folders)}


def test_the_doc_has_rows_for_every_script():
    scripts = {shlex.split(command.split("python ", 1)[1])[0] for _, command, _, _, _ in ROWS}
    assert scripts == {"make_folds.py", "make_submission.py", "run_relevance.py", "run_translate.py",
                       "scripts/run_recipe.py"}
    assert len(ROWS) >= 20 and len({command for _, command, _, _, _ in ROWS}) == len(ROWS)
    assert sum("--init_adapter" in command for _, command, _, _, _ in ROWS) >= 5


@pytest.mark.parametrize("what, command, code, message, left", ROWS,
                         ids=[f"{command.split('.py')[0].split()[-1]}: {what}" for what, command, *_ in ROWS])
def test_bad_input(results, hub_server, what, command, code, message, left):
    outcome, folder = results[command]
    output = outcome["stdout"] + outcome["stderr"]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in outcome["stderr"].splitlines() if line.strip()]
    expected = message.replace("{tmp}", str(folder)).replace("{hub}", hub_server)
    assert (outcome["code"], lines[-1] if lines else "") == (code, expected), outcome["stderr"][-3000:]
    assert [line for line in lines if ": error: " in line] == [expected]  # one line says it, once
    assert outcome["changed"] == left
    if "--init_adapter" in command:
        # main() logs its arguments first thing: nothing on stdout means the run stopped while parsing the flags,
        # before any data or model loads.
        assert outcome["stdout"] == ""


def test_debug_variable_shows_the_traceback(tmp_path):
    env = {**os.environ, "RELEVANCE_DEBUG": "1"}
    result = subprocess.run([sys.executable, "make_folds.py", "--train_file", str(tmp_path / "missing.jsonl"),
                             "--output_dir", str(tmp_path / "out")], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "DataValidationError: " in result.stderr


@pytest.mark.parametrize("flags", [["--init_adapter", "./tapt"], ["--init_adapter=/no/such/tapt"],
                                   ["--model_name_or_path", "outputs/a/model"], ["--config", "recipe.yaml"]])
def test_a_missing_folder_stops_before_torch_loads(tmp_path, flags):
    (tmp_path / "recipe.yaml").write_text("init_adapter: ./tapt\nlearning_rate: 1.0e-4\n")
    result = subprocess.run([sys.executable, "-X", "importtime", str(REPO_ROOT / "run_relevance.py"), *flags,
                             "--output_dir", "out"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("run_relevance.py: error: --")
    assert "no such folder or Hub repo" in result.stderr.splitlines()[-1]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "huggingface_hub" in imported and not imported & {"torch", "transformers", "datasets", "numpy"}
    helped = subprocess.run([sys.executable, str(REPO_ROOT / "run_relevance.py"), *flags, "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0 and "--init_adapter" in helped.stdout  # --help whatever the flags name


def test_a_hub_id_the_hub_lacks_stops_before_torch_loads(tmp_path, hub_server):
    """A Hub-shaped name is asked about before the imports (one request to HF_ENDPOINT, here the local Hub)."""
    result = subprocess.run([sys.executable, "-X", "importtime", str(REPO_ROOT / "run_relevance.py"),
                             "--init_adapter", "someone/no-such-adapter", "--output_dir", "out"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("run_relevance.py: error: --init_adapter someone/no-such-adapter: no such folder or Hub "
                           f"repo ({hub_server} has no model repo someone/no-such-adapter")
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert not imported & {"torch", "transformers", "datasets", "numpy"}
    assert not (tmp_path / "out").exists()
