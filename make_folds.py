#!/usr/bin/env python
"""Turn the competition's raw files into a Hub-style `DatasetDict` with category-aware cross-validation folds.

    python make_folds.py --train_file data/sample/train_QC.jsonl --test_file data/sample/test_QC.jsonl \\
        --output_dir outputs/folds_qc [--push_to_hub user/folds_qc]

Folds (deterministic under --seed):
- QI: every row of a normalised query in one fold (sklearn StratifiedGroupKFold), stratified by
  language x label.
- QC: every row sharing the first --category_prefix_levels category levels in one fold, stratified by
  language x level-1 category x label as far as the groups allow. Queries cannot be hard groups as well
  (query and prefix groups chain into one giant component), so the rows whose query also appears in
  another fold's validation set are purged from that fold's training set instead: `exclude_from_train_folds`
  lists those folds, and training for fold k drops the rows with k in that list.

Output (see docs/conventions.md): split `train` (raw columns as read + `query`, `target`, `category_levels`
(QC), `fold`, `exclude_from_train_folds`) and, with --test_file, split `test` (fold -1, never a row dropped),
saved with `save_to_disk` and/or pushed to the Hub, plus `fold_report.json` (also printed as tables).
"""

import json
import logging
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Optional

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.model_selection import StratifiedGroupKFold
from transformers import HfArgumentParser

from utils_data import (
    TARGET_COLUMN,
    TASKS,
    DataValidationError,
    UserError,
    add_model_columns,
    category_prefix_key,
    grouping_key,
    _map_unique,
    load_folded_dataset,
    read_raw_file,
    read_raw_split,
    run_cli,
    split_category_path,
)

logger = logging.getLogger(__name__)

REPORT_FILE = "fold_report.json"


@dataclass
class DataArguments:
    """Where the raw competition data comes from and how it is read."""

    train_file: Optional[str] = field(
        default=None,
        metadata={"help": "Labelled raw file: JSON lines (.jsonl/.json/.txt), .csv/.tsv or .parquet."},
    )
    test_file: Optional[str] = field(
        default=None,
        metadata={"help": "Optional unlabelled raw file (same formats); becomes split `test` with fold -1."},
    )
    dataset_name: Optional[str] = field(
        default=None,
        metadata={"help": "Instead of --train_file: a Hub dataset id or a local dataset folder with raw columns."},
    )
    dataset_config_name: Optional[str] = field(
        default=None, metadata={"help": "Configuration name of --dataset_name, if it has several."}
    )
    train_split: str = field(default="train", metadata={"help": "Split of --dataset_name holding labelled rows."})
    test_split: Optional[str] = field(
        default="test",
        metadata={"help": "Split of --dataset_name holding unlabelled rows; used only if the dataset has it."},
    )
    task: Optional[str] = field(
        default=None,
        metadata={
            "help": "qc (query-category) or qi (query-item). Default: inferred from the columns "
            "(`category_path` -> qc, `item_title` -> qi) or the `task` column.",
            "choices": list(TASKS),
        },
    )
    lowercase: bool = field(
        default=True,
        metadata={
            "help": "Lowercase the model-facing `query`/`target` columns, as the winners did "
            "(--no_lowercase keeps the case; grouping keys are always case-folded)."
        },
    )
    skip_invalid: bool = field(
        default=False,
        metadata={
            "help": "Skip invalid train rows (malformed line, missing field, bad label, duplicate id) instead of "
            "failing; each skip is counted and listed in the report. Test rows are never skipped."
        },
    )

    def __post_init__(self):
        if (self.train_file is None) == (self.dataset_name is None):
            raise UserError("pass exactly one of --train_file and --dataset_name")
        if self.test_file is not None and self.dataset_name is not None:
            raise UserError("--test_file goes with --train_file; with --dataset_name use --test_split")


