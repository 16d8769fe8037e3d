"""`make demo` end to end, shortened: scripts/demo.py drives scripts/run_recipe.py through the whole demo pipeline
(folds, translation, TAPT, fold training, ensemble, submission, report) with a tiny random model instead of
Gemma-3-270m and 2 optimizer steps per run, on its own local Hub server. Then: a rerun skips every step, a failing
step and a SIGTERM both leave no Hub server behind.
"""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from tiny_models import make_tiny_decoder

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import demo  # noqa: E402  (scripts/demo.py)
import make_submission as ms  # noqa: E402

SAMPLE = REPO_ROOT / "data" / "sample"
# Few steps and short inputs: the wiring is under test here, not the model. One TAPT direction (QI -> QC) instead
# of both: every training run costs a launcher and a trainer process (~10 s of CPU even for a tiny model), and
# this keeps the test under 3 minutes on 2 cores. The demo itself runs both directions.
# The recipe keeps 9 of Gemma-3-270m's layers; the tiny model has 2.
TINY_ARGS = ["--set", "translate.max_new_tokens=4", "stages.tapt.tasks=[qi]", "stages.cv.tasks=[qc]",
             "--train_args", "--max_steps 2 --max_length 64 --num_hidden_layers 2"]
NUM_STEPS = 8  # folds and translation for both tasks, TAPT qi, 2 QC folds, submission
STAGE_REPOS = ["demo-tapt-qi-foldall", "demo-cv-qc-fold0", "demo-cv-qc-fold1"]


def sample_texts():
    texts = []
    for path in SAMPLE.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            texts += [row["origin_query"], row.get("category_path") or "", row.get("item_title") or ""]
    return texts


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_decoder(tmp_path_factory.mktemp("tiny") / "model", texts=sample_texts())


def run_demo(out, model, *extra, timeout=900):
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "demo.py"), "--output_dir", str(out),
           "--model_name_or_path", str(model), *TINY_ARGS, *extra]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def hub_answers(out):
    with open(Path(out) / demo.DEMO_TIMINGS) as f:
        endpoint = json.load(f)["hub_endpoint"]
    return demo.hub_answers(endpoint)


