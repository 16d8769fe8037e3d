#!/usr/bin/env python
"""Turn trained relevance adapters into a checked competition submission (README step 4, docs/stacking.md).

    # one task, every fold's adapter, thresholds tuned on the folds' OOF predictions
    python make_submission.py --task qc --dataset_name outputs/folds_qc \
        --adapters "outputs/qc/fold*" --output_dir outputs/submission

    # both tasks at once; '{task}' is replaced by qc / qi in every path argument
    python make_submission.py --task qc,qi --dataset_name "outputs/folds_{task}" \
        --adapters "outputs/{task}/fold*" --output_dir outputs/submission

    # several processes: rows are sharded and gathered back in their original order
    accelerate launch --num_processes 2 make_submission.py ...
    # without a GPU (`accelerate launch --cpu` would start one process only)
    accelerate launch --multi_gpu --num_processes 2 make_submission.py ...

    # check an existing submission file against its test file, nothing else
    python make_submission.py --check_only --submission_file submit_QC.txt --test_file test_QC.jsonl
"""

import glob
import json
import logging
import math
import os
import re
import sys
import time
import zipfile
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from accelerate.utils import gather_object, parse_flag_from_env
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from safetensors import safe_open
from sklearn.metrics import f1_score, roc_auc_score
from tqdm.auto import tqdm

import transformers
from transformers import AutoTokenizer, HfArgumentParser

import modeling_relevance as mr
import utils_data
from utils_data import UserError

logger = logging.getLogger(__name__)

SUBMISSION_FILE = {"qc": "submit_QC.txt", "qi": "submit_QI.txt"}
ZIP_FILE = "submit.zip"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
OOF_FILE = "oof_predictions.parquet"
OOF_COLUMNS = ("id", "fold", "task", "language", "label", "probability")
# all_positive (every row relevant, threshold 0) is last: on a cross-fitted tie a threshold of the model wins.
THRESHOLD_STRATEGIES = ("fixed", "global", "per_language", "all_positive")
# Problems listed in one checker error; the rest are counted.
_MAX_LISTED_PROBLEMS = 20


@dataclass
class DataArguments:
    """What to score and where its rows come from."""

    task: Optional[str] = field(
        default=None,
        metadata={
            "help": "Task(s): 'qc', 'qi' or 'qc,qi' (required to predict; --check_only infers it from the test "
            "file). Every path argument may contain '{task}', replaced by qc / qi, so one command can write "
            "both submission files."
        },
    )
    dataset_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "Folded dataset written by make_folds.py / run_translate.py: a save_to_disk folder or a "
            "Hub dataset id. May contain '{task}'."
        },
    )
    dataset_config_name: Optional[str] = field(
        default=None, metadata={"help": "Configuration name of a Hub dataset, if it has several."}
    )
    split: str = field(default="test", metadata={"help": "Split to score ('test' for a submission)."})
    use_translation: Optional[bool] = field(
        default=None,
        metadata={
            "help": "Add the `query_en` column to the query ('query - query_en'). Default: as the adapters were "
            "trained (relevance_config.json); overriding it is logged as a mismatch."
        },
    )
    max_samples: Optional[int] = field(
        default=None, metadata={"help": "Score only the first N rows (debugging, benchmarks). No submission then."}
    )
    test_file: Optional[str] = field(
        default=None,
        metadata={
            "help": "Raw competition test file (JSON lines) to check the submission against, in addition to "
            "the split's own raw columns. Required with --check_only unless --dataset_name is given. "
            "May contain '{task}'."
        },
    )


@dataclass
class ModelArguments:
    """Which adapters, on which base model, and how to run them."""

    adapters: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated adapters: local folders written by run_relevance.py (shell-style globs "
            "allowed, e.g. 'outputs/qc/fold*') or Hub ids. May contain '{task}'; an item 'qi=PATH' is used for "
            "task qi only (e.g. 'qc=outputs/qc/fold0,qi=outputs/qi/fold0-seed42'). Each must hold its own "
            "score head (LoRA modules_to_save)."
        },
    )
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "Base model. Default: `base_model_name_or_path` from the adapters' relevance_config.json "
            "(e.g. to point at a local copy of the same weights)."
        },
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'."},
    )
    attn_implementation: Optional[str] = field(
        default="sdpa", metadata={"help": "Attention kernel passed to from_pretrained ('sdpa', 'eager', ...)."}
    )
    max_length: Optional[int] = field(
        default=None,
        metadata={
            "help": "Maximum tokens per input (the target is cut, never the query). Default: the training value."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom modelling code from the Hub. Off unless you trust the repo."}
    )


@dataclass
class PredictionArguments:
    """Batching, thresholds, outputs and the checker."""

    output_dir: str = field(
        default="outputs/submission", metadata={"help": "Where predictions, thresholds and submissions go."}
    )
    max_tokens_per_batch: int = field(
        default=4096,
        metadata={
            "help": "Token budget of one batch (rows x longest row, after sorting by length). On this CPU 4096 was "
            "1.2x faster than 16384 at 0.75x the memory (benchmarks/README.md); on a GPU a larger budget may be "
            "faster (not measured). Lower it on out-of-memory errors."
        },
    )
    max_batch_size: int = field(default=512, metadata={"help": "Upper bound on rows per batch."})
    shared_prefix: bool = field(
        default=True,
        metadata={
            "help": "Run the instruction every row of a batch starts with once per batch and continue each row from "
            "its KV cache (as run_relevance.py --shared_prefix): the same probabilities up to rounding, fewer token "
            "computations (docs/scaling.md). --shared_prefix false to compare."
        },
    )
    deduplicate: bool = field(
        default=True, metadata={"help": "Score identical model inputs once (queries and targets repeat a lot)."}
    )
    oof_files: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated OOF prediction files or globs (oof_predictions.parquet written by "
            "run_relevance.py). Default: the oof_predictions.parquet beside each adapter. May contain '{task}'."
        },
    )
    threshold_strategy: str = field(
        default="auto",
        metadata={
            "help": "'fixed' (--threshold), 'global' (F1-optimal on OOF rows), 'per_language' (F1-optimal per "
            "language, global fallback), 'all_positive' (every row relevant) or 'auto': the best of the four by "
            "cross-fitted OOF F1, so a model whose thresholds do not beat all-positive out of fold submits it."
        },
    )
    threshold: float = field(default=0.5, metadata={"help": "Threshold of the 'fixed' strategy."})
    combiner: str = field(
        default="mean",
        metadata={
            "help": "How the adapters' probabilities become one score: 'mean' (their average), 'stack' (a logistic "
            "blend of the mean's logit with a features model: gradient-boosted trees over cheap pair features, "
            "word and character overlap, lengths, language, QC depth and top level, trained on every labelled row "
            "by fold; the blend is fitted on the OOF rows and cross-fitted like the thresholds) or 'auto' (the "
            "better of the two by cross-fitted OOF F1). docs/stacking.md.",
            "choices": ["mean", "stack", "auto"],
        },
    )
    oof_split: str = field(
        default="train",
        metadata={"help": "Labelled split of --dataset_name (with folds) that the adapters were trained on: "
                  "the features model's training rows and the OOF rows' text, for --combiner stack/auto."},
    )
    min_rows_per_language: int = field(
        default=200,
        metadata={
            "help": "A language needs this many OOF rows (and both labels) to get its own threshold; others "
            "use the global one."
        },
    )
    seed: int = field(
        default=42, metadata={"help": "Seed of the 2-way split used for cross-fitting when OOF rows have one fold."}
    )
    write_submission: bool = field(
        default=True, metadata={"help": "Write and check submit_*.txt / submit.zip (needs the test split)."}
    )
    check_only: bool = field(
        default=False,
        metadata={"help": "Only check --submission_file against --test_file (or --dataset_name/--split); no model."},
    )
    submission_file: Optional[str] = field(
        default=None, metadata={"help": "Submission to check with --check_only. May contain '{task}'."}
    )

    def __post_init__(self):
        if self.threshold_strategy not in THRESHOLD_STRATEGIES + ("auto",):
            raise UserError(
                f"--threshold_strategy {self.threshold_strategy!r}: choose auto, fixed, global, per_language or "
                "all_positive"
            )


