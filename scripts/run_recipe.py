#!/usr/bin/env python
"""Run a whole recipe pipeline in one command: folds -> translation -> every training run -> submission.

A pipeline (`recipes/pipelines/*.yaml`, described in recipes/README.md) names the raw data, the fold and
translation settings, the training stages (each one a `run_relevance.py --config` recipe run for some tasks and
folds, optionally initialised from an earlier stage's adapter: TAPT) and the submission. This driver turns it into
the commands below and runs them in order, printing one progress line per step with its wall time:

    make_folds.py      once per task          -> OUT/data/folds_{task}
    run_translate.py   once per task          -> OUT/data/folds_{task}_en        (when the pipeline translates)
    run_relevance.py   per stage, task, fold  -> OUT/{stage}/{task}/fold{k}      (under `accelerate launch`;
                                                 a `multitask: true` stage: one run per fold, OUT/{stage}/qc-qi/fold{k};
                                                 `seeds: [42, 43]`: one run per seed, OUT/{stage}/{task}/fold{k}-seed42)
    make_submission.py once                   -> OUT/submission/submit.zip

It resumes: a training run whose adapter is already complete in its output folder, or already on the Hub, is
skipped (a complete local run that is missing on the Hub is pushed, not retrained); data steps whose output
exists are skipped. With `--hub_namespace` (or `hub_namespace:` in the pipeline) the folded datasets and every
adapter are pushed as private repos `NAMESPACE/NAME-...`, and later steps read them back from the Hub.

    python scripts/run_recipe.py --pipeline recipes/pipelines/gemma3-12b.yaml --dry_run     # the plan, no run
    ACCELERATE_CONFIG=accelerate_configs/deepspeed_zero3.yaml \
        python scripts/run_recipe.py --pipeline recipes/pipelines/gemma3-12b.yaml --hub_namespace my-org

The accelerate config of the training runs comes from `--accelerate_config`, else the ACCELERATE_CONFIG
environment variable, else the pipeline. With a CPU DeepSpeed config (`use_cpu: true` + `DEEPSPEED`, used by CI)
the driver adds what DeepSpeed needs on CPU: `DS_ACCELERATOR=cpu` and `--ddp_backend gloo`.
"""

import itertools
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import yaml
from transformers import HfArgumentParser

logger = logging.getLogger("run_recipe")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ("qc", "qi")
# What a finished run_relevance.py output holds (metrics.json and the OOF file are written after the adapter).
RUN_FILES = ("adapter_model.safetensors", "relevance_config.json", "metrics.json")
OOF_FILE = "oof_predictions.parquet"
TIMINGS_FILE = "run_recipe_timings.json"
PIPELINE_KEYS = {"name", "description", "output_dir", "accelerate_config", "hub_namespace", "data", "folds",
                 "translate", "stages", "submission", "inference_launcher"}
STAGE_KEYS = {"name", "config", "tasks", "folds", "multitask", "init_from", "init_task", "seeds", "args"}


@dataclass
class DriverArguments:
    """What to run, where, and how much of it."""

    pipeline: str = field(metadata={"help": "Pipeline YAML (recipes/pipelines/*.yaml, see recipes/README.md)."})
    output_dir: Optional[str] = field(
        default=None, metadata={"help": "Root of every output. Default: the pipeline's output_dir."}
    )
    accelerate_config: Optional[str] = field(
        default=None,
        metadata={
            "help": "accelerate config of the training runs (accelerate_configs/*.yaml). Default: the "
            "ACCELERATE_CONFIG environment variable, else the pipeline's accelerate_config."
        },
    )
    num_processes: Optional[int] = field(
        default=None, metadata={"help": "Override the config's num_processes (e.g. the number of GPUs here)."}
    )
    hub_namespace: Optional[str] = field(
        default=None,
        metadata={
            "help": "Hub user or organisation: push the datasets and every adapter there (private) and resume "
            "from there. Default: the pipeline's hub_namespace (null: local folders only)."
        },
    )
    stages: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated stage names to run (default: all, in pipeline order)."}
    )
    folds: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated CV folds to run instead of the pipeline's 'all' (e.g. '0,1' to try)."},
    )
    train_args: str = field(
        default="",
        metadata={"help": "Extra run_relevance.py arguments appended to every training run (one quoted string)."},
    )
    skip_submission: bool = field(default=False, metadata={"help": "Stop after the training stages."})
    overwrite: bool = field(default=False, metadata={"help": "Rerun every step, even those already done."})
    dry_run: bool = field(
        default=False, metadata={"help": "Print the plan (each step, run or skip, and its command); run nothing."}
    )


