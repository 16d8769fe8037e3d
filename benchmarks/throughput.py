#!/usr/bin/env python
"""Speed benchmark: the project's training and prediction paths against naive baselines, same model, same rows.

One run, arms alternated (A B, then B A, ...) and repeated; each measurement runs in its own subprocess so that
its peak memory (`ru_maxrss`) is its own. Medians and ratios are reported: the machine is shared and noisy.

- training, tokens/s (non-padding tokens / `train_runtime`):
  `ours`  = `run_relevance.main` itself (`--fold -1`, no evaluation): its length-grouped sampler, its collator
            (dynamic padding to a multiple of 8), its model (modeling_relevance + LoRA r16 all-linear);
  `naive` = a plain HF `Trainer` on the same model, rows and tokenisation: random order, fixed batch, every batch
            padded to `--max_length`.
  Both see exactly the same rows once (`--train_rows` is a multiple of `--batch_size`, one epoch).
- padding-free training (`--parts padding_free`), tokens/s: `ours` against `run_relevance.main` with
  `--padding_free` (the same run, each batch flattened into one row: no padding, packed rows kept apart by their
  position_ids); reported per alternated pair and as medians.
- shared prompt prefix (`--parts shared_prefix` for training, `infer_shared_prefix` for make_submission.py's path):
  the same path with and without `--shared_prefix`; tokens/s or pairs/s per alternated pair, training losses.
- rows per step (`--parts batch_scaling`), tokens/s: `ours` at `--batch_size` against 4x the rows per step; if
  bigger steps buy no tokens/s, batches sized by a token budget cannot either (docs/scaling.md).
- inference, pairs/s (rows x adapters / seconds), from benchmarks/inference_speed.py:
  `ours`  = make_submission.py's path (`fast_scores`: deduplicated, length-sorted, token-budget batches, merged LoRA);
  `naive` = seed-style (`naive_scores`: file order, batches of 64 padded to the longest, unmerged adapter).
- model FLOP/s of inference: 2 x (non-embedding parameters) x tokens, as a fraction of this machine's fp32 matmul
  FLOP/s measured in the same run (a `--matmul_size` square fp32 matmul, same thread count). Two counts: `useful`
  (non-padding tokens of the sequences actually scored) and `executed` (padding included, and a batch's shared
  instruction counted once: with `--shared_prefix`, on by default, it runs once per batch, so `useful` can exceed
  `executed`, and the useful fraction then reads as "as fast as running every token at that share of the peak"
  ). Attention's T^2 term is
  left out (about 1 % at these lengths).

    # real Gemma-3-270m (python tools/prepare_model.py) on the QC dev rows
    python benchmarks/throughput.py --model_name_or_path .cache/models/gemma-3-270m
    # tiny random Gemma-3 (2 layers, hidden 64): seconds, checks the plumbing
    python benchmarks/throughput.py --quick
    # padded against padding-free training only
    python benchmarks/throughput.py --parts padding_free --repeats 4
    # the issue-15 sizes (benchmarks/README.md): 2,000 QC rows x 5 adapters, 256 training rows
    python benchmarks/throughput.py --parts train,batch_scaling,infer --train_rows 256 --max_length 96 \
        --infer_rows 2000 --num_adapters 5 --repeats 2
"""

import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

logger = logging.getLogger(__name__)

ARMS = {"train": ("train_naive", "train_ours"), "infer": ("infer_naive", "infer_ours"),
        "padding_free": ("train_ours", "train_padding_free"), "batch_scaling": ("train_ours", "train_ours_4x"),
        "infer_budget": ("infer_ours", "infer_ours_quarter"),
        "shared_prefix": ("train_no_shared_prefix", "train_ours"),
        "infer_shared_prefix": ("infer_no_shared_prefix", "infer_ours")}


