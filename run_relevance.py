#!/usr/bin/env python
"""Train the last-token LoRA relevance classifier on one fold (or on all data) of a folded dataset.

    # one fold, one task
    python run_relevance.py --model_name_or_path google/gemma-3-270m --dataset_name outputs/folds_qc \
        --task qc --fold 0 --output_dir outputs/qc_fold0
    # the same from a recipe, several processes, pushed to the Hub ({fold} and {task} are expanded)
    accelerate launch run_relevance.py --config recipes/NAME.yaml --fold 0 \
        --push_to_hub --hub_model_id me/relevance-{task}-fold{fold}
    # TAPT: start from a previous run's adapter (LoRA + score head), trainable
    python run_relevance.py ... --task qc --init_adapter me/relevance-qi-foldall
    # multitask: one model for both tasks (the instruct template names the task)
    python run_relevance.py ... --task qc,qi --dataset_name outputs/folds_qc outputs/folds_qi

Runs alone with modeling_relevance.py beside it. Outputs, defaults and why: docs/run_relevance.md.
"""

import dataclasses
import enum
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field


def fail_fast_on_missing_folder(argv) -> None:
    """A path flag naming no folder and no possible Hub repo id ('./tapt', '/x', 'a/b/c'), or a Hub id the Hub says
    does not have or cannot be asked about, ends the run here, in about a second, before torch and transformers load
    (~10 s). Offline mode (the Hub cache) and a --hub_token: check_folder_or_hub_repo after the imports."""
    import argparse

    from huggingface_hub import constants, repo_exists
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    flags = ("--init_adapter", "--model_name_or_path")
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in (*flags, "--config", "--hub_token"):
        parser.add_argument(flag)
    known, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        return  # --help answers whatever the other flags say
    values = {}
    if known.config and os.path.isfile(known.config):
        import yaml

        with open(known.config, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        values = {f"--{k}": v for k, v in config.items() if f"--{k}" in flags} if isinstance(config, dict) else {}
        known.hub_token = known.hub_token or (config.get("hub_token") if isinstance(config, dict) else None)
    values.update({flag: getattr(known, flag[2:]) for flag in flags if getattr(known, flag[2:]) is not None})
    for flag, name in values.items():
        if not isinstance(name, str) or os.path.exists(name):
            continue
        try:
            validate_repo_id(name)
        except HFValidationError:
            sys.exit(f"{os.path.basename(sys.argv[0])}: error: {flag} {name}: no such folder or Hub repo (no folder of "
                     "that name here, and not a Hub repo id NAME or NAMESPACE/NAME); give an existing folder or a Hub "
                     "repo id")
        if constants.HF_HUB_OFFLINE or known.hub_token:
            continue
        try:
            found = repo_exists(name)
        except Exception as err:  # the HTTP client's own errors, as check_folder_or_hub_repo
            sys.exit(f"{os.path.basename(sys.argv[0])}: error: {flag} {name}: no such folder, and the Hub at "
                     f"{constants.ENDPOINT} could not be asked about a model repo {name} ({type(err).__name__}: "
                     f"{str(err).splitlines()[0] if str(err) else ''}); give an existing folder, or check the "
                     "network, HF_ENDPOINT and HF_HUB_OFFLINE")
        if not found:
            sys.exit(f"{os.path.basename(sys.argv[0])}: error: {flag} {name}: no such folder or Hub repo "
                     f"({constants.ENDPOINT} has no model repo {name}, or it is private and your token cannot read "
                     "it); give an existing folder or repo")


if __name__ == "__main__":
    fail_fast_on_missing_folder(sys.argv[1:])

import datasets
import numpy as np
import transformers
from datasets.fingerprint import Hasher
from huggingface_hub import ModelCard, ModelCardData
from torch.utils.data import SequentialSampler
from transformers import (
    AutoTokenizer,
    DataCollatorWithFlattening,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import IntervalStrategy, get_last_checkpoint, has_length
from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config

import modeling_relevance as mr
from modeling_relevance import (
    CATEGORY_JOINER,
    UserError,
    check_folder_or_hub_repo,
    load_folded_dataset,
    parse_tasks,
    run_cli,
)

# Defaults that differ from TrainingArguments / trl's ModelConfig; the command line and recipes override them.
DEFAULTS = dict(
    # LoRA as the winners: r 16, alpha 32, dropout 0.05 on every linear layer of the language model.
    use_peft=True, lora_r=16, lora_alpha=32, lora_dropout=0.05, lora_target_modules=["all-linear"],
    lora_task_type="SEQ_CLS",
    dtype="auto",  # bfloat16 on a GPU that supports it, float32 on the CPU (modeling_relevance._torch_dtype)
    attn_implementation="sdpa",
    learning_rate=1e-5, num_train_epochs=1, per_device_train_batch_size=8, per_device_eval_batch_size=32,
    lr_scheduler_type="cosine", warmup_steps=0.05,
    eval_strategy="steps", eval_steps=100, save_strategy="steps", save_steps=100, save_total_limit=2,
    logging_steps=10,
    # None, not True, so that --fold -1 parses without the eval/save constraints; apply_training_defaults resolves it.
    load_best_model_at_end=None, metric_for_best_model="f1", greater_is_better=True,
    train_sampling_strategy="group_by_length",  # less padding
    report_to="none",
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "language", "query", "target", "label", "fold")


@dataclass
class RelevanceArguments:
    """Data, task, input template and score head of the relevance classifier."""

    dataset_name: list[str] = field(
        default=None,
        metadata={
            "help": "Folded dataset(s) written by make_folds.py (Hub id or local folder), one per task, in the order "
            "of --task. Several may be given space- or comma-separated."
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "Labelled split to fold (make_folds.py: 'train')."})
    task: str = field(
        default="qc",
        metadata={"help": "Task(s): 'qc' (query-category), 'qi' (query-item) or 'qc,qi' (one multitask model)."},
    )
    fold: int = field(
        default=0,
        metadata={
            "help": "Validation fold K: train on the other folds (minus rows make_folds.py excluded for K), "
            "evaluate and predict on K. -1: train on all rows, no evaluation and no out-of-fold predictions."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Keep at most this many training rows per task: a random subset drawn with --data_seed "
                          "(else --seed)."},
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={"help": "Keep at most this many validation rows per task: a random subset drawn with --data_seed "
                          "(else --seed)."},
    )
    use_translation: bool | None = field(
        default=None,
        metadata={
            "help": "Append the English translation (`query_en` column) to the query as 'query - query_en'. "
            "Default: on for every dataset that has a query_en column."
        },
    )
    template: str = field(
        default="instruct",
        metadata={
            "help": "Input template: 'instruct' (a short instruction naming the task, ending right before the "
            "answer token) or 'bare' (the winners' 'query [SEP] target'; single task only).",
            "choices": list(mr.TEMPLATES),
        },
    )
    max_length: int = field(
        default=256,
        metadata={"help": "Maximum tokens per input; the target is cut to fit, the query never is."},
    )
    num_labels: int = field(
        default=2,
        metadata={"help": "Score head outputs: 2 (softmax, P = p[1]) or 1 (sigmoid of a single logit).",
                  "choices": [1, 2]},
    )
    pooling: str = field(
        default="auto",
        metadata={
            "help": "Which hidden state feeds the head: 'last' non-padding token (decoders), 'first' token "
            "(encoders), the 'mean' over every non-padding token, or 'auto' (first for masked-LM architectures, last "
            "otherwise).",
            "choices": list(mr.POOLING_CHOICES),
        },
    )
    num_hidden_layers: int | None = field(
        default=None,
        metadata={
            "help": "Keep only the first N transformer layers of the backbone (default: all). Halves the cost of a "
            "step at N = half the layers; on small models the relevance signal of frozen features peaks in the "
            "middle layers (docs/recipe_experiments.md). Saved with the adapter, so inference truncates alike."
        },
    )
    score_init: str = field(
        default="random",
        metadata={
            "help": "Score head initialisation: 'random', or 'answer_tokens' (the LM-head rows of --answer_tokens, "
            "as LLM rerankers do; needs a checkpoint with an LM head or tied embeddings).",
            "choices": list(mr.SCORE_INITS),
        },
    )
    score_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the score head (a new linear layer) when it should differ from "
                  "--learning_rate (LoRA's); same schedule and warm-up. Default: --learning_rate."},
    )
    answer_tokens: str = field(
        default="no,yes",
        metadata={"help": "With --score_init answer_tokens: the negative and positive answer words, comma-separated."},
    )
    init_adapter: str | None = field(
        default=None,
        metadata={
            "help": "Start from a previous run's adapter (LoRA + score head; Hub id or folder), trainable (TAPT "
            "stage 2). Its LoRA settings replace the --lora_* flags."
        },
    )
    init_adapter_revision: str | None = field(
        default=None, metadata={"help": "Revision (branch, tag or commit) of --init_adapter on the Hub."}
    )
    hierarchy_ancestors: int = field(
        default=0,
        metadata={
            "help": "QC only: for every positive training row, add its K nearest ancestor prefixes (parent, "
            "grandparent, ...) as extra positive rows (relevant to a leaf implies relevant to its parent; a "
            "negative says nothing about the parent). Validation rows are untouched. docs/hierarchy.md."
        },
    )
    shared_prefix: bool = field(
        default=True,
        metadata={
            "help": "Run the tokens that every row of a batch starts with (the instruction of --template instruct) "
            "once per batch, at batch size 1, and continue each row from a copy of their KV cache: the same logits "
            "and gradients up to rounding (tests/test_shared_prefix.py), fewer token computations. Decoders with "
            "last-token pooling; batches of one task (multitask training batches are grouped by task) and within the "
            "sliding window; off with gradient checkpointing. Measured in docs/scaling.md; --shared_prefix false "
            "to compare."
        },
    )
    padding_free: bool = field(
        default=False,
        metadata={
            "help": "Padding-free batches: each batch's rows are concatenated into one row whose position_ids restart "
            "at 0 per row (transformers' DataCollatorWithFlattening, one label per row kept); the model pools each "
            "packed row's last (or first) token, so the logits and the loss equal the padded batch's. Decoders only "
            "(an encoder's bidirectional attention would mix the rows). Meant for GPUs with --attn_implementation "
            "flash_attention_2 (its variable-length kernel runs each row alone, and no layer computes padding). "
            "sdpa and eager keep the rows apart too (checked equal on CPU), but through a dense mask over the whole "
            "batch, so their attention costs more than with padding; measured on a shared 2-core CPU it was mixed "
            "(Gemma-3-270m about 1.1x the padded tokens/s in most alternated pairs, a tiny model 0.8x; "
            "docs/scaling.md), so it stays off by default. Not turned on by flash_attention_2 automatically either: it "
            "has not been run on a GPU yet, so a GPU recipe opts in explicitly."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "Stop after this many evaluations without F1 improvement (default: never stop early)."},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom modelling code from the model repository (off by default)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenisation with datasets.map (default: one)."}
    )

    def __post_init__(self):
        if isinstance(self.dataset_name, str):
            self.dataset_name = [self.dataset_name]
        if self.dataset_name:
            self.dataset_name = [name for item in self.dataset_name for name in str(item).split(",") if name.strip()]
        if len(parse_tasks(self.task)) > 1 and self.template == "bare":
            raise UserError("--template bare does not name the task: use --template instruct with --task qc,qi")
        if self.fold < -1:
            raise UserError(f"--fold must be -1 (all data) or a fold number, got {self.fold}")
        if self.score_learning_rate is not None and self.score_learning_rate <= 0:
            raise UserError(f"--score_learning_rate must be > 0 (or left unset), got {self.score_learning_rate}")
        if self.hierarchy_ancestors < 0:
            raise UserError(f"--hierarchy_ancestors must be 0 (off) or a number of ancestor levels, got "
                            f"{self.hierarchy_ancestors}")
        if self.init_adapter:
            # Here, before any data or model loads: a wrong path fails in a second, not after the backbone loaded.
            check_folder_or_hub_repo(self.init_adapter, "--init_adapter")


