#!/usr/bin/env python
"""Learning curve: AUC against training rows, and how many rows a target AUC would take at the measured rate.

Reads phase-3 arms that differ only in their training rows (`benchmarks/recipe_experiments.sh p3_qc_rows1330_f0`
...: seeded subsets, one epoch, the same validation rows; the reference `ref` trains on every row) and pools each
arm's out-of-fold rows over its folds like `benchmarks/phase3.py`. A series is one training seed's arms (any order,
sorted by training rows); `;` separates series. Per series: the AUC gain of each step, per doubling of the rows, with
a paired bootstrap 95 % interval over the rows. Over all series: the least-squares slope of AUC on log2(rows), each
series with its own intercept (so a seed's offset does not count as a row effect), its interval from the same row
resamples, and the rows at which the fitted line reaches --target_auc. A log-linear extrapolation: where the gain
per doubling shrinks as rows grow, the rows it gives are a lower bound.

    python benchmarks/learning_curve.py --task qc --arms "rows1330,rows2660,rows5000,ref;rows1330seed43,..." \
        --target_auc 0.75 --output_file outputs/learning_curve/learning_curve_qc.md
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
    arms: str = field(metadata={"help": "Phase-3 arms that differ only in training rows, comma-separated, one "
                                        "series (training seed) each; ';' between series: "
                                        "'rows1330,ref;rows1330seed43,seed43'."})
    runs_dir: str = field(default="outputs/recipe", metadata={"help": "Folder of the p3_* run folders."})
    target_auc: float = field(default=0.75, metadata={"help": "The AUC to extrapolate to (issue 14: QC 0.75)."})
    bootstrap: int = field(default=2000, metadata={"help": "Row resamples for the intervals."})
    seed: int = field(default=42, metadata={"help": "Seed of the bootstrap."})
    output_file: Optional[str] = field(default=None, metadata={"help": "Markdown table; a .json beside it."})

    def __post_init__(self):
        self.series = [[arm.strip() for arm in part.split(",") if arm.strip()] for part in self.arms.split(";")]
        if not self.series or min(len(s) for s in self.series) < 2:
            raise SystemExit(f"--arms {self.arms!r}: every series needs at least two arms (two row counts)")


def within_series_slope(x: list, y: list) -> float:
    """Least-squares slope of y on x with one intercept per series (x, y: one list per series)."""
    dx = np.concatenate([np.asarray(xs) - np.mean(xs) for xs in x])
    dy = np.concatenate([np.asarray(ys) - np.mean(ys) for ys in y])
    return float(dx @ dy / (dx @ dx))


def rows_for(target: float, auc: float, rows: float, per_doubling: float) -> Optional[float]:
    """Training rows at which `target` is reached if every further doubling adds `per_doubling` AUC (None: never)."""
    if auc >= target:
        return rows
    if per_doubling <= 0:
        return None
    return rows * 2 ** ((target - auc) / per_doubling)


def main(args: Arguments) -> dict:
    loaded = {arm: load_arm(args, arm) for series in args.series for arm in series}
    first = next(iter(loaded.values()))[0]
    for arm, (oof, _) in loaded.items():
        if list(oof["id"]) != list(first["id"]):
            raise SystemExit(f"--arms: {arm} scored other rows than the others; the arms must share validation rows")
    labels = first["label"].to_numpy()
    scores = {arm: oof["probability"].to_numpy() for arm, (oof, _) in loaded.items()}

    series = []
    for arms in args.series:
        points = []
        for arm in sorted(arms, key=lambda a: np.mean([f["train_rows"] for f in loaded[a][1]])):
            oof, facts = loaded[arm]
            points.append({
                "arm": arm, "train_rows": float(np.mean([f["train_rows"] for f in facts])),
                "train_rows_per_fold": [f["train_rows"] for f in facts], "train_s": [f["train_s"] for f in facts],
                "auc": roc_auc_score(labels, scores[arm]),
                "auc_per_fold": {int(k): roc_auc_score(g["label"], g["probability"]) for k, g in oof.groupby("fold")},
                "runs": [f["run"] for f in facts], "commands": [f["command"] for f in facts],
                "code_version": [f["code_version"].splitlines()[0] if f["code_version"] else "?" for f in facts]})
        for before, after in zip(points, points[1:]):
            doublings = math.log2(after["train_rows"] / before["train_rows"])
            if doublings <= 0:
                raise SystemExit(f"--arms: {before['arm']} and {after['arm']} train on as many rows; put arms of "
                                 "another seed in their own series (';')")
            ci = paired_bootstrap(labels, scores[before["arm"]], scores[after["arm"]], roc_auc_score,
                                  args.bootstrap, args.seed)
            gain = after["auc"] - before["auc"]
            after.update(doublings=doublings, gain=gain, gain_ci=ci, per_doubling=gain / doublings,
                         per_doubling_ci=[c / doublings for c in ci])
        series.append(points)

    # The fit: AUC on log2(rows), one intercept per series; the interval from row resamples (every arm's AUC on the
    # same resampled rows, as the paired intervals).
    x = [[math.log2(p["train_rows"]) for p in points] for points in series]
    slope = within_series_slope(x, [[p["auc"] for p in points] for points in series])
    rng = np.random.RandomState(args.seed)
    slopes = []
    for _ in range(args.bootstrap):
        idx = rng.randint(0, len(labels), len(labels))
        if labels[idx].min() == labels[idx].max():
            continue
        slopes.append(within_series_slope(x, [[roc_auc_score(labels[idx], scores[p["arm"]][idx]) for p in points]
                                              for points in series]))
    slope_ci = [float(np.percentile(slopes, 2.5)), float(np.percentile(slopes, 97.5))]
    # the fitted AUC at the largest row count, averaged over the series
    top = max(max(xs) for xs in x)
    fitted_top = float(np.mean([np.mean([p["auc"] for p in points]) + slope * (top - np.mean(xs))
                                for points, xs in zip(series, x)]))
    # the same fit on each arm's mean per-fold AUC: pooling also counts the folds' score offsets against each other
    slope_folds = within_series_slope(x, [[np.mean(list(p["auc_per_fold"].values())) for p in points]
                                          for points in series])
    # each series alone: how far the seeds' own slopes are apart (the interval above covers rows, not seeds)
    slope_each = [within_series_slope([xs], [[p["auc"] for p in points]]) for points, xs in zip(series, x)]
    fit = {"slope_per_doubling": slope, "slope_ci": slope_ci, "rows_top": 2 ** top, "fitted_auc_top": fitted_top,
           "slope_per_doubling_mean_fold_auc": slope_folds, "slope_per_doubling_each_series": slope_each,
           "target_auc": args.target_auc,
           "rows_for_target": rows_for(args.target_auc, fitted_top, 2 ** top, slope),
           "rows_for_target_at_best": rows_for(args.target_auc, fitted_top, 2 ** top, slope_ci[1])}

    fmt_rows = lambda r: "never (no gain)" if r is None else f"{r:,.0f}"  # noqa: E731
    folds = ", ".join(str(k) for k in series[0][0]["auc_per_fold"])
    lines = [f"Task {args.task.upper()}: AUC against training rows (one epoch each), out-of-fold rows pooled over "
             f"folds {folds} ({len(labels):,} rows); 95 % paired bootstrap intervals ({args.bootstrap} resamples of "
             "the rows).", "",
             "| arm | training rows (per fold) | train s | AUC (per fold) | gain over the row above [95 %] | "
             "doublings | gain per doubling [95 %] |", "|---|---|---|---|---|---|---|"]
    for points in series:
        for p in points:
            step = (f"{p['gain']:+.3f} [{p['gain_ci'][0]:+.3f}, {p['gain_ci'][1]:+.3f}] | {p['doublings']:.2f} | "
                    f"{p['per_doubling']:+.3f} [{p['per_doubling_ci'][0]:+.3f}, {p['per_doubling_ci'][1]:+.3f}]"
                    if "gain" in p else " | | ")
            lines.append(f"| {p['arm']} | {' + '.join(str(r) for r in p['train_rows_per_fold'])} | "
                         f"{' + '.join(f'{float(s):.0f}' for s in p['train_s'] if s)} | {p['auc']:.3f} "
                         f"({', '.join(f'{v:.3f}' for v in p['auc_per_fold'].values())}) | {step} |")
    lines += ["", f"Fit over {sum(len(p) for p in series)} arms ({len(series)} series, one intercept each): AUC "
              f"{slope:+.3f} per doubling of the training rows [95 % {slope_ci[0]:+.3f}, {slope_ci[1]:+.3f}], "
              f"{fitted_top:.3f} at {2 ** top:,.0f} rows. AUC {args.target_auc} on that line: about "
              f"{fmt_rows(fit['rows_for_target'])} training rows per fold (at the interval's upper end, "
              f"{fmt_rows(fit['rows_for_target_at_best'])}); a lower bound wherever the gain per doubling shrinks. "
              f"The same fit on the mean of the per-fold AUCs: {slope_folds:+.3f} per doubling; each series alone: "
              f"{', '.join(f'{v:+.3f}' for v in slope_each)}.",
              "", "Runs (command and code version beside each run's outputs):", ""]
    for points in series:
        for p in points:
            for run, code, command in zip(p["runs"], p["code_version"], p["commands"]):
                lines.append(f"- `{run}` (code {code}): `{command}`")
    table = "\n".join(lines)
    print(table)
    result = {"args": {k: v for k, v in vars(args).items() if k != "series"}, "series": series, "fit": fit}
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            f.write(table + "\n")
        with open(os.path.splitext(args.output_file)[0] + ".json", "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=float)
    return result


if __name__ == "__main__":
    main(*HfArgumentParser(Arguments).parse_args_into_dataclasses())
