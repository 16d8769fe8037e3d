#!/usr/bin/env python
"""Learning curve: AUC against training rows, and how many rows a target AUC would take at the measured rate.

Reads phase-3 arms that differ only in their training rows (`benchmarks/recipe_experiments.sh p3_qc_rows1330_f0`
...: seeded subsets, one epoch, the same validation rows; the reference `ref` trains on every row), pools each arm's
out-of-fold rows over its folds like `benchmarks/phase3.py`, and reports, step by step from the smallest arm, the
AUC gain per doubling of the training rows with a paired bootstrap 95 % interval over the rows. The extrapolation
assumes the last step's gain per doubling holds (log-linear): where the gain per doubling shrinks from step to
step, the rows it gives are a lower bound.

    python benchmarks/learning_curve.py --task qc --arms rows1330,rows2660,rows5000,ref --target_auc 0.75 \
        --output_file outputs/recipe/learning_curve_qc.md
"""

import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from sklearn.metrics import roc_auc_score
from transformers import HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.phase3 import load_arm, paired_bootstrap  # noqa: E402


@dataclass
class Arguments:
    task: str = field(metadata={"help": "qc or qi."})
    arms: str = field(metadata={"help": "Comma-separated phase-3 arms that differ only in training rows, any order "
                                        "(sorted by their mean training rows), e.g. rows1330,rows2660,ref."})
    runs_dir: str = field(default="outputs/recipe", metadata={"help": "Folder of the p3_* run folders."})
    target_auc: float = field(default=0.75, metadata={"help": "The AUC to extrapolate to (issue 14: QC 0.75)."})
    bootstrap: int = field(default=2000, metadata={"help": "Paired bootstrap resamples."})
    seed: int = field(default=42, metadata={"help": "Seed of the bootstrap."})
    output_file: Optional[str] = field(default=None, metadata={"help": "Markdown table; a .json beside it."})

    def __post_init__(self):
        if len(self.arms.split(",")) < 2:
            raise SystemExit("--arms: give at least two arms (a curve needs two row counts)")


def rows_for(target: float, auc: float, rows: float, per_doubling: float) -> Optional[float]:
    """Training rows at which `target` is reached if every further doubling adds `per_doubling` AUC (None: never)."""
    if auc >= target:
        return rows
    if per_doubling <= 0:
        return None
    return rows * 2 ** ((target - auc) / per_doubling)


def main(args: Arguments) -> dict:
    loaded = {arm: load_arm(args, arm) for arm in args.arms.split(",")}
    arms = sorted(loaded, key=lambda arm: np.mean([f["train_rows"] for f in loaded[arm][1]]))
    first = loaded[arms[0]][0]
    for arm in arms[1:]:
        oof = loaded[arm][0]
        if list(oof["id"]) != list(first["id"]):
            raise SystemExit(f"--arms: {arm} scored other rows than {arms[0]}; the arms must share validation rows")
    labels = first["label"].to_numpy()
    points = []
    for arm in arms:
        oof, facts = loaded[arm]
        per_fold = {int(k): roc_auc_score(g["label"], g["probability"]) for k, g in oof.groupby("fold")}
        points.append({"arm": arm, "train_rows": float(np.mean([f["train_rows"] for f in facts])),
                       "train_rows_per_fold": [f["train_rows"] for f in facts],
                       "auc": roc_auc_score(labels, oof["probability"]), "auc_per_fold": per_fold,
                       "train_s": [f["train_s"] for f in facts], "runs": [f["run"] for f in facts],
                       "code_version": [f["code_version"].splitlines()[0] if f["code_version"] else "?" for f in facts],
                       "commands": [f["command"] for f in facts]})
    for before, after in zip(points, points[1:]):
        doublings = math.log2(after["train_rows"] / before["train_rows"])
        ci = paired_bootstrap(labels, loaded[before["arm"]][0]["probability"].to_numpy(),
                              loaded[after["arm"]][0]["probability"].to_numpy(), roc_auc_score, args.bootstrap,
                              args.seed)
        gain = after["auc"] - before["auc"]
        after.update(doublings=doublings, gain=gain, gain_ci=ci, per_doubling=gain / doublings,
                     per_doubling_ci=[c / doublings for c in ci])
    last = points[-1]
    extrapolation = {
        "target_auc": args.target_auc,
        "rows": rows_for(args.target_auc, last["auc"], last["train_rows"], last["per_doubling"]),
        # the upper end of the last step's interval: the fewest rows the measurement allows
        "rows_at_best": rows_for(args.target_auc, last["auc"], last["train_rows"], last["per_doubling_ci"][1]),
    }

    fmt_rows = lambda r: "never (no gain)" if r is None else f"{r:,.0f}"  # noqa: E731
    lines = [f"Task {args.task.upper()}: AUC against training rows (one epoch each), out-of-fold rows pooled over folds "
             f"{', '.join(str(k) for k in points[0]['auc_per_fold'])} ({len(labels):,} rows); 95 % paired bootstrap "
             f"intervals ({args.bootstrap} resamples of the rows).", "",
             "| arm | training rows (per fold) | train s | AUC (per fold) | gain over the row above [95 %] | "
             "doublings | gain per doubling [95 %] |", "|---|---|---|---|---|---|---|"]
    for p in points:
        step = (f"{p['gain']:+.3f} [{p['gain_ci'][0]:+.3f}, {p['gain_ci'][1]:+.3f}] | {p['doublings']:.2f} | "
                f"{p['per_doubling']:+.3f} [{p['per_doubling_ci'][0]:+.3f}, {p['per_doubling_ci'][1]:+.3f}]"
                if "gain" in p else " | | ")
        lines.append(f"| {p['arm']} | {' + '.join(str(r) for r in p['train_rows_per_fold'])} | "
                     f"{' + '.join(f'{float(s):.0f}' for s in p['train_s'] if s)} | {p['auc']:.3f} "
                     f"({', '.join(f'{v:.3f}' for v in p['auc_per_fold'].values())}) | {step} |")
    lines += ["", f"AUC {args.target_auc} if every further doubling of the rows added the last step's "
              f"{last['per_doubling']:+.3f}: about {fmt_rows(extrapolation['rows'])} training rows per fold "
              f"(at the upper end of its interval, {last['per_doubling_ci'][1]:+.3f}: "
              f"{fmt_rows(extrapolation['rows_at_best'])}); a lower bound wherever the gain per doubling shrinks.",
              "", "Runs (command and code version beside each run's outputs):", ""]
    for p in points:
        for run, code, command in zip(p["runs"], p["code_version"], p["commands"]):
            lines.append(f"- `{run}` (code {code}): `{command}`")
    table = "\n".join(lines)
    print(table)
    result = {"args": vars(args), "points": points, "extrapolation": extrapolation}
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            f.write(table + "\n")
        with open(os.path.splitext(args.output_file)[0] + ".json", "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=float)
    return result


if __name__ == "__main__":
    main(*HfArgumentParser(Arguments).parse_args_into_dataclasses())