# ----------------------------------------------------------------------------------------------------------------
# The pipeline file
# ----------------------------------------------------------------------------------------------------------------


class PipelineError(ValueError):
    """A mistake in the pipeline file, the flags or the Hub connection: one line and exit code 1, no traceback
    (RELEVANCE_DEBUG=1 shows it), like the scripts' own user errors."""


def _fail(path, message):
    raise PipelineError(f"{path}: {message}")


def load_pipeline(path: str) -> dict:
    """Read and check a pipeline YAML; every error names the file and the field."""
    if not os.path.isfile(path):
        raise PipelineError(f"pipeline file {path} not found; give a pipeline YAML (examples in recipes/pipelines/)")
    with open(path) as f:
        pipe = yaml.safe_load(f)
    if not isinstance(pipe, dict):
        _fail(path, "must be a YAML mapping")
    unknown = set(pipe) - PIPELINE_KEYS
    if unknown:
        _fail(path, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(PIPELINE_KEYS)}")
    for key in ("name", "output_dir", "accelerate_config", "data", "stages"):
        if not pipe.get(key):
            _fail(path, f"'{key}' is required")
    for task, source in pipe["data"].items():
        if task not in TASKS:
            _fail(path, f"data.{task}: unknown task (use {TASKS})")
        if not isinstance(source, dict) or not source.get("train_file"):
            _fail(path, f"data.{task}: give train_file (and test_file, for a submission): raw competition files")
    names = []
    for i, stage in enumerate(pipe["stages"]):
        where = f"stages[{i}]"
        if not isinstance(stage, dict):
            _fail(path, f"{where}: must be a mapping")
        unknown = set(stage) - STAGE_KEYS
        if unknown:
            _fail(path, f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(STAGE_KEYS)}")
        for key in ("name", "config", "tasks", "folds"):
            if stage.get(key) in (None, "", []):
                _fail(path, f"{where}: '{key}' is required")
        if stage["name"] in names:
            _fail(path, f"{where}: stage name {stage['name']!r} is used twice")
        if not os.path.isfile(resolve(stage["config"])):
            _fail(path, f"{where}.config: {stage['config']} not found")
        for task in stage["tasks"]:
            if task not in pipe["data"]:
                _fail(path, f"{where}.tasks: task {task!r} has no entry under 'data'")
        if stage["folds"] != "all" and not (
            isinstance(stage["folds"], list) and all(isinstance(k, int) and k >= -1 for k in stage["folds"])
        ):
            _fail(path, f"{where}.folds: 'all' or a list of fold numbers (-1 = all rows), got {stage['folds']!r}")
        if stage.get("init_from") is not None and stage["init_from"] not in names:
            _fail(path, f"{where}.init_from: {stage['init_from']!r} is not an earlier stage ({names})")
        if stage.get("init_task", "other") not in ("other", "same"):
            _fail(path, f"{where}.init_task: 'other' (TAPT on the other task) or 'same'")
        if stage.get("multitask", False) not in (True, False):
            _fail(path, f"{where}.multitask: true (one model for all the stage's tasks) or false")
        if stage.get("multitask") and len(set(stage["tasks"])) < 2:
            _fail(path, f"{where}.multitask: needs two tasks (tasks: [qc, qi]), got {stage['tasks']}")
        seeds = stage.get("seeds")
        if seeds is not None and not (isinstance(seeds, list) and seeds and len(set(seeds)) == len(seeds)
                                      and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
            _fail(path, f"{where}.seeds: a list of distinct integer seeds (e.g. [42, 43]), got {seeds!r}")
        if seeds is not None and "seed" in (stage.get("args") or {}):
            _fail(path, f"{where}: 'seeds' and args.seed conflict; give the seeds in 'seeds' only")
        names.append(stage["name"])
    submission = pipe.get("submission")
    if submission is not None:
        trained_by = {}  # task -> the submission stage that trains it
        for stage_name in submission_stages(submission):
            if stage_name not in names:
                _fail(path, f"submission.stage: {stage_name!r} is not a stage ({names})")
            for task in stage_named(pipe, stage_name)["tasks"]:
                if task in trained_by:
                    _fail(path, f"submission.stage: task {task!r} is trained by stages {trained_by[task]!r} and "
                          f"{stage_name!r}; list one stage per task")
                trained_by[task] = stage_name
    if not os.path.isfile(resolve(pipe["accelerate_config"])):
        _fail(path, f"accelerate_config: {pipe['accelerate_config']} not found")
    return pipe


def submission_stages(submission: dict) -> list:
    """`stage: cv` or, for per-task settings, one stage per task: `stage: [cv_qc, cv_qi]`."""
    stage = submission.get("stage")
    return list(stage) if isinstance(stage, list) else [stage]


def stage_named(pipe: dict, name: str) -> dict:
    return next(s for s in pipe["stages"] if s["name"] == name)


def resolve(path: str) -> str:
    """Relative paths in a pipeline are relative to the repository root (where the scripts live)."""
    return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)