# ----------------------------------------------------------------------------------------------------------------
# Settings: what the script changes in TrainingArguments, the checks that span several dataclasses
# ----------------------------------------------------------------------------------------------------------------


def apply_training_defaults(training_args: TrainingArguments, script_args: RelevanceArguments, tasks) -> float:
    """Every change this script makes to the parsed TrainingArguments, in one place. Returns the label smoothing,
    which the model's loss applies instead of the Trainer."""
    if script_args.fold == -1 and training_args.eval_strategy != IntervalStrategy.NO:
        logger.info("--fold -1: training on all rows, evaluation and best-checkpoint selection are off")
        training_args.eval_strategy = IntervalStrategy.NO
        training_args.load_best_model_at_end = False
    if training_args.load_best_model_at_end is None:
        training_args.load_best_model_at_end = training_args.eval_strategy != IntervalStrategy.NO
    # The loss is computed in the model (it handles one-logit heads too); the Trainer must not smooth it again.
    label_smoothing, training_args.label_smoothing_factor = training_args.label_smoothing_factor, 0.0
    # Counted for the tokens/s of metrics.json. (Set here: the CLI parses this str|bool field as a bool only.)
    if training_args.include_num_input_tokens_seen in ("no", "all"):
        training_args.include_num_input_tokens_seen = "non_padding"
    # One push, at the end, of a private repo unless --hub_private_repo false; {task} and {fold} expanded.
    training_args.hub_model_id = expand_hub_model_id(training_args.hub_model_id, tasks, script_args.fold)
    training_args.hub_strategy = "end"
    # The Trainer pickles its arguments into training_args.bin, which the push uploads: a --hub_token must not be in it.
    if training_args.hub_token:
        os.environ["HF_TOKEN"], training_args.hub_token = training_args.hub_token, None
    if training_args.hub_private_repo is None:
        training_args.hub_private_repo = True
    if training_args.resume_from_checkpoint in ("last", "True", "true"):
        training_args.resume_from_checkpoint = get_last_checkpoint(training_args.output_dir)
        if training_args.resume_from_checkpoint is None:
            raise UserError(f"--resume_from_checkpoint last: no checkpoint in {training_args.output_dir}")
    return label_smoothing