@dataclass
class FoldArguments:
    """How the cross-validation folds are built."""

    num_folds: int = field(default=5, metadata={"help": "Number of cross-validation folds."})
    seed: int = field(default=42, metadata={"help": "Random seed of the fold assignment (same seed, same folds)."})
    category_prefix_levels: int = field(
        default=2,
        metadata={"help": "QC: rows sharing this many leading category levels always land in the same fold."},
    )

    def __post_init__(self):
        if self.num_folds < 2:
            raise UserError(f"--num_folds must be at least 2, got {self.num_folds}")
        if self.category_prefix_levels < 1:
            raise UserError(f"--category_prefix_levels must be at least 1, got {self.category_prefix_levels}")


@dataclass
class OutputArguments:
    """Where the folded dataset goes."""

    output_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Folder for DatasetDict.save_to_disk and fold_report.json."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a non-empty --output_dir that was not written by make_folds.py."},
    )
    push_to_hub: Optional[str] = field(
        default=None,
        metadata={"help": "Hub dataset repo id (e.g. user/relevance-folds-qc) to push the DatasetDict and report to."},
    )
    hub_private: bool = field(
        default=True,
        metadata={"help": "Create the Hub dataset repo as private (--no_hub_private for a public one)."},
    )

    def __post_init__(self):
        if self.output_dir is None and self.push_to_hub is None:
            raise UserError("nothing would be written: pass --output_dir and/or --push_to_hub")


# ----------------------------------------------------------------------------------------------------------
# Fold assignment
# ----------------------------------------------------------------------------------------------------------


def stratified_group_folds(groups, strata_options, num_folds: int, seed: int):
    """Assign each row a fold with StratifiedGroupKFold; whole groups stay together.

    `strata_options` is a list of (name, labels) from the finest to the coarsest stratification; the first one
    that sklearn can use (some class with at least `num_folds` members) is taken. Returns (folds, name used).
    """
    group_codes, group_uniques = pd.factorize(pd.Series(groups, dtype=object), sort=True)
    if len(group_uniques) < num_folds:
        raise UserError(
            f"only {len(group_uniques)} distinct group(s) for {num_folds} folds; lower --num_folds or add data"
        )
    n_rows = len(group_codes)
    strata_options = list(strata_options) + [("none", np.zeros(n_rows, dtype=np.int64))]
    for name, labels in strata_options:
        strata_codes, _ = pd.factorize(pd.Series(labels, dtype=object), sort=True)
        if np.bincount(strata_codes).max() >= num_folds:
            break
    splitter = StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    folds = np.full(n_rows, -1, dtype=np.int64)
    with warnings.catch_warnings():
        # Small strata are expected (many language x category x label cells); balance is reported instead.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, valid_index) in enumerate(splitter.split(np.zeros(n_rows), strata_codes, group_codes)):
            folds[valid_index] = fold
    assert (folds >= 0).all(), "StratifiedGroupKFold left a row without a fold"
    return folds, name


def purge_lists(query_keys, folds, num_folds: int):
    """For each row, the other folds whose validation rows share its query key (sorted list of ints)."""
    query_codes, uniques = pd.factorize(pd.Series(query_keys, dtype=object))
    present = np.zeros((len(uniques), num_folds), dtype=bool)
    present[query_codes, folds] = True
    others = present[query_codes]
    others[np.arange(len(folds)), folds] = False
    # Encode each row's fold set as a bit pattern: at most 2**num_folds distinct lists to build.
    patterns = others.astype(np.int64) @ (1 << np.arange(num_folds, dtype=np.int64))
    as_list = {int(p): [k for k in range(num_folds) if (int(p) >> k) & 1] for p in np.unique(patterns)}
    return [as_list[int(p)] for p in patterns]