# ---------------------------------------------------------------------------------------------------------------
# Submission: writer and checker
# ---------------------------------------------------------------------------------------------------------------


class SubmissionError(UserError):
    """A submission file does not match its test rows; the message names the lines and ids."""


def submission_fields(task: str):
    return ("id", "language", "origin_query", utils_data.TARGET_COLUMN[task], "prediction")


def write_submission(path: str, rows: list, predictions, task: str) -> None:
    """One JSON line per test row, in the test order: id, language, origin_query, target column, prediction."""
    if len(rows) != len(predictions):
        raise ValueError(f"{len(rows)} rows but {len(predictions)} predictions")
    target = utils_data.TARGET_COLUMN[task]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row, prediction in zip(rows, predictions):
            record = {
                "id": row["id"],
                "language": row["language"],
                "origin_query": row["origin_query"],
                target: row[target],
                "prediction": int(prediction),
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _same_value(a, b) -> bool:
    # A null stays null in the raw data; NaN never equals itself, so compare nulls explicitly.
    a_null = a is None or (isinstance(a, float) and math.isnan(a))
    b_null = b is None or (isinstance(b, float) and math.isnan(b))
    if a_null or b_null:
        return a_null and b_null
    return type(a) is type(b) and a == b


def check_submission(path: str, reference_rows: list, task: str) -> dict:
    """Validate a submission file against its test rows; raise SubmissionError listing every problem.

    Every test id exactly once, no other id, `prediction` an integer 0 or 1, exactly the competition fields,
    and language / origin_query / target equal to the test file's values.
    """
    fields = submission_fields(task)
    compared = fields[1:-1]
    problems = []
    expected = {}
    for row in reference_rows:
        if row["id"] in expected:
            problems.append(f"test rows: id {row['id']!r} appears more than once")
        expected[row["id"]] = row
    first_line = {}
    positives = 0
    if not os.path.isfile(path):
        raise SubmissionError(f"{path}: no such file")
    for line_number, line in utils_data.text_lines(path):  # not UTF-8: an error naming the line and byte offset
        where = f"{path}:{line_number}"
        if not line.strip():
            problems.append(f"{where}: empty line")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not valid JSON ({error.msg})")
            continue
        if not isinstance(record, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        missing = [name for name in fields if name not in record]
        extra = [name for name in record if name not in fields]
        if missing:
            problems.append(f"{where}: missing field(s) {missing}")
        if extra:
            problems.append(f"{where}: unexpected field(s) {extra}")
        if "id" not in record:
            continue
        row_id = record["id"]
        if isinstance(row_id, (dict, list)):
            problems.append(f"{where}: field 'id' is not a scalar: {row_id!r}")
            continue
        if row_id in first_line:
            problems.append(f"{where}: id {row_id!r} duplicated (first on line {first_line[row_id]})")
            continue
        first_line[row_id] = line_number
        if row_id not in expected:
            problems.append(f"{where}: id {row_id!r} is not in the test rows")
            continue
        prediction = record.get("prediction")
        # bool is an int subclass; 1.0 and "1" are not what the scorer expects either.
        if type(prediction) is not int or prediction not in (0, 1):
            problems.append(f"{where}: id {row_id!r}: field 'prediction' must be 0 or 1, got {prediction!r}")
        else:
            positives += prediction
        for name in compared:
            if name in record and not _same_value(record[name], expected[row_id].get(name)):
                problems.append(
                    f"{where}: id {row_id!r}: field {name!r} is {record[name]!r}, the test rows have "
                    f"{expected[row_id].get(name)!r}"
                )
    absent = [row_id for row_id in expected if row_id not in first_line]
    for row_id in absent[:_MAX_LISTED_PROBLEMS]:
        problems.append(f"{path}: id {row_id!r} of the test rows is missing")
    if len(absent) > _MAX_LISTED_PROBLEMS:
        problems.append(f"{path}: ... {len(absent) - _MAX_LISTED_PROBLEMS} more missing ids")
    if problems:
        # The first line is the whole error for one problem; more problems are listed on the next lines.
        message = problems[0]
        if len(problems) > 1:
            listed = problems[1:_MAX_LISTED_PROBLEMS]
            message = f"{len(problems)} problems in {path}, the first: {message}; the others:\n  " + "\n  ".join(listed)
            if len(problems) > _MAX_LISTED_PROBLEMS:
                message += f"\n  ... and {len(problems) - _MAX_LISTED_PROBLEMS} more"
        raise SubmissionError(message)
    return {
        "file": path,
        "rows": len(first_line),
        "positives": positives,
        "positive_rate": positives / max(len(first_line), 1),
    }


def write_zip(zip_path: str, files: list) -> None:
    """The competition takes both files at the root of one zip."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, arcname=os.path.basename(path))


def load_reference_rows(task: str, test_file: Optional[str] = None, dataset=None) -> list:
    """Test rows (raw columns) from a raw competition file, or from a split of a folded dataset."""
    columns = submission_fields(task)[:-1]
    if test_file is not None:
        frame, _, file_task = utils_data.read_raw_file(test_file, task=task, labelled=False)
        frame = frame.astype(object).where(frame.notna(), None)
        return frame[list(columns)].to_dict("records")
    missing = [name for name in columns if name not in dataset.column_names]
    if missing:
        raise UserError(f"the split has no raw column(s) {missing} needed for a submission")
    return dataset.select_columns(list(columns)).to_list()


# ---------------------------------------------------------------------------------------------------------------
# Thresholds from out-of-fold predictions
# ---------------------------------------------------------------------------------------------------------------


def best_f1_threshold(labels, probabilities):
    """F1-optimal threshold (predict 1 when probability >= threshold) and its F1, as training computes it
    (modeling_relevance.best_threshold); (None, None) when the rows hold a single label: no threshold means
    anything there (all positive would score F1 1.0)."""
    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0 or labels.min() == labels.max():
        return None, None
    return mr.best_threshold(labels, probabilities)


def fit_thresholds(oof: pd.DataFrame, min_rows_per_language: int) -> dict:
    """Global F1-optimal threshold plus one per language with enough rows and both labels."""
    global_threshold, global_f1 = best_f1_threshold(oof["label"], oof["probability"])
    if global_threshold is None:
        raise UserError("OOF rows hold a single label; no threshold can be fitted")
    per_language, fallback = {}, {}
    for language, group in oof.groupby("language", sort=True):
        if len(group) < min_rows_per_language:
            fallback[language] = f"{len(group)} rows < {min_rows_per_language}"
            continue
        threshold, _ = best_f1_threshold(group["label"], group["probability"])
        if threshold is None:
            fallback[language] = "a single label"
            continue
        per_language[language] = threshold
    return {"global": global_threshold, "global_oof_f1": global_f1, "per_language": per_language,
            "fallback_languages": fallback}


def row_thresholds(languages, thresholds: dict, strategy: str, fixed: float) -> np.ndarray:
    """Threshold of each row; per-language thresholds fall back to the global one for other languages."""
    if strategy == "fixed":
        return np.full(len(languages), fixed, dtype=float)
    if strategy == "all_positive":
        return np.zeros(len(languages), dtype=float)
    if strategy == "global":
        return np.full(len(languages), thresholds["global"], dtype=float)
    if strategy == "per_language":
        per_language = thresholds["per_language"]
        return np.array([per_language.get(lang, thresholds["global"]) for lang in languages], dtype=float)
    raise ValueError(f"unknown threshold strategy {strategy!r}; choose from {THRESHOLD_STRATEGIES}")


def crossfit_groups(oof: pd.DataFrame, seed: int) -> np.ndarray:
    """The held-out groups of cross-fitting: the OOF rows' folds, or a seeded 2-way split when there is one fold."""
    folds = oof["fold"].to_numpy()
    if len(np.unique(folds)) < 2:
        return np.random.RandomState(seed).permutation(len(oof)) % 2
    return folds


def cross_fitted_f1(oof: pd.DataFrame, strategy: str, min_rows_per_language: int, fixed: float, seed: int) -> float:
    """F1 of a threshold strategy with thresholds fitted on the other folds and applied to the held-out fold."""
    return float(f1_score(oof["label"], cross_fitted_predictions(oof, strategy, min_rows_per_language, fixed, seed)))


def cross_fitted_predictions(oof: pd.DataFrame, strategy: str, min_rows_per_language: int, fixed: float,
                             seed: int) -> np.ndarray:
    """0/1 per OOF row, each from thresholds fitted on the other folds (cross_fitted_f1's predictions)."""
    folds = crossfit_groups(oof, seed)
    predictions = np.zeros(len(oof), dtype=int)
    for fold in np.unique(folds):
        held_out = folds == fold
        fitted = fit_thresholds(oof[~held_out], min_rows_per_language) if strategy in ("global", "per_language") \
            else None
        held = oof[held_out]
        predictions[held_out] = held["probability"].to_numpy() >= row_thresholds(
            held["language"].tolist(), fitted, strategy, fixed
        )
    return predictions


def read_oof_predictions(files: list, task: str) -> pd.DataFrame:
    """Concatenate OOF files. A row predicted by several runs of its fold (a stage with seeds) gets their mean
    probability, as the test rows get the mean over every adapter."""
    twice = sorted({path for path in files if files.count(path) > 1})
    if twice:
        raise UserError(f"OOF file(s) {twice} given twice; pass each run's OOF file once")
    frames = []
    for path in files:
        frame = pd.read_parquet(path)
        missing = [c for c in OOF_COLUMNS if c not in frame.columns]
        if missing:
            raise UserError(f"{path}: OOF predictions lack column(s) {missing}")
        frame = frame[list(OOF_COLUMNS)].assign(source=path)
        frames.append(frame)
    oof = pd.concat(frames, ignore_index=True)
    oof = oof[oof["task"].astype(str).str.lower() == task]
    if oof.empty:
        raise UserError(f"{files}: no OOF rows of task {task!r}")
    bad = oof[~oof["label"].isin([0, 1]) | ~oof["probability"].between(0, 1)]
    if not bad.empty:
        first = bad.iloc[0]
        raise UserError(f"{first['source']}: id {first['id']!r}: label not 0/1 or probability not in [0, 1]")
    rows = oof.groupby("id", sort=False)
    differ = rows[["fold", "label", "language"]].nunique().max(axis=1) > 1
    if differ.any():
        first = differ[differ].index[0]
        sources = sorted(set(oof[oof["id"] == first]["source"]))
        raise UserError(f"id {first!r} has another fold, label or language in each of {sources}; pass OOF files "
                        "of one folded dataset")
    runs = rows["source"].nunique()
    if runs.max() > 1:
        logger.info("Task %s: %d OOF rows, each the mean of %s run(s) of its fold", task, len(runs),
                    "-".join(str(n) for n in sorted({runs.min(), runs.max()})))
    mean = rows.agg(**{c: (c, "first") for c in OOF_COLUMNS if c not in ("id", "probability")},
                    probability=("probability", "mean"))
    return mean.reset_index()[list(OOF_COLUMNS)]


def choose_thresholds(oof: Optional[pd.DataFrame], args: "PredictionArguments") -> dict:
    """Fit thresholds on all OOF rows; report F1 at 0.5, global and per language, in-sample and cross-fitted."""
    if oof is None:
        if args.threshold_strategy not in ("fixed", "auto", "all_positive"):
            raise UserError(f"--threshold_strategy {args.threshold_strategy} needs OOF predictions (--oof_files)")
        if args.threshold_strategy == "all_positive":
            return {"strategy": "all_positive", "oof_rows": 0}
        logger.warning("No OOF predictions: using the fixed threshold %.3f", args.threshold)
        return {"strategy": "fixed", "fixed": args.threshold, "oof_rows": 0}
    fitted = fit_thresholds(oof, args.min_rows_per_language)
    report = {"oof_rows": len(oof), "oof_folds": sorted(int(f) for f in oof["fold"].unique()),
              "note": "OOF probabilities come from one fold's model(s) per row; test probabilities are the ensemble "
                      "mean, usually a little less extreme, so a tuned threshold is an estimate for the ensemble",
              "oof_rows_per_language": oof["language"].value_counts().sort_index().to_dict(),
              "oof_auc": float(roc_auc_score(oof["label"], oof["probability"])) if oof["label"].nunique() == 2
              else None, "all_positive_f1": float(f1_score(oof["label"], np.ones(len(oof), dtype=int))),
              "fixed": args.threshold, **fitted, "in_sample_f1": {}, "cross_fitted_f1": {}}
    for strategy in THRESHOLD_STRATEGIES:
        thresholds = row_thresholds(oof["language"].tolist(), fitted, strategy, args.threshold)
        report["in_sample_f1"][strategy] = float(f1_score(oof["label"], oof["probability"] >= thresholds))
        report["cross_fitted_f1"][strategy] = cross_fitted_f1(
            oof, strategy, args.min_rows_per_language, args.threshold, args.seed
        )
    if args.threshold_strategy == "auto":
        # Ties go to the simpler strategy (the order of THRESHOLD_STRATEGIES).
        scores = report["cross_fitted_f1"]
        report["strategy"] = max(THRESHOLD_STRATEGIES, key=lambda s: (scores[s], -THRESHOLD_STRATEGIES.index(s)))
    else:
        report["strategy"] = args.threshold_strategy
    return report


# ---------------------------------------------------------------------------------------------------------------
# Stacking: the ensemble's score blended with a model of cheap pair features (docs/stacking.md)
# ---------------------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _words(text: str) -> list:
    # Lowercased words with a plural "s" dropped, so "cases" matches "case".
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(str(text or "").lower())]


def _trigrams(text: str) -> set:
    text = f" {str(text or '').lower()} "
    return {text[i : i + 3] for i in range(len(text) - 2)}


def pair_features(task: str, queries, targets, languages) -> pd.DataFrame:
    """Cheap features of each (query, target) pair: lengths, word and character-trigram overlap, language and,
    for QC, the category's depth and top level (targets are make_folds.py's levels joined by ' > ')."""
    rows = []
    for query, target in zip(queries, targets):
        query_words, target_words = _words(query), set(_words(target))
        query_grams, target_grams = _trigrams(query), _trigrams(target)
        matched = sum(w in target_words for w in query_words)
        shared = len(query_grams & target_grams)
        rows.append({
            "query_words": len(query_words), "query_chars": len(str(query or "")), "target_words": len(target_words),
            "matched_words": matched, "matched_fraction": matched / max(len(query_words), 1),
            "last_word_matched": float(bool(query_words) and query_words[-1] in target_words),
            "trigram_coverage": shared / max(len(query_grams), 1),
            "trigram_jaccard": shared / max(len(query_grams | target_grams), 1),
            "query_has_digit": float(any(ch.isdigit() for ch in str(query or ""))),
        })
    features = pd.DataFrame(rows, index=range(len(rows)))
    features["language"] = [str(lang) for lang in languages]
    if task == "qc":
        levels = [str(t or "").split(utils_data.CATEGORY_JOINER) for t in targets]
        features["depth"] = [len(lv) for lv in levels]
        features["top_level"] = [lv[0] for lv in levels]
    return features


class FeatureModel:
    """Gradient-boosted trees over `pair_features` alone. Categories (language, QC top level) unseen when fitting
    count as missing, so a new language still gets a score."""

    CATEGORICAL = ("language", "top_level")

    def __init__(self, seed: int):
        from sklearn.ensemble import HistGradientBoostingClassifier

        # Fixed, conservative settings (not tuned on the dev folds): few leaves, large leaves, no early stopping.
        self.model = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, early_stopping=False,
            categorical_features="from_dtype", random_state=seed,
        )
        self.categories = {}

    def _design(self, features: pd.DataFrame) -> pd.DataFrame:
        design = features.copy()
        for column in self.CATEGORICAL:
            if column in design:
                known = design[column].where(design[column].isin(self.categories[column]))  # unseen -> missing
                design[column] = pd.Categorical(known, categories=self.categories[column])
        return design

    def fit(self, features: pd.DataFrame, labels) -> "FeatureModel":
        self.categories = {c: sorted(set(features[c])) for c in self.CATEGORICAL if c in features}
        self.model.fit(self._design(features), np.asarray(labels, dtype=int))
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self._design(features))[:, 1]