def check_args(script_args: RelevanceArguments, training_args: TrainingArguments, model_args: ModelConfig) -> None:
    """The checks that need more than one dataclass (RelevanceArguments.__post_init__ does the others)."""
    if model_args.model_name_or_path is None:
        raise UserError("--model_name_or_path is required")
    check_folder_or_hub_repo(model_args.model_name_or_path, "--model_name_or_path")  # before the data loads
    if not model_args.use_peft:
        raise UserError("run_relevance.py trains LoRA adapters: --use_peft must stay true")
    if training_args.load_best_model_at_end:
        check_best_checkpoint_schedule(training_args)
    if script_args.early_stopping_patience is not None and not training_args.load_best_model_at_end:
        raise UserError("--early_stopping_patience needs evaluation during training: a fold >= 0, --eval_strategy "
                        "steps or epoch, and the best checkpoint restored (--load_best_model_at_end)")
    if model_args.load_in_4bit or model_args.load_in_8bit:
        import importlib.util

        import torch

        if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("--load_in_4bit/--load_in_8bit (QLoRA) need a CUDA GPU and the bitsandbytes package")
    if training_args.push_to_hub and not training_args.hub_model_id:
        raise UserError("--push_to_hub needs --hub_model_id (may contain {task} and {fold})")


def check_best_checkpoint_schedule(training_args):
    """The checks TrainingArguments makes when load_best_model_at_end is set on the command line."""
    eval_strategy, save_strategy = training_args.eval_strategy, training_args.save_strategy
    if save_strategy == "best":
        return
    if str(getattr(eval_strategy, "value", eval_strategy)) != str(getattr(save_strategy, "value", save_strategy)):
        raise UserError(
            f"restoring the best checkpoint needs --save_strategy equal to --eval_strategy (got {save_strategy} and "
            f"{eval_strategy}); or pass --load_best_model_at_end false"
        )
    if eval_strategy == IntervalStrategy.STEPS and training_args.save_steps % training_args.eval_steps != 0:
        raise UserError(
            f"restoring the best checkpoint needs --save_steps ({training_args.save_steps}) to be a multiple of "
            f"--eval_steps ({training_args.eval_steps})"
        )


def expand_hub_model_id(hub_model_id, tasks, fold):
    if not hub_model_id:
        return hub_model_id
    return hub_model_id.replace("{task}", "-".join(tasks)).replace("{fold}", "all" if fold == -1 else str(fold))


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------


def column_values(ds: datasets.Dataset, name: str) -> list:
    """A column as a Python list. (`ds[name]` in datasets 5 is a lazy column formatted row by row: minutes on
    the 51k-row QI set; through Arrow it takes well under a second.)"""
    return ds.with_format("arrow")[name].to_pylist()