@dataclass
class ThroughputArguments:
    model_name_or_path: str = field(
        default=".cache/models/gemma-3-270m", metadata={"help": "Base model folder (ignored with --quick)."}
    )
    quick: bool = field(default=False, metadata={"help": "A tiny random Gemma-3 (2 layers, hidden 64) instead."})
    num_hidden_layers: Optional[int] = field(
        default=None, metadata={"help": "Keep the first N decoder layers in every arm (recipes/gemma3-270m.yaml: 9); "
                                        "all if unset."}
    )
    data_file: str = field(
        default="../shared/data/qc_dev.jsonl",
        metadata={"help": "Raw labelled file (JSON lines) the rows come from; data/sample/train_QC.jsonl if absent."},
    )
    task: str = field(default="qc", metadata={"help": "Task of --data_file: qc or qi."})
    parts: str = field(
        default="train,infer", metadata={"help": "What to measure, comma-separated: train, infer, padding_free, "
                                        "batch_scaling (run_relevance.py at --batch_size and 4x the rows per step), "
                                        "infer_budget (make_submission.py at its token budget and a quarter of it), shared_prefix and "
                                        "infer_shared_prefix (run_relevance.py / make_submission.py with and without "
                                        "--shared_prefix)."}
    )
    train_rows: int = field(default=64, metadata={"help": "Training rows (one epoch; a multiple of --batch_size)."})
    batch_size: int = field(default=8, metadata={"help": "Training rows per step (both arms)."})
    max_length: int = field(
        default=256, metadata={"help": "Maximum tokens per input (run_relevance.py default); naive pads to it."}
    )
    infer_rows: int = field(default=256, metadata={"help": "Rows scored per inference measurement."})
    num_adapters: int = field(default=2, metadata={"help": "Adapters (fold models) scored per inference run."})
    repeats: int = field(default=3, metadata={"help": "Measurements per arm (alternated); medians are reported."})
    matmul_size: int = field(default=2048, metadata={"help": "Side of the square fp32 matmul measuring the peak."})
    seed: int = field(default=42, metadata={"help": "Seed of training and of the random adapters."})
    output_file: Optional[str] = field(
        default="outputs/benchmarks/throughput.json", metadata={"help": "Results as JSON (also printed)."}
    )
    worker: Optional[str] = field(default=None, metadata={"help": "Internal: run one measurement and print JSON."})
    work_dir: Optional[str] = field(default=None, metadata={"help": "Internal: prepared model, data and adapters."})


# ---------------------------------------------------------------------------------------------------------------
# Workers: one measurement each, in a fresh process
# ---------------------------------------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker_matmul(args, plan) -> dict:
    import torch

    n = args.matmul_size
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return {"matmul_flops_per_s": 2 * n**3 / statistics.median(times), "size": n}


def _training_rows(plan, args, tokenizer):
    import run_relevance as rr

    script_args = rr.RelevanceArguments(dataset_name=[plan["folds"]], task=args.task, fold=-1,
                                        max_train_samples=args.train_rows, max_length=args.max_length)
    train, _, _ = rr.load_task_datasets(script_args, [args.task], args.seed)
    return rr.tokenize_dataset(train, tokenizer, script_args, "training set")


def worker_train_ours(args, plan, extra=()) -> dict:
    import run_relevance as rr

    out = tempfile.mkdtemp(prefix="throughput-ours-")
    try:
        script_args, training_args, model_args = rr.make_parser().parse_args_and_config(args=[
            "--model_name_or_path", plan["base"], "--dataset_name", plan["folds"], "--task", args.task,
            "--fold", "-1", "--max_train_samples", str(args.train_rows), "--num_train_epochs", "1",
            "--per_device_train_batch_size", str(args.batch_size), "--max_length", str(args.max_length),
            "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1000", "--seed", str(args.seed),
            "--dtype", "float32", "--output_dir", out,
            *(["--num_hidden_layers", str(args.num_hidden_layers)] if args.num_hidden_layers else []), *extra,
        ])
        train = rr.main(script_args, training_args, model_args)["train"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"tokens": train["num_input_tokens_seen"], "seconds": train["train_runtime"],
            "tokens_per_s": train["num_input_tokens_seen"] / train["train_runtime"], "steps": train.get("train_steps"),
            "train_loss": train["train_loss"],
            "padding": "dynamic, multiple of 8", "order": "group_by_length"}


def worker_train_ours_4x(args, plan) -> dict:
    """Four times the rows per step (the later flag wins): do bigger steps buy tokens/s on this machine?"""
    return dict(worker_train_ours(args, plan, ["--per_device_train_batch_size", str(4 * args.batch_size)]),
                rows_per_step=4 * args.batch_size)


