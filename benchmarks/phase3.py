#!/usr/bin/env python
"""Phase-3 table (issue 14): recipe arms on several validation folds, with and without the stacker.

Reads the run_relevance.py folders `RUNS_DIR/p3_<task>_<arm>_f<fold>` written by `benchmarks/recipe_experiments.sh`,
pools each arm's out-of-fold rows over its folds, and reports AUC, CE against the prior, F1 at 0.5, cross-fitted
F1 (make_submission.py's thresholds, fitted on the other folds) against all-positive, per-language F1, and the
same after make_submission.py's stacker (`--combiner stack`: the features model, trained on every row of the other
folds, blended with the arm's score by a logistic fit cross-fitted over the arm's folds). Differences
against the reference arm and against all-positive come with paired bootstrap 95 % intervals over the rows.

    python benchmarks/phase3.py --task qc --dataset_name outputs/folds_qc_dev --runs_dir outputs/recipe \
        --arms ref,ancestors --output_file outputs/recipe/phase3_qc.md
    # a multitask arm (runs p3_qcqi_multitask_f*): its rows of --task, against that task's reference
    python benchmarks/phase3.py --task qi --dataset_name outputs/folds_qi_dev --arms ref,qcqi_multitask
    # two runs of each fold averaged (here two seeds): `a+b` is the mean of the arms' probabilities, row by row
    python benchmarks/phase3.py --task qc --dataset_name outputs/folds_qc_dev --arms ref,seed43,ref+seed43
    # the cheap pair features alone, all rows, every fold (what the LLM must beat)
    # with the zero-shot PMI of benchmarks/pmi.py, alone and blended with each arm's score
    python benchmarks/phase3.py --task qc --dataset_name outputs/folds_qc_dev --arms ref --pmi_file outputs/recipe/pmi_qc.parquet
    python benchmarks/phase3.py --task qi --dataset_name outputs/folds_qi_dev --features_baseline \
        --output_file outputs/recipe/features_qi.md
"""

import glob
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, log_loss, roc_auc_score
from transformers import HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import make_submission as ms  # noqa: E402
from utils_data import load_folded_dataset  # noqa: E402


@dataclass
class Phase3Arguments:
    task: str = field(metadata={"help": "qc or qi."})
    dataset_name: str = field(metadata={"help": "The folded dataset the runs were trained on (for the row texts)."})
    runs_dir: str = field(default="outputs/recipe", metadata={"help": "Folder of the p3_* run folders."})
    arms: str = field(default="ref", metadata={"help": "Comma-separated arms; the first is the reference. "
                                                                "a+b: the mean of arms a's and b's probabilities."})
    threshold_strategy: str = field(default="global", metadata={"help": "Cross-fitted thresholds: global or "
                                                                        "per_language (make_submission.py)."})
    bootstrap: int = field(default=2000, metadata={"help": "Paired bootstrap resamples."})
    seed: int = field(default=42, metadata={"help": "Seed of the bootstrap and the stacker."})
    output_file: Optional[str] = field(default=None, metadata={"help": "Markdown table; a .json beside it."})
    pmi_file: Optional[str] = field(
        default=None,
        metadata={"help": "benchmarks/pmi.py's output: adds 'PMI only' and '<arm> + PMI' (a logistic blend of the "
                  "arm's score with the PMI, cross-fitted over the arm's folds like the stacker)."},
    )
    features_baseline: bool = field(
        default=False,
        metadata={"help": "Instead: the stacker's pair features alone (no model score), trained on every training "
                  "row of the other folds (purged as run_relevance.py does) and scored on each fold in turn."},
    )