def to_cli(args: dict) -> list:
    """{'max_steps': 40, 'bf16': True, 'lora_target_modules': ['q_proj', 'v_proj']} -> ['--max_steps', '40', ...]."""
    out = []
    for key, value in (args or {}).items():
        if value is None:
            continue
        out.append(f"--{key}")
        if isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, (list, tuple)):
            out.extend(str(v) for v in value)
        else:
            out.append(str(value))
    return out


def fold_name(fold: int) -> str:
    return "foldall" if fold == -1 else f"fold{fold}"


def run_folder(fold: int, seed: Optional[int] = None) -> str:
    """fold0, foldall; fold0-seed43 for a stage with `seeds`."""
    return fold_name(fold) + ("" if seed is None else f"-seed{seed}")


# ----------------------------------------------------------------------------------------------------------------
# Done checks (resume)
# ----------------------------------------------------------------------------------------------------------------


def run_is_complete_locally(path: str, fold: int) -> bool:
    needed = RUN_FILES + ((OOF_FILE,) if fold >= 0 else ())
    return all(os.path.isfile(os.path.join(path, name)) for name in needed)


def run_is_on_hub(api, repo_id: str, fold: int) -> bool:
    needed = RUN_FILES + ((OOF_FILE,) if fold >= 0 else ())
    if not api.repo_exists(repo_id):
        return False
    return all(api.file_exists(repo_id, name) for name in needed)


def dataset_is_complete_locally(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "dataset_dict.json"))


# ----------------------------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    cmd: list
    env: dict = field(default_factory=dict)
    skip_reason: Optional[str] = None  # set: the step is done already
    push_folder: Optional[tuple] = None  # (folder, repo_id): done locally, only the push is missing
    kind: str = "train"


def _missing(path):
    raise PipelineError(f"accelerate config {path} not found (relative paths: to the current directory or "
                            "the repository root)")


