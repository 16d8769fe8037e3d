#!/usr/bin/env python
"""Score phase-3 runs on the rows of their validation fold that no run was scored on: a check on fresh rows.

A phase-3 QI run validates on a seeded 2,000-row subset of its fold (`--max_eval_samples 2000`); every comparison
and choice of docs/recipe_experiments.md was made on those rows. The rest of the fold (about 8,000 rows per fold)
was never trained on (the fold is held out) and never scored. This script scores them with the runs' adapters
through `make_submission.py` (one call per fold and group of runs that share a base model, `--split test`,
thresholds chosen on the runs' own OOF rows), and writes each run's fresh-row probabilities as
`OUTPUT_DIR/runs/p3_<task>_<arm>_f<fold>/oof_predictions.parquet` with the run's metrics.json beside it, so that
`benchmarks/phase3.py --runs_dir OUTPUT_DIR/runs` gives the same table on the fresh rows:

    python benchmarks/fresh_rows.py --task qi --dataset_name outputs/folds_qi_dev --runs_dir outputs/recipe \
        --arms ref,l12 --folds 0 --output_dir outputs/fresh_qi     # one fold per process: two side by side
    python benchmarks/phase3.py --task qi --dataset_name outputs/folds_qi_dev --runs_dir outputs/fresh_qi/runs \
        --arms ref,l12 --output_file outputs/fresh_qi/phase3_fresh.md
    # the submission protocol on the fresh rows: each make_submission.py call's ensemble and thresholds (chosen on
    # its runs' OOF rows), F1 pooled over the folds against all-positive
    python benchmarks/fresh_rows.py --task qi --dataset_name outputs/folds_qi_dev --arms ref,l12 --folds 0,1 \
        --output_dir outputs/fresh_qi --summary true

Fresh rows share queries with the fold's scored rows (the subset is drawn by row), never with training rows.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import datasets
import numpy as np
import pandas as pd
from transformers import HfArgumentParser

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import modeling_relevance as mr  # noqa: E402
from utils_data import load_folded_dataset  # noqa: E402

OOF_FILE = "oof_predictions.parquet"
RUN_FILES = ("metrics.json", "relevance_config.json", "command.txt", "code_version.txt", "wall_s.txt")


@dataclass
class FreshRowsArguments:
    task: str = field(metadata={"help": "qc or qi (QC runs validate on every row of their fold: nothing is fresh)."})
    dataset_name: str = field(metadata={"help": "The folded dataset the runs were trained on."})
    arms: str = field(metadata={"help": "Comma-separated arms: runs RUNS_DIR/p3_<task>_<arm>_f<fold>."})
    runs_dir: str = field(default="outputs/recipe", metadata={"help": "Folder of the p3_* run folders."})
    folds: str = field(default="0,1", metadata={"help": "Comma-separated validation folds to score."})
    output_dir: str = field(default="outputs/fresh", metadata={"help": "Datasets, make_submission outputs, runs/."})
    max_rows: Optional[int] = field(default=None, metadata={"help": "Seeded subset of each fold's fresh rows."})
    seed: int = field(default=42, metadata={"help": "Seed of the --max_rows subset and of the bootstrap."})
    python: str = field(default=sys.executable, metadata={"help": "Interpreter that runs make_submission.py."})
    summary: bool = field(
        default=False,
        metadata={"help": "Score nothing: read the folds' make_submission.py outputs in --output_dir and write "
                  "submission_protocol.md (each call's submitted F1 on the fresh rows against all-positive)."},
    )
    bootstrap: int = field(default=2000, metadata={"help": "Paired bootstrap resamples of --summary."})

    def __post_init__(self):
        if self.task not in mr.TASKS:
            raise SystemExit(f"--task: one of {mr.TASKS}, got {self.task!r}")


def fresh_split(train: datasets.Dataset, runs: list, fold: int, args) -> datasets.Dataset:
    """Rows of the fold that none of the runs scored; every run must have scored the same rows."""
    scored = [set(pd.read_parquet(os.path.join(run, OOF_FILE))["id"].astype(str)) for run in runs]
    if any(ids != scored[0] for ids in scored[1:]):
        raise SystemExit(f"fold {fold}: the runs {runs} scored different rows; give arms scored on the same rows")
    ids, folds = [str(i) for i in train["id"]], train["fold"]
    keep = [i for i, (row_id, k) in enumerate(zip(ids, folds)) if k == fold and row_id not in scored[0]]
    fresh = train.select(keep)
    if args.max_rows is not None and args.max_rows < len(fresh):
        fresh = fresh.shuffle(seed=args.seed).select(range(args.max_rows))
    print(f"fold {fold}: {len(fresh)} fresh rows ({len(scored[0])} scored by the runs, {len(keep)} unscored)")
    return fresh


def summary(args) -> None:
    """Each make_submission.py call (a group of runs, one per fold) as a submission: its predictions on the fresh
    rows, pooled over the folds, F1 against all-positive with a paired bootstrap interval over the rows."""
    import make_submission as ms
    from benchmarks.phase3 import fast_f1, paired_bootstrap
    from sklearn.metrics import roc_auc_score

    groups = {}  # arms of the call -> [(fold, predictions with labels, thresholds report)]
    for fold in (int(k) for k in args.folds.split(",")):
        labels = load_folded_dataset(os.path.join(args.output_dir, f"data_f{fold}"))["test"]
        labels = dict(zip((str(i) for i in labels["id"]), labels["label"]))
        for score_dir in sorted(d for d in os.listdir(args.output_dir) if d.startswith(f"score_f{fold}_")):
            report = json.load(open(os.path.join(args.output_dir, score_dir, f"thresholds_{args.task}.json")))
            frame = pd.read_parquet(os.path.join(args.output_dir, score_dir, f"predictions_{args.task}.parquet"))
            frame["label"] = [labels[str(i)] for i in frame["id"]]
            arms = "+".join(os.path.basename(a).removeprefix(f"p3_{args.task}_").removesuffix(f"_f{fold}")
                            for a in report["adapters"])
            groups.setdefault(arms, []).append((fold, frame, report))
    lines = [f"Task {args.task.upper()}, fresh rows of folds {args.folds}: the mean of each group of runs, its "
             "thresholds chosen by make_submission.py (strategy auto) on OOF rows, applied to rows no run was scored "
             "on. 'own fold': each fold's call as run, thresholds from that fold's OOF rows; 'all folds': thresholds "
             "from every fold's OOF rows pooled, as a pipeline's submission chooses them. 95 % paired bootstrap over "
             f"the rows ({args.bootstrap} resamples).", "",
             "| runs (mean) | rows | AUC (per fold) | thresholds from | strategy | F1 | all-pos F1 | F1 - all-pos [95 %] |",
             "|---|---|---|---|---|---|---|---|"]
    for arms, parts in groups.items():
        frame = pd.concat([p[1] for p in parts], ignore_index=True)
        y, ones = frame["label"].to_numpy(), np.ones(len(frame), dtype=int)
        per_fold = ", ".join(f"{roc_auc_score(p[1]['label'], p[1]['probability']):.3f}" for p in parts)
        auc = f"{roc_auc_score(y, frame['probability']):.3f} ({per_fold})"
        # Every fold's OOF rows pooled (seeds of a fold averaged row by row), one choice for all fresh rows.
        oof_files = [os.path.join(a, ms.OOF_FILE) for p in parts for a in p[2]["adapters"]]
        defaults = ms.PredictionArguments()  # make_submission.py's own defaults: strategy auto, fixed threshold
        report = ms.choose_thresholds(ms.read_oof_predictions(oof_files, args.task), defaults)
        pooled = (frame["probability"].to_numpy() >= ms.row_thresholds(
            frame["language"].to_numpy(), report, report["strategy"], defaults.threshold)).astype(int)
        for source, strategy, submitted in (
                ("own fold", ", ".join(str(p[2]["strategy"]) for p in parts), frame["prediction"].to_numpy()),
                (f"all folds ({report['oof_rows']} rows)", report["strategy"], pooled)):
            ci = paired_bootstrap(y, ones, submitted, fast_f1, args.bootstrap, args.seed)
            f1, all_pos = fast_f1(y, submitted), fast_f1(y, ones)
            lines.append(f"| {arms} | {len(y)} | {auc} | {source} | {strategy} | {f1:.3f} | {all_pos:.3f} | "
                         f"{f1 - all_pos:+.3f} {ci} |")
    path = os.path.join(args.output_dir, "submission_protocol.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines) + f"\n(written to {path})")


def main():
    (args,) = HfArgumentParser(FreshRowsArguments).parse_args_into_dataclasses()
    if args.summary:
        return summary(args)
    train = load_folded_dataset(args.dataset_name)["train"]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for fold in (int(k) for k in args.folds.split(",")):
        # 1. The runs of this fold, and the rows none of them scored, as the `test` split of a folded dataset.
        runs = {arm: os.path.join(args.runs_dir, f"p3_{args.task}_{arm}_f{fold}") for arm in arms}
        missing = [run for run in runs.values() if not os.path.isfile(os.path.join(run, OOF_FILE))]
        if missing:
            raise SystemExit(f"no finished run (no {OOF_FILE}) in {missing}")
        data_dir = os.path.join(args.output_dir, f"data_f{fold}")
        fresh = fresh_split(train, list(runs.values()), fold, args)
        if not os.path.isdir(data_dir):
            datasets.DatasetDict({"train": train, "test": fresh}).save_to_disk(data_dir)
        elif sorted(map(str, load_folded_dataset(data_dir)["test"]["id"])) != sorted(map(str, fresh["id"])):
            raise SystemExit(f"{data_dir} holds other fresh rows than these arms': use another --output_dir")

        # 2. make_submission.py once per group of runs on the same base model (e.g. 9 and 12 layers).
        groups = {}
        for arm, run in runs.items():
            settings = mr.read_settings(run)
            groups.setdefault(tuple(str(settings.get(k)) for k in mr.SHARED_SETTINGS), []).append(arm)
        for members in groups.values():  # named after the runs: a later call with other arms adds, never replaces
            score_dir = os.path.join(args.output_dir, f"score_f{fold}_{'+'.join(members)}")
            flags = ["--task", args.task, "--dataset_name", data_dir, "--split", "test", "--write_submission",
                     "false", "--adapters", ",".join(runs[a] for a in members), "--output_dir", score_dir]
            shown = ["python", "make_submission.py", *flags]  # the record: no interpreter or home path
            print("==", shlex.join(shown), flush=True)
            start = time.time()
            # From the repository root, as the runs were trained (their base model path may be relative to it).
            absolute = [os.path.abspath(f) if f in (data_dir, score_dir) else f for f in flags]
            absolute[absolute.index("--adapters") + 1] = ",".join(os.path.abspath(runs[a]) for a in members)
            subprocess.run([args.python, "make_submission.py", *absolute], check=True, cwd=REPO_ROOT)
            seconds = round(time.time() - start)

            # 3. Each run's column as a phase-3 run folder: the run's files, its fresh rows as OOF rows.
            predictions = pd.read_parquet(os.path.join(score_dir, f"predictions_{args.task}.parquet"))
            rows = load_folded_dataset(data_dir)["test"].select_columns(["id", "fold", "task", "language", "label"])
            rows = rows.to_pandas().assign(id=lambda d: d["id"].astype(str))
            if list(rows["id"]) != list(predictions["id"].astype(str)):
                raise SystemExit(f"{score_dir}: predictions are not in the test split's row order")
            for arm, column in zip(members, run_columns(predictions, members, runs)):
                out = os.path.join(args.output_dir, "runs", os.path.basename(runs[arm]))
                os.makedirs(out, exist_ok=True)
                for name in RUN_FILES:
                    if os.path.isfile(os.path.join(runs[arm], name)):
                        shutil.copy(os.path.join(runs[arm], name), out)
                rows.assign(probability=predictions[column].to_numpy()).to_parquet(os.path.join(out, OOF_FILE))
                with open(os.path.join(out, "fresh_rows.json"), "w") as f:
                    json.dump({"scored_by": shlex.join(shown), "seconds_for_group": seconds, "rows": len(rows)}, f, indent=2)
    print(f"done: phase-3 run folders in {os.path.join(args.output_dir, 'runs')}")


def run_columns(predictions: pd.DataFrame, members: list, runs: dict) -> list:
    """The probability column of each run in make_submission.py's predictions file."""
    import make_submission as ms

    columns = [f"probability_{name}" for name in ms.adapter_names([runs[a] for a in members])]
    absent = [c for c in columns if c not in predictions.columns]
    if absent:
        raise SystemExit(f"columns {absent} not in the predictions ({list(predictions.columns)})")
    return columns


if __name__ == "__main__":
    main()
