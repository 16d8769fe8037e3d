"""The launch configs: every accelerate YAML and DeepSpeed JSON is read the way `accelerate launch` and the Trainer
read them, and the two CPU DeepSpeed configs really train with 2 processes (ZeRO-2 and ZeRO-3).

What runs here without a GPU, and how the GPU-only configs are checked instead:
- every accelerate YAML goes through accelerate's own launcher code (argument parsing, config defaults, the
  torchrun / DeepSpeed environment it would hand to the processes) and, for DeepSpeed, `DeepSpeedPlugin` is built
  from that environment: distributed type, process and machine counts, ZeRO stage, offload and save settings;
- every DeepSpeed JSON has its "auto" values filled by transformers from a `TrainingArguments`, then is validated
  by DeepSpeed's own (strict, pydantic) config schema;
- `accelerate launch --config_file accelerate_configs/cpu_zero{2,3}.yaml run_relevance.py` trains a tiny model
  with 2 CPU processes. DeepSpeed asserts train_batch_size == micro-batch x accumulation x world size when the
  engine starts, and the Trainer saves that config in training_args.bin, so the test reads the stage and world
  size the engine really ran with. The saved adapter is reloaded without DeepSpeed and must reproduce the
  out-of-fold probabilities the engine computed (so it holds whole, trained tensors, also under ZeRO-3 sharding),
  and the outputs must hold one row per validation id, written once.

The first DeepSpeed run on a machine JIT-compiles DeepSpeed's shared-memory collective op for the CPU
(g++ and ninja; cached in .cache/torch_extensions here unless TORCH_EXTENSIONS_DIR is set), about 80 s of CPU
once.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from tests.tiny_models import make_tiny_decoder, make_tiny_folded_dataset

REPO = Path(__file__).resolve().parent.parent
ACCELERATE_CONFIGS = sorted(p.name for p in (REPO / "accelerate_configs").glob("*.yaml"))
DEEPSPEED_CONFIGS = sorted(p.name for p in (REPO / "ds_configs").glob("*.json"))

# What each accelerate config must become once accelerate has read it.
EXPECTED = {
    "single_gpu.yaml": {"type": "NO", "num_processes": 1},
    "multi_gpu_ddp.yaml": {"type": "MULTI_GPU", "num_processes": 8},
    "deepspeed_zero2.yaml": {"type": "DEEPSPEED", "num_processes": 8, "stage": 2, "json": "zero2.json"},
    "deepspeed_zero3.yaml": {"type": "DEEPSPEED", "num_processes": 8, "stage": 3, "json": "zero3.json"},
    "deepspeed_zero3_offload.yaml": {
        "type": "DEEPSPEED", "num_processes": 1, "stage": 3, "json": "zero3_offload.json", "offload": "cpu",
    },
    "multi_node_zero3.yaml": {
        "type": "DEEPSPEED", "num_processes": 16, "num_machines": 2, "stage": 3, "json": "zero3.json",
    },
    "cpu_zero2.yaml": {"type": "DEEPSPEED", "num_processes": 2, "stage": 2, "json": "zero2.json", "cpu": True},
    "cpu_zero3.yaml": {"type": "DEEPSPEED", "num_processes": 2, "stage": 3, "json": "zero3.json", "cpu": True},
}


def test_every_config_is_described_here():
    assert ACCELERATE_CONFIGS == sorted(EXPECTED)
    assert DEEPSPEED_CONFIGS == ["zero2.json", "zero3.json", "zero3_offload.json"]


def _read_launch_args(config_name):
    """What `accelerate launch --config_file CONFIG script.py` makes of a config (accelerate 1.15's own code)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    parser = launch_command_parser()
    args = parser.parse_args(["--config_file", f"accelerate_configs/{config_name}", "run_relevance.py"])
    return _validate_launch_command(args)


@pytest.mark.parametrize("config_name", ACCELERATE_CONFIGS)
def test_accelerate_config_as_the_launcher_reads_it(config_name, monkeypatch):
    from accelerate.utils import DeepSpeedPlugin, patch_environment
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    monkeypatch.chdir(REPO)  # deepspeed_config_file paths are relative to the repository root
    expected = EXPECTED[config_name]
    args, defaults, _ = _read_launch_args(config_name)
    assert defaults.distributed_type.value == expected["type"]
    assert args.num_processes == expected["num_processes"]
    assert args.num_machines == expected.get("num_machines", 1)
    assert bool(defaults.use_cpu) == expected.get("cpu", False)
    # The recipes set the precision (bf16: true); a config that also did would clash with the DeepSpeed JSON.
    assert args.mixed_precision == "no"

    if expected["type"] == "MULTI_GPU":
        assert args.multi_gpu and not args.use_deepspeed
        prepare_multi_gpu_env(args)
        assert args.nproc_per_node == "8"
    elif expected["type"] == "NO":
        assert not (args.multi_gpu or args.use_deepspeed)
    else:
        assert args.use_deepspeed and not args.cpu  # DeepSpeed's launcher (torchrun), also for the CPU configs
        assert defaults.deepspeed_config["deepspeed_config_file"] == f"ds_configs/{expected['json']}"
        assert (REPO / defaults.deepspeed_config["deepspeed_config_file"]).is_file()
        if expected.get("num_machines", 1) > 1:
            assert defaults.main_process_ip and defaults.main_process_port == 29500
            assert defaults.deepspeed_config["deepspeed_multinode_launcher"] == "standard"
            args.main_process_port = 0  # the check below must not depend on port 29500 being free here
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        cmd, env = prepare_deepspeed_cmd_env(args)
        assert cmd is None  # torchrun on every node, no pdsh / hostfile
        if expected.get("num_machines", 1) > 1:
            assert args.nnodes == "2" and args.nproc_per_node == "8" and args.node_rank == 0
            assert args.rdzv_endpoint.startswith(f"{defaults.main_process_ip}:")
        else:
            assert args.nproc_per_node == str(expected["num_processes"])
        # The plugin each process builds from that environment; its checks reject conflicting settings.
        with patch_environment(**{k: v for k, v in env.items() if k.startswith("ACCELERATE_")}):
            plugin = DeepSpeedPlugin()
        assert plugin.zero_stage == expected["stage"]
        assert plugin.zero3_init_flag == (expected["stage"] == 3)
        assert plugin.zero3_save_16bit_model == (expected["stage"] == 3)
        assert plugin.offload_param_device == expected.get("offload", "none")
        assert plugin.offload_optimizer_device == expected.get("offload", "none")


def _no_auto_left(value, where="config"):
    if isinstance(value, dict):
        for key, item in value.items():
            _no_auto_left(item, f"{where}.{key}")
    else:
        assert value != "auto", f"{where} is still 'auto'"


@pytest.mark.parametrize("json_name", DEEPSPEED_CONFIGS)
def test_deepspeed_json_takes_its_values_from_training_arguments(json_name, tmp_path):
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import Gemma3TextConfig, Gemma3TextModel, TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    raw = json.loads((REPO / "ds_configs" / json_name).read_text())
    # TrainingArguments stay the single source of truth: no optimizer or scheduler of DeepSpeed's own, and the
    # batch, clipping and precision fields are left to the Trainer.
    assert "optimizer" not in raw and "scheduler" not in raw
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                "gradient_clipping"):
        assert raw[key] == "auto", key
    assert raw["bf16"]["enabled"] == "auto" and raw["fp16"]["enabled"] == "auto"

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=3,
                             max_grad_norm=0.7, bf16=True, use_cpu=True, report_to="none")
    ds_config = HfTrainerDeepSpeedConfig(str(REPO / "ds_configs" / json_name))
    ds_config.trainer_config_process(args)
    with torch.device("meta"):  # hidden_size feeds the bucket sizes; no weights needed
        model = Gemma3TextModel(Gemma3TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                 num_attention_heads=2, num_key_value_heads=1, head_dim=32))
    ds_config.trainer_config_finalize(args, model, num_training_steps=10)
    config = ds_config.config
    _no_auto_left(config)
    assert config["train_micro_batch_size_per_gpu"] == 4 and config["gradient_accumulation_steps"] == 3
    assert config["train_batch_size"] == 12 and config["gradient_clipping"] == 0.7
    assert config["bf16"]["enabled"] is True and config["fp16"]["enabled"] is False

    validated = DeepSpeedConfig(config)  # DeepSpeed's schema forbids unknown or misspelt keys
    stage = 3 if json_name.startswith("zero3") else 2
    assert validated.zero_optimization_stage == stage
    if stage == 3:
        assert validated.zero_config.gather_16bit_weights_on_model_save is True
    offload = json_name == "zero3_offload.json"
    assert (validated.zero_config.offload_param is not None) == offload
    assert (validated.zero_config.offload_optimizer is not None) == offload
    if offload:
        assert validated.zero_config.offload_param.device == "cpu"
        assert validated.zero_config.offload_optimizer.device == "cpu"