def assign_folds(frame: pd.DataFrame, task: str, num_folds: int, seed: int, category_prefix_levels: int = 2):
    """Fold assignment for a validated train frame with raw columns. Returns (folds, exclude lists, info)."""
    query_keys = _map_unique(grouping_key, frame["origin_query"].tolist())
    languages = _map_unique(grouping_key, frame["language"].tolist())
    labels = frame["label"].astype(str).tolist()
    if task == "qi":
        groups = query_keys
        strata = [("language x label", [f"{lang}|{y}" for lang, y in zip(languages, labels)]), ("label", labels)]
    else:
        levels = _map_unique(split_category_path, frame["category_path"].tolist())
        groups = [category_prefix_key(lv, category_prefix_levels) for lv in levels]
        level1 = [grouping_key(lv[0]) if lv else "" for lv in levels]
        strata = [
            ("language x level-1 x label", [f"{lang}|{c}|{y}" for lang, c, y in zip(languages, level1, labels)]),
            ("level-1 x label", [f"{c}|{y}" for c, y in zip(level1, labels)]),
            ("language x label", [f"{lang}|{y}" for lang, y in zip(languages, labels)]),
            ("label", labels),
        ]
    folds, strata_used = stratified_group_folds(groups, strata, num_folds, seed)
    exclude = purge_lists(query_keys, folds, num_folds)
    info = {"query_keys": query_keys, "group_keys": groups, "stratification": strata_used}
    return folds, exclude, info


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------


def _share_in_other_folds(keys, folds) -> np.ndarray:
    """Per row: does its key also occur in another fold? Computed from scratch, independent of the purge."""
    frame = pd.DataFrame({"key": keys, "fold": folds})
    folds_per_key = frame.groupby("key")["fold"].nunique()
    return frame["key"].map(folds_per_key).to_numpy() > 1


def fold_report(frame, task, folds, exclude, info, num_folds) -> dict:
    """Per-fold sizes, positive rates, language mix, groups, leakage before/after purging, purge losses."""
    query_codes, query_uniques = pd.factorize(pd.Series(info["query_keys"], dtype=object))
    group_codes, group_uniques = pd.factorize(pd.Series(info["group_keys"], dtype=object))
    labels = frame["label"].to_numpy()
    languages = frame["language"].astype(str).to_numpy()
    excluded = np.zeros((len(folds), num_folds), dtype=bool)
    for row, ks in enumerate(exclude):
        excluded[row, ks] = True
    query_leaks = _share_in_other_folds(query_codes, folds)
    group_leaks = _share_in_other_folds(group_codes, folds)
    per_fold = []
    for k in range(num_folds):
        in_valid = folds == k
        in_train = ~in_valid & ~excluded[:, k]
        is_valid_query = np.zeros(len(query_uniques), dtype=bool)
        is_valid_query[query_codes[in_valid]] = True
        leaked_after = int(is_valid_query[query_codes[in_train]].sum())
        lang_counts = pd.Series(languages[in_valid]).value_counts()
        per_fold.append({
            "fold": k,
            "rows": int(in_valid.sum()),
            "share": float(in_valid.mean()),
            "positive_rate": float(labels[in_valid].mean()) if in_valid.any() else float("nan"),
            "groups": int(len(np.unique(group_codes[in_valid]))),
            "queries": int(is_valid_query.sum()),
            "languages": {str(lang): int(n) for lang, n in lang_counts.sort_index().items()},
            "train_rows_before_purge": int((~in_valid).sum()),
            "train_rows_purged": int((~in_valid & excluded[:, k]).sum()),
            "train_rows": int(in_train.sum()),
            "valid_rows_query_in_other_folds": float(query_leaks[in_valid].mean()) if in_valid.any() else 0.0,
            "valid_rows_group_in_other_folds": float(group_leaks[in_valid].mean()) if in_valid.any() else 0.0,
            "train_rows_with_valid_query_after_purge": leaked_after,
        })
    positive_rates = [f["positive_rate"] for f in per_fold]
    return {
        "task": task,
        "rows": int(len(folds)),
        "positive_rate": float(labels.mean()),
        "num_folds": num_folds,
        "grouping": "normalised query" if task == "qi" else "category prefix",
        "stratification": info["stratification"],
        "num_groups": int(len(group_uniques)),
        "num_queries": int(len(query_uniques)),
        "languages": {str(k): int(v) for k, v in pd.Series(languages).value_counts().sort_index().items()},
        "positive_rate_spread": float(np.nanmax(positive_rates) - np.nanmin(positive_rates)),
        # Leakage: share of validation rows whose key also appears in another fold (before purging).
        "leakage_query": float(query_leaks.mean()),
        "leakage_category_prefix": float(group_leaks.mean()) if task == "qc" else None,
        "leakage_group_key": float(group_leaks.mean()),
        "train_rows_purged_total": int(sum(f["train_rows_purged"] for f in per_fold)),
        "leakage_query_after_purge": int(sum(f["train_rows_with_valid_query_after_purge"] for f in per_fold)),
        "folds": per_fold,
    }