def load_arm(args, arm: str) -> tuple:
    """Pooled OOF rows of an arm's runs, and per-run facts (fold, rows, wall time, command, code version).

    An arm named with its own task prefix (`qcqi_multitask`: runs `p3_qcqi_multitask_f*`) is a multitask run: only
    its rows of --task are read, and its pooled training prior is not reported (the reference's stands in).
    `a+b` is the mean of arms a's and b's probabilities on the same rows: an ensemble of runs within each fold."""
    if "+" in arm:
        members = [load_arm(args, a) for a in arm.split("+")]
        oof = members[0][0].copy()
        for other, _ in members[1:]:
            if list(other["id"]) != list(oof["id"]) or list(other["label"]) != list(oof["label"]):
                raise SystemExit(f"--arms {arm}: its arms scored different rows; an ensemble needs the same rows")
        oof["probability"] = np.mean([m[0]["probability"].to_numpy() for m in members], axis=0)
        facts = []
        for per_fold in zip(*(m[1] for m in members)):  # one fact per fold: the members' runs of that fold
            priors = [f["prior"] for f in per_fold if f["prior"] is not None]
            facts.append({**per_fold[0], "run": "+".join(f["run"] for f in per_fold), "members": list(per_fold),
                          "prior": float(np.mean(priors)) if priors else None,
                          "train_s": sum(float(f["train_s"] or 0) for f in per_fold)})
        return oof, facts
    runs = sorted(glob.glob(os.path.join(args.runs_dir, f"p3_{args.task}_{arm}_f[0-9]")))
    multitask = not runs
    if multitask:
        runs = sorted(glob.glob(os.path.join(args.runs_dir, f"p3_{arm}_f[0-9]")))
    frames, facts = [], []
    for run in runs:
        path = os.path.join(run, ms.OOF_FILE)
        if not os.path.isfile(path):
            continue
        frame = pd.read_parquet(path)
        frames.append(frame[frame["task"].str.lower() == args.task].reset_index(drop=True) if multitask else frame)
        metrics = json.load(open(os.path.join(run, "metrics.json")))
        read = lambda name: open(os.path.join(run, name)).read().strip() if os.path.isfile(os.path.join(run, name)) else ""  # noqa: E731
        facts.append({"run": os.path.basename(run), "train_rows": metrics["train"].get("train_rows"),
                      "val_rows": len(frames[-1]), "prior": None if multitask else metrics["eval"].get("train_prior"),
                      "train_s": metrics["train"].get("train_runtime"), "wall_s": read("wall_s.txt"),
                      "command": read("command.txt"), "code_version": read("code_version.txt")})
    if not frames:
        raise SystemExit(f"no finished run p3_{args.task}_{arm}_f* in {args.runs_dir}")
    oof = pd.concat(frames, ignore_index=True)
    oof["id"] = oof["id"].astype(str)
    return oof.sort_values("id").reset_index(drop=True), facts


def summarise(oof: pd.DataFrame, prior: float, strategy: str, seed: int) -> dict:
    labels, probability = oof["label"].to_numpy(), oof["probability"].to_numpy()
    predictions = ms.cross_fitted_predictions(oof, strategy, 200, 0.5, seed)
    per_language = {lang: round(f1_score(labels[m], predictions[m]), 3)
                    for lang in sorted(oof["language"].unique()) for m in [oof["language"].to_numpy() == lang]}
    per_fold = {int(k): roc_auc_score(g["label"], g["probability"]) for k, g in oof.groupby("fold")}
    return {"rows": len(oof), "auc": roc_auc_score(labels, probability), "auc_per_fold": per_fold,
            "ce": log_loss(labels, probability),
            "prior_ce": log_loss(labels, np.full(len(labels), prior)), "f1_05": f1_score(labels, probability >= 0.5),
            "xfit_f1": f1_score(labels, predictions), "all_pos_f1": f1_score(labels, np.ones_like(labels)),
            "positive_rate_predicted": float(predictions.mean()), "per_language_xfit_f1": per_language,
            "_predictions": predictions}


def fast_f1(labels, predictions) -> float:
    """F1 of the positive class for 0/1 arrays (sklearn's f1_score costs milliseconds a call)."""
    labels, predictions = np.asarray(labels, dtype=bool), np.asarray(predictions, dtype=bool)
    return 2 * (labels & predictions).sum() / max(labels.sum() + predictions.sum(), 1)


def paired_bootstrap(labels, a, b, metric, n: int, seed: int) -> list:
    """95 % interval of metric(b) - metric(a) over row resamples (a, b: scores or predictions on the same rows)."""
    rng = np.random.RandomState(seed)
    diffs = []
    for _ in range(n):
        idx = rng.randint(0, len(labels), len(labels))
        if labels[idx].min() == labels[idx].max():
            continue
        diffs.append(metric(labels[idx], b[idx]) - metric(labels[idx], a[idx]))
    return [round(float(np.percentile(diffs, 2.5)), 4), round(float(np.percentile(diffs, 97.5)), 4)]