def validate_dataset(ds: datasets.Dataset, name: str, task: str) -> None:
    """Fail early, naming the dataset, the row id and the field, on anything the training cannot use."""
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise UserError(
            f"dataset {name}: missing column(s) {missing}; found {ds.column_names}. "
            "Is it the output of make_folds.py (see docs/conventions.md)?"
        )
    if len(ds) == 0:
        raise UserError(f"dataset {name}: the split is empty")
    if "task" in ds.column_names:
        ids = column_values(ds, "id")
        wrong = [(i, t) for i, t in zip(ids, column_values(ds, "task")) if str(t).lower() != task]
        if wrong:
            raise UserError(
                f"dataset {name}: {len(wrong)} row(s) have task != {task.upper()} (first: id {wrong[0][0]}, "
                f"task {wrong[0][1]!r}); is --dataset_name in the same order as --task?"
            )
    ids = column_values(ds, "id")
    for column in ("label", "query", "target", "fold"):
        values = column_values(ds, column)
        for row_id, value in zip(ids, values):
            bad = (
                (column == "label" and value not in (0, 1))
                or (column in ("query", "target") and value is None)
                or (column == "fold" and value is None)
            )
            if bad:
                raise UserError(f"dataset {name}: row id {row_id}: field {column!r} has invalid value {value!r}")


def load_task_datasets(script_args, tasks, seed):
    """Load, validate and split each task's dataset; return (train, eval or None, per-task translation flags)."""
    names = script_args.dataset_name or []
    if not names:
        raise UserError("--dataset_name is required (one folded dataset per task)")
    if len(names) != len(tasks):
        raise UserError(
            f"{len(names)} dataset(s) {names} for {len(tasks)} task(s) {tasks}: give one --dataset_name per task, "
            "in the same order"
        )
    fold = script_args.fold
    train_parts, eval_parts, translation = [], [], {}
    for task, name in zip(tasks, names):
        try:
            loaded = load_folded_dataset(name)
        except UserError:  # no such folder or Hub repo: already one clear line
            raise
        except Exception as err:  # datasets raises many types (an empty split: IndexError); name the dataset
            raise UserError(f"dataset {name}: could not be loaded ({type(err).__name__}: {err}); an empty "
                             "dataset cannot be saved or loaded, is it the output of make_folds.py?") from err
        if script_args.dataset_split not in loaded:
            raise UserError(f"dataset {name}: no split {script_args.dataset_split!r}; found {list(loaded)}")
        ds = loaded[script_args.dataset_split]
        validate_dataset(ds, name, task)

        has_translation = "query_en" in ds.column_names
        use = has_translation if script_args.use_translation is None else script_args.use_translation
        if use and not has_translation:
            raise UserError(f"dataset {name}: --use_translation is on but there is no query_en column")
        translation[task] = bool(use)

        # One schema for every task, so that tasks can be concatenated.
        raw_task = column_values(ds, "task") if "task" in ds.column_names else [task.upper()] * len(ds)
        columns = {
            "id": [str(i) for i in column_values(ds, "id")],
            "task": [str(t) for t in raw_task],
            "task_key": [task] * len(ds),
            "language": [str(lang) for lang in column_values(ds, "language")],
            "query": column_values(ds, "query"),
            "target": column_values(ds, "target"),
            "query_en": column_values(ds, "query_en") if use else [None] * len(ds),
            "label": [int(v) for v in column_values(ds, "label")],
            "fold": [int(v) for v in column_values(ds, "fold")],
            # Optional: without it (a dataset not written by make_folds.py) nothing is purged.
            "exclude": (column_values(ds, "exclude_from_train_folds") if fold >= 0 and "exclude_from_train_folds"
                        in ds.column_names else [[] for _ in range(len(ds))]),
        }
        folds = sorted(set(columns["fold"]))
        if fold >= 0 and fold not in folds:
            raise UserError(f"dataset {name}: fold {fold} not present; its folds are {folds} (or use --fold -1)")
        if fold == -1:
            train_idx, eval_idx, excluded = list(range(len(ds))), [], 0
        else:
            train_idx, eval_idx, excluded = [], [], 0
            for i, (f, exclude) in enumerate(zip(columns["fold"], columns["exclude"])):
                if f == fold:
                    eval_idx.append(i)
                elif fold in (exclude or []):
                    excluded += 1
                else:
                    train_idx.append(i)
        logger.info(
            "task %s, dataset %s: %d rows, folds %s -> %d train, %d validation (fold %d), %d excluded from training "
            "because their query is in the validation fold; translation %s",
            task, name, len(ds), folds, len(train_idx), len(eval_idx), fold, excluded, "on" if use else "off",
        )
        del columns["exclude"]
        table = datasets.Dataset.from_dict(
            columns,
            features=datasets.Features(
                {
                    "id": datasets.Value("string"),
                    "task": datasets.Value("string"),
                    "task_key": datasets.Value("string"),
                    "language": datasets.Value("string"),
                    "query": datasets.Value("string"),
                    "target": datasets.Value("string"),
                    "query_en": datasets.Value("string"),
                    "label": datasets.Value("int64"),
                    "fold": datasets.Value("int64"),
                }
            ),
        )
        train_part = table.select(train_idx)
        if task == "qc" and script_args.hierarchy_ancestors > 0:
            train_part = add_ancestor_rows(train_part, script_args.hierarchy_ancestors)
        train_parts.append(cap_rows(train_part, script_args.max_train_samples, seed))
        if eval_idx:
            eval_parts.append(cap_rows(table.select(eval_idx), script_args.max_eval_samples, seed))

    train = datasets.concatenate_datasets(train_parts)
    if len(train) == 0:
        raise UserError(f"no training rows left for fold {fold} in {names}")
    eval_ds = datasets.concatenate_datasets(eval_parts) if fold >= 0 else None
    if fold >= 0 and (eval_ds is None or len(eval_ds) == 0):
        raise UserError(f"no validation rows for fold {fold} in {names}")
    return train, eval_ds, translation


