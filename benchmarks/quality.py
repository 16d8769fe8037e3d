#!/usr/bin/env python
"""Quality benchmark: our pipeline against honest baselines, on the real dev data, with the project's own folds.

Every model number comes from the shipped scripts, run as subprocesses with the exact command lines recorded in
the output: `make_folds.py` folds the raw file, `run_relevance.py` trains each fold model (and the TAPT adapter),
`make_submission.py` scores the held-out rows with the fold ensemble and picks the thresholds on the OOF rows.

Protocol, per task (`qc_dev.jsonl`, `qi_dev.jsonl` under `--data_dir`; a missing file is skipped with a message):

1. `make_folds.py` splits the raw file into `--num_folds` category-aware / query-grouped folds. Fold `--test_fold`
   (default: the last) is the held-out TEST set: no model, threshold or choice ever sees it. Training rows whose
   query also sits in the test fold are dropped (make_folds.py's own purge lists). The remaining folds form a
   folded dataset on which `--num_fold_models` fold models are trained (validation folds 0, 1, ...); their
   out-of-fold (OOF) predictions are the only rows thresholds are tuned on.
2. Methods, all scored on the same TEST rows:
   - `all_positive`: predict 1 everywhere (F1 = 2p / (1 + p));
   - `tfidf@0.5` / `tfidf@tuned`: char n-gram TF-IDF of query and target (and their element-wise product) +
     logistic regression, one per fold model on that fold model's training rows, averaged; threshold 0.5, or
     tuned on the OOF rows by make_submission.py's own threshold code (`choose_thresholds`, auto strategy). Two row
     budgets: the LLM's training rows (`same rows`) and all training rows of the fold (`all rows`);
   - `seed`: the embedded Gemma-3-270m trained as the winners' code trains it: bare `query [SEP] target` template,
     fresh random score head, LoRA r16/alpha32 on all linear layers, lr 1e-5 constant, no translation, no TAPT
     (fresh adapter per fold), argmax (threshold 0.5), fold ensemble mean;
   - `ours`: the small-model recipe (`--recipe`), TAPT carried over from the other task (an adapter trained on the
     other task's training rows with `--fold -1`, passed as `--init_adapter`), translation where a `query_en` column
     exists (the dev files have none), fold ensemble, thresholds tuned on the OOF rows (`--threshold_strategy auto`).
   `seed` and `ours` get the same budget (rows, steps, batch size, max length): the budget flags are appended
   after the recipe and override it.
3. Reported: F1 of the ensemble on the TEST rows, per language, F1 of each fold model alone on the TEST rows (mean
   and standard deviation over fold models), OOF F1, wall time; `quality.md` and `quality.json` in `--output_dir`.

    # the default budget: both tasks, 2 fold models x 160 rows x 20 steps of 8, 100 OOF rows each, 300 test rows,
    # TAPT 20 steps: 28 min 39 s measured with one thread (benchmarks/README.md)
    python benchmarks/quality.py
    # a reduced run
    python benchmarks/quality.py --tasks qc --num_fold_models 2 --max_steps 12 --max_test_samples 150
    # a budget where the model learns: one epoch of every training row (QI: 8,000), about an hour per task
    python benchmarks/quality.py --tasks qc --max_train_samples 8000 --max_steps -1 --max_oof_samples 2000 \
        --tapt_steps -1 --tapt_train_samples 2000 --max_test_samples 2000 --output_dir outputs/benchmarks/learn_qc
"""

import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from transformers import HfArgumentParser

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import make_submission as ms  # noqa: E402
import run_relevance as rr  # noqa: E402
from benchmarks.phase3 import fast_f1, paired_bootstrap  # noqa: E402
from utils_data import load_folded_dataset  # noqa: E402

logger = logging.getLogger(__name__)

DATA_FILES = {"qc": "qc_dev.jsonl", "qi": "qi_dev.jsonl"}
OTHER_TASK = {"qc": "qi", "qi": "qc"}
METHODS = ("all_positive", "tfidf", "seed", "ours")
# The winners' training settings, as flags of run_relevance.py (the rest are its defaults: LoRA r16/alpha32/0.05 on
# all linear layers, batch 8, which are the winners' too).
SEED_FLAGS = ["--template", "bare", "--score_init", "random", "--learning_rate", "1e-5", "--lr_scheduler_type",
              "constant", "--warmup_steps", "0", "--use_translation", "false"]


