"""Copy-and-modify: `run_relevance.py` and `modeling_relevance.py`, copied alone into an empty folder, train a tiny
model on a folded dataset and predict with it, with nothing else of this repository importable.

Each command runs as a subprocess in that folder, PYTHONPATH empty, so `sys.path` holds the folder and the
installed packages only (the first command proves that `utils_data` cannot be imported there). A plain dataset
without the optional `exclude_from_train_folds` column trains too, with nothing purged.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from tests.tiny_models import make_tiny_decoder, make_tiny_folded_dataset

REPO = Path(__file__).resolve().parent.parent
FILES = ("run_relevance.py", "modeling_relevance.py")
TRAIN = ["--task", "qc", "--fold", "0", "--max_steps", "2", "--eval_steps", "2", "--save_steps", "2",
         "--max_length", "64", "--per_device_train_batch_size", "8", "--disable_tqdm", "true"]
PREDICT = """
import sys, datasets, modeling_relevance as mr
model, tokenizer, settings = mr.load_for_inference(sys.argv[1])
rows = datasets.load_from_disk(sys.argv[2])["train"].filter(lambda r: r["fold"] == 0)
p = mr.predict_probabilities(model, tokenizer, ["qc"] * len(rows), rows["query"], rows["target"],
                             template=settings["template"], max_length=settings["max_length"], show_progress=False)
print(",".join(f"{x:.6f}" for x in p))
"""


def run_in(folder: Path, *args) -> str:
    env = {**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


def test_two_files_train_and_predict_alone(tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in FILES:
        shutil.copy(REPO / name, folder / name)
    model = make_tiny_decoder(tmp_path / "model", arch="gemma3")
    folds = make_tiny_folded_dataset(tmp_path / "folds_qc", task="qc")
    raw = datasets.load_from_disk(folds)["train"]
    plain = tmp_path / "plain_qc"
    datasets.DatasetDict({"train": raw.remove_columns("exclude_from_train_folds")}).save_to_disk(str(plain))

    assert run_in(folder, "-c", "import sys; import importlib.util as u; print(u.find_spec('utils_data'), "
                  "sys.path[:2])").startswith("None ['', ")

    run_in(folder, "run_relevance.py", "--model_name_or_path", model, "--dataset_name", folds,
           "--output_dir", "out", *TRAIN)
    assert sorted(os.listdir(folder)) == ["modeling_relevance.py", "out", "run_relevance.py"]
    oof = pd.read_parquet(folder / "out" / "oof_predictions.parquet")
    predicted = run_in(folder, "-c", PREDICT, "out", folds)
    ids = [str(i) for i in raw.filter(lambda r: r["fold"] == 0)["id"]]
    by_id = dict(zip(ids, map(float, predicted.strip().splitlines()[-1].split(","))))
    np.testing.assert_allclose([by_id[i] for i in oof["id"]], oof["probability"], atol=1e-5)

    # Without exclude_from_train_folds: every row of the other folds trains (make_folds.py's purge is skipped).
    run_in(folder, "run_relevance.py", "--model_name_or_path", model, "--dataset_name", str(plain),
           "--output_dir", "out_plain", *TRAIN)
    metrics = json.loads((folder / "out_plain" / "metrics.json").read_text())
    purged = sum(1 for f, ex in zip(raw["fold"], raw["exclude_from_train_folds"]) if f != 0 and 0 not in ex)
    assert metrics["train"]["train_rows"] == sum(1 for f in raw["fold"] if f != 0) > purged