def feature_scores(task: str, labelled: "datasets.Dataset", seed: int) -> tuple:
    """The features model on a folded dataset's labelled split: ({id: out-of-fold score}, model fitted on every row).

    Row r's score comes from a model fitted on the folds other than r's, minus the rows make_folds.py purged for
    that fold (`exclude_from_train_folds`, when present), as run_relevance.py trains."""
    columns = [c for c in ("id", "language", "query", "target", "label", "fold", "exclude_from_train_folds")
               if c in labelled.column_names]
    rows = labelled.select_columns(columns).to_pandas()  # labelled[name] is row by row: minutes on 50k rows
    features = pair_features(task, rows["query"], rows["target"], rows["language"])
    scores = out_of_fold_feature_scores(features, rows, seed)
    return dict(zip(rows["id"].astype(str), scores)), FeatureModel(seed).fit(features, rows["label"].to_numpy())


def out_of_fold_feature_scores(features: pd.DataFrame, rows: pd.DataFrame, seed: int) -> np.ndarray:
    """Each row's FeatureModel score from a model fitted on the other folds' rows (rows: label, fold and, when
    present, exclude_from_train_folds)."""
    labels, scores = rows["label"].to_numpy(), np.zeros(len(rows))
    for fold in sorted(rows["fold"].unique()):
        held_out = (rows["fold"] == fold).to_numpy()
        train = ~held_out
        if "exclude_from_train_folds" in rows:
            train &= ~rows["exclude_from_train_folds"].map(lambda folds: fold in list(folds)).to_numpy()
        scores[held_out] = FeatureModel(seed).fit(features[train], labels[train]).predict(features[held_out])
    return scores