def worker_train_no_shared_prefix(args, plan) -> dict:
    """run_relevance.py with every token of every row run (the instruction not shared within a batch)."""
    return worker_train_ours(args, plan, ["--shared_prefix", "false"])


def worker_train_padding_free(args, plan) -> dict:
    return dict(worker_train_ours(args, plan, ["--padding_free", "true"]), padding="none (flattened rows)")


def worker_train_naive(args, plan) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    import modeling_relevance as mr

    tokenizer = mr.prepare_tokenizer(AutoTokenizer.from_pretrained(plan["base"]))
    rows = _training_rows(plan, args, tokenizer)
    torch.manual_seed(args.seed)
    model = mr.build_classifier(plan["base"], num_labels=2, pooling="auto", dtype="float32",
                                attn_implementation="sdpa", num_hidden_layers=args.num_hidden_layers,
                                shared_prefix=False)  # a plain model: every token of every row
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=16, lora_alpha=32, lora_dropout=0.05,
                                             target_modules="all-linear"))
    out = tempfile.mkdtemp(prefix="throughput-naive-")
    try:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(output_dir=out, num_train_epochs=1, per_device_train_batch_size=args.batch_size,
                                   learning_rate=1e-5, save_strategy="no", eval_strategy="no", logging_steps=1000,
                                   report_to="none", seed=args.seed, use_cpu=True,
                                   include_num_input_tokens_seen="non_padding"),
            train_dataset=rows,
            data_collator=DataCollatorWithPadding(tokenizer, padding="max_length", max_length=args.max_length),
        )
        result = trainer.train()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    tokens = trainer.state.num_input_tokens_seen
    return {"tokens": tokens, "seconds": result.metrics["train_runtime"],
            "tokens_per_s": tokens / result.metrics["train_runtime"], "steps": trainer.state.global_step,
            "train_loss": result.metrics["train_loss"],
            "padding": f"max_length {args.max_length}", "order": "random"}


def _inference_setup(args, plan):
    from transformers import AutoTokenizer

    import make_submission as ms
    import modeling_relevance as mr
    import utils_data
    from benchmarks import inference_speed as isp

    bench = isp.BenchmarkArguments(task=args.task, num_adapters=args.num_adapters, max_length=args.max_length,
                                   template="instruct", naive_batch_size=64, num_hidden_layers=args.num_hidden_layers)
    frame, _, task = utils_data.read_raw_file(plan["data_file"], task=args.task, labelled=True)
    frame = utils_data.add_model_columns(frame.head(args.infer_rows), task)
    rows = {"query": frame["query"].tolist(), "target": frame["target"].tolist()}
    tokenizer = mr.prepare_tokenizer(AutoTokenizer.from_pretrained(plan["adapters"][0]))
    base_model = ms.load_base_model(plan["base"], {"num_labels": 2, "pooling": "last",
                                                   "num_hidden_layers": args.num_hidden_layers}, "float32", "sdpa",
                                    False, "cpu")
    # The same short warm-up for both arms, so that neither pays one-time initialisation.
    isp.naive_scores(base_model, plan["adapters"][:1], tokenizer, {k: v[:8] for k, v in rows.items()}, bench)
    return isp, ms, mr, bench, rows, tokenizer, base_model


def _model_params(base_model) -> int:
    """Parameters a token passes through as matmuls: all but the embedding table (a lookup)."""
    embeddings = base_model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in base_model.parameters()) - embeddings


def worker_infer_naive(args, plan) -> dict:
    isp, ms, mr, bench, rows, tokenizer, base_model = _inference_setup(args, plan)
    params = _model_params(base_model)
    lengths = [len(ids) for ids in mr.encode_examples(tokenizer, [args.task] * len(rows["query"]), rows["query"],
                                                      rows["target"], template="instruct",
                                                      max_length=args.max_length)["input_ids"]]
    executed = sum(len(lengths[s:s + 64]) * max(lengths[s:s + 64]) for s in range(0, len(lengths), 64))
    start = time.perf_counter()
    isp.naive_scores(base_model, plan["adapters"], tokenizer, rows, bench)
    seconds = time.perf_counter() - start
    adapters = len(plan["adapters"])
    return {"seconds": seconds, "pairs_per_s": len(lengths) * adapters / seconds, "params": params,
            "useful_tokens": sum(lengths) * adapters, "executed_tokens": executed * adapters,
            "sequences_scored": len(lengths) * adapters}