# ----------------------------------------------------------------------------------------------------------------
# 2 CPU processes, DeepSpeed ZeRO-2 and ZeRO-3, through run_relevance.py
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch")
    model = make_tiny_decoder(root / "model", arch="gemma3")
    data = make_tiny_folded_dataset(root / "folds_qc", task="qc", num_rows=32, num_folds=2)
    return {"model": model, "data": data}


@pytest.mark.parametrize("config_name,stage", [("cpu_zero2.yaml", 2), ("cpu_zero3.yaml", 3)])
def test_two_process_deepspeed_training(config_name, stage, tiny_assets, tmp_path):
    import modeling_relevance as mr
    from utils_data import load_folded_dataset

    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", f"accelerate_configs/{config_name}",
        "run_relevance.py", "--model_name_or_path", tiny_assets["model"], "--dataset_name", tiny_assets["data"],
        "--task", "qc", "--fold", "0", "--template", "bare", "--max_length", "32", "--lora_r", "4",
        "--lora_alpha", "8", "--learning_rate", "1e-2", "--max_steps", "2", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--eval_strategy", "no", "--save_strategy", "no",
        "--load_best_model_at_end", "false", "--seed", "0", "--ddp_backend", "gloo", "--log_level", "info",
        "--output_dir", str(out),
    ]
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    # DeepSpeed's JIT-built op is keyed by name only: two checkouts (two venvs) sharing ~/.cache/torch_extensions
    # rebuild it for each other on every run. One cache per checkout, like the repository's other caches.
    env.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]

    # The engine ran DeepSpeed at this ZeRO stage with 2 processes: DeepSpeed checks train_batch_size ==
    # micro-batch (4) x accumulation (1) x world size at start-up, and the Trainer saved the config it used.
    saved_args = torch.load(out / "training_args.bin", weights_only=False)
    ds_config = saved_args.deepspeed_plugin.deepspeed_config
    assert ds_config["zero_optimization"]["stage"] == stage
    assert ds_config["train_micro_batch_size_per_gpu"] == 4 and ds_config["gradient_accumulation_steps"] == 1
    assert ds_config["train_batch_size"] == 8
    assert "Total train batch size (w. parallel, distributed & accumulation) = 8" in log
    if stage == 3:
        assert "activating zero.init()" in log  # the base model was sharded while loading

    # Outputs written once, by the main process, for the whole validation fold (not one shard per process).
    assert log.count("Validation fold 0 (qc)") == 1
    fold_ids = sorted(str(r["id"]) for r in load_folded_dataset(tiny_assets["data"])["train"] if r["fold"] == 0)
    oof = pd.read_parquet(out / "oof_predictions.parquet")
    assert sorted(oof["id"]) == fold_ids and oof["id"].is_unique
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval"]["num_examples"] == len(fold_ids)

    # The saved adapter holds whole, trained tensors (ZeRO-3 gathers them on save) ...
    tensors = load_file(out / "adapter_model.safetensors")
    assert tensors["base_model.model.score.weight"].shape == (2, 64)
    lora_b = [t for name, t in tensors.items() if "lora_B" in name]
    assert lora_b and all(t.numel() > 0 for t in tensors.values())
    assert max(t.abs().max().item() for t in lora_b) > 0  # LoRA B starts at zero: training moved it
    # ... and, loaded without DeepSpeed, reproduces the probabilities the distributed engine wrote, row by row.
    model, tokenizer, settings = mr.load_for_inference(str(out))
    rows = {str(r["id"]): r for r in load_folded_dataset(tiny_assets["data"])["train"]}
    ordered = [rows[i] for i in oof["id"]]
    probabilities = mr.predict_probabilities(
        model, tokenizer, ["qc"] * len(ordered), [r["query"] for r in ordered], [r["target"] for r in ordered],
        template=settings["template"], max_length=settings["max_length"], show_progress=False,
    )
    np.testing.assert_allclose(probabilities, oof["probability"].to_numpy(), rtol=0, atol=1e-5)