def _logit(probability) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class Blend:
    """P(relevant) = sigmoid(a * logit(model) + b * logit(features) + c): three numbers fitted on OOF rows."""

    def fit(self, model_probability, feature_probability, labels) -> "Blend":
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression().fit(np.c_[_logit(model_probability), _logit(feature_probability)],
                                              np.asarray(labels, dtype=int))
        return self

    def predict(self, model_probability, feature_probability) -> np.ndarray:
        return self.model.predict_proba(np.c_[_logit(model_probability), _logit(feature_probability)])[:, 1]


def cross_fitted_blend(oof: pd.DataFrame, feature_probability, seed: int) -> np.ndarray:
    """Blended OOF probabilities: each held-out group scored by a blend fitted on the other groups."""
    groups = crossfit_groups(oof, seed)
    feature_probability = np.asarray(feature_probability, dtype=float)
    blended = np.zeros(len(oof))
    for group in np.unique(groups):
        held = groups == group
        blend = Blend().fit(oof["probability"][~held], feature_probability[~held], oof["label"][~held])
        blended[held] = blend.predict(oof["probability"][held], feature_probability[held])
    return blended


def oof_feature_scores(oof: pd.DataFrame, scores: dict, where: str) -> np.ndarray:
    """The features model's out-of-fold score of each OOF row, looked up by id."""
    missing = [i for i in oof["id"].astype(str) if i not in scores]
    if missing:
        raise UserError(f"{len(missing)} OOF row id(s) are not in {where} (first: {missing[0]!r}); --combiner "
                         "stack needs the folded dataset the adapters were trained on (--oof_split)")
    return np.array([scores[i] for i in oof["id"].astype(str)])


