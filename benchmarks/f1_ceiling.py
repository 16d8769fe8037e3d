#!/usr/bin/env python
"""How much ranking power does beating "everything is relevant" on F1 take? (issue 14)

Under an equal-variance binormal score model (positives' scores N(d, 1), negatives' N(0, 1), so AUC = Phi(d / sqrt 2))
the best F1 that any threshold can reach depends only on the AUC and the positive rate p. This script tabulates that
ceiling against all-positive's F1 (2p / (1 + p)) and solves for the AUC at which the ceiling is all-positive + a
margin. The ceiling is what an oracle threshold gets on infinitely many rows: a cross-fitted threshold gets less.
With --runs it puts measured out-of-fold rows beside the model: their AUC, the binormal ceiling at that AUC, and the
best F1 of any threshold on those very rows (an oracle too, shown only to check the model, never a result).

    python benchmarks/f1_ceiling.py                       # the positive rates of ../shared/data/{qc,qi}_dev.jsonl
    python benchmarks/f1_ceiling.py --runs "outputs/recipe/p3_qc_ref_f*,outputs/recipe/p3_qi_ref_f*" \
        --output_file outputs/recipe/f1_ceiling.md
"""

import glob
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from transformers import HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import modeling_relevance as mr  # noqa: E402


@dataclass
class CeilingArguments:
    label_files: str = field(
        default="../shared/data/qc_dev.jsonl,../shared/data/qi_dev.jsonl",
        metadata={"help": "Comma-separated JSONL files with a 0/1 `label`; each file's positive rate gets a row. "
                  "Missing files are skipped with a message."},
    )
    prevalence: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated positive rates to use instead of --label_files."}
    )
    margin: float = field(default=0.02, metadata={"help": "The F1 gain over all-positive to solve the AUC for."})
    aucs: str = field(default="0.60,0.65,0.70,0.75,0.80,0.85,0.90",
                      metadata={"help": "Comma-separated AUCs of the ceiling table."})
    runs: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated globs of run_relevance.py output folders; each one's "
                  "oof_predictions.parquet is checked against the model."},
    )
    output_file: Optional[str] = field(default=None, metadata={"help": "Markdown output; a .json beside it."})

    def __post_init__(self):
        if not 0 < self.margin < 1:
            raise SystemExit(f"--margin {self.margin}: give a gain between 0 and 1, e.g. 0.02")
        try:
            self.auc_grid = [float(a) for a in self.aucs.split(",")]
            self.rates = None if self.prevalence is None else [float(p) for p in self.prevalence.split(",")]
        except ValueError as e:
            raise SystemExit(f"--aucs / --prevalence: {e}; give comma-separated numbers, e.g. 0.7,0.8")
        if not all(0.5 <= a < 1 for a in self.auc_grid):
            raise SystemExit(f"--aucs {self.aucs}: every AUC must lie in [0.5, 1)")
        if self.rates is not None and not all(0 < p < 1 for p in self.rates):
            raise SystemExit(f"--prevalence {self.prevalence}: every rate must lie strictly between 0 and 1")


def all_positive_f1(p):
    return 2 * p / (1 + p)


def binormal_best_f1(auc, p):
    """Best F1 over all thresholds, positives N(d, 1) and negatives N(0, 1) with AUC = Phi(d / sqrt 2)."""
    d = np.sqrt(2) * norm.ppf(auc)
    t = np.linspace(-8.0, d + 8.0, 20001)  # the low end is "everything relevant" to float precision
    tpr, fpr = norm.sf(t - d), norm.sf(t)
    return float(np.max(2 * p * tpr / (p + p * tpr + (1 - p) * fpr)))


def auc_needed(p, margin):
    """The AUC at which the binormal ceiling is all-positive's F1 + margin (None if even AUC 0.9999 falls short)."""
    goal = all_positive_f1(p) + margin
    if goal >= 1 or binormal_best_f1(0.9999, p) < goal:
        return None
    return brentq(lambda a: binormal_best_f1(a, p) - goal, 0.5 + 1e-9, 0.9999, xtol=1e-5)


def positive_rates(args):
    if args.rates is not None:
        return [(f"p = {p}", p) for p in args.rates]
    rates = []
    for path in args.label_files.split(","):
        if not os.path.exists(path):
            print(f"skipped {path}: not found (pass --prevalence to give a rate instead)")
            continue
        labels = pd.read_json(path, lines=True)["label"]
        rates.append((f"{os.path.basename(path)} ({len(labels)} rows)", float(labels.mean())))
    if not rates:
        raise SystemExit("no label file found: pass --label_files or --prevalence")
    return rates


def main(args):
    lines = [f"Binormal F1 ceiling (best threshold, infinite rows) against all-positive; margin {args.margin}.", ""]
    rates = positive_rates(args)
    header = ["data", "positive rate", "all-pos F1"] + [f"ceiling at AUC {a:.2f}" for a in args.auc_grid]
    header.append(f"AUC for all-pos + {args.margin}")
    rows, record = [], {"margin": args.margin, "rates": [], "runs": []}
    for name, p in rates:
        ceilings = [binormal_best_f1(a, p) for a in args.auc_grid]
        needed = auc_needed(p, args.margin)
        rows.append([name, f"{p:.3f}", f"{all_positive_f1(p):.3f}"] + [f"{c:.3f} ({c - all_positive_f1(p):+.3f})"
                                                                       for c in ceilings]
                    + ["unreachable" if needed is None else f"{needed:.3f}"])
        record["rates"].append({"data": name, "p": p, "ceilings": dict(zip(args.auc_grid, ceilings)),
                                "auc_needed": needed})
    lines += ["| " + " | ".join(r) + " |" for r in [header, ["---"] * len(header)] + rows]
    if args.runs:
        folders = sorted({f for pattern in args.runs.split(",") for f in glob.glob(pattern)})
        folders = [f for f in folders if os.path.exists(os.path.join(f, "oof_predictions.parquet"))]
        if not folders:
            raise SystemExit(f"--runs {args.runs}: no folder with an oof_predictions.parquet")
        lines += ["", "Measured out-of-fold rows against the model (oracle F1: the best threshold chosen on the "
                  "rows themselves, to check the model, not a result):", "",
                  "| run | rows | positive rate | AUC | all-pos F1 | binormal ceiling | oracle F1 on the rows |",
                  "|---|---|---|---|---|---|---|"]
        for folder in folders:
            oof = pd.read_parquet(os.path.join(folder, "oof_predictions.parquet"))
            labels, scores = oof["label"].to_numpy(), oof["probability"].to_numpy()
            p, auc = float(labels.mean()), float(roc_auc_score(labels, scores))
            ceiling, oracle = binormal_best_f1(max(auc, 0.5), p), mr.best_threshold(labels, scores)[1]
            lines.append(f"| {os.path.basename(folder)} | {len(oof)} | {p:.3f} | {auc:.3f} | "
                         f"{all_positive_f1(p):.3f} | {ceiling:.3f} | {oracle:.3f} |")
            record["runs"].append({"run": folder, "rows": len(oof), "p": p, "auc": auc, "ceiling": ceiling,
                                   "oracle_f1": oracle})
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w") as f:
            f.write(text)
        with open(os.path.splitext(args.output_file)[0] + ".json", "w") as f:
            json.dump(record, f, indent=2)
    return record


if __name__ == "__main__":
    (args,) = HfArgumentParser(CeilingArguments).parse_args_into_dataclasses()
    main(args)