def cap_rows(ds: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """At most `limit` rows of one task, a seeded random subset (the same rows whether or not other tasks join)."""
    return ds if limit is None or limit >= len(ds) else ds.shuffle(seed=seed).select(range(limit))


def add_ancestor_rows(train: datasets.Dataset, ancestors: int) -> datasets.Dataset:
    """Hierarchy-aware QC: each positive row's K nearest ancestor prefixes become extra positive rows.

    Skips a (query, prefix) pair that is already a row or already added; ids get a `#aK` suffix."""
    rows = train.to_list()
    seen = {(row["query"], row["target"]) for row in rows}
    extra = []
    for row in rows:
        if row["label"] != 1:
            continue
        levels = row["target"].split(CATEGORY_JOINER)
        for k in range(1, min(ancestors, len(levels) - 1) + 1):
            prefix = CATEGORY_JOINER.join(levels[:-k])
            if (row["query"], prefix) not in seen:
                seen.add((row["query"], prefix))
                extra.append({**row, "id": f"{row['id']}#a{k}", "target": prefix})
    logger.info("--hierarchy_ancestors %d: %d ancestor rows added to %d QC training rows", ancestors, len(extra),
                len(rows))
    return datasets.concatenate_datasets([train, datasets.Dataset.from_list(extra, features=train.features)])


def tokenize_dataset(ds, tokenizer, script_args, description):
    """Add input_ids / attention_mask / labels; count and report truncated targets and over-long queries."""

    def encode(batch):
        enc = mr.encode_examples(
            tokenizer,
            batch["task_key"],
            batch["query"],
            batch["target"],
            batch["query_en"],
            template=script_args.template,
            max_length=script_args.max_length,
        )
        enc["labels"] = batch["label"]
        return enc

    # A fingerprint from the settings: without one, datasets hashes `encode` by pickling the tokenizer with it
    # (262k-entry vocabulary), about 10 s per call on this CPU. Never reuse a cache: the prompt code may have changed.
    settings = [ds._fingerprint, description, tokenizer.name_or_path, len(tokenizer), script_args.template,
                script_args.max_length]
    encoded = ds.map(
        encode,
        batched=True,
        num_proc=script_args.preprocessing_num_workers,
        remove_columns=ds.column_names,
        desc=f"Tokenising {description}",
        new_fingerprint=Hasher.hash(settings),
        load_from_cache_file=False,
    )
    truncated = sum(column_values(encoded, "target_truncated"))
    too_long = sum(column_values(encoded, "query_too_long"))
    lengths = [len(ids) for ids in column_values(encoded, "input_ids")]
    logger.info(
        "%s: %d rows, %.1f tokens on average (max %d); target truncated in %d rows to fit --max_length %d",
        description, len(encoded), float(np.mean(lengths)), max(lengths), truncated, script_args.max_length,
    )
    if too_long:
        logger.warning(
            "%s: %d rows have an instruction + query longer than --max_length %d: kept whole, target dropped",
            description, too_long, script_args.max_length,
        )
    return encoded.remove_columns(["target_truncated", "query_too_long"])


class RelevanceTrainer(Trainer):
    """`Trainer` whose evaluation keeps the dataset order, and whose model card is this run's own.

    With `train_sampling_strategy="group_by_length"`, transformers 5 also length-groups the *evaluation* sampler,
    so predictions come back shuffled and no longer line up with the rows' ids, languages and tasks (measured:
    per-language F1 and OOF rows silently misaligned). Evaluation order costs nothing to keep.
    """

    model_card: ModelCard | None = None  # set by main() once the metrics are known
    score_learning_rate: float | None = None  # --score_learning_rate
    train_tasks: list | None = None  # each training row's task, set by main()

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with --score_learning_rate the score head gets its own parameter group (the
        scheduler, created after, scales every group's rate alike)."""
        optimizer = super().create_optimizer(model)
        head = [p for n, p in self.model.named_parameters() if ".score." in f".{n}" and p.requires_grad]
        if self.score_learning_rate is None or not head or any(g.get("is_score_head") for g in optimizer.param_groups):
            return optimizer
        moved = {id(p) for p in head}
        for group in optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in moved]
        optimizer.add_param_group({"params": head, "lr": self.score_learning_rate, "weight_decay": 0.0,
                                   "is_score_head": True})
        return optimizer

    def _get_train_sampler(self, train_dataset=None):
        """Multitask: rows are length-grouped within their task, so a batch holds one task and its instruction runs
        once (--shared_prefix); only a batch on a task boundary of a mega-batch (up to 50 batches) mixes two."""
        sampler = super()._get_train_sampler(train_dataset)
        if isinstance(sampler, LengthGroupedSampler) and len(set(self.train_tasks or ())) > 1:
            rank = {task: i for i, task in enumerate(sorted(set(self.train_tasks)))}
            sampler.lengths = [length + 10**6 * rank[task] for length, task in zip(sampler.lengths, self.train_tasks)]
        return sampler

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        # Distributed: no sampler, accelerate shards in order and gather_for_metrics restores it.
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def create_model_card(self, **kwargs):
        """Called by `push_to_hub` too: the run's card replaces the Trainer's generic draft."""
        if self.model_card is None:
            return super().create_model_card(**kwargs)
        if self.is_world_process_zero():
            self.model_card.save(os.path.join(self.args.output_dir, "README.md"))


class RowLabelFlatteningCollator(DataCollatorWithFlattening):
    """`DataCollatorWithFlattening` (padding-free: the batch as one row, position_ids restarting at 0 per row) for
    one label per row: transformers' collator expects token labels, this one returns `labels` of shape (rows,)."""

    def __call__(self, features, return_tensors=None, separator_id=None):
        import torch

        batch = super().__call__([{"input_ids": f["input_ids"]} for f in features], return_tensors, separator_id)
        del batch["labels"]  # the token labels the parent derived from input_ids
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
        return batch


def make_collator(script_args, model_args, tokenizer):
    """Padded batches (dynamic padding to a multiple of 8), or with --padding_free flattened ones (with the flash
    attention sequence boundaries when the attention is flash attention, so it need not derive them)."""
    if not script_args.padding_free:
        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)
    flash = "flash" in str(model_args.attn_implementation or "")
    return RowLabelFlatteningCollator(return_position_ids=True, return_flash_attn_kwargs=flash)


