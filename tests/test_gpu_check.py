"""benchmarks/gpu_check.py on a tiny Gemma-3 on the CPU, as a subprocess: the one-shot GPU check must keep
running (it is only run for real where a GPU is lent) and keep printing one JSON object with finite figures."""

import json
import math
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_gpu_check_tiny_cpu_prints_one_json_object():
    cmd = [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "gpu_check.py"), "--tiny", "--device", "cpu",
           "--steps", "2", "--warmup_steps", "1", "--batch_size", "2", "--max_length", "16",
           "--num_adapters", "3", "--infer_rows", "4", "--infer_batch_size", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object (logs go to stderr)

    # torch, transformers and peft only: the GPU machine needs none of the training stack's other packages.
    assert report["forbidden_modules_imported"] == []
    assert report["device"] == "cpu" and report["config"]["num_hidden_layers"] == 2
    assert report["parameters_trainable"] > report["parameters_lora"] > 0  # LoRA + the score head
    assert all(_positive(v) for v in report["flops_per_token"].values())
    assert report["model_memory_gib"] is None  # tensor memory is counted on cuda only

    assert set(report["train"]) == {"without_checkpointing", "with_checkpointing"}
    for arm in report["train"].values():
        assert "error" not in arm and "stopped_early" not in arm
        assert arm["steps_timed"] == 2 and arm["tokens_per_step"] == 32 and arm["loss_finite"]
        for key in ("step_s_median", "tokens_per_s", "rows_per_s", "model_tflops_per_s", "mfu", "hfu"):
            assert _positive(arm[key]), (key, arm[key])
        assert arm["peak_memory_gib"] is None
    plain, checkpointed = report["train"]["without_checkpointing"], report["train"]["with_checkpointing"]
    assert plain["hfu"] == plain["mfu"] and checkpointed["hfu"] > checkpointed["mfu"]  # recomputation counted

    inference = report["inference"]
    assert "error" not in inference and inference["adapters_scored"] == 3
    assert [a["adapter"] for a in inference["per_adapter"]] == ["default", "adapter1", "adapter2"]
    assert all(a["probabilities_finite"] for a in inference["per_adapter"])
    for key in ("rows_per_s", "rows_per_s_with_merges", "tokens_per_s", "merge_unmerge_s_mean", "mfu"):
        assert _positive(inference[key]), (key, inference[key])
    assert inference["rows_per_s_with_merges"] < inference["rows_per_s"]
    # fp32 on cpu: unmerging gives the base weights back up to rounding
    assert inference["base_weight_drift_max_abs"] <= 1e-5 * max(1.0, inference["base_weight_max_abs"])
    assert _positive(report["wall_s"])


def test_gpu_check_without_a_gpu_says_so():
    """--device cuda on a machine without one: a one-line message, not a traceback."""
    code = ("import sys, torch; torch.cuda.is_available = lambda: False; sys.argv = ['gpu_check', '--tiny'];"
            "import runpy; runpy.run_path('benchmarks/gpu_check.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          cwd=REPO_ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode != 0 and "no GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
