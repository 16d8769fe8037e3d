#!/usr/bin/env python
"""Inference speed of make_submission.py against a naive loop, on the same model, adapters and rows, in one run.

- naive: rows in file order, fixed batches of 64 padded to the longest row, every row scored (no deduplication),
  the LoRA adapter unmerged (PEFT's default forward), one adapter after the other on one PEFT model;
- make_submission: rows tokenised once, identical inputs scored once, sorted by length, batched by a token
  budget; each adapter merged into the one base model's weights in place, scored, and unmerged.

Adapters are random (LoRA with non-zero lora_B on every linear layer + a random score head, saved as
run_relevance.py saves them): speed does not depend on training. Base model loading is not timed; adapter
loading/merging and tokenisation are. Probabilities of every method are compared with the naive ones.
Both wall-clock and process CPU time are reported: on a shared machine the CPU time is the steadier number
(other processes stretch the wall clock but not this process's CPU seconds).

    # real Gemma-3-270m (tools/prepare_model.py) on 500 rows of the QC benchmark data
    python benchmarks/inference_speed.py --model_name_or_path .cache/models/gemma-3-270m \
        --data_file ../shared/data/qc_dev.jsonl --num_rows 500
    # no model folder: a tiny random Gemma-3 built on the fly
    python benchmarks/inference_speed.py --data_file ../shared/data/qc_dev.jsonl
"""

import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from transformers import AutoTokenizer, HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import make_submission as ms  # noqa: E402
import modeling_relevance as mr  # noqa: E402
import utils_data  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class BenchmarkArguments:
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Base model folder or Hub id. Default: a tiny random Gemma-3 (2 layers, hidden 64)."},
    )
    data_file: str = field(
        default="../shared/data/qc_dev.jsonl", metadata={"help": "Raw competition file (JSON lines) to score."}
    )
    task: str = field(default="qc", metadata={"help": "Task of --data_file: qc or qi."})
    num_rows: int = field(default=500, metadata={"help": "Score the first N rows of --data_file."})
    num_adapters: int = field(default=2, metadata={"help": "Adapters in the ensemble (fold models)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank of the random adapters (the winners': 16)."})
    num_hidden_layers: Optional[int] = field(
        default=None, metadata={"help": "Keep the first N decoder layers (recipes/gemma3-270m.yaml: 9); all if unset."}
    )
    template: str = field(default="instruct", metadata={"help": "Prompt template (modeling_relevance.TEMPLATES)."})
    max_length: int = field(default=256, metadata={"help": "Maximum tokens per input (run_relevance.py default)."})
    naive_batch_size: int = field(default=64, metadata={"help": "Rows per batch of the naive loop."})
    max_tokens_per_batch: int = field(default=4096, metadata={"help": "Token budget of make_submission batches "
                                                                     "(make_submission.py's default)."})
    max_batch_size: int = field(default=512, metadata={"help": "Row cap of make_submission batches."})
    dtype: str = field(default="float32", metadata={"help": "Model dtype ('auto': bfloat16 on GPU)."})
    output_file: Optional[str] = field(default=None, metadata={"help": "Also write the results here as JSON."})
    seed: int = field(default=0, metadata={"help": "Seed of the random adapters."})


def make_adapters(base: str, root: str, args: BenchmarkArguments) -> list:
    """Random adapters laid out as run_relevance.py saves them."""
    from peft import LoraConfig, get_peft_model

    tokenizer = AutoTokenizer.from_pretrained(base)
    mr.prepare_tokenizer(tokenizer)
    adapters = []
    for i in range(args.num_adapters):
        model = mr.build_classifier(base, num_labels=2, pooling="auto", dtype="float32",
                                    num_hidden_layers=args.num_hidden_layers)
        config = LoraConfig(task_type="SEQ_CLS", r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules="all-linear")
        model = get_peft_model(model, config)
        torch.manual_seed(args.seed + i)
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.01)
            elif "modules_to_save" in name and "score" in name:
                torch.nn.init.normal_(parameter, std=0.05)
        path = os.path.join(root, f"fold{i}")
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        settings = {"base_model_name_or_path": base, "tasks": [args.task], "fold": i, "template": args.template,
                    "max_length": args.max_length, "use_translation": {args.task: False}, "num_labels": 2,
                    "pooling": model.base_model.model.pooling, "num_hidden_layers": args.num_hidden_layers}
        with open(os.path.join(path, mr.SETTINGS_NAME), "w") as f:
            json.dump(settings, f)
        adapters.append(path)
        del model
    return adapters


@torch.inference_mode()
def naive_scores(base_model, adapters, tokenizer, rows, args) -> np.ndarray:
    """File order, fixed batches padded to the longest, every row scored, LoRA unmerged."""
    from peft import PeftModel

    encoded = mr.encode_examples(tokenizer, [args.task] * len(rows["query"]), rows["query"], rows["target"],
                                 template=args.template, max_length=args.max_length)
    model = None
    out = np.empty((len(rows["query"]), len(adapters)))
    shared_prefix, base_model.shared_prefix = base_model.shared_prefix, False  # every token of every row, as theirs
    try:
        for column, adapter in enumerate(adapters):
            name = f"adapter_{column}"
            if model is None:
                model = PeftModel.from_pretrained(base_model, adapter, adapter_name=name)
            else:
                model.load_adapter(adapter, adapter_name=name)
            model.set_adapter(name)
            model.eval()
            for start in range(0, len(encoded["input_ids"]), args.naive_batch_size):
                features = [{"input_ids": ids} for ids in encoded["input_ids"][start : start + args.naive_batch_size]]
                batch = tokenizer.pad(features, padding="longest", return_tensors="pt")
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                out[start : start + len(features), column] = mr.probabilities_from_logits(logits.float())
    finally:
        if model is not None:
            model.unload()
        base_model.shared_prefix = shared_prefix
    return out