# ---------------------------------------------------------------------------------------------------------------
# Adapters and the ensemble
# ---------------------------------------------------------------------------------------------------------------


def expand_paths(spec: Optional[str], task: str) -> list:
    """Comma-separated list with '{task}' substituted; local globs expanded (sorted), other items kept as is.
    An item `qi=PATH` belongs to task qi only (per-task adapter sets in one call)."""
    if not spec:
        return []
    items = []
    for item in spec.split(","):
        item_task, sep, rest = item.strip().partition("=")
        if sep and item_task in mr.TASKS:
            if item_task != task:
                continue
            item = rest
        item = item.strip().replace("{task}", task)
        if not item:
            continue
        if any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item))
            if not matches:
                raise UserError(f"no file or folder matches {item!r}")
            items.extend(matches)
        else:
            items.append(item)
    return items


def adapter_file(adapter: str, filename: str) -> Optional[str]:
    """Path of a file beside a local adapter or in its Hub repo; None when it has no such file."""
    if os.path.isdir(adapter):
        path = os.path.join(adapter, filename)
        return path if os.path.isfile(path) else None
    try:
        return hf_hub_download(adapter, filename)
    except EntryNotFoundError:
        return None


def check_adapter_head(adapter: str, num_labels: int) -> None:
    """The adapter must carry its own trained score head, else the base's random head would score silently."""
    path = adapter_file(adapter, ADAPTER_WEIGHTS_FILE)
    if path is None:
        raise UserError(f"{adapter}: no {ADAPTER_WEIGHTS_FILE}")
    with safe_open(path, framework="pt") as weights:
        heads = [key for key in weights.keys() if key.endswith("score.weight")]
        if not heads:
            raise UserError(
                f"{adapter}: {ADAPTER_WEIGHTS_FILE} holds no score head (score.weight); train with the head in "
                "modules_to_save (run_relevance.py does)"
            )
        rows = int(weights.get_slice(heads[0]).get_shape()[0])
    if rows != num_labels:
        raise UserError(f"{adapter}: score head has {rows} output(s), relevance_config.json says {num_labels}")


def read_adapter_settings(adapters: list, task: str) -> dict:
    """relevance_config.json of the first adapter, after checking the others agree and all were trained on `task`."""
    all_settings = [mr.read_settings(adapter) for adapter in adapters]
    for adapter, settings in zip(adapters, all_settings):
        if task not in settings.get("tasks", []):
            raise UserError(f"{adapter} was trained on task(s) {settings.get('tasks')}, not {task}")
    mr.check_shared_settings(adapters, all_settings, task=task)
    return all_settings[0]


def adapter_names(adapters: list) -> list:
    """Short unique column names for the adapters (folder names, made unique with a counter)."""
    names = []
    for adapter in adapters:
        base = os.path.basename(os.path.normpath(adapter)) or "adapter"
        name, counter = base, 1
        while name in names:
            counter += 1
            name = f"{base}_{counter}"
        names.append(name)
    return names