@dataclass
class QualityArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder of qc_dev.jsonl / qi_dev.jsonl."})
    tasks: str = field(default="qc,qi", metadata={"help": "Tasks to benchmark, comma-separated (qc, qi)."})
    methods: str = field(
        default=",".join(METHODS), metadata={"help": f"Methods to run, comma-separated, among {METHODS}."}
    )
    model_name_or_path: str = field(
        default=".cache/models/gemma-3-270m",
        metadata={"help": "Base model of `seed` and `ours` (tools/prepare_model.py writes the default)."},
    )
    recipe: str = field(
        default="recipes/gemma3-270m.yaml", metadata={"help": "run_relevance.py recipe of `ours` (--config)."}
    )
    tapt: bool = field(
        default=True,
        metadata={"help": "`ours` starts each fold model from an adapter trained on the other task (TAPT carried)."},
    )
    num_folds: int = field(default=5, metadata={"help": "Folds make_folds.py builds (one of them is the test set)."})
    test_fold: int = field(default=-1, metadata={"help": "Fold held out as the test set (-1: the last fold)."})
    num_fold_models: int = field(
        default=2, metadata={"help": "Fold models per method (validation folds 0..N-1): the ensemble size."}
    )
    max_train_samples: int = field(default=160, metadata={"help": "Training rows per fold model (seeded subset)."})
    max_oof_samples: int = field(
        default=100, metadata={"help": "Validation (OOF) rows per fold model: the rows thresholds are tuned on."}
    )
    max_test_samples: int = field(default=300, metadata={"help": "Test rows scored (seeded subset of the test fold)."})
    max_steps: int = field(
        default=20, metadata={"help": "Optimiser steps per fold model (seed and ours alike); -1: one epoch of the rows."}
    )
    tapt_steps: int = field(
        default=20, metadata={"help": "Optimiser steps of the TAPT adapter (other task); -1: one epoch of its rows."}
    )
    tapt_train_samples: int = field(default=160, metadata={"help": "Training rows of the TAPT adapter."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Rows per optimiser step."})
    max_length: int = field(default=96, metadata={"help": "Maximum tokens per input (seed and ours alike)."})
    seed: int = field(default=42, metadata={"help": "Seed of folds, subsets and training."})
    output_dir: str = field(default="outputs/benchmarks", metadata={"help": "Where runs, quality.md/json go."})
    reuse: bool = field(
        default=True,
        metadata={"help": "Reuse folds and finished runs already in --output_dir (same flags: delete it otherwise)."},
    )
    python: str = field(default=sys.executable, metadata={"help": "Interpreter that runs the project's scripts."})


# ---------------------------------------------------------------------------------------------------------------
# Subprocesses (the shipped scripts) and data
# ---------------------------------------------------------------------------------------------------------------


def run_command(command: list, log_path: str, done_file: Optional[str], reuse: bool) -> dict:
    """Run one of the project's scripts; its output goes to `log_path`. Skipped when `done_file` exists (reuse)."""
    # The interpreter is shown as `python`: the recorded command must not carry this machine's paths.
    shown = ["python" if i == 0 and part == sys.executable else part for i, part in enumerate(command)]
    printable = " ".join(shlex.quote(part) for part in shown)
    if reuse and done_file and os.path.exists(done_file) and os.path.exists(log_path + ".wall"):
        seconds = float(open(log_path + ".wall").read())
        logger.info("reusing %s (%.0f s when it ran)", os.path.dirname(done_file), seconds)
        return {"command": printable, "wall_s": seconds, "reused": True}
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    logger.info("running: %s", printable)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        result = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        tail = "".join(open(log_path, errors="replace").readlines()[-30:])
        raise RuntimeError(f"command failed with code {result.returncode} (log {log_path}):\n{printable}\n{tail}")
    with open(log_path + ".wall", "w") as f:
        f.write(f"{seconds:.1f}")
    logger.info("done in %.0f s", seconds)
    return {"command": printable, "wall_s": seconds, "reused": False}


def make_benchmark_dataset(folds_dir: str, out_dir: str, test_fold: int, max_test: int, seed: int) -> dict:
    """Folded dataset without the test fold (`train`) + the test fold's rows, labelled (`test`)."""
    import datasets

    dataset = load_folded_dataset(folds_dir)["train"]
    folds = dataset["fold"]
    exclusions = dataset["exclude_from_train_folds"]
    train_idx = [i for i, (f, ex) in enumerate(zip(folds, exclusions)) if f != test_fold and test_fold not in ex]
    test_idx = [i for i, f in enumerate(folds) if f == test_fold]
    purged = len(folds) - len(train_idx) - len(test_idx)
    test = dataset.select(test_idx)
    if max_test and max_test < len(test):
        test = test.shuffle(seed=seed).select(range(max_test))
    # The test fold number would look like a training fold to run_relevance.py; it is never trained on.
    test = test.map(lambda _: {"fold": -1, "exclude_from_train_folds": []}, features=test.features)
    datasets.DatasetDict({"train": dataset.select(train_idx), "test": test}).save_to_disk(out_dir)
    info = {"train_rows": len(train_idx), "test_fold": test_fold, "test_fold_rows": len(test_idx),
            "test_rows_scored": len(test), "train_rows_purged_for_test_query_overlap": purged,
            "train_folds": sorted(set(folds[i] for i in train_idx))}
    logger.info("benchmark dataset %s: %s", out_dir, info)
    return info


def f1_by_language(labels, predictions, languages) -> dict:
    frame = pd.DataFrame({"label": labels, "prediction": predictions, "language": languages})
    return {lang: float(f1_score(g["label"], g["prediction"], zero_division=0))
            for lang, g in frame.groupby("language", sort=True)}


def score_test(labels, languages, probability, per_model: np.ndarray, thresholds: np.ndarray) -> dict:
    """Ensemble F1 on the test rows, per language, and each fold model's own F1 at the same thresholds."""
    from sklearn.metrics import roc_auc_score

    prediction = (probability >= thresholds).astype(int)
    # AUC says whether a model ranks pairs at all, whatever its threshold.
    auc = float(roc_auc_score(labels, probability)) if len(set(np.asarray(labels).tolist())) == 2 else None
    fold_f1 = [float(f1_score(labels, (per_model[:, j] >= thresholds).astype(int), zero_division=0))
               for j in range(per_model.shape[1])]
    labels, ones = np.asarray(labels), np.ones(len(labels), dtype=int)
    f1 = float(f1_score(labels, prediction, zero_division=0))
    return {"f1": f1, "roc_auc": auc,
            # the trivial submission on the same rows, with a paired row-bootstrap 95 % interval
            "f1_minus_all_positive": f1 - float(f1_score(labels, ones)),
            "f1_minus_all_positive_95": paired_bootstrap(labels, ones, prediction, fast_f1, 2000, 0),
            "per_language_f1": f1_by_language(labels, prediction, languages),
            "fold_model_f1": fold_f1, "fold_model_f1_mean": float(np.mean(fold_f1)),
            "fold_model_f1_std": float(np.std(fold_f1)), "predicted_positive_rate": float(prediction.mean())}


def threshold_args(strategy: str) -> ms.PredictionArguments:
    return ms.PredictionArguments(threshold_strategy=strategy)


# ---------------------------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------------------------


def tfidf_probabilities(train_rows: pd.DataFrame, rows: list) -> list:
    """Char n-gram TF-IDF of query and target and their element-wise product, logistic regression."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    # The product term is what lets a linear model see whether query and target share n-grams.
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True)
    vectorizer.fit(pd.concat([train_rows["query"], train_rows["target"]]))

    def features(frame):
        q, t = vectorizer.transform(frame["query"]), vectorizer.transform(frame["target"])
        return hstack([q, t, q.multiply(t)]).tocsr()

    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(features(train_rows), train_rows["label"])
    return [model.predict_proba(features(frame))[:, 1] for frame in rows]


def run_tfidf(args, task, data_dir, test: pd.DataFrame) -> dict:
    """One TF-IDF model per fold model, on exactly the rows run_relevance.py would use (its own split code)."""
    out = {}
    for budget, max_train in (("same rows", args.max_train_samples), ("all rows", None)):
        start = time.perf_counter()
        oof_frames, test_columns = [], []
        for fold in range(args.num_fold_models):
            script_args = rr.RelevanceArguments(dataset_name=[data_dir], task=task, fold=fold,
                                                max_train_samples=max_train, max_eval_samples=args.max_oof_samples,
                                                use_translation=False)
            train, oof_rows, _ = rr.load_task_datasets(script_args, [task], args.seed)
            train, oof_rows = train.to_pandas(), oof_rows.to_pandas()
            oof_p, test_p = tfidf_probabilities(train, [oof_rows, test])
            oof_frames.append(oof_rows[list(ms.OOF_COLUMNS[:-1])].assign(probability=oof_p))
            test_columns.append(test_p)
        oof = pd.concat(oof_frames, ignore_index=True)
        per_model = np.stack(test_columns, axis=1)
        probability = per_model.mean(axis=1)
        seconds = time.perf_counter() - start
        for name, strategy in (("tfidf@0.5", "fixed"), ("tfidf@tuned", "auto")):
            report = ms.choose_thresholds(oof, threshold_args(strategy))
            thresholds = ms.row_thresholds(test["language"].tolist(), report, report["strategy"], 0.5)
            result = score_test(test["label"].to_numpy(), test["language"].tolist(), probability, per_model,
                                thresholds)
            result.update({"threshold_strategy": report["strategy"], "oof_f1_at_0.5": report["in_sample_f1"]["fixed"],
                           "wall_s": seconds, "train_rows_per_fold_model": "LLM's" if max_train else "all",
                           "command": "in-process (scikit-learn), rows from run_relevance.load_task_datasets"})
            out[f"{name} ({budget})"] = result
    return out


def budget_flags(args, task, data_dir) -> list:
    return ["--model_name_or_path", args.model_name_or_path, "--dataset_name", data_dir, "--task", task,
            "--seed", str(args.seed), "--max_train_samples", str(args.max_train_samples),
            "--max_eval_samples", str(args.max_oof_samples), "--max_steps", str(args.max_steps),
            "--per_device_train_batch_size", str(args.per_device_train_batch_size),
            "--max_length", str(args.max_length), "--eval_strategy", "no", "--save_strategy", "no",
            "--load_best_model_at_end", "false", "--logging_steps", "5", "--report_to", "none"]


def run_llm_method(args, name, task, data_dir, test, run_root, extra_flags, threshold_strategy, tapt=None) -> dict:
    """Fold models with run_relevance.py, then the ensemble on the test rows with make_submission.py."""
    commands, seconds = [], 0.0
    if tapt is not None:
        commands.append(tapt)
        seconds += tapt["wall_s"]
    adapters, oof_f1 = [], []
    for fold in range(args.num_fold_models):
        out = os.path.join(run_root, f"fold{fold}")
        command = [args.python, "run_relevance.py", *extra_flags, *budget_flags(args, task, data_dir),
                   "--fold", str(fold), "--output_dir", out]
        step = run_command(command, os.path.join(run_root, f"fold{fold}.log"),
                           os.path.join(out, "oof_predictions.parquet"), args.reuse)
        commands.append(step)
        seconds += step["wall_s"]
        adapters.append(out)
        with open(os.path.join(out, "metrics.json")) as f:
            oof_f1.append(json.load(f)["eval"]["f1"])
    prediction_dir = os.path.join(run_root, "test")
    command = [args.python, "make_submission.py", "--task", task, "--dataset_name", data_dir, "--split", "test",
               "--adapters", ",".join(adapters), "--threshold_strategy", threshold_strategy,
               "--write_submission", "false", "--output_dir", prediction_dir]
    step = run_command(command, os.path.join(run_root, "test.log"),
                       os.path.join(prediction_dir, f"thresholds_{task}.json"), args.reuse)
    commands.append(step)
    seconds += step["wall_s"]

    predictions = pd.read_parquet(os.path.join(prediction_dir, f"predictions_{task}.parquet"))
    if predictions["id"].astype(str).tolist() != test["id"].astype(str).tolist():
        raise RuntimeError(f"{prediction_dir}: predictions are not in the order of the test rows")
    with open(os.path.join(prediction_dir, f"thresholds_{task}.json")) as f:
        report = json.load(f)
    per_model = predictions[[c for c in predictions.columns if c.startswith("probability_")]].to_numpy()
    result = score_test(test["label"].to_numpy(), test["language"].tolist(), predictions["probability"].to_numpy(),
                        per_model, predictions["threshold"].to_numpy())
    if abs(result["f1"] - report.get("split_f1", result["f1"])) > 1e-9:
        raise RuntimeError(f"{name}: F1 {result['f1']} differs from make_submission.py's split_f1 {report['split_f1']}")
    result.update({"threshold_strategy": report["strategy"], "oof_f1_at_0.5_per_fold": oof_f1,
                   "oof_cross_fitted_f1": report.get("cross_fitted_f1"), "wall_s": seconds,
                   "commands": [c["command"] for c in commands], "reused_runs": sum(c["reused"] for c in commands)})
    return result


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def markdown(results: dict, budget: dict) -> str:
    lines = ["# Quality benchmark", "", "Budget: " + ", ".join(f"{k} {v}" for k, v in budget.items()), ""]
    for task, task_result in results.items():
        if "skipped" in task_result:
            lines += [f"## {task.upper()}: skipped ({task_result['skipped']})", ""]
            continue
        info = task_result["dataset"]
        languages = sorted({lang for m in task_result["methods"].values() for lang in m["per_language_f1"]})
        lines += [f"## {task.upper()}", "",
                  f"Test: {info['test_rows_scored']} rows of fold {info['test_fold']} ({info['test_fold_rows']} rows), "
                  f"never trained or tuned on. Fold models validated (OOF) on folds "
                  f"{info['train_folds'][:args_models(task_result)]}, each trained on the other folds of "
                  f"{info['train_folds']}.", "",
                  "| method | test F1 (ensemble) | - all-pos [95 %] | fold models F1 mean ± sd | test AUC | threshold | "
                  "predicted pos. | wall s | " + " | ".join(languages) + " |",
                  "|---|---|---|---|---|---|---|---|" + "---|" * len(languages)]
        for name, m in task_result["methods"].items():
            spread = (f"{m['fold_model_f1_mean']:.3f} ± {m['fold_model_f1_std']:.3f}"
                      if m.get("fold_model_f1") else "n/a")
            langs = " | ".join(f"{m['per_language_f1'].get(lang, float('nan')):.3f}" for lang in languages)
            auc = "n/a" if m.get("roc_auc") is None else f"{m['roc_auc']:.3f}"
            gain = (f"{m['f1_minus_all_positive']:+.3f} [{m['f1_minus_all_positive_95'][0]:+.3f}, "
                    f"{m['f1_minus_all_positive_95'][1]:+.3f}]" if "f1_minus_all_positive" in m else "")
            lines.append(f"| {name} | {m['f1']:.3f} | {gain} | {spread} | {auc} | {m.get('threshold_strategy', '-')} | "
                         f"{m['predicted_positive_rate']:.2f} | {m.get('wall_s', 0):.0f} | {langs} |")
        lines.append("")
        for name, m in task_result["methods"].items():
            for command in m.get("commands", []):
                lines.append(f"- {name}: `{command}`")
        lines.append("")
    return "\n".join(lines)


def args_models(task_result: dict) -> int:
    return task_result.get("num_fold_models", 0)


def main():
    (args,) = HfArgumentParser(QualityArguments).parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(message)s", level=logging.INFO,
                        handlers=[logging.StreamHandler(sys.stdout)])
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if ("seed" in methods or "ours" in methods) and not os.path.isdir(os.path.join(REPO_ROOT, args.model_name_or_path)) \
            and not os.path.isdir(args.model_name_or_path):
        raise FileNotFoundError(f"{args.model_name_or_path}: no model folder; run `python tools/prepare_model.py`")
    if "ours" in methods and not os.path.exists(os.path.join(REPO_ROOT, args.recipe)):
        raise FileNotFoundError(f"--recipe {args.recipe}: no such file (the small-model recipe of `ours`)")
    output_dir = args.output_dir
    os.makedirs(output_dir, exist_ok=True)
    budget = {"tasks": tasks, "num_folds": args.num_folds, "fold_models_per_method": args.num_fold_models,
              "train_rows_per_fold_model": args.max_train_samples,
              "steps": args.max_steps if args.max_steps > 0 else "one epoch",
              "batch": args.per_device_train_batch_size, "max_length": args.max_length,
              "oof_rows_per_fold_model": args.max_oof_samples, "test_rows": args.max_test_samples,
              "tapt": (f"{args.tapt_steps} steps" if args.tapt_steps > 0 else "one epoch")
              + f" on {args.tapt_train_samples} rows of the other task" if args.tapt
              else "off", "threads": os.environ.get("OMP_NUM_THREADS"), "seed": args.seed}
    start_all = time.perf_counter()

    # 1. Folds (make_folds.py) and the benchmark datasets: train folds + labelled test fold, per task present.
    data_dirs, results = {}, {}
    for task in dict.fromkeys(tasks + ([OTHER_TASK[t] for t in tasks] if args.tapt and "ours" in methods else [])):
        raw = os.path.join(args.data_dir, DATA_FILES[task])
        if not os.path.exists(raw):
            logger.warning("%s: not found, task %s skipped", raw, task)
            if task in tasks:
                results[task] = {"skipped": f"{raw} not found"}
            continue
        folds_dir = os.path.join(output_dir, "folds", task)
        run_command([args.python, "make_folds.py", "--train_file", raw, "--num_folds", str(args.num_folds),
                     "--seed", str(args.seed), "--output_dir", folds_dir, "--overwrite_output_dir", "true"],
                    os.path.join(output_dir, "logs", f"make_folds_{task}.log"),
                    os.path.join(folds_dir, "fold_report.json"), args.reuse)
        data_dir = os.path.join(output_dir, "data", task)
        test_fold = args.test_fold if args.test_fold >= 0 else args.num_folds - 1
        if args.num_fold_models >= args.num_folds or test_fold < args.num_fold_models:
            raise ValueError(f"--num_fold_models {args.num_fold_models} needs folds 0..{args.num_fold_models - 1} "
                             f"besides the test fold {test_fold} among {args.num_folds} folds")
        info = make_benchmark_dataset(folds_dir, data_dir, test_fold, args.max_test_samples, args.seed)
        data_dirs[task] = (data_dir, info)

    for task in tasks:
        if task not in data_dirs:
            continue
        data_dir, info = data_dirs[task]
        test = load_folded_dataset(data_dir)["test"].to_pandas()
        labels, languages = test["label"].to_numpy(), test["language"].tolist()
        task_result = {"dataset": info, "num_fold_models": args.num_fold_models, "methods": {}}
        results[task] = task_result
        run_root = os.path.join(output_dir, "runs", task)

        # 2. Baselines.
        if "all_positive" in methods:
            ones = np.ones(len(labels), dtype=int)
            task_result["methods"]["all_positive"] = {
                "f1": float(f1_score(labels, ones)), "per_language_f1": f1_by_language(labels, ones, languages),
                "predicted_positive_rate": 1.0, "wall_s": 0.0}
        if "tfidf" in methods:
            task_result["methods"].update(run_tfidf(args, task, data_dir, test))

        # 3. Seed settings: the winners' training, argmax, fresh adapters.
        if "seed" in methods:
            task_result["methods"]["seed (winners' settings)"] = run_llm_method(
                args, "seed", task, data_dir, test, os.path.join(run_root, "seed"), SEED_FLAGS, "fixed")

        # 4. Ours: the recipe, TAPT from the other task, tuned thresholds, fold ensemble.
        if "ours" in methods:
            tapt, flags = None, ["--config", args.recipe]
            other = OTHER_TASK[task]
            if args.tapt and other in data_dirs:
                tapt_dir = os.path.join(run_root, "ours", f"tapt_{other}")
                command = [args.python, "run_relevance.py", "--config", args.recipe,
                           *budget_flags(args, other, data_dirs[other][0]), "--fold", "-1",
                           "--max_train_samples", str(args.tapt_train_samples), "--max_steps", str(args.tapt_steps),
                           "--output_dir", tapt_dir]
                tapt = run_command(command, os.path.join(run_root, "ours", f"tapt_{other}.log"),
                                   os.path.join(tapt_dir, "adapter_model.safetensors"), args.reuse)
                flags += ["--init_adapter", tapt_dir]
            elif args.tapt:
                logger.warning("task %s: no %s data, `ours` runs without TAPT", task, other)
            name = "ours (recipe + TAPT + tuned thr. + ensemble)" if tapt else "ours (recipe + tuned thr. + ensemble)"
            task_result["methods"][name] = run_llm_method(args, "ours", task, data_dir, test,
                                                          os.path.join(run_root, "ours"), flags, "auto", tapt)

    # 5. Report.
    budget["total_wall_s"] = round(time.perf_counter() - start_all, 1)
    with open(os.path.join(output_dir, "quality.json"), "w") as f:
        json.dump({"budget": budget, "arguments": asdict(args), "results": results}, f, indent=2, default=str)
    table = markdown(results, budget)
    with open(os.path.join(output_dir, "quality.md"), "w") as f:
        f.write(table + "\n")
    print("\n" + table)
    return results


if __name__ == "__main__":
    main()