def fast_scores(base_model, adapters, tokenizer, rows, args):
    encoded = ms.encode_rows(tokenizer, args.task, rows["query"], rows["target"], None, args.template,
                             args.max_length, deduplicate=True)
    probabilities, stats = ms.score_adapters(base_model, adapters, encoded, tokenizer.pad_token_id,
                                             args.max_tokens_per_batch, args.max_batch_size)
    return probabilities, stats


def main():
    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(message)s", level=logging.INFO)
    torch.manual_seed(args.seed)

    # 1. Rows: the first --num_rows of the raw file, model columns as make_folds.py builds them.
    frame, _, task = utils_data.read_raw_file(args.data_file, task=args.task, labelled=True)
    frame = utils_data.add_model_columns(frame.head(args.num_rows), task)
    rows = {"query": frame["query"].tolist(), "target": frame["target"].tolist()}
    distinct = len(set(zip(rows["query"], rows["target"])))

    with tempfile.TemporaryDirectory() as root:
        # 2. Base model and random adapters.
        base = args.model_name_or_path
        if base is None:
            from tests.tiny_models import make_tiny_decoder

            base = make_tiny_decoder(os.path.join(root, "tiny-base"), texts=rows["query"] + rows["target"])
        adapters = make_adapters(base, os.path.join(root, "adapters"), args)
        tokenizer = AutoTokenizer.from_pretrained(adapters[0])
        mr.prepare_tokenizer(tokenizer)
        base_model = ms.load_base_model(base, {"num_labels": 2, "pooling": "last",
                                               "num_hidden_layers": args.num_hidden_layers}, args.dtype, "sdpa",
                                        False, "cpu")
        lengths = [len(x) for x in mr.encode_examples(tokenizer, [task] * len(rows["query"]), rows["query"],
                                                      rows["target"], template=args.template,
                                                      max_length=args.max_length)["input_ids"]]
        # A short warm-up so that neither method pays one-time kernel initialisation.
        head = {key: values[:8] for key, values in rows.items()}
        naive_scores(base_model, adapters[:1], tokenizer, head, args)

        # 3. Timings, in one run on the same rows.
        results = {"model": base, "rows": len(rows["query"]), "distinct_pairs": distinct,
                   "naive_batch_size": args.naive_batch_size, "max_tokens_per_batch": args.max_tokens_per_batch,
                   "adapters": args.num_adapters, "lora_r": args.lora_r, "tokens_mean": float(np.mean(lengths)),
                   "tokens_max": int(max(lengths)), "threads": torch.get_num_threads(), "methods": {}}
        scored = len(rows["query"]) * len(adapters)
        start, cpu_start = time.perf_counter(), time.process_time()
        reference = naive_scores(base_model, adapters, tokenizer, rows, args)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        naive = {"seconds": seconds, "cpu_seconds": cpu, "rows_per_s": scored / seconds, "rows_per_cpu_s": scored / cpu}
        results["methods"]["naive"] = naive
        start, cpu_start = time.perf_counter(), time.process_time()
        probabilities, stats = fast_scores(base_model, adapters, tokenizer, rows, args)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        results["methods"]["merge"] = {
            "seconds": seconds, "cpu_seconds": cpu, "rows_per_s": scored / seconds, "rows_per_cpu_s": scored / cpu,
            "speedup_vs_naive": naive["seconds"] / seconds, "cpu_speedup_vs_naive": naive["cpu_seconds"] / cpu,
            "max_abs_diff_vs_naive": float(np.abs(probabilities - reference).max()),
            "batches": stats["batches"], "sequences_scored": stats["sequences_scored"],
        }

    # 4. Report.
    print(f"\nmodel {results['model']}, {results['rows']} rows ({distinct} distinct pairs), {args.num_adapters} "
          f"adapters (LoRA r {args.lora_r}), {results['tokens_mean']:.1f} tokens/row on average (max "
          f"{results['tokens_max']}), {results['threads']} thread(s)")
    print(f"naive: batches of {args.naive_batch_size} rows; make_submission: --max_tokens_per_batch "
          f"{args.max_tokens_per_batch}; rows/s counts rows x adapters")
    print(f"{'method':<8} {'wall s':>8} {'rows/s':>8} {'ratio':>7} {'cpu s':>8} {'rows/cpu-s':>11} {'ratio':>7} "
          f"{'max |dp|':>9}")
    for name, m in results["methods"].items():
        print(f"{name:<8} {m['seconds']:>8.2f} {m['rows_per_s']:>8.2f} {m.get('speedup_vs_naive', 1.0):>6.2f}x "
              f"{m['cpu_seconds']:>8.2f} {m['rows_per_cpu_s']:>11.2f} {m.get('cpu_speedup_vs_naive', 1.0):>6.2f}x "
              f"{m.get('max_abs_diff_vs_naive', 0.0):>9.2e}")
    if args.output_file:
        with open(args.output_file, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
