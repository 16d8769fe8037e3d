#!/usr/bin/env python
"""One-shot GPU check of the Gemma-3-12B recipe: one command, one JSON object on stdout (logs go to stderr).

No download (GPU machines may reach no Hub): the text model of `google/gemma-3-12b-it` is built from its published
text-config values, hard-coded below, with random weights, wrapped in the project's `LastTokenClassifier`
(modeling_relevance.py, which imports only torch / transformers / numpy) and given LoRA as the recipe does
(`recipes/gemma3-12b.yaml`: r 16, alpha 32, dropout 0.05, all linear layers, SEQ_CLS so the score head is trained
too; bf16 weights, bf16 autocast, SDPA attention). Only torch, transformers, peft (and accelerate, which peft
imports) are used: datasets, trl and deepspeed are never imported (the JSON's `forbidden_modules_imported` says so).

What it measures, on random token ids with no padding (every row `--max_length` tokens: the worst case of
docs/scaling.md's memory estimate):

1. LoRA training at the recipe's micro-batch (`--batch_size` 8 x `--max_length` 128), AdamW over the trainable
   parameters, without and with gradient checkpointing (non-reentrant): tokens/s, seconds per step, peak memory
   (`torch.cuda.max_memory_allocated`, reset before each arm), model TFLOP/s and MFU against `--peak_tflops`
   (H200 bf16 dense: 989), and HFU (recomputation counted) for the checkpointed arm.
2. Inference: `--num_adapters` LoRA adapters on ONE copy of the base, each merged in place (peft `merge_adapter`),
   `--infer_rows` rows scored in batches of `--infer_batch_size`, then unmerged (`unmerge_adapter`): rows/s while
   scoring, seconds per merge + unmerge, and how far the base weights drifted after all the merge/unmerge rounds.

FLOP counts (per token; PaLM-style, attention over the whole context, no causal halving):
  linear  = 2 x (weights of the backbone's linear layers)          [embeddings are lookups: not counted]
  attn    = 4 x layers x heads x head_dim x min(length, window of the layer)
  forward = linear + attn;  LoRA training = 2 x linear (forward + input gradients; frozen weights get none)
            + 3 x attn + 6 x LoRA parameters;  checkpointing recomputes one forward (HFU only).

    python benchmarks/gpu_check.py                        # Gemma-3-12B on one GPU (cuda)
    python benchmarks/gpu_check.py --num_hidden_layers 8  # the same layers, fewer of them
    python benchmarks/gpu_check.py --tiny --device cpu    # seconds on a CPU: checks the plumbing only
"""

import argparse
import json
import logging
import math
import os
import platform
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModel, Gemma3TextConfig  # noqa: E402

import modeling_relevance as mr  # noqa: E402  (torch, transformers and numpy only)

logger = logging.getLogger("gpu_check")

FORBIDDEN_MODULES = ("datasets", "trl", "deepspeed")