def _text_counts(frame: pd.DataFrame, task: str) -> dict:
    target_column = TARGET_COLUMN[task]
    return {
        "empty_queries": int((frame["query"] == "").sum()),
        f"null_or_empty_{target_column}": int((frame["target"] == "").sum()),
        f"null_{target_column}": int(frame[target_column].isna().sum()),
    }


def format_report(report: dict) -> str:
    """The report as readable tables."""
    folds = pd.DataFrame(report["folds"])
    table = pd.DataFrame({
        "fold": folds["fold"],
        "rows": folds["rows"],
        "share": folds["share"].map("{:.1%}".format),
        "pos_rate": folds["positive_rate"].map("{:.3f}".format),
        "groups": folds["groups"],
        "queries": folds["queries"],
        "q_in_other_folds": folds["valid_rows_query_in_other_folds"].map("{:.1%}".format),
        "train_rows": folds["train_rows"],
        "purged": folds["train_rows_purged"],
        "purged_pct": (folds["train_rows_purged"] / folds["train_rows_before_purge"].clip(lower=1)).map(
            "{:.1%}".format
        ),
        "leak_after_purge": folds["train_rows_with_valid_query_after_purge"],
    })
    langs = pd.DataFrame([f["languages"] for f in report["folds"]]).fillna(0).astype(int)
    lang_share = langs.div(langs.sum(axis=1).clip(lower=1), axis=0).map("{:.0%}".format)
    lang_share.insert(0, "fold", folds["fold"])
    lines = [
        f"task={report['task']}  rows={report['rows']}  positive_rate={report['positive_rate']:.3f}  "
        f"folds={report['num_folds']}  groups={report['num_groups']} ({report['grouping']})  "
        f"queries={report['num_queries']}  stratified by: {report['stratification']}",
        table.to_string(index=False),
        "language mix per fold:",
        lang_share.to_string(index=False),
        f"leakage before purge (share of validation rows whose key is in another fold): "
        f"query {report['leakage_query']:.2%}"
        + (f", category prefix {report['leakage_category_prefix']:.2%}" if report["task"] == "qc" else ""),
        f"after purging: {report['train_rows_purged_total']} train rows purged over all folds, "
        f"{report['leakage_query_after_purge']} train rows share a query with their fold's validation set",
    ]
    inputs = report.get("inputs", {})
    for split, counts in inputs.items():
        hidden = ("skipped_rows", "skipped_by_field", "languages")
        lines.append(f"{split}: " + ", ".join(f"{k}={v}" for k, v in counts.items() if k not in hidden))
        if counts.get("skipped_by_field"):
            lines.append(f"  skipped by field: {counts['skipped_by_field']}")
    if "wall_time_s" in report:
        lines.append(f"wall time: {report['wall_time_s']:.2f} s")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------------------


