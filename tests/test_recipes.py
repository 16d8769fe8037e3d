"""Recipes and the pipeline driver (scripts/run_recipe.py).

- every recipe (`recipes/*.yaml`) parses with run_relevance.py's own parser (TrlParser over its dataclasses,
  unknown keys rejected; run_relevance.py has no --dry_run, so the parser is called directly);
- every pipeline (`recipes/pipelines/*.yaml`) plans with `--dry_run`: its configs exist, TAPT stages start from an
  adapter with the same base model and input settings, every fold of the submission stage is trained;
- resume: runs whose adapter is complete in the output folder, or on the (local) Hub, are skipped; a complete
  local run missing on the Hub is pushed instead of retrained; a half-written run is redone; an interrupted run
  goes on from its checkpoint;
- a tiny real run of the driver (folds + one fold of training), then a rerun that skips everything.
"""

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from tests.tiny_models import make_tiny_decoder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import run_recipe  # noqa: E402

RECIPES = sorted(p.name for p in (REPO / "recipes").glob("*.yaml"))
PIPELINES = sorted(p.name for p in (REPO / "recipes" / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_parses_with_run_relevance_parser(recipe, tmp_path):
    import run_relevance

    parser = run_relevance.make_parser()
    # --use_cpu: TrainingArguments refuses bf16 on a machine without a bf16 GPU unless told it runs on the CPU.
    script_args, training_args, model_args = parser.parse_args_and_config(
        ["--config", str(REPO / "recipes" / recipe), "--use_cpu", "true", "--output_dir", str(tmp_path)]
    )
    config = yaml.safe_load((REPO / "recipes" / recipe).read_text())
    assert model_args.model_name_or_path == config["model_name_or_path"]
    assert model_args.use_peft
    assert training_args.learning_rate == config["learning_rate"]
    run_relevance.parse_tasks(script_args.task)


def test_gemma3_12b_recipe_is_the_winners_setup():
    """What the recipe's comment (and the README table) claims."""
    config = yaml.safe_load((REPO / "recipes" / "gemma3-12b.yaml").read_text())
    assert config["model_name_or_path"] == "google/gemma-3-12b-it"
    assert (config["lora_r"], config["lora_alpha"], config["learning_rate"], config["num_train_epochs"]) == (
        16, 32, 1e-5, 2)
    assert config["template"] == "bare" and config["lora_target_modules"] == ["all-linear"]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_plans(pipeline, tmp_path):
    path = REPO / "recipes" / "pipelines" / pipeline
    pipe = yaml.safe_load(path.read_text())
    plan = run_recipe.main(["--pipeline", str(path), "--dry_run", "--output_dir", str(tmp_path / "out")])
    assert all(step["status"] == "planned" for step in plan)

    assert (REPO / pipe["accelerate_config"]).is_file()
    configs = {stage["name"]: yaml.safe_load((REPO / stage["config"]).read_text()) for stage in pipe["stages"]}
    num_folds = pipe["folds"]["num_folds"]
    expected_runs = set()
    for stage in pipe["stages"]:
        folds = range(num_folds) if stage["folds"] == "all" else stage["folds"]
        expected_runs |= {(stage["name"], task, fold) for task in stage["tasks"] for fold in folds}
        if stage.get("init_from"):
            # TAPT carries the adapter and score head over: same base model, input and head.
            source, target = configs[stage["init_from"]], configs[stage["name"]]
            for key in ("model_name_or_path", "template", "max_length", "num_labels"):
                assert source.get(key) == target.get(key), (stage["name"], key)
    train = [step for step in plan if "run_relevance.py" in " ".join(step["command"])]
    runs = set()
    for step in train:
        cmd = step["command"]
        assert cmd[cmd.index("--config_file") + 1] == str(REPO / pipe["accelerate_config"])
        assert Path(cmd[cmd.index("--config") + 1]).is_file()
        stage_name = step["step"].split()[0]
        runs.add((stage_name, cmd[cmd.index("--task") + 1], int(cmd[cmd.index("--fold") + 1])))
    assert runs == expected_runs
    submission = [step for step in plan if step["step"] == "submission"]
    assert len(submission) == 1
    adapters = submission[0]["command"][submission[0]["command"].index("--adapters") + 1].split(",")
    submit_stages = [s for s in pipe["stages"] if s["name"] in run_recipe.submission_stages(pipe["submission"])]
    if len(submit_stages) == 1:  # one '{task}' path per fold (and seed)
        assert len(adapters) == num_folds * len(submit_stages[0].get("seeds") or [0])
        assert all("{task}" in a for a in adapters)
    else:  # 'qc=PATH' items: each task's folds (and seeds) from its own stage
        for stage in submit_stages:
            for task in stage["tasks"]:
                mine = [a for a in adapters if a.startswith(f"{task}=")]
                assert len(mine) == num_folds * len(stage.get("seeds") or [0])
                assert all(f"/{stage['name']}/{task}/fold" in a for a in mine)


# ----------------------------------------------------------------------------------------------------------------
# Resume
# ----------------------------------------------------------------------------------------------------------------


def _write_pipeline(tmp_path, config, stages, **extra):
    pipe = {
        "name": "tiny",
        "output_dir": str(tmp_path / "out"),
        "accelerate_config": "accelerate_configs/single_gpu.yaml",
        "data": {"qc": {"train_file": "data/sample/train_QC.jsonl", "test_file": "data/sample/test_QC.jsonl"}},
        "folds": {"num_folds": 2, "seed": 42},
        "stages": stages,
        **extra,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipe))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    return path


def _fake_run(folder, fold, complete=True):
    os.makedirs(folder, exist_ok=True)
    names = ["adapter_model.safetensors", "relevance_config.json"]
    if complete:
        names += ["metrics.json"] + (["oof_predictions.parquet"] if fold >= 0 else [])
    for name in names:
        Path(folder, name).write_text("{}")


def _status(plan):
    return {step["step"]: step["status"] for step in plan}


def test_resume_skips_complete_local_runs(tmp_path):
    stages = [{"name": "cv", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc"], "folds": "all"}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages)
    out = tmp_path / "out"
    Path(out / "data" / "folds_qc").mkdir(parents=True)
    Path(out / "data" / "folds_qc" / "dataset_dict.json").write_text("{}")
    _fake_run(out / "cv" / "qc" / "fold0", 0)
    _fake_run(out / "cv" / "qc" / "fold1", 1, complete=False)  # adapter written, metrics/OOF missing: redo
    os.makedirs(out / "cv" / "qc" / "fold1" / "checkpoint-2")

    plan = run_recipe.main(["--pipeline", str(path), "--dry_run", "--skip_submission"])
    assert _status(plan) == {"folds qc": "skipped", "cv qc fold0": "skipped", "cv qc fold1": "planned"}
    fold1 = next(step for step in plan if step["step"] == "cv qc fold1")["command"]
    assert fold1[fold1.index("--resume_from_checkpoint") + 1] == "last"

    plan = run_recipe.main(["--pipeline", str(path), "--dry_run", "--skip_submission", "--overwrite"])
    assert set(_status(plan).values()) == {"planned"}


def test_accelerate_config_from_the_environment_and_cpu_deepspeed_settings(tmp_path, monkeypatch):
    stages = [{"name": "cv", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc"], "folds": [0]}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages)
    monkeypatch.setenv("ACCELERATE_CONFIG", "accelerate_configs/cpu_zero3.yaml")
    plan = run_recipe.main(["--pipeline", str(path), "--dry_run", "--skip_submission", "--num_processes", "2"])
    train = next(step for step in plan if step["step"] == "cv qc fold0")
    cmd = train["command"]
    assert cmd[cmd.index("--config_file") + 1] == str(REPO / "accelerate_configs" / "cpu_zero3.yaml")
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--ddp_backend") + 1] == "gloo" and "--use_cpu" not in cmd
    assert train["env"] == {"DS_ACCELERATOR": "cpu"}
    # The command-line flag wins over the environment; a GPU config gets neither CPU setting.
    plan = run_recipe.main(["--pipeline", str(path), "--dry_run", "--skip_submission",
                            "--accelerate_config", "accelerate_configs/deepspeed_zero3.yaml"])
    train = next(step for step in plan if step["step"] == "cv qc fold0")
    assert train["command"][train["command"].index("--config_file") + 1].endswith("deepspeed_zero3.yaml")
    assert "--ddp_backend" not in train["command"] and train["env"] == {}


def test_resume_from_the_hub_and_push_of_a_local_run(hub_server, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi()
    namespace = api.whoami()["name"]
    stages = [
        {"name": "tapt", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc"], "folds": [-1]},
        {"name": "cv", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc"], "folds": "all",
         "init_from": "tapt", "init_task": "same"},
    ]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, name="resume-hub")
    out = tmp_path / "out"
    Path(out / "data" / "folds_qc").mkdir(parents=True)
    Path(out / "data" / "folds_qc" / "dataset_dict.json").write_text("{}")
    api.create_repo(f"{namespace}/resume-hub-folds-qc", repo_type="dataset", private=True, exist_ok=True)
    # tapt: on the Hub only (trained elsewhere); cv fold 0: complete here but never pushed; cv fold 1: nothing.
    _fake_run(tmp_path / "elsewhere", -1)
    api.create_repo(f"{namespace}/resume-hub-tapt-qc-foldall", private=True, exist_ok=True)
    api.upload_folder(repo_id=f"{namespace}/resume-hub-tapt-qc-foldall", folder_path=str(tmp_path / "elsewhere"))
    _fake_run(out / "cv" / "qc" / "fold0", 0)

    args = ["--pipeline", str(path), "--hub_namespace", namespace, "--skip_submission"]
    plan = run_recipe.main(args + ["--dry_run"])
    assert _status(plan) == {"folds qc": "skipped", "tapt qc foldall": "skipped", "cv qc fold0": "planned",
                             "cv qc fold1": "planned"}
    fold1 = next(step for step in plan if step["step"] == "cv qc fold1")["command"]
    # Stage 2 starts from the stage-1 adapter on the Hub and reads the folds from the Hub.
    assert fold1[fold1.index("--init_adapter") + 1] == f"{namespace}/resume-hub-tapt-qc-foldall"
    assert fold1[fold1.index("--dataset_name") + 1] == f"{namespace}/resume-hub-folds-qc"
    assert fold1[fold1.index("--hub_model_id") + 1] == f"{namespace}/resume-hub-cv-qc-fold1"
    assert not api.repo_exists(f"{namespace}/resume-hub-cv-qc-fold0")  # a dry run pushes nothing

    # For real, but only up to the push: fold 1 would train, so it is excluded with --folds 0.
    timings = run_recipe.main(args + ["--folds", "0"])
    assert _status(timings) == {"folds qc": "skipped", "tapt qc foldall": "skipped", "cv qc fold0": "pushed"}
    assert api.file_exists(f"{namespace}/resume-hub-cv-qc-fold0", "oof_predictions.parquet")
    plan = run_recipe.main(args + ["--folds", "0", "--dry_run"])
    assert _status(plan)["cv qc fold0"] == "skipped"


def test_pipeline_errors_name_the_file_and_field(tmp_path):
    stages = [{"name": "cv", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc"], "folds": "all",
               "init_from": "tapt"}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages)
    with pytest.raises(ValueError, match=r"pipeline.yaml: stages\[0\].init_from: 'tapt' is not an earlier stage"):
        run_recipe.main(["--pipeline", str(path), "--dry_run"])
    stages[0].pop("init_from")
    stages[0]["tasks"] = ["qi"]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages)
    with pytest.raises(ValueError, match=r"stages\[0\].tasks: task 'qi' has no entry under 'data'"):
        run_recipe.main(["--pipeline", str(path), "--dry_run"])


BOTH_TASKS = {"qc": {"train_file": "data/sample/train_QC.jsonl", "test_file": "data/sample/test_QC.jsonl"},
              "qi": {"train_file": "data/sample/train_QI.jsonl", "test_file": "data/sample/test_QI.jsonl"}}


def test_multitask_stage_plans_one_run_per_fold_and_one_adapter_set_for_both_tasks(tmp_path):
    config = str(tmp_path / "tiny.yaml")
    stages = [{"name": "tapt", "config": config, "tasks": ["qc", "qi"], "folds": [-1], "multitask": True},
              {"name": "cv", "config": config, "tasks": ["qc", "qi"], "folds": "all", "multitask": True,
               "init_from": "tapt"},
              {"name": "single", "config": config, "tasks": ["qi"], "folds": [0], "init_from": "cv"}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, data=BOTH_TASKS,
                           submission={"stage": "cv"})
    plan = run_recipe.main(["--pipeline", str(path), "--dry_run"])
    out = tmp_path / "out"
    commands = {step["step"]: step["command"] for step in plan}
    assert [s for s in commands if " fold" in s] == ["tapt qc,qi foldall", "cv qc,qi fold0", "cv qc,qi fold1",
                                                    "single qi fold0"]

    def flag(step, name):
        return commands[step][commands[step].index(name) + 1]

    cv0 = "cv qc,qi fold0"
    assert flag(cv0, "--task") == "qc,qi"
    assert flag(cv0, "--dataset_name") == f"{out}/data/folds_qc,{out}/data/folds_qi"
    assert flag(cv0, "--output_dir") == str(out / "cv" / "qc-qi" / "fold0")
    assert flag(cv0, "--init_adapter") == str(out / "tapt" / "qc-qi" / "foldall")
    # a one-task stage starts from the multitask adapter of its fold
    assert flag("single qi fold0", "--init_adapter") == str(out / "cv" / "qc-qi" / "fold0")
    assert flag("submission", "--task") == "qc,qi"
    assert flag("submission", "--adapters").split(",") == [str(out / "cv" / "qc-qi" / f"fold{k}") for k in (0, 1)]


def test_multitask_stage_errors(tmp_path):
    config = str(tmp_path / "tiny.yaml")
    stages = [{"name": "cv", "config": config, "tasks": ["qc"], "folds": "all", "multitask": True}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, data=BOTH_TASKS)
    with pytest.raises(ValueError, match=r"stages\[0\].multitask: needs two tasks"):
        run_recipe.main(["--pipeline", str(path), "--dry_run"])
    stages = [{"name": "tapt", "config": config, "tasks": ["qi", "qc"], "folds": [-1]},
              {"name": "cv", "config": config, "tasks": ["qc", "qi"], "folds": "all", "multitask": True,
               "init_from": "tapt"}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, data=BOTH_TASKS)
    with pytest.raises(ValueError, match="multitask stage cv .* would start from 2 adapters of stage tapt: make"):
        run_recipe.main(["--pipeline", str(path), "--dry_run"])


def test_seeds_plan_one_run_per_seed_on_the_first_seeds_rows_and_submit_them_all(tmp_path):
    config = str(tmp_path / "tiny.yaml")
    stages = [{"name": "tapt", "config": config, "tasks": ["qi", "qc"], "folds": [-1], "seeds": [7, 8]},
              {"name": "cv", "config": config, "tasks": ["qc", "qi"], "folds": "all", "init_from": "tapt",
               "seeds": [42, 43, 44]}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, data=BOTH_TASKS,
                           submission={"stage": "cv"})
    plan = run_recipe.main(["--pipeline", str(path), "--dry_run"])
    out = tmp_path / "out"
    commands = {step["step"]: step["command"] for step in plan}
    assert [s for s in commands if s.startswith("cv qc")] == [f"cv qc fold{k}-seed{s}" for k in (0, 1)
                                                              for s in (42, 43, 44)]

    def flag(step, name):
        return commands[step][commands[step].index(name) + 1]

    step = "cv qc fold1-seed43"
    assert (flag(step, "--seed"), flag(step, "--data_seed"), flag(step, "--fold")) == ("43", "42", "1")
    assert flag(step, "--output_dir") == str(out / "cv" / "qc" / "fold1-seed43")
    # TAPT: the other task's all-rows run of the same seed index, cycling over the earlier stage's seeds
    assert flag(step, "--init_adapter") == str(out / "tapt" / "qi" / "foldall-seed8")
    assert flag("cv qc fold1-seed44", "--init_adapter") == str(out / "tapt" / "qi" / "foldall-seed7")
    assert flag("submission", "--adapters").split(",") == [
        str(out / "cv" / "{task}" / f"fold{k}-seed{s}") for k in (0, 1) for s in (42, 43, 44)]

    for seeds, message in (([42, 42], "a list of distinct integer seeds"), (42, "a list of distinct")):
        stages = [{"name": "cv", "config": config, "tasks": ["qc"], "folds": "all", "seeds": seeds}]
        path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, data=BOTH_TASKS)
        with pytest.raises(ValueError, match=rf"stages\[0\].seeds: {message}"):
            run_recipe.main(["--pipeline", str(path), "--dry_run"])
    stages = [{"name": "cv", "config": config, "tasks": ["qc"], "folds": "all", "seeds": [1, 2], "args": {"seed": 3}}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, data=BOTH_TASKS)
    with pytest.raises(ValueError, match=r"stages\[0\]: 'seeds' and args.seed conflict"):
        run_recipe.main(["--pipeline", str(path), "--dry_run"])


def test_one_submission_stage_per_task(tmp_path):
    """submission.stage as a list: each task's adapters from the stage that trains it, as 'task=PATH' items."""
    config = str(tmp_path / "tiny.yaml")
    stages = [{"name": "cv_qc", "config": config, "tasks": ["qc"], "folds": "all"},
              {"name": "cv_qi", "config": config, "tasks": ["qi"], "folds": "all", "seeds": [42, 43],
               "args": {"num_hidden_layers": 12}}]
    path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"}, stages, data=BOTH_TASKS,
                           submission={"stage": ["cv_qc", "cv_qi"]})
    plan = run_recipe.main(["--pipeline", str(path), "--dry_run"])
    out = tmp_path / "out"
    command = next(step["command"] for step in plan if step["step"] == "submission")
    assert command[command.index("--task") + 1] == "qc,qi"
    assert command[command.index("--adapters") + 1].split(",") == (
        [f"qc={out}/cv_qc/qc/fold{k}" for k in (0, 1)]
        + [f"qi={out}/cv_qi/qi/fold{k}-seed{s}" for k in (0, 1) for s in (42, 43)])

    for submit, message in ((["cv_qc", "cv"], r"submission.stage: 'cv' is not a stage"),
                            (["cv_qc", "cv_both"], r"submission.stage: task 'qc' is trained by stages 'cv_qc' and "
                                                   r"'cv_both'; list one stage per task")):
        path = _write_pipeline(tmp_path, {"model_name_or_path": "unused"},
                               stages + [{"name": "cv_both", "config": config, "tasks": ["qc", "qi"],
                                          "folds": "all"}], data=BOTH_TASKS, submission={"stage": submit})
        with pytest.raises(ValueError, match=message):
            run_recipe.main(["--pipeline", str(path), "--dry_run"])


# ----------------------------------------------------------------------------------------------------------------
# A tiny real run
# ----------------------------------------------------------------------------------------------------------------


def _tiny_config(tmp_path, **overrides):
    """A two-step recipe on a tiny random Gemma-3."""
    return {
        "model_name_or_path": make_tiny_decoder(tmp_path / "model", arch="gemma3"), "template": "bare",
        "max_length": 32, "lora_r": 4, "lora_alpha": 8, "max_steps": 2, "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 64, "eval_strategy": "no", "save_strategy": "no",
        "load_best_model_at_end": False, **overrides,
    }


def test_tiny_real_run_then_resume(tmp_path):
    config = _tiny_config(tmp_path)
    stages = [{"name": "cv", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc"], "folds": "all"}]
    path = _write_pipeline(tmp_path, config, stages)
    args = ["--pipeline", str(path), "--folds", "0", "--skip_submission"]

    timings = run_recipe.main(args)
    assert _status(timings) == {"folds qc": "done", "cv qc fold0": "done"}
    run_dir = tmp_path / "out" / "cv" / "qc" / "fold0"
    assert json.loads((run_dir / "relevance_config.json").read_text())["fold"] == 0
    saved = json.loads((tmp_path / "out" / run_recipe.TIMINGS_FILE).read_text())
    assert [t["step"] for t in saved] == ["folds qc", "cv qc fold0"] and all(t["seconds"] > 0 for t in saved)
    adapter_mtime = (run_dir / "adapter_model.safetensors").stat().st_mtime_ns

    timings = run_recipe.main(args)
    assert set(_status(timings).values()) == {"skipped"}
    assert (run_dir / "adapter_model.safetensors").stat().st_mtime_ns == adapter_mtime


def test_tiny_multitask_pipeline_trains_one_model_and_submits_both_tasks(tmp_path):
    """One multitask fold through the driver, then make_submission.py scoring both tasks with that one adapter."""
    config = _tiny_config(tmp_path, template="instruct", max_length=48)  # instruct: names the task
    stages = [{"name": "cv", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc", "qi"], "folds": "all",
               "multitask": True}]
    path = _write_pipeline(tmp_path, config, stages, data=BOTH_TASKS,
                           submission={"stage": "cv", "args": {"threshold_strategy": "fixed"}})
    timings = run_recipe.main(["--pipeline", str(path), "--folds", "0"])
    assert _status(timings) == {"folds qc": "done", "folds qi": "done", "cv qc,qi fold0": "done",
                                "submission": "done"}
    run_dir = tmp_path / "out" / "cv" / "qc-qi" / "fold0"
    assert json.loads((run_dir / "relevance_config.json").read_text())["tasks"] == ["qc", "qi"]
    submission = tmp_path / "out" / "submission"
    for task, name in (("qc", "submit_QC.txt"), ("qi", "submit_QI.txt")):
        test_ids = [json.loads(line)["id"] for line in open(REPO / "data" / "sample" / f"test_{task.upper()}.jsonl")]
        assert [json.loads(line)["id"] for line in open(submission / name)] == test_ids
        predictions = pd.read_parquet(submission / f"predictions_{task}.parquet")
        assert len([c for c in predictions.columns if c.startswith("probability_")]) == 1  # the one adapter


def test_tiny_seeds_pipeline_submits_the_mean_of_both_seeds(tmp_path):
    """Two seeds of fold 0 through the driver: two adapters scored, their OOF rows averaged (not refused)."""
    stages = [{"name": "cv", "config": str(tmp_path / "tiny.yaml"), "tasks": ["qc"], "folds": "all", "seeds": [1, 2]}]
    path = _write_pipeline(tmp_path, _tiny_config(tmp_path), stages,
                           submission={"stage": "cv", "args": {"threshold_strategy": "global"}})
    timings = run_recipe.main(["--pipeline", str(path), "--folds", "0"])
    assert _status(timings) == {"folds qc": "done", "cv qc fold0-seed1": "done", "cv qc fold0-seed2": "done",
                                "submission": "done"}
    out = tmp_path / "out"
    oof = [pd.read_parquet(out / "cv" / "qc" / f"fold0-seed{s}" / "oof_predictions.parquet") for s in (1, 2)]
    assert oof[0]["id"].tolist() == oof[1]["id"].tolist()  # the same validation rows
    assert not oof[0]["probability"].equals(oof[1]["probability"])  # another initialisation
    predictions = pd.read_parquet(out / "submission" / "predictions_qc.parquet")
    assert [c for c in predictions.columns if c.startswith("probability_")] == [
        "probability_fold0-seed1", "probability_fold0-seed2"]
    assert predictions["probability"].to_numpy() == pytest.approx(
        predictions[["probability_fold0-seed1", "probability_fold0-seed2"]].mean(axis=1).to_numpy())
    report = json.loads((out / "submission" / "thresholds_qc.json").read_text())
    mean = (oof[0]["probability"] + oof[1]["probability"]) / 2
    assert report["oof_rows"] == len(mean) and report["oof_auc"] == pytest.approx(
        roc_auc_score(oof[0]["label"], mean))


def test_tiny_per_task_stages_of_different_depth_submit_as_each_task_alone(tmp_path):
    """QC on the whole tiny model, QI on its first layer with two seeds, submitted by one make_submission.py call:
    each task is scored on its own depth (the QI scores equal a QI-only call's), every test id once."""
    config = str(tmp_path / "tiny.yaml")
    stages = [{"name": "cv_qc", "config": config, "tasks": ["qc"], "folds": "all"},
              {"name": "cv_qi", "config": config, "tasks": ["qi"], "folds": "all", "seeds": [1, 2],
               "args": {"num_hidden_layers": 1}}]
    path = _write_pipeline(tmp_path, _tiny_config(tmp_path), stages, data=BOTH_TASKS,
                           submission={"stage": ["cv_qc", "cv_qi"], "args": {"threshold_strategy": "fixed"}})
    timings = run_recipe.main(["--pipeline", str(path), "--folds", "0"])
    assert _status(timings) == {"folds qc": "done", "folds qi": "done", "cv_qc qc fold0": "done",
                                "cv_qi qi fold0-seed1": "done", "cv_qi qi fold0-seed2": "done", "submission": "done"}
    out = tmp_path / "out"
    assert json.loads((out / "cv_qi" / "qi" / "fold0-seed1" / "relevance_config.json").read_text())[
        "num_hidden_layers"] == 1
    joint = {task: pd.read_parquet(out / "submission" / f"predictions_{task}.parquet") for task in ("qc", "qi")}
    assert [c for c in joint["qc"].columns if c.startswith("probability_")] == ["probability_fold0"]
    assert [c for c in joint["qi"].columns if c.startswith("probability_")] == [
        "probability_fold0-seed1", "probability_fold0-seed2"]
    for task in ("qc", "qi"):
        test_ids = [json.loads(line)["id"] for line in open(REPO / "data" / "sample" / f"test_{task.upper()}.jsonl")]
        assert joint[task]["id"].astype(str).tolist() == [str(i) for i in test_ids]

    import make_submission

    alone = tmp_path / "qi_alone"
    make_submission.main(["--task", "qi", "--dataset_name", str(out / "data" / "folds_qi"), "--adapters",
                          f"{out}/cv_qi/qi/fold0-seed1,{out}/cv_qi/qi/fold0-seed2", "--output_dir", str(alone),
                          "--threshold_strategy", "fixed"])
    assert joint["qi"]["probability"].to_numpy() == pytest.approx(
        pd.read_parquet(alone / "predictions_qi.parquet")["probability"].to_numpy(), abs=1e-6)