def worker_infer_ours_quarter(args, plan) -> dict:
    """make_submission.py's path with a quarter of its default --max_tokens_per_batch: smaller activations."""
    return worker_infer_ours(args, plan, quarter=True)


def worker_infer_no_shared_prefix(args, plan) -> dict:
    """make_submission.py's path with --shared_prefix false: every token of every row run."""
    return worker_infer_ours(args, plan, shared_prefix=False)


def _computed_tokens(model, input_ids: list, batches: list) -> int:
    """Tokens the model runs, padding included, with a batch's shared instruction run once (the model's own
    `shared_prefix_split` decides, on the batch as make_submission.py pads it)."""
    import make_submission as ms

    total = 0
    for batch in batches:
        ids, mask = ms.pad_batch(input_ids, batch, pad_token_id=0)
        shared = model.shared_prefix_split(ids, mask)
        total += ids.numel() if shared is None else shared[0].numel() + shared[1].numel()
    return total


def worker_infer_ours(args, plan, quarter=False, shared_prefix=True) -> dict:
    isp, ms, mr, bench, rows, tokenizer, base_model = _inference_setup(args, plan)
    base_model.shared_prefix = shared_prefix
    if quarter:
        bench.max_tokens_per_batch //= 4
    params = _model_params(base_model)
    encoded = ms.encode_rows(tokenizer, args.task, rows["query"], rows["target"], None, bench.template,
                             bench.max_length, deduplicate=True)
    lengths = [len(ids) for ids in encoded.input_ids]
    batches = ms.length_batches(lengths, bench.max_tokens_per_batch, bench.max_batch_size)
    executed = _computed_tokens(base_model, encoded.input_ids, batches)
    start = time.perf_counter()
    probabilities, stats = isp.fast_scores(base_model, plan["adapters"], tokenizer, rows, bench)
    seconds = time.perf_counter() - start
    adapters = len(plan["adapters"])
    return {"seconds": seconds, "pairs_per_s": len(rows["query"]) * adapters / seconds, "params": params,
            "useful_tokens": sum(lengths) * adapters, "executed_tokens": executed * adapters,
            "sequences_scored": stats["sequences_scored"], "max_tokens_per_batch": bench.max_tokens_per_batch,
            "probabilities_head": [float(p) for p in probabilities[:50].ravel()]}


WORKERS = {"matmul": worker_matmul, "train_ours": worker_train_ours, "train_naive": worker_train_naive,
           "train_no_shared_prefix": worker_train_no_shared_prefix, "infer_no_shared_prefix": worker_infer_no_shared_prefix,
           "train_padding_free": worker_train_padding_free, "train_ours_4x": worker_train_ours_4x,
           "infer_ours": worker_infer_ours, "infer_ours_quarter": worker_infer_ours_quarter,
           "infer_naive": worker_infer_naive}


def run_worker(args):
    import torch

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(message)s", level=logging.WARNING)
    with open(os.path.join(args.work_dir, "plan.json")) as f:
        plan = json.load(f)
    torch.manual_seed(args.seed)
    result = WORKERS[args.worker](args, plan)
    result.update({"peak_rss_mib": _peak_rss_mib(), "threads": torch.get_num_threads()})
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------------------------------------------------------
# Orchestrator
# ---------------------------------------------------------------------------------------------------------------