# ----------------------------------------------------------------------------------------------------------------
# Metrics, outputs
# ----------------------------------------------------------------------------------------------------------------


def grouped_metrics(labels, probabilities, groups, threshold=0.5) -> dict:
    """F1 (and size, positive rate, AUC) per value of `groups` (a language or a task)."""
    out = {}
    labels, probabilities, groups = np.asarray(labels), np.asarray(probabilities), np.asarray(groups)
    for value in sorted(set(groups.tolist())):
        mask = groups == value
        m = mr.binary_metrics(labels[mask], probabilities[mask], threshold=threshold)
        out[value] = {k: m[k] for k in ("num_examples", "positive_rate", "f1", "roc_auc", "best_threshold_f1")}
    return out


def make_compute_metrics(eval_ds, prior):
    languages, tasks = column_values(eval_ds, "language"), column_values(eval_ds, "task_key")

    def compute_metrics(eval_pred):
        probabilities = mr.probabilities_from_logits(eval_pred.predictions)
        labels = np.asarray(eval_pred.label_ids).reshape(-1)
        metrics = {k: v for k, v in mr.binary_metrics(labels, probabilities, prior=prior).items() if v is not None}
        if len(languages) == len(labels):
            for lang, m in grouped_metrics(labels, probabilities, languages).items():
                metrics[f"f1_{lang}"] = m["f1"]
            if len(set(tasks)) > 1:
                for task, m in grouped_metrics(labels, probabilities, tasks).items():
                    metrics[f"f1_task_{task}"] = m["f1"]
        return metrics

    return compute_metrics


def format_table(metrics: dict) -> str:
    """Markdown table of the main validation metrics, then F1 per language (and per task)."""

    def fmt(value):
        return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))

    keys = ["num_examples", "positive_rate", "f1", "precision", "recall", "accuracy", "roc_auc", "log_loss",
            "prior_log_loss", "best_threshold", "best_threshold_f1"]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {fmt(metrics.get(k))} |" for k in keys]
    for group in ("per_task", "per_language"):
        if metrics.get(group):
            lines += ["", f"| {group.split('_')[1]} | rows | positive rate | F1 | ROC-AUC | best-threshold F1 |",
                      "|---|---|---|---|---|---|"]
            for name, m in metrics[group].items():
                lines.append(
                    f"| {name} | {m['num_examples']} | {fmt(m['positive_rate'])} | {fmt(m['f1'])} | "
                    f"{fmt(m['roc_auc'])} | {fmt(m['best_threshold_f1'])} |"
                )
    return "\n".join(lines)


def public_args(obj) -> dict:
    """The dataclass's fields for the model card and metrics.json, without secrets."""
    out = {}
    for f in dataclasses.fields(obj):
        if "token" in f.name and "tokens" not in f.name:
            continue
        value = getattr(obj, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        out[f.name] = value if isinstance(value, (str, int, float, bool, list, type(None))) else str(value)
    return out


def evaluate_fold(trainer, eval_ds, eval_raw, prior, tasks):
    """Metrics of the (restored best) model on the validation fold, and its out-of-fold predictions."""
    prediction = trainer.predict(eval_ds, metric_key_prefix="eval")
    probabilities = mr.probabilities_from_logits(prediction.predictions)
    columns = {c: column_values(eval_raw, c) for c in ("id", "fold", "task", "task_key", "language", "label")}
    labels = np.asarray(columns["label"])
    # Guard against any reordering between the rows and the predictions (ids and languages would misalign).
    if not np.array_equal(np.asarray(prediction.label_ids).reshape(-1), labels):
        raise RuntimeError("validation predictions came back in a different order than the validation rows")
    metrics = mr.binary_metrics(labels, probabilities, prior=prior)
    metrics["per_language"] = grouped_metrics(labels, probabilities, columns["language"])
    if len(tasks) > 1:
        metrics["per_task"] = grouped_metrics(labels, probabilities, columns["task_key"])
    metrics["train_prior"] = prior
    metrics["best_checkpoint"] = trainer.state.best_model_checkpoint
    oof = {k: columns[k] for k in ("id", "fold", "task", "language", "label")}
    oof["probability"] = probabilities.astype(np.float64)
    return metrics, oof


def write_outputs(out, settings, metrics, oof):
    """relevance_config.json, metrics.json and (fold >= 0) oof_predictions.parquet; main process only."""
    import pandas as pd

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, mr.SETTINGS_NAME), "w") as f:
        json.dump(settings, f, indent=2)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, default=str)
    if oof is not None:
        pd.DataFrame(oof).to_parquet(os.path.join(out, "oof_predictions.parquet"), index=False)
    logger.info("wrote %s, metrics.json%s to %s", mr.SETTINGS_NAME, ", oof_predictions.parquet" if oof else "", out)


MODEL_CARD = """---
{{ card_data }}
---

# Relevance classifier: task {{ settings.tasks | join("+") }}, fold {{ settings.fold }}

LoRA adapter and float32 score head on `{{ settings.base_model_name_or_path }}`, trained by `run_relevance.py` \
({{ settings.pooling }}-token pooling, template `{{ settings.template }}`, {{ settings.num_labels }} label(s)). \
Output: P(relevant).

{% if eval_table -%}
## Validation metrics

Fold {{ settings.fold }} held out (threshold 0.5 unless said otherwise).

{{ eval_table }}
{%- else -%}
## Training

Trained on all folds (`--fold -1`): no validation metrics.
{%- endif %}

Training: {{ train }}

## Use

```python
from modeling_relevance import load_for_inference, predict_probabilities
model, tokenizer, settings = load_for_inference({{ repo }})
p = predict_probabilities(model, tokenizer, tasks, queries, targets, queries_en,
                          template=settings['template'], max_length=settings['max_length'])
```

## Recipe

```yaml
{{ recipe }}
```
"""