@pytest.fixture(scope="module")
def demo_run(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = run_demo(out, tiny_model)
    assert result.returncode == 0, f"demo failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return out, result


def test_demo_end_to_end(demo_run):
    out, result = demo_run
    report = out / "report.md"
    assert result.stdout.rstrip().endswith(f"Report: {report}")

    # The submission: the QC file passes the checker against the raw test file (no QI fold models, so no zip).
    rows = ms.load_reference_rows("qc", test_file=str(SAMPLE / "test_QC.jsonl"))
    summary = ms.check_submission(str(out / "submission" / "submit_QC.txt"), rows, "qc")
    assert summary["rows"] == len(rows) > 0

    # Everything travelled through the demo's Hub: datasets and adapters are there, training read the folds and
    # the TAPT adapter from it, and the submission ensembled the fold adapters pulled from it.
    storage = out / "hub" / "repos"
    for task in ("qc", "qi"):
        assert (storage / "datasets" / "demo" / f"demo-folds-{task}" / "repo.json").is_file()
        assert (storage / "datasets" / "demo" / f"demo-folds-{task}-en" / "repo.json").is_file()
    for name in STAGE_REPOS:
        assert (storage / "models" / "demo" / name / "repo.json").is_file(), name
    settings = json.loads((out / "cv" / "qc" / "fold0" / "relevance_config.json").read_text())
    assert settings["init_adapter"] == "demo/demo-tapt-qi-foldall"
    assert settings["dataset_name"] == ["demo/demo-folds-qc-en"]
    thresholds = json.loads((out / "submission" / "thresholds_qc.json").read_text())
    assert thresholds["adapters"] == ["demo/demo-cv-qc-fold0", "demo/demo-cv-qc-fold1"]

    # The report: its F1 table agrees with the OOF predictions, the plot is a PNG it links to.
    text = report.read_text()
    assert "| task | fold | rows | AUC | F1 at 0.5 | F1 all-pos |" in text
    for fold in (0, 1):
        oof = pd.read_parquet(out / "cv" / "qc" / f"fold{fold}" / "oof_predictions.parquet")
        expected = f1_score(oof["label"], oof["probability"] >= 0.5, zero_division=0)
        auc = roc_auc_score(oof["label"], oof["probability"])
        all_positive = f1_score(oof["label"], [1] * len(oof))
        assert f"| QC | fold {fold} | {len(oof)} | {auc:.3f} | {expected:.3f} | {all_positive:.3f} |" in text
    assert "- **QC**: out-of-fold AUC " in text  # this shortened demo trains QC folds only
    # The most confident errors, with their language and text.
    errors = text.split("## Most confident out-of-fold errors")[1].split("\n## ")[0]
    assert "| error | P(relevant) | language | query | target |" in errors
    assert "| false positive |" in errors or "| false negative |" in errors
    assert "| submit_QC.txt | 210 |" in text and "passed against data/sample/test_QC.jsonl" in text
    assert "| submit_QI.txt | - | - | missing |" in text
    assert "![F1 against the threshold](f1_vs_threshold.png)" in text
    assert (out / "f1_vs_threshold.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| pipeline | cv qc fold1 | done |" in text
    assert "model `demo/demo-tapt-qi-foldall`" in text

    # The server is gone, the run is recorded as a success.
    timings = json.loads((out / demo.DEMO_TIMINGS).read_text())
    assert timings["status"] == "ok"
    assert not hub_answers(out)
    # How fast this machine was, so that demo times can be compared across runs.
    assert timings["matmul_gflops_per_thread"] > 0
    assert f"fp32 matmul {timings['matmul_gflops_per_thread']} GFLOP/s per thread at the start" in text


def test_demo_rerun_skips_every_step(demo_run, tiny_model):
    out, _ = demo_run
    adapter = out / "cv" / "qc" / "fold0" / "adapter_model.safetensors"
    before = adapter.stat().st_mtime_ns
    report_before = (out / "report.md").stat().st_mtime_ns
    result = run_demo(out, tiny_model)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # Every data and training step is skipped (the driver redoes a submission without submit.zip, which needs
    # both tasks: not checked here).
    assert result.stdout.count(": skipped, ") >= NUM_STEPS - 1
    assert result.stdout.count("adapter on the Hub") == len(STAGE_REPOS)
    assert adapter.stat().st_mtime_ns == before
    # The report is rewritten and still shows the time each skipped step took when it ran.
    assert (out / "report.md").stat().st_mtime_ns > report_before
    line = next(l for l in (out / "report.md").read_text().splitlines() if l.startswith("| pipeline | cv qc fold1 |"))
    assert "skipped (adapter on the Hub" in line and "it took" in line, line
    assert not hub_answers(out)


def test_demo_failure_stops_the_hub(tiny_model, tmp_path):
    # The driver refuses a pipeline whose data file is missing: it fails with the server already running.
    result = run_demo(tmp_path / "out", tiny_model, "--set", "data.qc.train_file=data/sample/missing.jsonl")
    assert result.returncode != 0
    assert "failed: run_recipe.py exited with" in result.stdout
    assert "Stopped the local Hub server" in result.stdout
    timings = json.loads((tmp_path / "out" / demo.DEMO_TIMINGS).read_text())
    assert timings["status"].startswith("failed")
    assert not hub_answers(tmp_path / "out")
    assert not (tmp_path / "out" / "report.md").exists()


def test_demo_sigterm_stops_the_driver_and_the_hub(tiny_model, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-u", str(REPO_ROOT / "scripts" / "demo.py"), "--output_dir", str(out),
           "--model_name_or_path", str(tiny_model), *TINY_ARGS]
    process = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:  # wait until the driver runs its first step
        lines.append(line)
        if f"step 1/{NUM_STEPS} folds qc" in line:
            break
    process.send_signal(signal.SIGTERM)
    lines += process.stdout.readlines()
    assert process.wait(timeout=120) == 128 + signal.SIGTERM, "".join(lines)
    text = "".join(lines)
    assert "interrupted by SIGTERM" in text and "Stopped the local Hub server" in text
    group = int(next(line for line in lines if "process group" in line).rsplit(" ", 1)[1].rstrip(")\n"))
    deadline = time.monotonic() + 30  # the group's last members may take a moment to be reaped
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"process group {group} of the driver is still alive")
    assert not hub_answers(out)


@pytest.mark.parametrize(
    "environ, cores, busy, threads",
    [
        ({}, 2, 0.05, 2),  # idle 2-core machine: one model at a time runs faster on both cores
        ({}, 2, 1.02, 1),  # another single-threaded job on the second core: 2 threads were 3.8x slower
        ({}, 2, 0.6, 1),  # rounded: a job that started half a second ago already counts
        ({}, 2, 2.0, 1),  # both cores busy: never fewer than one
        ({}, 8, 2.4, 6),
        ({"DEMO_THREADS": "2"}, 2, 1.0, 2),  # forced, whatever the load
        ({"OMP_NUM_THREADS": "3"}, 2, 0.0, 3),
    ],
)
def test_demo_threads_are_the_free_cores(monkeypatch, environ, cores, busy, threads):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(demo.psutil, "cpu_count", lambda: cores)
    monkeypatch.setattr(demo.psutil, "cpu_percent", lambda interval: 100 * busy / cores)
    # the load average lags a minute behind: a job that just ended must not cost the demo a thread
    monkeypatch.setattr(os, "getloadavg", lambda: (cores, cores, cores))
    chosen, why = demo.choose_threads(environ)
    assert chosen == threads
    assert why.startswith(("DEMO_THREADS=", "OMP_NUM_THREADS=")) == bool(environ)


def test_overrides():
    pipe = {"translate": {"batch_size": 16}, "stages": [{"name": "tapt", "args": None}, {"name": "cv"}]}
    demo.apply_override(pipe, "translate.batch_size=4")
    demo.apply_override(pipe, "stages.*.args.max_steps=2")
    demo.apply_override(pipe, "stages.cv.tasks=[qc]")
    demo.apply_override(pipe, "folds.num_folds=3")
    assert pipe["translate"]["batch_size"] == 4 and pipe["folds"] == {"num_folds": 3}
    assert [s["args"] for s in pipe["stages"]] == [{"max_steps": 2}, {"max_steps": 2}]
    assert pipe["stages"][1]["tasks"] == ["qc"] and "tasks" not in pipe["stages"][0]
    with pytest.raises(ValueError, match="no stage named 'nope'"):
        demo.apply_override(pipe, "stages.nope.args.x=1")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        demo.apply_override(pipe, "translate.batch_size")