def ensemble_probabilities(per_adapter: np.ndarray) -> np.ndarray:
    """Mean over adapters of a (rows, adapters) probability matrix."""
    return per_adapter.mean(axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class EncodedInputs:
    """Token ids of each distinct model input and, for every row, the index of its input."""

    input_ids: list
    row_to_unique: np.ndarray
    target_truncated: int = 0
    query_too_long: int = 0

    @property
    def num_unique(self) -> int:
        return len(self.input_ids)


def encode_rows(tokenizer, task: str, queries: list, targets: list, queries_en: Optional[list], template: str,
                max_length: int, deduplicate: bool = True) -> EncodedInputs:
    """Tokenise as training does (modeling_relevance.encode_examples), each distinct (query, target, query_en) once."""
    keys = list(zip(queries, targets, queries_en if queries_en is not None else [None] * len(queries)))
    if deduplicate:
        unique = {}
        row_to_unique = np.array([unique.setdefault(key, len(unique)) for key in keys], dtype=np.int64)
        keys = list(unique)
    else:
        row_to_unique = np.arange(len(keys), dtype=np.int64)
    if not keys:
        return EncodedInputs([], row_to_unique)
    q, t, q_en = (list(column) for column in zip(*keys))
    encoded = mr.encode_examples(tokenizer, [task] * len(keys), q, t, q_en if queries_en is not None else None,
                                 template=template, max_length=max_length)
    return EncodedInputs(encoded["input_ids"], row_to_unique, int(sum(encoded["target_truncated"])),
                         int(sum(encoded["query_too_long"])))


def length_batches(lengths, max_tokens_per_batch: int, max_batch_size: int) -> list:
    """Indices grouped longest first, each batch within the token budget (rows x its longest row).

    Longest first so that an out-of-memory error shows up on the first batch, not after an hour.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, current, longest = [], [], 0
    for index in order.tolist():
        length = lengths[index]
        if current and ((len(current) + 1) * max(longest, length) > max_tokens_per_batch
                        or len(current) >= max_batch_size):
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


def pad_batch(input_ids: list, batch: list, pad_token_id: int, multiple: int = 1):
    """The rows `batch` of `input_ids`, right-padded to the longest (rounded up to `multiple`): (ids, mask)."""
    longest = max(len(input_ids[i]) for i in batch)
    longest = -(-longest // multiple) * multiple
    ids = torch.full((len(batch), longest), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, index in enumerate(batch):
        sequence = input_ids[index]
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


@torch.inference_mode()
def score_sequences(model, input_ids: list, batches: list, pad_token_id: int, device, desc: str = "scoring",
                    show_progress: bool = True) -> dict:
    """Probability of every sequence in `batches`, as {sequence index: probability}. Right padding: the model
    pools the last token of the attention mask."""
    probabilities = {}
    total = sum(len(batch) for batch in batches)
    # Tensor cores want lengths in multiples of 8; on CPU padding is pure waste.
    multiple = 8 if torch.device(device).type == "cuda" else 1
    with tqdm(total=total, desc=desc, unit="rows", disable=not show_progress, dynamic_ncols=True) as bar:
        for batch in batches:
            ids, mask = pad_batch(input_ids, batch, pad_token_id, multiple)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for index, probability in zip(batch, mr.probabilities_from_logits(logits.float().cpu()).tolist()):
                probabilities[index] = probability
            bar.update(len(batch))
    return probabilities


def load_base_model(model_name_or_path: str, settings: dict, dtype: str, attn_implementation, trust_remote_code: bool,
                    device, shared_prefix: bool = True):
    """The backbone + score head as training built it; each adapter brings its own trained head."""
    model = mr.build_classifier(
        model_name_or_path,
        num_labels=settings["num_labels"],
        pooling=settings["pooling"],
        dtype=dtype,
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
        num_hidden_layers=settings.get("num_hidden_layers"),
        shared_prefix=shared_prefix,
    )
    return model.to(device).eval()


class AdapterScorer:
    """Runs the one base model with one adapter at a time; the base weights are never copied.

    Each adapter's LoRA product is added into the base weights in place (peft `merge_adapter`), so the rows go
    through plain matmuls, and subtracted again (`unmerge_adapter`) before the next adapter loads. Same speed as
    merging into a copy of the base (benchmarks/inference_speed.py), without the second copy (docs/scaling.md).
    """

    def __init__(self, base_model):
        self.base_model = base_model
        self.peft_model = None

    def model_for(self, adapter: str, name: str):
        from peft import PeftModel

        if self.peft_model is None:
            self.peft_model = PeftModel.from_pretrained(self.base_model, adapter, adapter_name=name)
        else:
            # The previous adapter out of the base weights first (back up to rounding: docs/scaling.md).
            self.peft_model.unmerge_adapter()
            self.peft_model.load_adapter(adapter, adapter_name=name)
        self.peft_model.set_adapter(name)
        # Only the active adapter stays loaded: memory stays flat over many folds.
        for other in [n for n in self.peft_model.peft_config if n != name]:
            self.peft_model.delete_adapter(other)
        self.peft_model.merge_adapter()
        return self.peft_model.eval()

    def close(self):
        """The base model as it came: unmerged, LoRA layers removed, its own score head back."""
        from peft.utils import ModulesToSaveWrapper

        if self.peft_model is not None:
            self.peft_model.unmerge_adapter()
            heads = {name: module.original_module for name, module in self.peft_model.base_model.model.named_modules()
                     if isinstance(module, ModulesToSaveWrapper)}
            self.base_model = self.peft_model.unload()
            # unload() leaves the last adapter's score head in place of the base's.
            for name, module in heads.items():
                self.base_model.set_submodule(name, module)
            self.peft_model = None
        return self.base_model


def score_adapters(base_model, adapters: list, encoded: EncodedInputs, pad_token_id: int, max_tokens_per_batch: int,
                   max_batch_size: int, state: PartialState = None, names: list = None):
    """Per-row probability of each adapter, shape (rows, adapters), in the input row order, and scoring stats.
    `base_model` is never copied; it comes back without LoRA layers, its weights as before up to rounding.

    Sequences are sorted by length and batched by token budget; with several processes each takes every
    num_processes-th batch and the results are gathered and put back by index, so every process ends with
    the full matrix in the original order.
    """
    state = state or PartialState()
    names = names or adapter_names(adapters)
    lengths = [len(sequence) for sequence in encoded.input_ids]
    batches = length_batches(lengths, max_tokens_per_batch, max_batch_size)
    local_batches = batches[state.process_index :: state.num_processes]
    scorer = AdapterScorer(base_model)
    per_unique = np.full((encoded.num_unique, len(adapters)), np.nan)
    stats = {"rows": len(encoded.row_to_unique), "distinct_inputs": encoded.num_unique, "batches": len(batches),
             "processes": state.num_processes, "sequences_scored": 0, "seconds": {}}
    for column, (adapter, name) in enumerate(zip(adapters, names)):
        start = time.perf_counter()
        model = scorer.model_for(adapter, name)
        local = score_sequences(
            model, encoded.input_ids, local_batches, pad_token_id, state.device,
            desc=f"{name} (process {state.process_index})" if state.num_processes > 1 else name,
            show_progress=state.is_local_main_process,
        )
        del model
        gathered = gather_object(list(local.items()))
        for index, probability in gathered:
            per_unique[index, column] = probability
        stats["sequences_scored"] += len(gathered)
        stats["seconds"][name] = time.perf_counter() - start
    scorer.close()
    if np.isnan(per_unique).any():
        raise RuntimeError(f"{int(np.isnan(per_unique).sum())} sequence scores missing after gathering")
    return per_unique[encoded.row_to_unique], stats


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------


def _setup_logging(state: PartialState) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = logging.INFO if state.is_main_process else logging.WARNING
    logger.setLevel(level)
    transformers.utils.logging.set_verbosity(logging.WARNING if state.is_main_process else logging.ERROR)


def run_check_only(data_args: DataArguments, pred_args: PredictionArguments) -> list:
    summaries = []
    if data_args.task is None:
        if not data_args.test_file or "{task}" in data_args.test_file:
            raise UserError("--check_only without --test_file FILE needs --task")
        _, _, inferred = utils_data.read_raw_file(data_args.test_file, labelled=False)
        data_args.task = inferred
    for task in utils_data.parse_tasks(data_args.task):
        if not pred_args.submission_file:
            raise UserError("--check_only needs --submission_file")
        submission = pred_args.submission_file.replace("{task}", task)
        if data_args.test_file:
            reference = load_reference_rows(task, test_file=data_args.test_file.replace("{task}", task))
        elif data_args.dataset_name:
            dataset = utils_data.load_folded_dataset(data_args.dataset_name.replace("{task}", task))[data_args.split]
            reference = load_reference_rows(task, dataset=dataset)
        else:
            raise UserError("--check_only needs --test_file or --dataset_name")
        summary = check_submission(submission, reference, task)
        logger.info("%s is valid: %d rows, %d positive (%.1f%%)", submission, summary["rows"],
                    summary["positives"], 100 * summary["positive_rate"])
        summaries.append(summary)
    return summaries


def plan_adapters(task: str, model_args: ModelArguments) -> dict:
    """The adapters of one task, checked: they exist, agree on their training settings and carry a score head."""
    adapters = expand_paths(model_args.adapters, task)
    if not adapters:
        raise UserError(f"--adapters {model_args.adapters!r} gives no adapter for task {task}")
    for adapter in adapters:
        utils_data.check_folder_or_hub_repo(adapter, "--adapters")
    settings = read_adapter_settings(adapters, task)
    for adapter in adapters:
        check_adapter_head(adapter, settings["num_labels"])
    base = model_args.model_name_or_path or settings["base_model_name_or_path"]
    if not model_args.model_name_or_path and mr._neither_folder_nor_hub_id(base):
        raise UserError(f"base model {base} ({adapters[0]}'s relevance_config.json) is no folder here: run from the "
                        "directory the adapters were trained in, or pass --model_name_or_path")
    logger.info("Task %s: %d adapter(s) on %s (template %s, max_length %s)", task, len(adapters), base,
                settings["template"], settings["max_length"])
    return {"adapters": adapters, "names": adapter_names(adapters), "settings": settings, "base": base}


def load_tokenizer(plan: dict, trust_remote_code: bool):
    """The tokenizer training saved beside the first adapter, else the base model's."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(plan["adapters"][0], trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        logger.info("No tokenizer beside %s; using the base model's", plan["adapters"][0])
        tokenizer = AutoTokenizer.from_pretrained(plan["base"], trust_remote_code=trust_remote_code)
    mr.prepare_tokenizer(tokenizer)
    return tokenizer


def load_split(task: str, data_args: DataArguments) -> tuple:
    """(dataset name, the whole folded dataset, the split to score, cut to --max_samples)."""
    dataset_name = data_args.dataset_name.replace("{task}", task)
    dataset = utils_data.load_folded_dataset(
        dataset_name, **({"name": data_args.dataset_config_name} if data_args.dataset_config_name else {})
    )
    if data_args.split not in dataset:
        raise UserError(f"{dataset_name}: no split {data_args.split!r} (splits: {list(dataset)})")
    split = dataset[data_args.split]
    if data_args.max_samples is not None:
        split = split.select(range(min(data_args.max_samples, len(split))))
    return dataset_name, dataset, split


def encode_split(tokenizer, task: str, split, dataset_name: str, settings: dict, data_args: DataArguments,
                 model_args: ModelArguments, deduplicate: bool) -> EncodedInputs:
    """Tokenise the split as the adapters were trained (template, max_length, translation), identical inputs once."""
    trained_with = bool((settings.get("use_translation") or {}).get(task, False))
    use_translation = trained_with if data_args.use_translation is None else data_args.use_translation
    if use_translation != trained_with:
        logger.warning("Task %s: --use_translation %s but the adapters were trained with %s", task,
                       use_translation, trained_with)
    if use_translation and "query_en" not in split.column_names:
        raise UserError(f"{dataset_name}[{data_args.split}] has no query_en column, which the adapters were "
                        "trained with: run run_translate.py on it (or pass --use_translation false)")
    max_length = model_args.max_length or settings["max_length"]
    encoded = encode_rows(tokenizer, task, split["query"], split["target"],
                          split["query_en"] if use_translation else None, settings["template"], max_length,
                          deduplicate)
    logger.info("Task %s: %d rows of %s[%s], %d distinct model inputs, translation %s; target cut to fit "
                "%d tokens in %d inputs, query alone too long in %d", task, split.num_rows, dataset_name,
                data_args.split, encoded.num_unique, "on" if use_translation else "off", max_length,
                encoded.target_truncated, encoded.query_too_long)
    return encoded


def combine(task: str, probability: np.ndarray, oof, dataset, dataset_name: str, split,
            pred_args: PredictionArguments) -> tuple:
    """The final probability and the thresholds report: mean, or stacked with the features model (--combiner)."""
    report = choose_thresholds(oof, pred_args)
    if pred_args.combiner == "mean":
        return probability, report
    if oof is None:
        raise UserError(f"--combiner {pred_args.combiner} needs OOF predictions (--oof_files)")
    if pred_args.oof_split not in dataset:
        raise UserError(f"--oof_split: {dataset_name} has no split {pred_args.oof_split!r}; "
                        f"splits: {list(dataset)}")
    scores_by_id, features_model = feature_scores(task, dataset[pred_args.oof_split], pred_args.seed)
    oof_features = oof_feature_scores(oof, scores_by_id, f"{dataset_name}[{pred_args.oof_split}]")
    stacked_report = choose_thresholds(
        oof.assign(probability=cross_fitted_blend(oof, oof_features, pred_args.seed)), pred_args
    )
    scores = {"mean": report["cross_fitted_f1"][report["strategy"]],
              "stack": stacked_report["cross_fitted_f1"][stacked_report["strategy"]]}
    combiner = pred_args.combiner if pred_args.combiner != "auto" else max(scores, key=scores.get)
    logger.info("Task %s: cross-fitted OOF F1 mean %.4f (AUC %.4f), stack %.4f (AUC %.4f): using %s", task,
                scores["mean"], report["oof_auc"], scores["stack"], stacked_report["oof_auc"], combiner)
    if combiner == "stack":
        blend = Blend().fit(oof["probability"], oof_features, oof["label"])
        split_features = pair_features(task, split["query"], split["target"], split["language"])
        probability = blend.predict(probability, features_model.predict(split_features))
        report, stacked_report = stacked_report, report
    report["combiner"] = {"used": combiner, "asked": pred_args.combiner, "cross_fitted_f1": scores,
                          "other": stacked_report}
    return probability, report


def log_thresholds(task: str, report: dict, languages, thresholds: np.ndarray, has_oof: bool) -> None:
    for strategy in THRESHOLD_STRATEGIES if has_oof else ():
        logger.info("Task %s OOF F1 with %-12s thresholds: in-sample %.4f, cross-fitted %.4f", task, strategy,
                    report["in_sample_f1"][strategy], report["cross_fitted_f1"][strategy])
    if report["strategy"] == "per_language":
        on_fallback = sorted(set(languages) - set(report["per_language"]))
        logger.info("Task %s: per-language thresholds %s; on the global threshold %.4f: %s", task,
                    {k: round(v, 4) for k, v in report["per_language"].items()}, report["global"], on_fallback)
    elif report["strategy"] == "all_positive":
        logger.info("Task %s: every row predicted relevant (all_positive)", task)
    else:
        logger.info("Task %s: %s threshold %.4f for every language", task, report["strategy"],
                    float(thresholds[0]) if len(thresholds) else float("nan"))


def write_predictions(path: str, task: str, split, names: list, per_adapter: np.ndarray,
                      mean_probability: np.ndarray, probability: np.ndarray, thresholds, prediction) -> None:
    """predictions_{task}.parquet: one probability column per adapter (+ the mean when stacked), then the final."""
    frame = pd.DataFrame({"id": split["id"], "task": split["task"] if "task" in split.column_names
                          else task.upper(), "language": split["language"]})
    for column, name in enumerate(names):
        frame[f"probability_{name}"] = per_adapter[:, column]
    if probability is not mean_probability:
        frame["probability_mean"] = mean_probability
    frame["probability"] = probability
    frame["threshold"] = thresholds
    frame["prediction"] = prediction
    frame.to_parquet(path, index=False)


def zip_submissions(output_dir: str, written: dict) -> None:
    """submit.zip, once both tasks' files exist (a file of an earlier run is included, with a warning)."""
    files = [os.path.join(output_dir, SUBMISSION_FILE[t]) for t in utils_data.TASKS]
    present = [path for path in files if os.path.isfile(path)]
    if len(present) != len(files):
        logger.info("No %s: it needs both %s", ZIP_FILE, list(SUBMISSION_FILE.values()))
        return
    stale = [path for path in present if path not in written.values()]
    if stale:
        logger.warning("%s comes from an earlier run and was not re-checked now", stale)
    zip_path = os.path.join(output_dir, ZIP_FILE)
    write_zip(zip_path, present)
    logger.info("Wrote %s with %s", zip_path, [os.path.basename(p) for p in present])


def main(argv=None):
    # 1. Arguments, processes, logging; --check_only stops here.
    parser = HfArgumentParser((DataArguments, ModelArguments, PredictionArguments))
    if argv is None and len(sys.argv) == 2 and sys.argv[1].endswith((".yaml", ".yml")):
        data_args, model_args, pred_args = parser.parse_yaml_file(os.path.abspath(sys.argv[1]))
    else:
        data_args, model_args, pred_args = parser.parse_args_into_dataclasses(args=argv)
    # PartialState() alone never goes multi-process on CPU; with cpu=True it reads torchrun's WORLD_SIZE (gloo).
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.accelerator.is_available())
    _setup_logging(state)
    if pred_args.check_only:
        return run_check_only(data_args, pred_args)
    # These depend on --check_only, which the other dataclasses do not see.
    if data_args.task is None:
        raise UserError("--task is required: qc, qi or qc,qi")
    tasks = utils_data.parse_tasks(data_args.task)
    if not data_args.dataset_name or not model_args.adapters:
        raise UserError("--dataset_name and --adapters are required (or --check_only)")

    # 2. Adapters of each task (checked before any model loads or any folder is made) and the tokenizer.
    plan = {task: plan_adapters(task, model_args) for task in tasks}
    os.makedirs(pred_args.output_dir, exist_ok=True)
    tokenizer = load_tokenizer(plan[tasks[0]], model_args.trust_remote_code)

    written, loaded_key, base_model = {}, None, None
    for task in tasks:
        # 3. Base model, loaded again only when this task's adapters need another one.
        settings, adapters, names = plan[task]["settings"], plan[task]["adapters"], plan[task]["names"]
        key = (plan[task]["base"], settings["num_labels"], settings["pooling"], settings.get("num_hidden_layers"))
        if key != loaded_key:
            logger.info("Loading base model %s on %s, %d process(es)", key[0], state.device, state.num_processes)
            base_model = None  # free the previous one first
            base_model = load_base_model(key[0], settings, model_args.dtype, model_args.attn_implementation,
                                         model_args.trust_remote_code, state.device, pred_args.shared_prefix)
            loaded_key = key

        # 4. Rows to score, tokenised once as in training, identical inputs merged.
        dataset_name, dataset, split = load_split(task, data_args)
        encoded = encode_split(tokenizer, task, split, dataset_name, settings, data_args, model_args,
                               pred_args.deduplicate)

        # 5. Score with every adapter and average.
        start = time.perf_counter()
        per_adapter, stats = score_adapters(
            base_model, adapters, encoded, tokenizer.pad_token_id, pred_args.max_tokens_per_batch,
            pred_args.max_batch_size, state, names,
        )
        elapsed = time.perf_counter() - start
        mean_probability = ensemble_probabilities(per_adapter)
        logger.info("Task %s: %d rows x %d adapter(s) in %.1fs (%.1f rows/s per adapter, %d sequences scored)",
                    task, split.num_rows, len(adapters), elapsed,
                    split.num_rows * len(adapters) / max(elapsed, 1e-9), stats["sequences_scored"])
        if not state.is_main_process:
            continue

        # 6. Combiner and thresholds, both chosen on the OOF predictions written by training.
        oof_files = expand_paths(pred_args.oof_files, task) if pred_args.oof_files else [
            path for path in (adapter_file(a, OOF_FILE) for a in adapters) if path
        ]
        oof = read_oof_predictions(oof_files, task) if oof_files else None
        probability, report = combine(task, mean_probability, oof, dataset, dataset_name, split, pred_args)
        languages = split["language"]
        thresholds = row_thresholds(languages, report, report["strategy"], pred_args.threshold)
        prediction = (probability >= thresholds).astype(int)
        log_thresholds(task, report, languages, thresholds, oof is not None)

        # 7. Per-row probabilities and the thresholds report.
        write_predictions(os.path.join(pred_args.output_dir, f"predictions_{task}.parquet"), task, split, names,
                          per_adapter, mean_probability, probability, thresholds, prediction)
        report.update({"task": task, "adapters": adapters, "scoring": stats,
                       "predicted_positive_rate": float(prediction.mean()) if len(prediction) else None})
        # make_folds.py gives an unlabelled test split a `label` column of nulls (one schema for every split).
        labels = split["label"] if "label" in split.column_names else []
        if len(labels) and all(label is not None for label in labels):
            report["split_f1"] = float(f1_score(labels, prediction))
            logger.info("Task %s: F1 on %s[%s] = %.4f", task, dataset_name, data_args.split, report["split_f1"])
        with open(os.path.join(pred_args.output_dir, f"thresholds_{task}.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, default=str)

        # 8. Submission file, checked against the test rows before it counts as written.
        if pred_args.write_submission and data_args.max_samples is None:
            path = os.path.join(pred_args.output_dir, SUBMISSION_FILE[task])
            rows = load_reference_rows(task, dataset=split)
            write_submission(path, rows, prediction, task)
            check_submission(path, rows, task)
            if data_args.test_file:
                test_file = data_args.test_file.replace("{task}", task)
                check_submission(path, load_reference_rows(task, test_file=test_file), task)
            logger.info("Wrote and checked %s (%d rows, %.1f%% positive)", path, len(rows), 100 * prediction.mean())
            written[task] = path

    # 9. The zip the competition takes.
    if state.is_main_process and written:
        zip_submissions(pred_args.output_dir, written)
    state.wait_for_everyone()
    return written


if __name__ == "__main__":
    utils_data.run_cli(main)
    PartialState().destroy_process_group()  # once per process, as run_relevance.py does (docs/scaling.md)