def make_model_card(settings, metrics, recipe, hub_model_id) -> ModelCard:
    import yaml

    base = settings["base_model_name_or_path"]
    # The Hub rejects a card whose base_model is not a model id (a local folder, for instance).
    is_hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", base) is not None and not os.path.exists(base)
    card_data = ModelCardData(library_name="peft", base_model=base if is_hub_id else None,
                              tags=["relevance", "sequence-classification", "lora", "run_relevance"])
    train = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics["train"].items())
    return ModelCard.from_template(
        card_data, template_str=MODEL_CARD, settings=settings, train=train,
        eval_table=format_table(metrics["eval"]) if metrics["eval"] else None,
        repo=repr(hub_model_id or "<this folder>"),
        recipe=yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).rstrip(),
    )


def card_recipe(script_args, training_args, model_args, label_smoothing) -> dict:
    """The flags of this run, for the model card (secrets left out)."""
    kept = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "gradient_accumulation_steps", "lr_scheduler_type", "warmup_steps", "weight_decay",
            "label_smoothing_factor", "seed", "bf16", "eval_steps", "train_sampling_strategy")
    training = {k: v for k, v in public_args(training_args).items() if k in kept}
    training["label_smoothing_factor"] = label_smoothing
    return {"relevance": public_args(script_args), "model": public_args(model_args), "training": training}


# ----------------------------------------------------------------------------------------------------------------
# Model, logging
# ----------------------------------------------------------------------------------------------------------------


def read_init_adapter(script_args: RelevanceArguments, model_args: ModelConfig):
    """The --init_adapter's relevance_config.json (None without one), checked against this run."""
    if not script_args.init_adapter:
        return None
    try:
        init = mr.read_settings(script_args.init_adapter, revision=script_args.init_adapter_revision)
    except (OSError, ValueError) as err:
        raise UserError(f"--init_adapter {script_args.init_adapter}: cannot read its {mr.SETTINGS_NAME} ({err}); "
                        "it must be a run_relevance.py output") from err
    if init["num_labels"] != script_args.num_labels:
        raise UserError(f"--init_adapter was trained with num_labels={init['num_labels']}, this run asks for "
                        f"{script_args.num_labels}: the score head cannot be carried over")
    pooling = init["pooling"] if script_args.pooling == "auto" else script_args.pooling
    if pooling != init["pooling"]:
        raise UserError(f"--init_adapter used pooling {init['pooling']!r}, this run asks {pooling!r}")
    if init.get("num_hidden_layers") != script_args.num_hidden_layers:
        raise UserError(f"--init_adapter was trained with num_hidden_layers={init.get('num_hidden_layers')}, this "
                        f"run asks for {script_args.num_hidden_layers}: its LoRA layers would not match")
    if init.get("base_model_name_or_path") != model_args.model_name_or_path:
        logger.warning("--init_adapter was trained on %s, this run loads %s: make sure they are the same weights",
                       init.get("base_model_name_or_path"), model_args.model_name_or_path)
    return init


def build_model(script_args, model_args, training_args, tokenizer, init_settings, label_smoothing):
    """Backbone + score head (modeling_relevance.build_classifier), then LoRA: new, or the --init_adapter's."""
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    quantization_config, device_map = None, None
    if model_args.load_in_4bit or model_args.load_in_8bit:
        from accelerate import PartialState

        quantization_config = get_quantization_config(model_args)
        if model_args.load_in_4bit:
            quantization_config.bnb_4bit_compute_dtype = mr._torch_dtype(model_args.dtype)
        device_map = {"": PartialState().local_process_index}
    answer_ids = None
    if script_args.score_init == "answer_tokens":
        answer_ids = mr.answer_token_ids(tokenizer, script_args.answer_tokens.split(","))
    model = mr.build_classifier(
        model_args.model_name_or_path,
        num_labels=script_args.num_labels,
        pooling=init_settings["pooling"] if init_settings and script_args.pooling == "auto" else script_args.pooling,
        dtype=model_args.dtype,
        attn_implementation=model_args.attn_implementation,
        revision=model_args.model_revision,
        trust_remote_code=script_args.trust_remote_code,
        quantization_config=quantization_config,
        device_map=device_map,
        score_init=script_args.score_init,
        answer_token_ids=answer_ids,
        label_smoothing=label_smoothing,
        seed=training_args.seed,
        num_hidden_layers=script_args.num_hidden_layers,
        shared_prefix=script_args.shared_prefix,
    )
    if script_args.padding_free and mr._is_encoder(model.config):
        raise UserError(f"--padding_free needs a decoder: {model_args.model_name_or_path} is an encoder, whose "
                        "bidirectional attention would mix the packed rows")
    if quantization_config is not None:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(training_args.activation_checkpointing))
    if script_args.init_adapter:
        model = PeftModel.from_pretrained(
            model, script_args.init_adapter, is_trainable=True, revision=script_args.init_adapter_revision
        )
        logger.info("continuing from adapter %s (LoRA + score head), trainable", script_args.init_adapter)
    else:
        model = get_peft_model(model, get_peft_config(model_args))
    trainable, total = model.get_nb_trainable_parameters()
    logger.info(
        "model %s: %s pooling, %d label(s), %s; trainable parameters %d of %d (%.3f%%)",
        model_args.model_name_or_path, model.base_model.model.pooling, script_args.num_labels,
        next(model.base_model.model.model.parameters()).dtype, trainable, total, 100 * trainable / total,
    )
    return model