# google/gemma-3-12b-it, config.json -> text_config (the values that differ from Gemma3TextConfig's defaults are
# hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, sliding_window and
# the linear RoPE scaling of the global layers).
GEMMA3_12B_TEXT = dict(
    vocab_size=262208, hidden_size=3840, intermediate_size=15360, num_hidden_layers=48, num_attention_heads=16,
    num_key_value_heads=8, head_dim=256, hidden_activation="gelu_pytorch_tanh", max_position_embeddings=131072,
    rms_norm_eps=1e-6, query_pre_attn_scalar=256, attn_logit_softcapping=None, final_logit_softcapping=None,
    sliding_window=1024, sliding_window_pattern=6,  # 5 sliding-window layers, then 1 global layer
    rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    },
)
# --tiny: the same architecture at toy size (seconds on a CPU).
TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, head_dim=32, sliding_window=8)
SHAPE_FLAGS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "sliding_window")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="Toy dimensions (%s) unless a shape flag says otherwise." % TINY)
    for name in SHAPE_FLAGS:
        p.add_argument(f"--{name}", type=int, default=None, help=f"Default: {GEMMA3_12B_TEXT[name]} (12B).")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu.")
    p.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"],
                   help="Weights and autocast dtype; auto: bfloat16 on cuda (the recipe), float32 on cpu.")
    p.add_argument("--attn_implementation", default="sdpa", help="The recipe's sdpa; eager or flash_attention_2.")
    p.add_argument("--tf32", default="true", choices=["true", "false"],
                   help="Allow TF32 for the remaining fp32 matmuls on cuda (default true; no effect on cpu).")
    p.add_argument("--batch_size", type=int, default=8, help="Rows per training step (recipe: 8).")
    p.add_argument("--max_length", type=int, default=128, help="Tokens per row, no padding (recipe: 128).")
    p.add_argument("--steps", type=int, default=20, help="Timed training steps per arm.")
    p.add_argument("--warmup_steps", type=int, default=3, help="Untimed training steps before each arm.")
    p.add_argument("--gradient_checkpointing", default="both", choices=["both", "off", "on"],
                   help="Which training arms to run.")
    p.add_argument("--lora_r", type=int, default=16)
    p.add_argument("--lora_alpha", type=int, default=32)
    p.add_argument("--lora_dropout", type=float, default=0.05)
    p.add_argument("--learning_rate", type=float, default=1e-5)
    p.add_argument("--num_adapters", type=int, default=5, help="Adapters merged in turn for inference.")
    p.add_argument("--infer_rows", type=int, default=2048, help="Rows scored per adapter.")
    p.add_argument("--infer_batch_size", type=int, default=32, help="Rows per inference batch (recipe eval: 32).")
    p.add_argument("--peak_tflops", type=float, default=989.0,
                   help="The card's dense peak in TFLOP/s at --dtype (H200 / H100 SXM bf16: 989) for MFU.")
    p.add_argument("--time_budget_s", type=float, default=420.0,
                   help="Wall-clock budget: timed loops stop early and later phases are skipped past it.")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    defaults = dict(GEMMA3_12B_TEXT, **(TINY if args.tiny else {}))
    for name in SHAPE_FLAGS:
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    if args.dtype == "auto":
        args.dtype = "float32" if args.device == "cpu" else "bfloat16"
    if min(args.batch_size, args.max_length, args.steps, args.num_adapters, args.infer_rows,
           args.infer_batch_size) < 1 or args.warmup_steps < 0:
        p.error("sizes and counts must be positive (--warmup_steps may be 0)")
    return args


def text_config(args) -> Gemma3TextConfig:
    values = dict(GEMMA3_12B_TEXT)
    values.update({name: getattr(args, name) for name in SHAPE_FLAGS})
    values["attn_implementation"] = args.attn_implementation
    return Gemma3TextConfig(**values)