def main(argv=None) -> list:
    # 1. Arguments, pipeline, logging --------------------------------------------------------------------------
    logging.basicConfig(format="[run_recipe] %(message)s", level=logging.INFO, stream=sys.stdout)
    parser = HfArgumentParser(DriverArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    pipe = load_pipeline(args.pipeline)
    name = pipe["name"]
    out = os.path.abspath(args.output_dir) if args.output_dir else resolve(pipe["output_dir"])
    namespace = args.hub_namespace or pipe.get("hub_namespace")
    accelerate_config = args.accelerate_config or os.environ.get("ACCELERATE_CONFIG") or pipe["accelerate_config"]
    accelerate_config = next((p for p in (os.path.abspath(accelerate_config), resolve(accelerate_config))
                              if os.path.isfile(p)), None) or _missing(accelerate_config)
    with open(accelerate_config) as f:
        accel = yaml.safe_load(f) or {}
    python = sys.executable
    inference_launcher = shlex.split(pipe.get("inference_launcher") or "") or [python]
    if inference_launcher[:2] == ["accelerate", "launch"]:  # this environment's accelerate, whatever is on PATH
        inference_launcher = [python, "-m", "accelerate.commands.launch", *inference_launcher[2:]]
    extra_train_args = shlex.split(args.train_args)
    num_folds = int((pipe.get("folds") or {}).get("num_folds", 5))
    only_stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
    cv_folds = [int(k) for k in args.folds.split(",")] if args.folds else list(range(num_folds))

    api = None
    if namespace:
        from huggingface_hub import HfApi, constants as hf_constants

        api = HfApi()
        if hf_constants.HF_HUB_OFFLINE:
            raise PipelineError(f"Hub namespace {namespace}: HF_HUB_OFFLINE is set, and a Hub namespace needs the Hub "
                                "(resume checks, pushes); unset it, or run without a Hub namespace (local folders only)")
        try:  # one request first: an unreachable Hub is one line here, not a traceback from the first check
            api.repo_exists(f"{namespace}/{name}-folds-{next(iter(pipe['data']))}", repo_type="dataset")
        except Exception as err:  # the HTTP client's own errors (connection refused, timeout, offline mode)
            raise PipelineError(
                f"Hub namespace {namespace}: the Hub at {api.endpoint} could not be reached ({type(err).__name__}: "
                f"{str(err).splitlines()[0]}); check the network, HF_ENDPOINT, HF_HUB_OFFLINE and HF_TOKEN, or run "
                "without a Hub namespace (local folders only)"
            ) from err
    logger.info(
        "pipeline %s (%s): output %s, accelerate config %s, Hub %s", name, args.pipeline, out, accelerate_config,
        f"namespace {namespace}" if namespace else "off (local folders only)",
    )

    # CPU DeepSpeed (CI): deepspeed's CPU accelerator and gloo; TrainingArguments.use_cpu would drop DeepSpeed.
    train_env, train_backend_args = {}, []
    if accel.get("use_cpu") and accel.get("distributed_type") == "DEEPSPEED":
        train_env["DS_ACCELERATOR"] = "cpu"
        train_backend_args = ["--ddp_backend", "gloo"]
    launch = [python, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
    if args.num_processes:
        launch += ["--num_processes", str(args.num_processes)]

    steps = []
    uses_translation = bool(pipe.get("translate"))
    dataset_for = {}  # task -> the folded dataset training reads (local folder, or Hub id when pushing)

    # 2. Data: folds, then translation, per task --------------------------------------------------------------
    for task, source in pipe["data"].items():
        folds_dir = os.path.join(out, "data", f"folds_{task}")
        folds_repo = f"{namespace}/{name}-folds-{task}" if namespace else None
        for key in ("train_file", "test_file"):
            if source.get(key) and not os.path.isfile(resolve(source[key])):
                message = f"{args.pipeline}: data.{task}.{key}: {source[key]} not found"
                if not args.dry_run:
                    raise PipelineError(message)
                logger.warning("%s (edit the pipeline before a real run)", message)
        cmd = [python, resolve("make_folds.py"), "--train_file", resolve(source["train_file"]),
               "--output_dir", folds_dir, *to_cli(pipe.get("folds"))]
        if source.get("test_file"):
            cmd += ["--test_file", resolve(source["test_file"])]
        if folds_repo:
            cmd += ["--push_to_hub", folds_repo]
        done = dataset_is_complete_locally(folds_dir) and (
            not folds_repo or api.repo_exists(folds_repo, repo_type="dataset")
        )
        steps.append(Step(f"folds {task}", cmd, skip_reason="folded dataset exists" if done else None, kind="data"))
        dataset_for[task] = folds_repo or folds_dir

        if uses_translation:
            en_dir = os.path.join(out, "data", f"folds_{task}_en")
            en_repo = f"{namespace}/{name}-folds-{task}-en" if namespace else None
            cmd = [*inference_launcher, resolve("run_translate.py"), "--dataset_name", folds_dir,
                   "--output_dir", en_dir, *to_cli(pipe["translate"])]
            if en_repo:
                cmd += ["--push_to_hub", en_repo]
            done = dataset_is_complete_locally(en_dir) and (
                not en_repo or api.repo_exists(en_repo, repo_type="dataset")
            )
            steps.append(Step(f"translate {task}", cmd, skip_reason="translated dataset exists" if done else None,
                              kind="data"))
            dataset_for[task] = en_repo or en_dir
    # The same with {task} left in, for make_submission.py (it scores both tasks in one call).
    suffix = "_en" if uses_translation else ""
    if namespace:
        dataset_template = f"{namespace}/{name}-folds-{{task}}{suffix.replace('_', '-')}"
    else:
        dataset_template = os.path.join(out, "data", f"folds_{{task}}{suffix}")

    # 3. Training stages: every task and fold, TAPT from an earlier stage's adapter -----------------------------
    # A multitask stage trains one model per fold on all its tasks (--task qc,qi), in OUT/{stage}/qc-qi.
    # `seeds`: one run per seed on the same rows (--data_seed = the first seed), averaged by the submission.
    adapters = {}  # (stage, task, fold) -> [local folder or Hub id, one per seed]
    for stage in pipe["stages"]:
        folds = cv_folds if stage["folds"] == "all" else stage["folds"]
        seeds = stage.get("seeds") or [None]
        for tasks, fold, (index, seed) in itertools.product(run_groups(stage), folds, enumerate(seeds)):
            task, run = ",".join(tasks), run_folder(fold, seed)
            run_dir, repo_id = run_location(out, namespace, name, stage["name"], "-".join(tasks), run)
            for t in tasks:
                adapters.setdefault((stage["name"], t, fold), []).append(repo_id or run_dir)
            if only_stages and stage["name"] not in only_stages:
                continue
            seed_args = [] if seed is None else ["--seed", str(seed), "--data_seed", str(seeds[0])]
            cmd = [*launch, resolve("run_relevance.py"), "--config", resolve(stage["config"]),
                   "--task", task, "--fold", str(fold), "--dataset_name", ",".join(dataset_for[t] for t in tasks),
                   "--output_dir", run_dir, *train_backend_args, *seed_args, *to_cli(stage.get("args")),
                   *extra_train_args]
            if repo_id:
                cmd += ["--push_to_hub", "true", "--hub_model_id", repo_id]
            if os.path.isdir(run_dir) and any(n.startswith("checkpoint-") for n in os.listdir(run_dir)):
                cmd += ["--resume_from_checkpoint", "last"]  # an interrupted run goes on from its checkpoint
            if stage.get("init_from"):
                cmd += ["--init_adapter", init_adapter(args.pipeline, stage, tasks, fold, adapters, index)]
            step = Step(f"{stage['name']} {task} {run}", cmd, env=dict(train_env))
            if not args.overwrite:
                if repo_id and run_is_on_hub(api, repo_id, fold):
                    step.skip_reason = f"adapter on the Hub ({repo_id})"
                elif run_is_complete_locally(run_dir, fold):
                    if repo_id:
                        step.push_folder = (run_dir, repo_id)
                    else:
                        step.skip_reason = f"adapter in {run_dir}"
            steps.append(step)

    # 4. Submission: the fold ensemble of one stage (or one stage per task), thresholds tuned on its OOF rows -----
    submission = pipe.get("submission")
    if submission and not args.skip_submission:
        stages = [stage_named(pipe, n) for n in submission_stages(submission)]
        submit_tasks, fold_adapters = [], []
        for stage in stages:
            folds = [k for k in (cv_folds if stage["folds"] == "all" else stage["folds"]) if k >= 0]
            if not folds:
                raise PipelineError(f"{args.pipeline}: submission.stage {stage['name']} has no CV fold (only -1)")
            # make_submission.py replaces {task} in every path, so one call scores both tasks and writes
            # submit.zip; a multitask stage's adapters serve both tasks. With seeds, every fold's seeds: their OOF
            # rows are averaged like the test rows. One stage per task: 'qc=PATH' items, each task its own set.
            run_name = "-".join(stage["tasks"]) if stage.get("multitask") else "{task}"
            runs = [run_folder(k, seed) for k in folds for seed in stage.get("seeds") or [None]]
            locations = [run_location(out, namespace, name, stage["name"], run_name, run) for run in runs]
            paths = [repo_id or run_dir for run_dir, repo_id in locations]
            if len(stages) > 1:
                paths = [f"{task}={p.replace('{task}', task)}" for task in stage["tasks"] for p in paths]
            submit_tasks += stage["tasks"]
            fold_adapters += paths
        cmd = [*inference_launcher, resolve("make_submission.py"), "--task", ",".join(submit_tasks),
               "--dataset_name", dataset_template, "--adapters", ",".join(fold_adapters),
               "--output_dir", os.path.join(out, "submission"), *to_cli(submission.get("args"))]
        steps.append(Step("submission", cmd, kind="submission"))

    # 5. Run (or print) the plan ---------------------------------------------------------------------------------
    return run_steps(steps, out, args, api)


def _other(task: str) -> str:
    return "qi" if task == "qc" else "qc"


def run_location(out: str, namespace, name: str, stage_name: str, run_name: str, run: str) -> tuple:
    """A run's local folder OUT/{stage}/{run_name}/{run} and, with a Hub namespace, its repo id (else None).
    run_name: the task (`qc`), `qc-qi` for a multitask run, or `{task}` for make_submission.py to fill in."""
    run_dir = os.path.join(out, stage_name, run_name, run)
    return run_dir, (f"{namespace}/{name}-{stage_name}-{run_name}-{run}" if namespace else None)


def run_groups(stage: dict) -> list:
    """The task tuple of each run of a stage: [("qc",), ("qi",)], or [("qc", "qi")] for a multitask stage."""
    return [tuple(stage["tasks"])] if stage.get("multitask") else [(task,) for task in stage["tasks"]]


def init_adapter(pipeline: str, stage: dict, tasks: tuple, fold: int, adapters: dict, index: int = 0) -> str:
    """TAPT: the earlier stage's adapter for this fold (else its all-rows run) of the other task, or of the same
    task with init_task: same; with seeds, its run of the index-th seed (cycling). A multitask run needs one
    adapter for all its tasks: a multitask stage's."""
    wanted = set()
    for task in tasks:
        init_task = task if stage.get("init_task", "other") == "same" else _other(task)
        keys = ((stage["init_from"], init_task, fold), (stage["init_from"], init_task, -1))
        sources = next((adapters[key] for key in keys if key in adapters), None)
        if sources is None:
            raise PipelineError(
                f"{pipeline}: stage {stage['name']} ({task}, fold {fold}) starts from stage {stage['init_from']}, "
                f"which has no {init_task} run for fold {fold} nor for all rows (-1)"
            )
        wanted.add(sources[index % len(sources)])
    if len(wanted) > 1:
        raise PipelineError(
            f"{pipeline}: multitask stage {stage['name']} (fold {fold}) would start from {len(wanted)} adapters of "
            f"stage {stage['init_from']}: make that stage multitask too, or leave out init_from"
        )
    return wanted.pop()


def run_steps(steps, out, args, api) -> list:
    """Run the steps in order (or print them with --dry_run); one progress line per step, timings to OUT."""
    timings, anything_ran = [], False
    start_all = time.time()
    for i, step in enumerate(steps, 1):
        prefix = f"step {i}/{len(steps)} {step.name}"
        if (step.kind == "submission" and not anything_ran and not args.overwrite
                and os.path.isfile(os.path.join(out, "submission", "submit.zip"))):
            step.skip_reason = "submit.zip exists and no earlier step ran"
        if step.skip_reason and not args.overwrite:
            logger.info("%s: skipped, %s", prefix, step.skip_reason)
            timings.append({"step": step.name, "status": "skipped", "reason": step.skip_reason, "seconds": 0.0})
            continue
        t0 = time.time()
        if step.push_folder and not args.overwrite:
            folder, repo_id = step.push_folder
            logger.info("%s: complete in %s but not on the Hub: pushing it to %s%s", prefix, folder, repo_id,
                        " (dry run)" if args.dry_run else "")
            if not args.dry_run:
                api.create_repo(repo_id, private=True, exist_ok=True)
                api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="run_recipe.py: resumed push",
                                  ignore_patterns=["checkpoint-*", "checkpoint-*/**", "runs/**", "training_args.bin"])
            status = "pushed"
        else:
            env_text = "".join(f"{k}={v} " for k, v in step.env.items())
            logger.info("%s: %s\n    %s%s", prefix, "would run (dry run)" if args.dry_run else "running",
                        env_text, shlex.join(step.cmd))
            if not args.dry_run:
                result = subprocess.run(step.cmd, env={**os.environ, **step.env}, cwd=REPO_ROOT)
                if result.returncode != 0:
                    seconds = round(time.time() - t0, 1)
                    logger.error("%s: FAILED (exit code %d) after %.1f s", prefix, result.returncode, seconds)
                    timings.append({"step": step.name, "status": "failed", "seconds": seconds})
                    write_timings(out, timings)
                    raise SystemExit(result.returncode)
            status = "done"
        if args.dry_run:
            timings.append({"step": step.name, "status": "planned", "seconds": 0.0, "command": step.cmd,
                            "env": step.env})
            continue
        anything_ran = True
        seconds = round(time.time() - t0, 1)
        logger.info("%s: %s in %.1f s", prefix, status, seconds)
        timings.append({"step": step.name, "status": status, "seconds": seconds})
        write_timings(out, timings)

    logger.info("%d step(s) run, %d skipped, %.1f s in all%s",
                sum(t["status"] in ("done", "pushed") for t in timings),
                sum(t["status"] == "skipped" for t in timings), time.time() - start_all,
                "" if args.dry_run else f"; timings in {os.path.join(out, TIMINGS_FILE)}")
    return timings


def write_timings(out, timings):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, TIMINGS_FILE), "w") as f:
        json.dump(timings, f, indent=2)


if __name__ == "__main__":
    try:
        main()
    except PipelineError as err:
        if os.environ.get("RELEVANCE_DEBUG", "") not in ("", "0"):
            raise
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: {err}")