def setup_logging(training_args):
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    # This script's own messages (row counts, exclusions, truncation) at INFO on the main process; libraries quieter.
    own_level = logging.INFO if training_args.should_log else log_level
    logger.setLevel(own_level)
    mr.logger.setLevel(own_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------


def main(script_args: RelevanceArguments, training_args: TrainingArguments, model_args: ModelConfig):
    # 1. Logging, settings and their checks (before any data or model loads), seed ------------------------------
    setup_logging(training_args)
    logger.info("Relevance arguments %s", public_args(script_args))
    tasks = parse_tasks(script_args.task)  # --task, --template, --fold and --init_adapter: checked in __post_init__
    fold = script_args.fold
    label_smoothing = apply_training_defaults(training_args, script_args, tasks)
    check_args(script_args, training_args, model_args)
    init_settings = read_init_adapter(script_args, model_args)
    set_seed(training_args.seed)

    # 2. Data: load each task's folded dataset, split on the fold --------------------------------------------------
    with training_args.main_process_first(desc="loading datasets"):
        # --data_seed draws the row subsets: --seed 43 --data_seed 42 trains another seed on the seed-42 rows
        data_seed = training_args.seed if training_args.data_seed is None else training_args.data_seed
        train_raw, eval_raw, translation = load_task_datasets(script_args, tasks, data_seed)
    prior = float(np.mean(column_values(train_raw, "label")))

    # 3. Tokenizer and tokenisation (target truncated, query never) ------------------------------------------------
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=script_args.trust_remote_code,
    )
    mr.prepare_tokenizer(tokenizer)
    with training_args.main_process_first(desc="tokenising"):
        train_ds = tokenize_dataset(train_raw, tokenizer, script_args, "training set")
        eval_ds = tokenize_dataset(eval_raw, tokenizer, script_args, "validation set") if eval_raw is not None else None

    # 4. Model: backbone + score head, then LoRA (new, or the --init_adapter to continue from) --------------------
    model = build_model(script_args, model_args, training_args, tokenizer, init_settings, label_smoothing)

    # 5. Trainer -------------------------------------------------------------------------------------------------
    callbacks = []
    if script_args.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=script_args.early_stopping_patience))
    trainer = RelevanceTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        data_collator=make_collator(script_args, model_args, tokenizer),
        compute_metrics=make_compute_metrics(eval_raw, prior) if eval_raw is not None else None,
        callbacks=callbacks,
    )
    trainer.score_learning_rate = script_args.score_learning_rate
    trainer.train_tasks = column_values(train_raw, "task_key")

    # 6. Train ---------------------------------------------------------------------------------------------------
    start = time.time()
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    train_metrics = dict(train_result.metrics, train_rows=len(train_ds), train_steps=trainer.state.global_step,
                         wall_time_s=time.time() - start)
    # train_runtime includes the evaluations run during training: take them out of the training throughput.
    eval_seconds = sum(e["eval_runtime"] for e in trainer.state.log_history if "eval_runtime" in e)
    train_metrics["eval_seconds_during_training"] = eval_seconds
    if trainer.state.num_input_tokens_seen:
        train_metrics["tokens_per_second"] = trainer.state.num_input_tokens_seen / max(
            train_metrics["train_runtime"] - eval_seconds, 1e-9
        )
    trainer.log_metrics("train", train_metrics)

    # 7. Evaluate the restored best checkpoint on the fold; out-of-fold predictions ---------------------------------
    eval_metrics, oof = None, None
    if eval_ds is not None:
        eval_metrics, oof = evaluate_fold(trainer, eval_ds, eval_raw, prior, tasks)
        if trainer.is_world_process_zero():
            restored = ", best checkpoint restored" if training_args.load_best_model_at_end else ", last step"
            print(f"\nValidation fold {fold} ({', '.join(tasks)}){restored}:\n")
            print(format_table(eval_metrics) + "\n")

    # 8. Save and push: adapter + tokenizer (the Trainer's save: DeepSpeed-safe), settings, metrics, OOF, card ----
    settings = {
        "base_model_name_or_path": model_args.model_name_or_path,
        "tasks": tasks,
        "fold": fold,
        "template": script_args.template,
        "max_length": script_args.max_length,
        "use_translation": translation,
        "num_labels": script_args.num_labels,
        "pooling": model.base_model.model.pooling,
        "num_hidden_layers": script_args.num_hidden_layers,
        "score_init": script_args.score_init,
        "score_learning_rate": script_args.score_learning_rate,
        "answer_tokens": script_args.answer_tokens,
        "init_adapter": script_args.init_adapter,
        "dataset_name": script_args.dataset_name,
        "label_smoothing": label_smoothing,
    }
    metrics = {"eval": eval_metrics, "train": train_metrics, "settings": settings}
    recipe = card_recipe(script_args, training_args, model_args, label_smoothing)
    hub_model_id = training_args.hub_model_id if training_args.push_to_hub else None
    trainer.model_card = make_model_card(settings, metrics, recipe, hub_model_id)
    if not training_args.push_to_hub:
        trainer.save_model()  # first: a folder with metrics.json holds a whole adapter (scripts/run_recipe.py)
    if trainer.is_world_process_zero():
        write_outputs(training_args.output_dir, settings, metrics, oof)
    if training_args.push_to_hub:  # saves the adapter, writes the card, uploads the folder in one commit
        trainer.push_to_hub(commit_message=f"run_relevance.py: task {'+'.join(tasks)}, fold {fold}")
        logger.info("pushed to %s (private=%s)", hub_model_id, training_args.hub_private_repo)
    else:
        trainer.create_model_card()
    return metrics


def make_parser() -> TrlParser:
    parser = TrlParser((RelevanceArguments, TrainingArguments, ModelConfig))
    parser.set_defaults(**DEFAULTS)
    return parser


if __name__ == "__main__":
    run_cli(main, parse=make_parser().parse_args_and_config)
    # Once per process, after the last collective: a gloo rank that exits with its process group alive can abort
    # (SIGABRT) while Python shuts down, failing a finished run (docs/scaling.md).
    from accelerate import PartialState

    state = PartialState()
    state.wait_for_everyone()
    state.destroy_process_group()
