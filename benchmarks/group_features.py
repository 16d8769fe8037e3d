#!/usr/bin/env python
"""Do within-query group features help the stacker's features model? (issue 14, lever 6)

QI queries come with many items (the dev file: 8,248 queries for 51,288 rows), and a test file is scored whole, so
a pair can be compared with the other pairs of its query without any label: how many items the query has, and how
its word / trigram overlap stands against the best and the mean of its query's pairs. This script fits
make_submission.py's features model with and without those columns, fold by fold (each fold scored by a model of
the other folds, purged as run_relevance.py trains), and, for each given phase-3 arm, blends each with the arm's
out-of-fold score as `--combiner stack` does, and adds the arm's score against its query's other scored rows
(logit minus the query's max and mean) to that blend. Differences come with paired bootstrap 95 % intervals over
the rows.

    python benchmarks/group_features.py --task qi --dataset_name outputs/folds_qi_dev --runs_dir outputs/recipe \
        --arms ref,headlr --output_file outputs/recipe/group_features_qi.md
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from transformers import HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import make_submission as ms  # noqa: E402
from benchmarks.phase3 import load_arm, paired_bootstrap  # noqa: E402
from utils_data import load_folded_dataset  # noqa: E402

OVERLAPS = ("matched_fraction", "trigram_coverage", "trigram_jaccard")


@dataclass
class GroupFeatureArguments:
    task: str = field(metadata={"help": "qc or qi."})
    dataset_name: str = field(metadata={"help": "The folded dataset (make_folds.py) the arms were trained on."})
    runs_dir: str = field(default="outputs/recipe", metadata={"help": "Folder of the p3_* run folders."})
    arms: str = field(default="", metadata={"help": "Comma-separated phase-3 arms to stack with; empty: features "
                                                    "model only."})
    bootstrap: int = field(default=2000, metadata={"help": "Paired bootstrap resamples."})
    seed: int = field(default=42, metadata={"help": "Seed of the features model, the blend and the bootstrap."})
    output_file: Optional[str] = field(default=None, metadata={"help": "Markdown table."})


def query_key(query) -> str:
    return str(query or "").lower().strip()


def group_features(features: pd.DataFrame, queries, targets) -> pd.DataFrame:
    """pair_features plus, per query (case and spaces folded): its row count, the target's row count, and each
    overlap minus its query's max and mean and as a percentile rank within the query. Uses no label."""
    key = pd.Series([query_key(q) for q in queries])
    targets = pd.Series(list(targets))
    out = features.copy()
    out["query_rows"] = key.map(key.value_counts()).to_numpy()
    out["target_rows"] = targets.map(targets.value_counts()).to_numpy()
    for column in OVERLAPS:
        by_query = features[column].groupby(key.to_numpy())
        out[f"{column}_minus_max"] = features[column] - by_query.transform("max")
        out[f"{column}_minus_mean"] = features[column] - by_query.transform("mean")
        out[f"{column}_rank"] = by_query.rank(pct=True)
    return out


def score_group_blend(oof: pd.DataFrame, feature_probability, queries, seed: int) -> np.ndarray:
    """--combiner stack's blend with three more inputs: the model's logit minus its query's max and mean logit over
    the scored rows, and the query's scored row count; cross-fitted over the folds like make_submission.py's."""
    from sklearn.linear_model import LogisticRegression

    logit = ms._logit(oof["probability"])
    by_query = pd.Series(logit).groupby(pd.Series(queries).to_numpy())
    design = np.c_[logit, ms._logit(feature_probability), logit - by_query.transform("max"),
                   logit - by_query.transform("mean"), by_query.transform("size")]
    groups, labels, blended = ms.crossfit_groups(oof, seed), oof["label"].to_numpy(), np.zeros(len(oof))
    for group in np.unique(groups):
        held = groups == group
        blended[held] = LogisticRegression(max_iter=1000).fit(design[~held], labels[~held]).predict_proba(
            design[held])[:, 1]
    return blended


def compare(labels, base, group, folds, args) -> str:
    per_fold = ", ".join(f"{roc_auc_score(labels[m], base[m]):.3f} -> {roc_auc_score(labels[m], group[m]):.3f}"
                         for m in [folds == k for k in sorted(set(folds))])
    ci = paired_bootstrap(labels, base, group, roc_auc_score, args.bootstrap, args.seed)
    return (f"{len(labels)} | {roc_auc_score(labels, base):.3f} | {roc_auc_score(labels, group):.3f} | "
            f"{roc_auc_score(labels, group) - roc_auc_score(labels, base):+.3f} {ci} | {per_fold}")


def main():
    (args,) = HfArgumentParser(GroupFeatureArguments).parse_args_into_dataclasses()
    columns = ["id", "language", "query", "target", "label", "fold", "exclude_from_train_folds"]
    split = load_folded_dataset(args.dataset_name)["train"]
    rows = split.select_columns([c for c in columns if c in split.column_names]).to_pandas()
    base_features = ms.pair_features(args.task, rows["query"], rows["target"], rows["language"])
    base = ms.out_of_fold_feature_scores(base_features, rows, args.seed)
    with_group = group_features(base_features, rows["query"], rows["target"])
    group = ms.out_of_fold_feature_scores(with_group, rows, args.seed)
    labels, folds = rows["label"].to_numpy(), rows["fold"].to_numpy()
    lines = [f"Task {args.task.upper()}, {args.dataset_name}: AUC without -> with the within-query group features "
             "(last rows: with the group features, without -> with the score's own group features).",
             "", "| scored | rows | without | with | with - without [95 %] | per fold |", "|---|---|---|---|---|---|",
             f"| features model, every fold | {compare(labels, base, group, folds, args)} |"]
    query_of = dict(zip(rows["id"].astype(str), [query_key(q) for q in rows["query"]]))
    by_id = {"base": dict(zip(rows["id"].astype(str), base)), "group": dict(zip(rows["id"].astype(str), group))}
    for arm in [a.strip() for a in args.arms.split(",") if a.strip()]:
        oof, _ = load_arm(args, arm)
        arm_labels, arm_folds = oof["label"].to_numpy(), oof["fold"].to_numpy()
        features = {name: ms.oof_feature_scores(oof, scores, args.dataset_name) for name, scores in by_id.items()}
        stacked = {name: ms.cross_fitted_blend(oof, scores, args.seed) for name, scores in features.items()}
        lines.append(f"| {arm} + stack | {compare(arm_labels, stacked['base'], stacked['group'], arm_folds, args)} |")
        # the model's score against its query's other scored rows, on top of the group features
        with_scores = score_group_blend(oof, features["group"], [query_of[i] for i in oof["id"].astype(str)],
                                        args.seed)
        cells = compare(arm_labels, stacked["group"], with_scores, arm_folds, args)
        lines.append(f"| {arm} + stack with group features, + the score against its query's | {cells} |")
    print("\n".join(lines))
    if args.output_file:
        with open(args.output_file, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
