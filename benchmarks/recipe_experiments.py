#!/usr/bin/env python
"""Measurements behind the small-model recipe (issue 10): baselines, zero-shot score and the results table.

Three jobs on one validation fold of a folded dataset (what make_folds.py writes):

- `--mode baselines`: what a trained model has to beat. The prior (always predict the training positive rate:
  its cross-entropy), all-positive F1, and a character n-gram TF-IDF + logistic regression on the same training
  rows, for the full training folds and for the query-grouped subsample the LLM runs use.
- `--mode zero_shot`: the untrained classifier whose 2-class score head is the LM-head rows of the answer
  tokens (" no", " yes"), i.e. the language model's own yes/no answer after the template. Its AUC says how
  much the pretrained model already knows before any training.
- `--mode table`: reads `metrics.json` / `oof_predictions.parquet` of run_relevance.py output folders and writes
  the Markdown results table (validation CE vs prior CE, AUC, F1 at 0.5, best-threshold F1, per-language F1,
  wall time, exact command from `command.txt` beside each run).

    python benchmarks/recipe_experiments.py --mode baselines --dataset_name /tmp/folds_qc --task qc --fold 0
    python benchmarks/recipe_experiments.py --mode zero_shot --dataset_name /tmp/folds_qc --task qc --fold 0 \\
        --model_name_or_path .cache/models/gemma-3-270m --max_eval_samples 400
    python benchmarks/recipe_experiments.py --mode table --runs_dir outputs/recipe --output_file table.md
"""