def language_auc_table(results: dict, reference: str, arms: list, args) -> list:
    """AUC per language of each arm against the reference on the same rows (a lever such as translation acts on
    some languages only); intervals from the same paired row bootstrap, within each language."""
    base = results[reference]["_oof"]
    languages = sorted(base["language"].unique())
    if len(languages) < 2:
        return []
    others = [a for a in arms if a != reference]
    lines = ["", "AUC per language, each arm against the reference on the same rows (arm - ref [95 %]):", "",
             "| language | rows | " + " | ".join([reference] + others) + " |", "|---|---|" + "---|" * (1 + len(others))]
    for lang in languages:
        mask = (base["language"] == lang).to_numpy()
        labels = base["label"].to_numpy()[mask]
        if labels.min() == labels.max():
            continue
        ref_scores = base["probability"].to_numpy()[mask]
        ref_auc = roc_auc_score(labels, ref_scores)
        cells = [f"{ref_auc:.3f}"]
        for arm in others:
            if not results[arm]["same_rows_as_reference"]:
                cells.append("other rows")
                continue
            scores = results[arm]["_oof"]["probability"].to_numpy()[mask]
            ci = paired_bootstrap(labels, ref_scores, scores, roc_auc_score, args.bootstrap, args.seed)
            arm_auc = roc_auc_score(labels, scores)
            results[arm].setdefault("auc_minus_ref_per_language", {})[lang] = [round(arm_auc - ref_auc, 4), ci]
            cells.append(f"{arm_auc:.3f} ({arm_auc - ref_auc:+.3f} {ci})")
        lines.append(f"| {lang} | {int(mask.sum())} | " + " | ".join(cells) + " |")
    return lines


def features_baseline(args, split) -> str:
    """The features model alone on every row of every fold: what a model must beat without any LLM."""
    scores, _ = ms.feature_scores(args.task, split, args.seed)
    oof = split.select_columns(["id", "fold", "language", "label"]).to_pandas()
    oof = oof.assign(probability=ms.oof_feature_scores(oof, scores, args.dataset_name))
    r = summarise(oof, float(oof["label"].mean()), args.threshold_strategy, args.seed)
    per_fold = {int(k): round(roc_auc_score(g["label"], g["probability"]), 3) for k, g in oof.groupby("fold")}
    return (f"Task {args.task.upper()}, features model alone ({len(oof)} rows, folds {sorted(per_fold)}, each scored "
            f"by a model fitted on the other folds' rows): AUC {r['auc']:.3f} (per fold {per_fold}), CE "
            f"{r['ce']:.3f} (in-sample prior {r['prior_ce']:.3f}), x-fit F1 {r['xfit_f1']:.3f} vs all-positive "
            f"{r['all_pos_f1']:.3f}, F1 at 0.5 {r['f1_05']:.3f}; per-language x-fit F1 {r['per_language_xfit_f1']}")