def to_dataset(frame: pd.DataFrame, task: str) -> datasets.Dataset:
    """The frame as a Dataset, with explicit types for the columns that may be all-null or all-empty."""
    types = {
        "fold": datasets.Value("int64"),
        "exclude_from_train_folds": datasets.List(datasets.Value("int64")),
        "query": datasets.Value("string"),
        "target": datasets.Value("string"),
        TARGET_COLUMN[task]: datasets.Value("string"),
        "origin_query": datasets.Value("string"),
    }
    if task == "qc":
        types["category_levels"] = datasets.List(datasets.Value("string"))
    # Inferred, an all-null or all-empty column would be typed `null`, which breaks concatenation and pushes.
    features = datasets.Features.from_arrow_schema(pa.Schema.from_pandas(frame, preserve_index=False))
    for name, feature in types.items():
        features[name] = feature
    # from_pandas(features=...) casts the Arrow table in memory, far cheaper than Dataset.cast.
    return datasets.Dataset.from_pandas(frame, features=features, preserve_index=False)


def align_splits(train: datasets.Dataset, test: datasets.Dataset):
    """Give both splits the same columns and types (the Hub stores one schema per dataset).

    A column only one split has (the test split's `label`, an extra raw column) is added to the other as
    nulls: an unlabelled test row has `label` None, never a made-up value.
    """
    for source, target_name in ((train, "test"), (test, "train")):
        other = test if target_name == "test" else train
        for name, feature in source.features.items():
            if name not in other.column_names:
                other = other.add_column(name, [None] * len(other), feature=feature)
        if target_name == "test":
            test = other
        else:
            train = other
    test = test.select_columns(train.column_names)
    try:
        test = test.cast(train.features)
    except (TypeError, ValueError) as err:
        raise DataValidationError(
            f"train and test columns have different types ({err}): train {train.features}, test {test.features}"
        ) from err
    return train, test


def prepare_output_dir(output_dir: str, overwrite: bool):
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        ours = os.path.exists(os.path.join(output_dir, REPORT_FILE)) and os.path.exists(
            os.path.join(output_dir, "dataset_dict.json")
        )
        if not (ours or overwrite):
            raise UserError(
                f"{output_dir} is not empty and was not written by make_folds.py; pass --overwrite_output_dir"
            )
        logger.info("Replacing the previous contents of %s", output_dir)
        shutil.rmtree(output_dir)