import glob
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
from transformers import HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling_relevance import binary_metrics  # noqa: E402
from utils_data import load_folded_dataset  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class ExperimentArguments:
    mode: str = field(metadata={"help": "baselines | zero_shot | table"})
    dataset_name: Optional[str] = field(
        default=None, metadata={"help": "Folded dataset (make_folds.py output dir or Hub id)."}
    )
    task: str = field(default="qc", metadata={"help": "qc or qi (for the template and the target column)."})
    fold: int = field(default=0, metadata={"help": "Validation fold; the other folds are training data."})
    max_train_samples: Optional[int] = field(
        default=None,
        metadata={"help": "Also report the TF-IDF baseline on a query-grouped subsample of this many training rows."},
    )
    max_eval_samples: Optional[int] = field(
        default=None, metadata={"help": "Score only this many validation rows (seeded random sample)."}
    )
    eval_ids_from: Optional[str] = field(
        default=None,
        metadata={
            "help": "A run_relevance.py output folder: score exactly the validation rows of its "
            "oof_predictions.parquet (so baselines and LLM runs are compared on the same rows)."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed of the subsamples."})
    model_name_or_path: Optional[str] = field(default=None, metadata={"help": "Model for --mode zero_shot."})
    template: str = field(default="instruct", metadata={"help": "bare or instruct (zero_shot)."})
    answer_tokens: str = field(default="no,yes", metadata={"help": "Negative,positive answer words (zero_shot)."})
    max_length: int = field(default=96, metadata={"help": "Token budget per example (zero_shot)."})
    batch_size: int = field(default=16, metadata={"help": "Scoring batch size (zero_shot)."})
    runs_dir: Optional[str] = field(default=None, metadata={"help": "Folder of run_relevance.py outputs (table)."})
    output_file: Optional[str] = field(default=None, metadata={"help": "Write the JSON/Markdown result here."})


def split_fold(dataset, fold: int):
    """Training rows (other folds, minus those purged for this fold) and validation rows, as pandas frames."""
    df = dataset["train"].to_pandas()
    val = df[df["fold"] == fold].reset_index(drop=True)
    excluded = df["exclude_from_train_folds"].map(lambda folds: fold in list(folds))
    train = df[(df["fold"] != fold) & ~excluded].reset_index(drop=True)
    return train, val


def grouped_subsample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """About `n` rows taken whole query by whole query (seeded), so a query is never split."""
    if n is None or n >= len(df):
        return df
    rng = np.random.default_rng(seed)
    # A numpy copy: shuffling pandas' Arrow-backed string array in place is not reliable (it may duplicate items).
    queries = np.array(df["query"].unique(), dtype=object)
    rng.shuffle(queries)
    sizes = df.groupby("query").size()
    keep, total = [], 0
    for q in queries:
        if total >= n:
            break
        keep.append(q)
        total += int(sizes[q])
    return df[df["query"].isin(set(keep))].reset_index(drop=True)


def evaluate(labels, probabilities, languages, prior=None) -> dict:
    metrics = binary_metrics(labels, probabilities, prior=prior)
    per_language = {}
    for language in sorted(set(languages)):
        mask = np.asarray(languages) == language
        per_language[language] = binary_metrics(np.asarray(labels)[mask], np.asarray(probabilities)[mask])["f1"]
    metrics["per_language_f1"] = per_language
    p = float(np.mean(labels))
    metrics["all_positive_f1"] = 2 * p / (1 + p)
    return metrics


def run_baselines(args, train, val) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    results = {}
    prior = float(train["label"].mean())
    results["prior"] = evaluate(val["label"], np.full(len(val), prior), val["language"], prior=prior)

    def tfidf(train_rows, name, query_only=False):
        start = time.time()
        # Query and target are vectorised separately and their element-wise product added: a linear model on
        # a plain concatenation cannot see whether query and target match, only which words occur.
        vq = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True)
        vq.fit(pd.concat([train_rows["query"], train_rows["target"]]))
        from scipy.sparse import hstack

        def features(rows):
            q, t = vq.transform(rows["query"]), vq.transform(rows["target"])
            # query_only: how much of the label a model can guess without looking at the target at all.
            return q.tocsr() if query_only else hstack([q, t, q.multiply(t)]).tocsr()

        model = LogisticRegression(C=1.0, max_iter=2000)
        model.fit(features(train_rows), train_rows["label"])
        prob = model.predict_proba(features(val))[:, 1]
        metrics = evaluate(val["label"], prob, val["language"], prior=float(train_rows["label"].mean()))
        metrics["train_rows"] = len(train_rows)
        metrics["wall_s"] = round(time.time() - start, 1)
        results[name] = metrics

    tfidf(train, "tfidf_char_lr_full_train")
    tfidf(train, "tfidf_char_lr_query_only_full_train", query_only=True)
    if args.max_train_samples:
        tfidf(grouped_subsample(train, args.max_train_samples, args.seed), f"tfidf_char_lr_{args.max_train_samples}")
    return results


def run_zero_shot(args, train, val) -> dict:
    import torch
    from transformers import AutoTokenizer

    from modeling_relevance import answer_token_ids, build_classifier, predict_probabilities, prepare_tokenizer

    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(args.model_name_or_path))
    ids = answer_token_ids(tokenizer, args.answer_tokens.split(","))
    model = build_classifier(
        args.model_name_or_path, num_labels=2, score_init="answer_tokens", answer_token_ids=ids,
        attn_implementation="sdpa",
    )
    start = time.time()
    with torch.inference_mode():
        prob = predict_probabilities(
            model, tokenizer, [args.task] * len(val), list(val["query"]), list(val["target"]),
            template=args.template, max_length=args.max_length, batch_size=args.batch_size,
        )
    metrics = evaluate(val["label"], prob, val["language"], prior=float(train["label"].mean()))
    metrics["wall_s"] = round(time.time() - start, 1)
    metrics["mean_probability"] = float(np.mean(prob))
    return {f"zero_shot_{args.template}_{args.answer_tokens.replace(',', '_')}": metrics}