def _non_embedding_params(base: str, num_hidden_layers: Optional[int] = None) -> int:
    """Parameters a token passes through as matmuls (all but the embedding table), counted on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(base)
    if num_hidden_layers:  # as modeling_relevance truncates: the per-layer lists with the count, at once
        config.__dict__.update({"num_hidden_layers": num_hidden_layers, **{
            name: list(getattr(config, name))[:num_hidden_layers] for name in ("layer_types", "mlp_layer_types")
            if getattr(config, name, None) is not None}})
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()


def prepare(args, work_dir: str) -> dict:
    """Model (or tiny random one), the rows folded by make_folds.py, random adapters saved as training saves them."""
    import utils_data
    from benchmarks import inference_speed as isp

    data_file = args.data_file
    if not os.path.exists(data_file):
        data_file = os.path.join(REPO_ROOT, "data", "sample", f"train_{args.task.upper()}.jsonl")
        logger.warning("%s not found: using %s", args.data_file, data_file)
    frame, _, task = utils_data.read_raw_file(data_file, task=args.task, labelled=True)
    needed = max(args.train_rows * 3, args.infer_rows)
    subset = os.path.join(work_dir, f"rows_{task}.jsonl")
    frame.head(needed).to_json(subset, orient="records", lines=True, force_ascii=False)
    folds = os.path.join(work_dir, "folds")
    subprocess.run([sys.executable, "make_folds.py", "--train_file", subset, "--num_folds", "2", "--output_dir", folds],
                   cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if args.quick:
        from tests.tiny_models import make_tiny_decoder

        model = utils_data.add_model_columns(frame.head(needed), task)
        base = make_tiny_decoder(os.path.join(work_dir, "tiny-gemma3"),
                                 texts=model["query"].tolist() + model["target"].tolist())
    else:
        base = args.model_name_or_path
        if not os.path.isdir(base):
            raise FileNotFoundError(f"{base}: no model folder; run `python tools/prepare_model.py` or use --quick")
    bench = isp.BenchmarkArguments(task=task, num_adapters=args.num_adapters, max_length=args.max_length,
                                   template="instruct", seed=args.seed, num_hidden_layers=args.num_hidden_layers)
    adapters = isp.make_adapters(base, os.path.join(work_dir, "adapters"), bench)
    plan = {"base": os.path.abspath(base), "folds": folds, "data_file": data_file, "adapters": adapters,
            "params": _non_embedding_params(base, args.num_hidden_layers)}
    with open(os.path.join(work_dir, "plan.json"), "w") as f:
        json.dump(plan, f)
    return plan


def measure(args, work_dir: str, worker: str) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--work_dir", work_dir]
    for name, value in asdict(args).items():
        if name not in ("worker", "work_dir", "output_file") and value is not None:
            command += [f"--{name}", str(value)]
    logger.info("measuring %s", worker)
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker {worker} failed (code {done.returncode}):\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(ThroughputArguments).parse_args_into_dataclasses()
    if args.worker:
        return run_worker(args)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(message)s", level=logging.INFO)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    step_rows = 4 * args.batch_size if "batch_scaling" in parts else args.batch_size
    if args.train_rows % step_rows:
        raise ValueError(f"--train_rows {args.train_rows} must be a multiple of {step_rows} (--batch_size, x4 with "
                         "batch_scaling): every arm must see the same rows in full batches")
    for part in parts:
        if part not in ARMS:
            raise ValueError(f"unknown part {part!r}; choose from {list(ARMS)}")
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is None:
        os.environ["OMP_NUM_THREADS"] = threads = "1"

    work_dir = tempfile.mkdtemp(prefix="throughput-")
    try:
        # 1. Model, rows, folds, adapters.
        plan = prepare(args, work_dir)
        params = plan["params"]
        # 2. This machine's fp32 matmul FLOP/s, then the arms, alternated and repeated.
        samples, pairs = {"matmul": [measure(args, work_dir, "matmul")]}, {}
        for part in parts:
            for repeat in range(args.repeats):
                order = ARMS[part] if repeat % 2 == 0 else ARMS[part][::-1]
                pair = {worker: measure(args, work_dir, worker) for worker in order}
                pairs.setdefault(part, []).append(pair)
                for worker in order:
                    samples.setdefault(worker, []).append(pair[worker])
        samples["matmul"].append(measure(args, work_dir, "matmul"))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    # 3. Medians and ratios.
    def median(worker, key):
        return statistics.median(s[key] for s in samples[worker])

    peak = median("matmul", "matmul_flops_per_s")
    model_name = "tiny random Gemma-3 (2 layers, hidden 64)" if args.quick else args.model_name_or_path
    if args.num_hidden_layers:
        model_name += f", first {args.num_hidden_layers} layers"
    results = {"model": model_name,
               "threads": samples["matmul"][0]["threads"], "matmul_peak_gflops": peak / 1e9,
               "arguments": asdict(args), "samples": samples, "summary": {}}
    lines = [f"model {results['model']}, {results['threads']} thread(s), fp32 matmul peak {peak / 1e9:.1f} GFLOP/s "
             f"({args.matmul_size}^2, median of 2 runs x 5), {args.repeats} alternated repeat(s), medians", ""]
    # LoRA training runs ~4 x params FLOPs per token (forward 2, backward to the activations 2; the frozen weights
    # get no gradient), so its model FLOP/s on useful tokens is 4 x params x tokens/s.
    def train_fraction(tokens_per_s):
        return 4 * params * tokens_per_s / peak

    if "train" in parts:
        ours, naive = median("train_ours", "tokens_per_s"), median("train_naive", "tokens_per_s")
        results["summary"]["train"] = {
            "ours_tokens_per_s": ours, "naive_tokens_per_s": naive, "speedup": ours / naive, "params": params,
            "ours_fraction_of_peak": train_fraction(ours), "naive_fraction_of_peak": train_fraction(naive),
            "ours_peak_rss_mib": median("train_ours", "peak_rss_mib"),
            "naive_peak_rss_mib": median("train_naive", "peak_rss_mib"),
            "tokens": samples["train_ours"][0]["tokens"], "naive_tokens": samples["train_naive"][0]["tokens"],
            # Same rows and seed, the same learning rate (run_relevance's default 1e-5): schedules differ (cosine
            # with warm-up against linear), so the losses should agree roughly, not exactly.
            "ours_loss": median("train_ours", "train_loss"), "naive_loss": median("train_naive", "train_loss")}
        t = results["summary"]["train"]
        lines += [f"training: {args.train_rows} rows, batch {args.batch_size}, max_length {args.max_length}, "
                  f"{t['tokens']} non-padding tokens (naive counted {t['naive_tokens']})",
                  "| arm | tokens/s | of matmul peak (4 x params x useful tokens/s) | peak RSS MiB | mean train loss |",
                  "|---|---|---|---|---|",
                  f"| naive Trainer (random order, pad to max_length) | {naive:.1f} | "
                  f"{100 * t['naive_fraction_of_peak']:.0f}% | {t['naive_peak_rss_mib']:.0f} | {t['naive_loss']:.4f} |",
                  f"| run_relevance.py (length-grouped, dynamic padding) | {ours:.1f} | "
                  f"{100 * t['ours_fraction_of_peak']:.0f}% | {t['ours_peak_rss_mib']:.0f} | {t['ours_loss']:.4f} |",
                  f"| ratio ours / naive | {t['speedup']:.2f}x | | "
                  f"{t['ours_peak_rss_mib'] / t['naive_peak_rss_mib']:.2f}x | |", ""]
    def paired(part, base, other):
        """Tokens/s ratios other / base per alternated pair (the machine drifts between pairs), and both medians."""
        ratios = [pair[other]["tokens_per_s"] / pair[base]["tokens_per_s"] for pair in pairs[part]]
        return ratios, *(statistics.median(p[w]["tokens_per_s"] for p in pairs[part]) for w in (base, other))

    if "batch_scaling" in parts:
        ratios, small, big = paired("batch_scaling", "train_ours", "train_ours_4x")
        results["summary"]["batch_scaling"] = {"tokens_per_s": small, "tokens_per_s_4x": big, "pair_ratios": ratios,
                                               "median_pair_ratio": statistics.median(ratios)}
        lines += [f"rows per step: run_relevance.py at {args.batch_size} and {4 * args.batch_size} rows per step, "
                  f"{args.train_rows} rows, {args.repeats} alternated pairs",
                  "| arm | tokens/s (median) | of matmul peak |", "|---|---|---|",
                  f"| {args.batch_size} rows per step | {small:.1f} | {100 * train_fraction(small):.0f}% |",
                  f"| {4 * args.batch_size} rows per step | {big:.1f} | {100 * train_fraction(big):.0f}% |",
                  f"| ratio, per pair | {', '.join(f'{r:.2f}x' for r in ratios)} "
                  f"(median {statistics.median(ratios):.2f}x) | |", ""]
    if "padding_free" in parts:
        ratios, padded, flat = paired("padding_free", "train_ours", "train_padding_free")
        results["summary"]["padding_free"] = {
            "padded_tokens_per_s": padded, "padding_free_tokens_per_s": flat, "pair_ratios": ratios,
            "median_pair_ratio": statistics.median(ratios),
            "tokens": [pairs["padding_free"][0][w]["tokens"] for w in ("train_ours", "train_padding_free")]}
        lines += [f"padding-free training: {args.train_rows} rows, batch {args.batch_size}, "
                  f"max_length {args.max_length}, {args.repeats} alternated pairs",
                  "| arm | tokens/s (median) |", "|---|---|",
                  f"| run_relevance.py, padded (dynamic, multiple of 8) | {padded:.1f} |",
                  f"| run_relevance.py --padding_free | {flat:.1f} |",
                  f"| ratio padding-free / padded, per pair | {', '.join(f'{r:.2f}x' for r in ratios)} "
                  f"(median {statistics.median(ratios):.2f}x) |", ""]
    if "shared_prefix" in parts:
        ratios, plain, shared = paired("shared_prefix", "train_no_shared_prefix", "train_ours")
        losses = [[pair[w]["train_loss"] for w in ARMS["shared_prefix"]] for pair in pairs["shared_prefix"]]
        results["summary"]["shared_prefix"] = {"tokens_per_s": plain, "shared_prefix_tokens_per_s": shared,
                                               "pair_ratios": ratios, "median_pair_ratio": statistics.median(ratios),
                                               "train_losses": losses}
        lines += [f"shared prompt prefix in training: {args.train_rows} rows, batch {args.batch_size}, "
                  f"max_length {args.max_length}, {args.repeats} alternated pairs",
                  "| arm | tokens/s (median) | of matmul peak (useful tokens) |", "|---|---|---|",
                  f"| run_relevance.py --shared_prefix false | {plain:.1f} | {100 * train_fraction(plain):.0f}% |",
                  f"| run_relevance.py (shared prefix) | {shared:.1f} | {100 * train_fraction(shared):.0f}% |",
                  f"| ratio, per pair | {', '.join(f'{r:.2f}x' for r in ratios)} "
                  f"(median {statistics.median(ratios):.2f}x) | |",
                  "train loss (without, with), per pair: " + "; ".join(f"{a:.4f}, {b:.4f}" for a, b in losses), ""]
    if "infer_shared_prefix" in parts:
        ratios = [pair["infer_ours"]["pairs_per_s"] / pair["infer_no_shared_prefix"]["pairs_per_s"]
                  for pair in pairs["infer_shared_prefix"]]
        same = max(abs(a - b) for pair in pairs["infer_shared_prefix"] for a, b in zip(
            pair["infer_ours"]["probabilities_head"], pair["infer_no_shared_prefix"]["probabilities_head"]))
        arms = {w: {"pairs_per_s": statistics.median(p[w]["pairs_per_s"] for p in pairs["infer_shared_prefix"]),
                    "computed_tokens": samples[w][0]["executed_tokens"],
                    "peak_rss_mib": statistics.median(p[w]["peak_rss_mib"] for p in pairs["infer_shared_prefix"])}
                for w in ARMS["infer_shared_prefix"]}
        results["summary"]["infer_shared_prefix"] = dict(arms, pair_ratios=ratios, max_abs_difference=same)
        lines += [f"shared prompt prefix in make_submission.py: {args.infer_rows} rows x {args.num_adapters} "
                  f"adapters, {args.repeats} alternated pairs",
                  "| arm | pairs/s (median) | tokens computed | peak RSS MiB |", "|---|---|---|---|"]
        lines += [f"| {label} | {arms[w]['pairs_per_s']:.1f} | {arms[w]['computed_tokens']} | "
                  f"{arms[w]['peak_rss_mib']:.0f} |" for w, label in
                  (("infer_no_shared_prefix", "--shared_prefix false"), ("infer_ours", "shared prefix"))]
        lines += [f"| ratio shared / not, per pair | {', '.join(f'{r:.2f}x' for r in ratios)} | | |",
                  f"largest probability difference between the two (first 50 rows, every adapter): {same:.1e}", ""]
    if "infer" in parts:
        summary = {}
        for arm in ("naive", "ours"):
            worker = f"infer_{arm}"
            seconds = median(worker, "seconds")
            first = samples[worker][0]
            summary[arm] = {
                "pairs_per_s": median(worker, "pairs_per_s"), "seconds": seconds,
                "useful_flops_per_s": 2 * first["params"] * first["useful_tokens"] / seconds,
                "executed_flops_per_s": 2 * first["params"] * first["executed_tokens"] / seconds,
                "peak_rss_mib": median(worker, "peak_rss_mib"), "sequences_scored": first["sequences_scored"],
                "params": first["params"]}
            summary[arm]["useful_fraction_of_peak"] = summary[arm]["useful_flops_per_s"] / peak
            summary[arm]["executed_fraction_of_peak"] = summary[arm]["executed_flops_per_s"] / peak
        summary["speedup"] = summary["ours"]["pairs_per_s"] / summary["naive"]["pairs_per_s"]
        results["summary"]["infer"] = summary
        lines += [f"inference: {args.infer_rows} rows x {args.num_adapters} adapters, max_length {args.max_length}, "
                  f"{summary['ours']['params'] / 1e6:.1f}M non-embedding parameters",
                  "| arm | pairs/s | sequences run | model GFLOP/s (useful / executed) | of matmul peak | peak RSS MiB |",
                  "|---|---|---|---|---|---|"]
        for arm, label in (("naive", "seed-style (file order, batch 64, unmerged)"),
                           ("ours", "make_submission.py (dedup, length-sorted, merged)")):
            s = summary[arm]
            lines.append(f"| {label} | {s['pairs_per_s']:.1f} | {s['sequences_scored']} | "
                         f"{s['useful_flops_per_s'] / 1e9:.1f} / {s['executed_flops_per_s'] / 1e9:.1f} | "
                         f"{100 * s['useful_fraction_of_peak']:.0f}% / {100 * s['executed_fraction_of_peak']:.0f}% | "
                         f"{s['peak_rss_mib']:.0f} |")
        lines += [f"| ratio ours / naive | {summary['speedup']:.2f}x | | | | "
                  f"{summary['ours']['peak_rss_mib'] / summary['naive']['peak_rss_mib']:.2f}x |", ""]
    if "infer_budget" in parts:
        ratios = [pair["infer_ours_quarter"]["pairs_per_s"] / pair["infer_ours"]["pairs_per_s"]
                  for pair in pairs["infer_budget"]]
        same = max(abs(a - b) for pair in pairs["infer_budget"] for a, b in zip(
            pair["infer_ours"]["probabilities_head"], pair["infer_ours_quarter"]["probabilities_head"]))
        budget = {w: {"max_tokens_per_batch": samples[w][0]["max_tokens_per_batch"],
                      "pairs_per_s": statistics.median(p[w]["pairs_per_s"] for p in pairs["infer_budget"]),
                      "peak_rss_mib": statistics.median(p[w]["peak_rss_mib"] for p in pairs["infer_budget"])}
                  for w in ARMS["infer_budget"]}
        results["summary"]["infer_budget"] = dict(budget, pair_ratios=ratios, max_abs_difference=same)
        lines += [f"make_submission.py's token budget: {args.infer_rows} rows x {args.num_adapters} adapters, "
                  f"{args.repeats} alternated pairs", "| --max_tokens_per_batch | pairs/s (median) | peak RSS MiB |",
                  "|---|---|---|"]
        lines += [f"| {b['max_tokens_per_batch']} | {b['pairs_per_s']:.1f} | {b['peak_rss_mib']:.0f} |"
                  for b in budget.values()]
        lines += [f"| ratio quarter / default, per pair | {', '.join(f'{r:.2f}x' for r in ratios)} | "
                  f"{budget['infer_ours_quarter']['peak_rss_mib'] / budget['infer_ours']['peak_rss_mib']:.2f}x |",
                  f"largest probability difference between the two (first 50 rows, every adapter): {same:.1e}", ""]
    results["table"] = "\n".join(lines)
    print("\n" + results["table"])
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