def main():
    (args,) = HfArgumentParser(Phase3Arguments).parse_args_into_dataclasses()
    split = load_folded_dataset(args.dataset_name)["train"]
    if args.features_baseline:
        line = features_baseline(args, split)
        print(line)
        if args.output_file:
            with open(args.output_file, "w", encoding="utf-8") as f:
                f.write(line + "\n")
        return
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    results, reference, reference_prior = {}, None, None
    feature_scores, _ = ms.feature_scores(args.task, split, args.seed)
    pmi = None
    if args.pmi_file:
        pmi = pd.read_parquet(args.pmi_file).assign(id=lambda d: d["id"].astype(str)).set_index("id")["pmi"]
    for arm in arms:
        oof, facts = load_arm(args, arm)
        priors = [f["prior"] for f in facts if f["prior"] is not None]
        if not priors and reference is None:
            raise SystemExit(f"--arms: put a single-task arm first (its prior stands in for {arm}'s)")
        prior = float(np.mean(priors)) if priors else reference_prior
        if reference is None:
            reference_prior = prior
        features = ms.oof_feature_scores(oof, feature_scores, args.dataset_name)
        variants = {arm: oof,
                    f"{arm} + stack": oof.assign(probability=ms.cross_fitted_blend(oof, features, args.seed))}
        if reference is None:  # the features model alone on the same rows (trained on the other folds' rows)
            variants["features only"] = oof.assign(probability=features)
        if pmi is not None and oof["id"].isin(pmi.index).all():
            values = pmi.loc[oof["id"]].to_numpy()
            as_probability = 1 / (1 + np.exp(-values / values.std()))  # the blend reads its logit (clipped)
            variants[f"{arm} + PMI"] = oof.assign(probability=ms.cross_fitted_blend(oof, as_probability, args.seed))
            if reference is None:
                variants["PMI only"] = oof.assign(probability=as_probability)
        for name, frame in variants.items():
            results[name] = {**summarise(frame, prior, args.threshold_strategy, args.seed), "facts": facts,
                             "_oof": frame}
        reference = reference or arm

    # Paired intervals: each variant against the reference arm (same rows), and against all-positive.
    base = results[reference]["_oof"]
    labels = base["label"].to_numpy()
    for name, result in results.items():
        frame = result["_oof"]
        same_rows = list(frame["id"]) == list(base["id"])
        result["same_rows_as_reference"] = same_rows
        result["xfit_f1_minus_all_pos_ci"] = paired_bootstrap(
            labels if same_rows else frame["label"].to_numpy(), np.ones(len(frame), dtype=int),
            result["_predictions"], fast_f1, args.bootstrap, args.seed)
        if name != reference and same_rows:
            result["auc_minus_ref_ci"] = paired_bootstrap(labels, base["probability"].to_numpy(),
                                                          frame["probability"].to_numpy(), roc_auc_score,
                                                          args.bootstrap, args.seed)
            result["xfit_f1_minus_ref_ci"] = paired_bootstrap(labels, results[reference]["_predictions"],
                                                              result["_predictions"], fast_f1, args.bootstrap,
                                                              args.seed)

    lines = [f"Task {args.task.upper()}: {', '.join(arms)}; folds pooled; thresholds {args.threshold_strategy}, "
             "cross-fitted over the folds; 95 % paired bootstrap intervals "
             f"({args.bootstrap} resamples of the rows).", "",
             "| variant | folds | train / val rows | train s | AUC (per fold) | AUC - ref [95 %] | CE (prior) | F1@0.5 | "
             "x-fit F1 | all-pos F1 | x-fit - all-pos [95 %] | x-fit - ref [95 %] | per-language x-fit F1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        facts = r["facts"]
        folds = ",".join(re.sub(r".*_f", "", f["run"]) for f in facts)
        rows = " + ".join(f"{f['train_rows']}/{f['val_rows']}" for f in facts)
        train_s = " + ".join(f"{float(f['train_s']):.0f}" for f in facts if f["train_s"])
        ci = lambda key: f" {r[key]}" if key in r else ""  # noqa: E731
        delta = lambda key, value: f"{value:+.3f}{ci(key)}" if key in r else ""  # noqa: E731
        lines.append(
            f"| {name} | {folds} | {rows} | {train_s} | {r['auc']:.3f} "
            f"({', '.join(f'{v:.3f}' for v in r['auc_per_fold'].values())}) | "
            f"{delta('auc_minus_ref_ci', r['auc'] - results[reference]['auc'])} | {r['ce']:.3f} ({r['prior_ce']:.3f}) "
            f"| {r['f1_05']:.3f} | {r['xfit_f1']:.3f} | {r['all_pos_f1']:.3f} | "
            f"{r['xfit_f1'] - r['all_pos_f1']:+.3f} {r['xfit_f1_minus_all_pos_ci']} | "
            f"{delta('xfit_f1_minus_ref_ci', r['xfit_f1'] - results[reference]['xfit_f1'])} | "
            f"{' '.join(f'{k} {v:.2f}' for k, v in r['per_language_xfit_f1'].items())} |")
    lines += language_auc_table(results, reference, arms, args)
    lines += ["", "Runs (command and code version beside each run's outputs):", ""]
    listed = set()
    for arm in arms:
        for f in [run for fact in results[arm]["facts"] for run in fact.get("members", [fact])]:
            if f["run"] in listed:
                continue
            listed.add(f["run"])
            lines.append(f"- `{f['run']}` (code {f['code_version'].splitlines()[0] if f['code_version'] else '?'}"
                         f"{', edited' if len(f['code_version'].splitlines()) > 1 else ''}, wall {f['wall_s']} s): "
                         f"`{f['command']}`")
    table = "\n".join(lines)
    print(table)
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            f.write(table + "\n")
        clean = {name: {k: v for k, v in r.items() if not k.startswith("_")} for name, r in results.items()}
        with open(os.path.splitext(args.output_file)[0] + ".json", "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "results": clean}, f, indent=2, default=float)


if __name__ == "__main__":
    main()