def _fmt(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


def _last_flag(command: str, flag: str):
    """Value of the last occurrence of `flag` in a recorded command line (later flags override earlier ones)."""
    words = command.split()
    values = [words[i + 1] for i, w in enumerate(words[:-1]) if w == flag]
    return values[-1] if values else None


def run_table(args) -> str:
    """One row per run folder (sorted by name): metrics recomputed from its out-of-fold predictions."""
    rows = []
    for oof_file in sorted(glob.glob(os.path.join(args.runs_dir, "*", "oof_predictions.parquet"))):
        run_dir = os.path.dirname(oof_file)
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
        command_file = os.path.join(run_dir, "command.txt")
        command = open(command_file).read().strip() if os.path.exists(command_file) else ""
        wall_file = os.path.join(run_dir, "wall_s.txt")
        wall = float(open(wall_file).read()) if os.path.exists(wall_file) else None
        pred = pd.read_parquet(oof_file)
        # The prior is the training rows' positive rate: what a model that learnt nothing would predict.
        m = evaluate(pred["label"], pred["probability"], pred["language"], prior=(metrics.get("eval") or {}).get("train_prior"))
        train = metrics.get("train") or {}
        steps = _last_flag(command, "--max_steps")
        if steps in (None, "-1"):  # an epoch-based run: steps = rows x epochs / batch
            batch = int(_last_flag(command, "--per_device_train_batch_size") or 8)
            steps = str(int(np.ceil(train.get("train_rows", 0) / batch) * round(train.get("epoch", 1))))
        sizes = f"{train.get('train_rows', '')} / {len(pred)}"
        rows.append((os.path.basename(run_dir), steps, sizes, wall, m, command))
    lines = [
        "| run | steps | train / val rows | wall s | val CE | prior CE | AUC | F1@0.5 | best-thr F1 | all-pos F1 | "
        "per-language F1@0.5 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, steps, sizes, wall, m, _ in rows:
        langs = " ".join(f"{k} {v:.2f}" for k, v in m["per_language_f1"].items())
        lines.append(
            f"| {name} | {steps or ''} | {sizes} | {_fmt(wall, 0)} | {_fmt(m['log_loss'])} | {_fmt(m['prior_log_loss'])} | "
            f"{_fmt(m['roc_auc'])} | {_fmt(m['f1'])} | {_fmt(m['best_threshold_f1'])} | {_fmt(m['all_positive_f1'])} | "
            f"{langs} |"
        )
    lines.append("")
    for name, _, _, _, _, command in rows:
        lines.append(f"- `{name}`: `{command}`")
    return "\n".join(lines) + "\n"


def main():
    # 1. Arguments and logging.
    parser = HfArgumentParser(ExperimentArguments)
    (args,) = parser.parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)

    if args.mode == "table":
        text = run_table(args)
        print(text)
        if args.output_file:
            with open(args.output_file, "w") as f:
                f.write(text)
        return

    # 2. The fold: training rows (purged) and validation rows, optionally subsampled.
    if args.dataset_name is None:
        raise ValueError("--dataset_name is required for --mode baselines / zero_shot")
    train, val = split_fold(load_folded_dataset(args.dataset_name), args.fold)
    if args.eval_ids_from:
        ids = set(pd.read_parquet(os.path.join(args.eval_ids_from, "oof_predictions.parquet"))["id"].astype(str))
        val = val[val["id"].astype(str).isin(ids)].reset_index(drop=True)
        if len(val) != len(ids):
            raise ValueError(f"{len(ids)} ids in {args.eval_ids_from}, {len(val)} of them found in fold {args.fold}")
    elif args.max_eval_samples and args.max_eval_samples < len(val):
        val = val.sample(n=args.max_eval_samples, random_state=args.seed).reset_index(drop=True)
    logger.info("fold %d: %d training rows, %d validation rows (positive rate %.3f)",
                args.fold, len(train), len(val), val["label"].mean())

    # 3. Measure.
    if args.mode == "baselines":
        results = run_baselines(args, train, val)
    elif args.mode == "zero_shot":
        results = run_zero_shot(args, train, val)
    else:
        raise ValueError(f"unknown --mode {args.mode!r}; expected baselines, zero_shot or table")

    # 4. Report.
    for name, m in results.items():
        logger.info(
            "%s: CE %.4f (prior %.4f) AUC %s F1@0.5 %.3f best-thr F1 %.3f (thr %.3f) all-pos F1 %.3f per-lang %s",
            name, m["log_loss"], m["prior_log_loss"], _fmt(m["roc_auc"]), m["f1"], m["best_threshold_f1"],
            m["best_threshold"], m["all_positive_f1"], {k: round(v, 3) for k, v in m["per_language_f1"].items()},
        )
    if args.output_file:
        with open(args.output_file, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