def main(args=None):
    parser = HfArgumentParser((DataArguments, FoldArguments, OutputArguments))
    if args is None and len(sys.argv) == 2 and sys.argv[1].endswith((".json", ".yaml", ".yml")):
        path = os.path.abspath(sys.argv[1])
        parse = parser.parse_json_file if path.endswith(".json") else parser.parse_yaml_file
        data_args, fold_args, out_args = parse(path)
    else:
        data_args, fold_args, out_args = parser.parse_args_into_dataclasses(args=args)
    # This script's own steps at INFO; libraries (e.g. one line per HTTP request while pushing) at WARNING.
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.WARNING)
    logger.setLevel(logging.INFO)
    datasets.utils.logging.set_verbosity_warning()
    datasets.disable_progress_bars()
    start = time.perf_counter()

    # 1. The arguments are checked by their dataclasses (__post_init__).

    # 2. Read and validate the raw data.
    if data_args.train_file is not None:
        train, train_stats, task = read_raw_file(
            data_args.train_file, task=data_args.task, labelled=True, skip_invalid=data_args.skip_invalid
        )
        test, test_stats = None, None
        if data_args.test_file is not None:
            test, test_stats, _ = read_raw_file(data_args.test_file, task=task, labelled=False)
    else:
        kwargs = {"name": data_args.dataset_config_name} if data_args.dataset_config_name else {}
        raw = load_folded_dataset(data_args.dataset_name, **kwargs)
        if data_args.train_split not in raw:
            raise DataValidationError(
                f"{data_args.dataset_name}: no split {data_args.train_split!r} (splits: {list(raw)})"
            )
        train, train_stats, task = read_raw_split(
            raw[data_args.train_split], f"{data_args.dataset_name}[{data_args.train_split}]", task=data_args.task,
            labelled=True, skip_invalid=data_args.skip_invalid,
        )
        test, test_stats = None, None
        if data_args.test_split and data_args.test_split in raw:
            test, test_stats, _ = read_raw_split(
                raw[data_args.test_split], f"{data_args.dataset_name}[{data_args.test_split}]", task=task,
                labelled=False,
            )
        elif data_args.test_split:
            logger.info("%s has no split %r: no test split", data_args.dataset_name, data_args.test_split)
    for stats in (train_stats, test_stats):
        if stats is None:
            continue
        logger.info("Read %s: %d rows kept of %d, %d blank line(s) ignored", stats.source, stats.rows_kept,
                    stats.rows_read, stats.blank_lines)
        for issue in stats.skipped:
            logger.warning("Skipped %s", issue)
    read_time = time.perf_counter() - start

    # 3. Normalise: model-facing `query`, `target` (and QC `category_levels`); raw columns stay as read.
    train = add_model_columns(train, task, lowercase=data_args.lowercase)
    if test is not None:
        test = add_model_columns(test, task, lowercase=data_args.lowercase)

    # 4. Assign folds and the purge lists.
    folds, exclude, info = assign_folds(
        train, task, fold_args.num_folds, fold_args.seed, fold_args.category_prefix_levels
    )
    train["fold"] = folds
    train["exclude_from_train_folds"] = exclude
    if test is not None:
        test["fold"] = -1
        test["exclude_from_train_folds"] = [[] for _ in range(len(test))]

    # 5. Report, and refuse a split that breaks its own invariants.
    report = fold_report(train, task, folds, exclude, info, fold_args.num_folds)
    if report["leakage_group_key"] != 0 or report["leakage_query_after_purge"] != 0:
        raise RuntimeError(f"fold invariants broken: {json.dumps(report, indent=1)}")
    report["settings"] = {**asdict(data_args), **asdict(fold_args), "push_to_hub": out_args.push_to_hub}
    report["inputs"] = {"train": {**train_stats.to_dict(), **_text_counts(train, task)}}
    if test is not None:
        unseen = sorted(set(test["language"].astype(str)) - set(train["language"].astype(str)))
        report["inputs"]["test"] = {
            **test_stats.to_dict(), **_text_counts(test, task),
            "languages": {str(k): int(v) for k, v in test["language"].value_counts().sort_index().items()},
            "languages_not_in_train": unseen,
            "ids_also_in_train": int(test["id"].isin(set(train["id"])).sum()),
        }
    fold_time = time.perf_counter() - start - read_time

    # 6. Build the DatasetDict; save and/or push.
    splits = {"train": to_dataset(train, task)}
    if test is not None:
        splits["train"], splits["test"] = align_splits(splits["train"], to_dataset(test, task))
    dataset_dict = datasets.DatasetDict(splits)
    if out_args.output_dir is not None:
        prepare_output_dir(out_args.output_dir, out_args.overwrite_output_dir)
        dataset_dict.save_to_disk(out_args.output_dir)
        logger.info("Saved %s to %s", {k: len(v) for k, v in dataset_dict.items()}, out_args.output_dir)
    report["timing_s"] = {"read": read_time, "fold_and_report": fold_time}
    report["wall_time_s"] = time.perf_counter() - start
    report_json = json.dumps(report, indent=2, ensure_ascii=False)
    if out_args.output_dir is not None:
        with open(os.path.join(out_args.output_dir, REPORT_FILE), "w", encoding="utf-8") as handle:
            handle.write(report_json + "\n")
    if out_args.push_to_hub is not None:
        from huggingface_hub import HfApi

        dataset_dict.push_to_hub(out_args.push_to_hub, private=out_args.hub_private)
        HfApi().upload_file(
            path_or_fileobj=(report_json + "\n").encode("utf-8"), path_in_repo=REPORT_FILE,
            repo_id=out_args.push_to_hub, repo_type="dataset", commit_message="Add fold report",
        )
        logger.info("Pushed to the Hub dataset repo %s (private=%s)", out_args.push_to_hub, out_args.hub_private)
    print(format_report(report))
    return dataset_dict, report


if __name__ == "__main__":
    run_cli(main)