class Clock:
    """Wall time since the start, and whether the budget is spent."""

    def __init__(self, budget_s, device):
        self.start, self.budget_s, self.device = time.perf_counter(), budget_s, device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def elapsed(self):
        return time.perf_counter() - self.start

    def over(self):
        return self.elapsed() > self.budget_s


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device):
    """Peak bytes allocated by tensors since the last reset (cuda); None on cpu (no per-phase counter there)."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def flop_counts(backbone, config, length, lora_params) -> dict:
    linear = sum(m.weight.numel() for m in backbone.modules() if isinstance(m, torch.nn.Linear))
    windows = [min(length, config.sliding_window) if kind == "sliding_attention" else length
               for kind in config.layer_types]
    attn = 4 * config.num_attention_heads * config.head_dim * sum(windows)
    forward = 2 * linear + attn
    return {
        "linear_weights": linear,
        "forward_per_token": forward,
        "train_per_token": 4 * linear + 3 * attn + 6 * lora_params,
        "recompute_per_token": forward,
    }


def autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def train_arm(model, args, device, dtype, flops, clock, checkpointing: bool) -> dict:
    inner = model.base_model.model  # the LastTokenClassifier
    if checkpointing:
        inner.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        inner.activation_checkpointing_disable()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    result = {"gradient_checkpointing": checkpointing}
    reset_peak(device)
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, fused=device.type == "cuda")
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    step_s, losses = [], []
    try:
        for step in range(args.warmup_steps + args.steps):
            ids = torch.randint(0, args.vocab_size, (args.batch_size, args.max_length), generator=generator)
            ids, labels = ids.to(device), torch.randint(0, 2, (args.batch_size,), generator=generator).to(device)
            t0 = clock.sync()
            with autocast(device, dtype):
                loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            t1 = clock.sync()
            if step >= args.warmup_steps:
                step_s.append(t1 - t0)
                losses.append(loss.item())
                if clock.over():
                    result["stopped_early"] = "time budget"
                    break
    except torch.cuda.OutOfMemoryError as err:  # a result too: the arm does not fit this card
        result["error"] = f"OutOfMemoryError: {str(err).splitlines()[0]}"
    finally:
        optimizer.zero_grad(set_to_none=True)
        del optimizer
    result["peak_memory_gib"] = peak_gib(device)
    if not step_s:
        return result
    tokens = args.batch_size * args.max_length
    median = statistics.median(step_s)
    tokens_per_s = tokens / median
    model_tflops = flops["train_per_token"] * tokens_per_s / 1e12
    hardware_tflops = (flops["train_per_token"] + checkpointing * flops["recompute_per_token"]) * tokens_per_s / 1e12
    result.update({
        "steps_timed": len(step_s),
        "step_s_median": median,
        "step_s_min": min(step_s),
        "tokens_per_step": tokens,
        "tokens_per_s": tokens_per_s,
        "rows_per_s": args.batch_size / median,
        "model_tflops_per_s": model_tflops,
        "mfu": model_tflops / args.peak_tflops,
        "hfu": hardware_tflops / args.peak_tflops,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_finite": all(math.isfinite(x) for x in losses),
    })
    return result


def infer(model, args, device, dtype, flops, clock) -> dict:
    """Adapters merged one at a time into the same base weights, rows scored, adapter unmerged."""
    model.base_model.model.activation_checkpointing_disable()
    model.eval()
    names = ["default"] + [f"adapter{i}" for i in range(1, args.num_adapters)]
    for name in names[1:]:
        # init_lora_weights=False: random A and B, so that merging really changes the weights.
        model.add_adapter(name, lora_config(args, init_lora_weights=False))
    probe = next(m for m in model.modules() if hasattr(m, "base_layer") and hasattr(m, "merge"))
    before = probe.base_layer.weight.detach().float().clone()
    generator = torch.Generator(device="cpu").manual_seed(args.seed + 1)
    ids = torch.randint(0, args.vocab_size, (args.infer_rows, args.max_length), generator=generator).to(device)
    reset_peak(device)
    score_s, merge_s, rows_done, per_adapter = 0.0, 0.0, 0, []
    result = {"adapters": args.num_adapters, "rows_per_adapter": args.infer_rows, "batch_size": args.infer_batch_size}
    try:
        with torch.inference_mode():
            for name in names:
                if clock.over():
                    result["stopped_early"] = "time budget"
                    break
                t0 = clock.sync()
                model.set_adapter(name)
                model.merge_adapter()
                t1 = clock.sync()
                probabilities = []
                with autocast(device, dtype):
                    for start in range(0, args.infer_rows, args.infer_batch_size):
                        batch = ids[start:start + args.infer_batch_size]
                        logits = model(input_ids=batch, attention_mask=torch.ones_like(batch)).logits
                        probabilities.append(torch.softmax(logits.float(), dim=-1)[:, 1])
                t2 = clock.sync()
                model.unmerge_adapter()
                t3 = clock.sync()
                finite = bool(torch.isfinite(torch.cat(probabilities)).all())
                per_adapter.append({"adapter": name, "score_s": t2 - t1, "merge_unmerge_s": (t1 - t0) + (t3 - t2),
                                    "probabilities_finite": finite})
                score_s += t2 - t1
                merge_s += (t1 - t0) + (t3 - t2)
                rows_done += args.infer_rows
    except torch.cuda.OutOfMemoryError as err:
        result["error"] = f"OutOfMemoryError: {str(err).splitlines()[0]}"
    result["peak_memory_gib"] = peak_gib(device)
    if not rows_done:
        return result
    after = probe.base_layer.weight.detach().float()
    tokens_per_s = rows_done * args.max_length / score_s
    result.update({
        "adapters_scored": len(per_adapter),
        "rows_per_s": rows_done / score_s,
        "rows_per_s_with_merges": rows_done / (score_s + merge_s),
        "tokens_per_s": tokens_per_s,
        "merge_unmerge_s_mean": merge_s / len(per_adapter),
        "model_tflops_per_s": flops["forward_per_token"] * tokens_per_s / 1e12,
        "mfu": flops["forward_per_token"] * tokens_per_s / 1e12 / args.peak_tflops,
        # merge + unmerge in the weights' dtype is not exact: the drift of one base weight after all the rounds
        "base_weight_drift_max_abs": float((after - before).abs().max()),
        "base_weight_max_abs": float(before.abs().max()),
        "per_adapter": per_adapter,
    })
    return result


def lora_config(args, **kwargs):
    from peft import LoraConfig

    return LoraConfig(task_type="SEQ_CLS", r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules="all-linear", bias="none", **kwargs)


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: --device cuda but torch sees no GPU (torch %s); use --device cpu for a dry run"
                         % torch.__version__)
    dtype = getattr(torch, args.dtype)
    clock = Clock(args.time_budget_s, device)
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32 == "true"

    from peft import get_peft_model

    config = text_config(args)
    t0 = clock.sync()
    with device:
        backbone = AutoModel.from_config(config, dtype=dtype)
    model = mr.LastTokenClassifier(config, backbone, num_labels=2, pooling="last").to(device)
    model = get_peft_model(model, lora_config(args))
    build_s = clock.sync() - t0
    trainable, total = model.get_nb_trainable_parameters()
    lora_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    flops = flop_counts(backbone, config, args.max_length, lora_params)
    logger.info("built %d parameters (%d trainable) on %s in %.1f s", total, trainable, device, build_s)

    report = {
        "check": "gpu_check",
        "model": "google/gemma-3-12b-it text config, random weights" if not args.tiny else "tiny Gemma-3 (--tiny)",
        "config": {name: getattr(args, name) for name in SHAPE_FLAGS},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": args.dtype,
        "attn_implementation": args.attn_implementation,
        "tf32": args.tf32 == "true" and device.type == "cuda",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": __import__("peft").__version__,
                     "cuda": torch.version.cuda},
        "parameters_total": total,
        "parameters_trainable": trainable,
        "parameters_lora": lora_params,
        "flops_per_token": flops,
        "peak_tflops": args.peak_tflops,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "build_s": build_s,
        "model_memory_gib": torch.cuda.memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "train": {},
    }
    arms = {"both": (False, True), "off": (False,), "on": (True,)}[args.gradient_checkpointing]
    for checkpointing in arms:
        key = "with_checkpointing" if checkpointing else "without_checkpointing"
        if clock.over():
            report["train"][key] = {"skipped": "time budget"}
            continue
        logger.info("training, gradient checkpointing %s", "on" if checkpointing else "off")
        report["train"][key] = train_arm(model, args, device, dtype, flops, clock, checkpointing)
    if clock.over():
        report["inference"] = {"skipped": "time budget"}
    else:
        logger.info("inference, %d adapters merged in turn", args.num_adapters)
        report["inference"] = infer(model, args, device, dtype, flops, clock)
    report["forbidden_modules_imported"] = sorted(m for m in FORBIDDEN_MODULES if m in sys.modules)
    report["wall_s"] = clock.elapsed()
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
