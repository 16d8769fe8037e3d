"""Tests of run_relevance.py and modeling_relevance.py on tiny random models (tests/tiny_models.py).

Training runs call `run_relevance.main` in-process (a few optimizer steps each) to keep the module fast.
"""

import json
import os

import datasets
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import modeling_relevance as mr
import run_relevance
from tests.tiny_models import (
    make_tiny_decoder,
    make_tiny_encoder,
    make_tiny_folded_dataset,
    make_tiny_multimodal_gemma3,
)

QUICK = ["--max_length", "64", "--per_device_train_batch_size", "8", "--logging_steps", "1",
         "--disable_tqdm", "true", "--save_total_limit", "2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "gemma3": make_tiny_decoder(root / "gemma3", arch="gemma3"),
        "qc": make_tiny_folded_dataset(root / "folds_qc", task="qc"),
        "qi": make_tiny_folded_dataset(root / "folds_qi", task="qi", with_translation=True, seed=1),
        "root": root,
    }


def run(args):
    parser = run_relevance.make_parser()
    return run_relevance.main(*parser.parse_args_and_config(args))


def adapter_tensors(path):
    return load_file(os.path.join(path, "adapter_model.safetensors"))


# ----------------------------------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------------------------------


def test_pool_hidden_states_picks_last_and_first_real_token():
    hidden = torch.arange(2 * 5 * 1, dtype=torch.float32).reshape(2, 5, 1)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert mr.pool_hidden_states(hidden, right, "last").reshape(-1).tolist() == [2.0, 9.0]
    assert mr.pool_hidden_states(hidden, left, "last").reshape(-1).tolist() == [4.0, 9.0]
    assert mr.pool_hidden_states(hidden, left, "first").reshape(-1).tolist() == [2.0, 5.0]
    with pytest.raises(ValueError, match="no token"):
        mr.pool_hidden_states(hidden, torch.zeros(2, 5, dtype=torch.long), "last")


@pytest.mark.parametrize("arch", ["gemma3", "qwen3", "llama"])
def test_pooling_equals_last_real_token_state_left_right_and_pad_is_eos(tmp_path, arch):
    """The logits of a padded batch equal the score head applied to each unpadded sequence's last hidden state,
    with right padding, left padding, and pad == EOS where the sequence itself ends with an EOS."""
    path = make_tiny_decoder(tmp_path / arch, arch=arch, pad_is_eos=True)
    model = mr.build_classifier(path, num_labels=2, seed=0).eval()
    eos = model.config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    sequences = [[2, 10, 11, 12, 13, eos], [2, 14, 15, eos], [2, 16]]  # two end with EOS == pad
    with torch.no_grad():
        expected = torch.stack([
            model.score(model.model(input_ids=torch.tensor([s])).last_hidden_state[0, -1]) for s in sequences
        ])
        width = max(map(len, sequences))
        for side in ("right", "left"):
            ids, mask = [], []
            for s in sequences:
                pad = [eos] * (width - len(s))
                ids.append(s + pad if side == "right" else pad + s)
                m = [1] * len(s) + [0] * len(pad)
                mask.append(m if side == "right" else m[::-1])
            logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
            torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4, msg=f"{arch}, {side} padding")


def test_multimodal_gemma3_loads_language_model_only(tmp_path):
    path = make_tiny_multimodal_gemma3(tmp_path / "mm")
    model = mr.build_classifier(path, num_labels=2)
    names = [n for n, _ in model.named_parameters()]
    assert type(model.model).__name__ == "Gemma3TextModel"
    assert not [n for n in names if "vision" in n or "multi_modal" in n]
    checkpoint = load_file(os.path.join(path, "model.safetensors"))
    language = {k.replace("language_model.model.", ""): v for k, v in checkpoint.items()
                if k.startswith("language_model.model.")}
    state = model.model.state_dict()
    assert set(language) <= set(state)
    for key, value in language.items():
        torch.testing.assert_close(state[key], value, msg=key)
    assert model.score.weight.dtype == torch.float32


def test_answer_token_score_init(tmp_path, tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny["gemma3"])
    ids = mr.answer_token_ids(tokenizer, ["no", "yes"])
    two = mr.build_classifier(tiny["gemma3"], num_labels=2, score_init="answer_tokens", answer_token_ids=ids)
    embeddings = two.model.get_input_embeddings().weight.detach()
    torch.testing.assert_close(two.score.weight, embeddings[ids].float())
    one = mr.build_classifier(tiny["gemma3"], num_labels=1, score_init="answer_tokens", answer_token_ids=ids)
    torch.testing.assert_close(one.score.weight[0], (embeddings[ids[1]] - embeddings[ids[0]]).float())
    # An untied checkpoint: the rows come from its lm_head tensor.
    llama = make_tiny_decoder(tmp_path / "llama", arch="llama")
    model = mr.build_classifier(llama, num_labels=2, score_init="answer_tokens", answer_token_ids=ids)
    lm_head = load_file(os.path.join(llama, "model.safetensors"))["lm_head.weight"]
    torch.testing.assert_close(model.score.weight, lm_head[ids].float())
    assert not torch.allclose(model.score.weight, model.model.get_input_embeddings().weight[ids].detach())


# ----------------------------------------------------------------------------------------------------------------
# Input text and truncation
# ----------------------------------------------------------------------------------------------------------------


def test_input_text_templates():
    assert mr.build_input_text("qc", "red shoe", "shoes > sandals", template="bare") == "red shoe [SEP] shoes > sandals"
    text = mr.build_input_text("QI", "zapato rojo", "Red shoe", query_en="red shoe")
    assert "zapato rojo - red shoe" in text and "Product title: Red shoe" in text and text.endswith("Answer:")
    assert "Category:" in mr.build_input_text("qc", "q", "t") and "Product title" not in mr.build_input_text("qc", "q", "t")
    assert mr.format_query("red shoe", "red shoe") == "red shoe"
    with pytest.raises(ValueError, match="unknown task"):
        mr.build_input_text("qx", "q", "t")


@pytest.mark.parametrize("template, task, expected", [
    ("bare", "qc", "zapato rojo - red shoe [SEP] shoes > sandals"),
    ("bare", "qi", "zapato rojo - red shoe [SEP] shoes > sandals"),
    ("instruct", "qc", "Is the product category relevant to the search query? Answer yes or no.\n"
                       "Query: zapato rojo - red shoe\nCategory: shoes > sandals\nAnswer:"),
    ("instruct", "QI", "Is the product title relevant to the search query? Answer yes or no.\n"
                       "Query: zapato rojo - red shoe\nProduct title: shoes > sandals\nAnswer:"),
])
def test_input_text_is_pinned(template, task, expected):
    """The exact text trained adapters were fed: any change here invalidates every adapter already trained."""
    assert mr.build_input_text(task, "zapato rojo", "shoes > sandals", query_en="red shoe", template=template) == expected
    head, target, tail = mr.build_input_parts(task, "q", None, template=template)
    assert target == "" and head + tail == expected.replace("zapato rojo - red shoe", "q").replace("shoes > sandals", "")


def test_target_truncated_query_never(tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny["gemma3"])
    query = "red phone case women"
    target = " > ".join(["phone case black blue cable"] * 8)
    short = mr.encode_examples(tokenizer, ["qc"], [query], ["lamp"], max_length=64)
    assert not short["target_truncated"][0]
    enc = mr.encode_examples(tokenizer, ["qc", "qc"], [query, query], [target, "lamp"], max_length=40)
    assert len(enc["input_ids"][0]) <= 40 and enc["target_truncated"] == [True, False]
    text = tokenizer.decode(enc["input_ids"][0], skip_special_tokens=True)
    assert f"query : {query}" in text
    kept = text.split("category : ")[1].rsplit(" answer :", 1)[0]
    whole = tokenizer.decode(tokenizer.encode(target, add_special_tokens=False))
    assert 0 < len(kept) < len(whole) and whole.startswith(kept)
    assert text.endswith("answer :")
    # A query longer than the budget is kept whole (target dropped) and flagged, never cut.
    long_query = " ".join(["red"] * 60)
    enc = mr.encode_examples(tokenizer, ["qc"], [long_query], [target], max_length=40)
    decoded = tokenizer.decode(enc["input_ids"][0], skip_special_tokens=True)
    assert enc["query_too_long"] == [True] and decoded.count("red") == 60 and "phone" not in decoded


def test_tokenising_never_hashes_the_tokenizer(tiny, monkeypatch):
    """datasets fingerprints a map by pickling its function, tokenizer included (~10 s for Gemma's vocabulary):
    tokenize_dataset names the fingerprint itself, so that hashing must not run; a second call recomputes."""
    from datasets import arrow_dataset
    from transformers import AutoTokenizer

    def refuse(*args, **kwargs):
        raise AssertionError("datasets hashed the map function (and its tokenizer)")

    monkeypatch.setattr(arrow_dataset, "update_fingerprint", refuse)
    tokenizer = AutoTokenizer.from_pretrained(tiny["gemma3"])
    rows = datasets.Dataset.from_dict({"task_key": ["qc"] * 6, "query": [f"red phone case {i}" for i in range(6)],
                                       "target": ["phone case black blue cable"] * 6, "query_en": [None] * 6,
                                       "label": [0, 1] * 3})
    args = run_relevance.RelevanceArguments(dataset_name=[tiny["qc"]], task="qc", max_length=64)
    first = run_relevance.tokenize_dataset(rows, tokenizer, args, "training set")
    args.max_length = 8
    second = run_relevance.tokenize_dataset(rows, tokenizer, args, "training set")
    assert first.column_names == ["input_ids", "attention_mask", "labels"] and len(first) == 6
    assert max(len(ids) for ids in second["input_ids"]) < max(len(ids) for ids in first["input_ids"])


# ----------------------------------------------------------------------------------------------------------------
# Training runs
# ----------------------------------------------------------------------------------------------------------------


def test_one_fold_trains_and_writes_every_output(tmp_path, tiny):
    out = tmp_path / "qc_fold0"
    args = ["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "0",
            "--output_dir", str(out), "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2",
            "--learning_rate", "1e-3", *QUICK]
    metrics = run(args)
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
                 "metrics.json", "oof_predictions.parquet", "README.md", mr.SETTINGS_NAME):
        assert (out / name).exists(), name
    raw = datasets.load_from_disk(tiny["qc"])["train"]
    fold0 = raw.filter(lambda r: r["fold"] == 0)
    # Training rows: other folds minus the rows whose query also sits in fold 0.
    expected_train = sum(1 for f, ex in zip(raw["fold"], raw["exclude_from_train_folds"]) if f != 0 and 0 not in ex)
    assert expected_train < sum(1 for f in raw["fold"] if f != 0)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["train"]["train_rows"] == expected_train == metrics["train"]["train_rows"]
    assert saved["train"]["tokens_per_second"] > 0
    ev = saved["eval"]
    for key in ("f1", "precision", "recall", "accuracy", "roc_auc", "log_loss", "prior_log_loss",
                "best_threshold", "best_threshold_f1"):
        assert ev[key] is not None and np.isfinite(ev[key]), key
    assert set(ev["per_language"]) == set(fold0["language"])
    assert ev["best_threshold_f1"] >= ev["f1"] - 1e-9
    oof = pd.read_parquet(out / "oof_predictions.parquet")
    assert list(oof.columns) == ["id", "fold", "task", "language", "label", "probability"]
    assert sorted(oof["id"].astype(int)) == sorted(fold0["id"]) and set(oof["fold"]) == {0}
    assert set(oof["task"]) == {"QC"} and oof["probability"].between(0, 1).all()
    # The OOF rows line up with their ids: rescoring them through the inference path gives the same numbers.
    model, tokenizer, settings = mr.load_for_inference(str(out))
    assert settings["pooling"] == "last" and settings["tasks"] == ["qc"]
    by_id = {str(i): (q, t, lab) for i, q, t, lab in zip(fold0["id"], fold0["query"], fold0["target"], fold0["label"])}
    rows = [by_id[i] for i in oof["id"]]
    assert [r[2] for r in rows] == oof["label"].tolist()
    probabilities = mr.predict_probabilities(model, tokenizer, ["qc"] * len(rows), [r[0] for r in rows],
                                             [r[1] for r in rows], template=settings["template"],
                                             max_length=settings["max_length"], show_progress=False)
    np.testing.assert_allclose(probabilities, oof["probability"].to_numpy(), atol=1e-5)
    card = (out / "README.md").read_text()
    assert "| f1 |" in card and "## Recipe" in card and "learning_rate: 0.001" in card
    # Resume: two more steps from the last checkpoint.
    resumed = run([*args, "--max_steps", "6", "--resume_from_checkpoint", "last"])
    assert resumed["train"]["epoch"] > metrics["train"]["epoch"]
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6


def test_logged_loss_is_true_mean_ce_under_gradient_accumulation(tmp_path, tiny):
    """learning rate 0: the model never changes, so every logged step loss must equal the mean cross-entropy of
    that step's rows. 60 rows, batches of 4, accumulation 4: steps of 16, 16, 16 and 12 rows (uneven last step)."""
    out = tmp_path / "ga"
    run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "-1",
         "--output_dir", str(out), "--learning_rate", "0", "--lora_dropout", "0", "--per_device_train_batch_size",
         "4", "--gradient_accumulation_steps", "4", "--train_sampling_strategy", "sequential", "--num_train_epochs",
         "1", "--logging_steps", "1", "--save_steps", "1", "--max_length", "64", "--disable_tqdm", "true",
         "--warmup_steps", "0"])
    assert not (out / "oof_predictions.parquet").exists()
    assert json.loads((out / "metrics.json").read_text())["eval"] is None
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    logged = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(logged) == 4
    raw = datasets.load_from_disk(tiny["qc"])["train"]
    model, tokenizer, settings = mr.load_for_inference(str(out))
    p = mr.predict_probabilities(model, tokenizer, ["qc"] * len(raw), raw["query"], raw["target"],
                                 template=settings["template"], max_length=64, show_progress=False)
    labels = np.asarray(raw["label"])
    ce = -np.log(np.where(labels == 1, p, 1 - p))
    true_means = [ce[i : i + 16].mean() for i in range(0, 60, 16)]
    np.testing.assert_allclose(logged, true_means, atol=2e-4)


def test_tapt_carry_through_local_hub_both_directions(tmp_path, tiny, hub_server):
    """Stage 1 on QI, pushed to the (local) Hub; stage 2 on QC starts from it: right after loading every LoRA and
    score tensor equals stage 1's (lora_B non-zero), after training every one has moved. Then QC -> QI."""
    from huggingface_hub import HfApi

    stage1 = tmp_path / "stage1_qi"
    run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qi"], "--task", "qi", "--fold", "-1",
         "--output_dir", str(stage1), "--max_steps", "3", "--learning_rate", "5e-3", *QUICK,
         "--push_to_hub", "--hub_model_id", "user/tapt-{task}-fold{fold}"])
    repo = "user/tapt-qi-foldall"
    info = HfApi().model_info(repo)
    assert info.private is True
    assert {"adapter_model.safetensors", "adapter_config.json", mr.SETTINGS_NAME, "README.md"} <= {
        s.rfilename for s in info.siblings}
    first = adapter_tensors(stage1)
    assert any("score" in k for k in first)
    assert all(v.abs().sum() > 0 for k, v in first.items() if "lora_B" in k)

    snapshots = []
    original_train = run_relevance.RelevanceTrainer.train

    def recording_train(self, *args, **kwargs):
        from peft import get_peft_model_state_dict

        snapshots.append({k: v.detach().clone() for k, v in get_peft_model_state_dict(self.model).items()})
        return original_train(self, *args, **kwargs)

    run_relevance.RelevanceTrainer.train = recording_train
    try:
        stage2 = tmp_path / "stage2_qc"
        run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "0",
             "--output_dir", str(stage2), "--max_steps", "3", "--eval_steps", "3", "--save_steps", "3",
             "--learning_rate", "5e-3", *QUICK, "--init_adapter", repo])
        stage3 = tmp_path / "stage3_qi"
        run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qi"], "--task", "qi", "--fold", "1",
             "--output_dir", str(stage3), "--max_steps", "3", "--eval_steps", "3", "--save_steps", "3",
             "--learning_rate", "5e-3", *QUICK, "--init_adapter", str(stage2)])
    finally:
        run_relevance.RelevanceTrainer.train = original_train

    for before, start, after in ((first, snapshots[0], adapter_tensors(stage2)),
                                 (adapter_tensors(stage2), snapshots[1], adapter_tensors(stage3))):
        assert set(start) == set(before) == set(after)
        for key in before:
            torch.testing.assert_close(start[key], before[key], msg=f"{key} not carried over")
            assert not torch.allclose(after[key], before[key]), f"{key} did not train"
    settings = json.loads((stage2 / mr.SETTINGS_NAME).read_text())
    assert settings["init_adapter"] == repo


def test_num_hidden_layers_truncates_training_and_inference(tmp_path, tiny):
    import make_submission

    out = tmp_path / "one_layer"
    run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "0",
         "--output_dir", str(out), "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no",
         "--load_best_model_at_end", "false", "--learning_rate", "1e-3", "--num_hidden_layers", "1", *QUICK])
    settings = json.loads((out / mr.SETTINGS_NAME).read_text())
    assert settings["num_hidden_layers"] == 1
    lora_layers = {k.split(".layers.")[1].split(".")[0] for k in adapter_tensors(out) if ".layers." in k}
    assert lora_layers == {"0"}  # the tiny model has 2 layers: the second was never built
    # Both inference paths build the same 1-layer backbone and reproduce the OOF probabilities.
    model, tokenizer, settings = mr.load_for_inference(str(out))
    assert len(model.base_model.model.model.layers) == 1
    base = make_submission.load_base_model(tiny["gemma3"], settings, None, None, False, "cpu")
    assert len(base.model.layers) == 1 and base.model.config.num_hidden_layers == 1
    oof = pd.read_parquet(out / "oof_predictions.parquet")
    fold0 = datasets.load_from_disk(tiny["qc"])["train"].filter(lambda r: r["fold"] == 0)
    by_id = {str(i): (q, t) for i, q, t in zip(fold0["id"], fold0["query"], fold0["target"])}
    rows = [by_id[i] for i in oof["id"]]
    probabilities = mr.predict_probabilities(model, tokenizer, ["qc"] * len(rows), [r[0] for r in rows],
                                             [r[1] for r in rows], template=settings["template"],
                                             max_length=settings["max_length"], show_progress=False)
    np.testing.assert_allclose(probabilities, oof["probability"].to_numpy(), atol=1e-5)
    # A TAPT adapter of another depth cannot initialise this run.
    with pytest.raises(ValueError, match="num_hidden_layers=1"):
        run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "1",
             "--output_dir", str(tmp_path / "two_layers"), "--max_steps", "1", "--init_adapter", str(out), *QUICK])
    with pytest.raises(ValueError, match="has 2 layers"):
        mr.build_classifier(tiny["gemma3"], num_hidden_layers=3)


def test_multitask_run(tmp_path, tiny):
    out = tmp_path / "multi"
    metrics = run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], tiny["qi"],
                   "--task", "qc,qi", "--fold", "1", "--output_dir", str(out), "--max_steps", "2",
                   "--eval_steps", "2", "--save_steps", "2", *QUICK])
    oof = pd.read_parquet(out / "oof_predictions.parquet")
    assert set(oof["task"]) == {"QC", "QI"} and set(oof["fold"]) == {1}
    assert set(metrics["eval"]["per_task"]) == {"qc", "qi"}
    settings = json.loads((out / mr.SETTINGS_NAME).read_text())
    assert settings["tasks"] == ["qc", "qi"] and settings["use_translation"] == {"qc": False, "qi": True}


def test_row_caps_apply_per_task_and_pick_the_single_task_rows(tiny):
    """--max_train_samples / --max_eval_samples cap each task, and a task's rows are those its single-task run keeps,
    so a multitask arm is scored on the same validation rows as each single-task reference."""
    def load(task, names):
        args = run_relevance.RelevanceArguments(dataset_name=names, task=task, fold=1, max_train_samples=10,
                                                max_eval_samples=5)
        train, eval_ds, _ = run_relevance.load_task_datasets(args, run_relevance.parse_tasks(task), 42)
        return train.to_pandas(), eval_ds.to_pandas()

    train, eval_ds = load("qc,qi", [tiny["qc"], tiny["qi"]])
    assert train["task_key"].value_counts().to_dict() == {"qc": 10, "qi": 10}
    assert eval_ds["task_key"].value_counts().to_dict() == {"qc": 5, "qi": 5}
    qi_train, qi_eval = load("qi", [tiny["qi"]])
    assert list(train[train["task_key"] == "qi"]["id"]) == list(qi_train["id"])
    assert list(eval_ds[eval_ds["task_key"] == "qi"]["id"]) == list(qi_eval["id"])


def test_data_seed_draws_the_row_subsets(tmp_path, tiny):
    """--seed 43 --data_seed 42 validates on the rows --seed 42 draws (so seeds can be paired); --seed 43 alone not."""
    def oof_ids(name, *seeds):
        out = tmp_path / name
        run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "1",
             "--output_dir", str(out), "--max_steps", "1", "--eval_strategy", "no", "--save_strategy", "no",
             "--load_best_model_at_end", "false", "--max_train_samples", "10", "--max_eval_samples", "5", *seeds,
             *QUICK])
        return set(pd.read_parquet(out / "oof_predictions.parquet")["id"])

    reference = oof_ids("s42", "--seed", "42")
    assert oof_ids("s43_d42", "--seed", "43", "--data_seed", "42") == reference
    assert oof_ids("s43", "--seed", "43") != reference


def test_multitask_training_batches_hold_one_task(tmp_path):
    """Multitask rows are length-grouped within their task, so each batch's instruction can run once: only a batch on
    a task boundary of a mega-batch (up to 50 batches) mixes two tasks; plain length grouping mixes nearly every batch."""
    from transformers import TrainingArguments

    rng = np.random.default_rng(0)
    tasks = list(rng.choice(["qc", "qi"], size=800))
    ds = datasets.Dataset.from_dict({"input_ids": [[1] * int(n) for n in rng.integers(5, 90, size=800)]})
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, use_cpu=True, report_to="none",
                             train_sampling_strategy="group_by_length")
    trainer = run_relevance.RelevanceTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=ds)

    def mixed_batches(train_tasks):
        trainer.train_tasks = train_tasks
        torch.manual_seed(0)
        order = list(trainer._get_train_sampler(ds))
        assert sorted(order) == list(range(800))  # every row once
        return sum(len({tasks[i] for i in order[b:b + 8]}) > 1 for b in range(0, 800, 8))

    # transformers' mega-batches here: min(800 // (4 x 8), 50) batches of 8 = 200 rows, so 4 of them; at most one
    # task boundary in each, and one more batch for the longest row it moves to the front.
    assert mixed_batches(tasks) <= 5
    assert mixed_batches(None) > 90  # of 100 batches


def test_encoder_run(tmp_path, tiny):
    encoder = make_tiny_encoder(tmp_path / "xlmr", arch="xlm-roberta")
    out = tmp_path / "enc"
    metrics = run(["--model_name_or_path", encoder, "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "2",
                   "--output_dir", str(out), "--max_steps", "2", "--eval_steps", "2", "--save_steps", "2",
                   "--template", "bare", *QUICK])
    assert json.loads((out / mr.SETTINGS_NAME).read_text())["pooling"] == "first"
    assert metrics["eval"]["num_examples"] == 20 and (out / "oof_predictions.parquet").exists()


def test_config_file_then_command_line(tmp_path, tiny):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: {tiny['gemma3']}\ntask: qi\nlora_r: 8\nlearning_rate: 3.0e-4\n"
                      "template: bare\n")
    parser = run_relevance.make_parser()
    script_args, training_args, model_args = parser.parse_args_and_config(
        ["--config", str(recipe), "--lora_r", "4", "--output_dir", str(tmp_path / "o")])
    assert (script_args.task, script_args.template, model_args.lora_r) == ("qi", "bare", 4)
    assert training_args.learning_rate == 3e-4 and model_args.lora_alpha == 32
    assert model_args.lora_target_modules == "all-linear" and model_args.lora_task_type == "SEQ_CLS"


def test_hub_token_is_not_pickled_into_training_args(tmp_path, tiny, monkeypatch):
    # The push uploads training_args.bin (a pickle of TrainingArguments): a --hub_token must not travel inside it.
    monkeypatch.delenv("HF_TOKEN", raising=False)
    parser = run_relevance.make_parser()
    script_args, training_args, _ = parser.parse_args_and_config(
        ["--model_name_or_path", tiny["gemma3"], "--dataset_name", "x", "--task", "qc", "--push_to_hub",
         "--hub_model_id", "me/r-{task}", "--hub_token", "hf_secret_value", "--output_dir", str(tmp_path / "o")])
    run_relevance.apply_training_defaults(training_args, script_args, ["qc"])
    assert os.environ["HF_TOKEN"] == "hf_secret_value" and training_args.hub_token is None
    torch.save(training_args, tmp_path / "training_args.bin")
    assert b"hf_secret_value" not in (tmp_path / "training_args.bin").read_bytes()


# ----------------------------------------------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------------------------------------------


def _save(ds, path):
    datasets.DatasetDict({"train": ds}).save_to_disk(str(path))
    return str(path)


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing_column", r"missing column\(s\) \['target'\]"),
        ("unknown_task", "unknown task 'qx'"),
        ("fold_absent", r"fold 7 not present; its folds are \[0, 1, 2\]"),
        ("empty", "could not be loaded .*empty"),
        ("no_train_rows", "no training rows left for fold 0"),
        ("count_mismatch", r"1 dataset\(s\).*for 2 task\(s\)"),
        ("wrong_task", "have task != QI"),
        ("bad_label", "row id 1: field 'label' has invalid value 3"),
        ("bare_multitask", "does not name the task"),
        ("early_stopping_without_eval", "needs evaluation during training"),
        ("qlora_without_gpu", "need a CUDA GPU and the bitsandbytes package"),
    ],
)
def test_bad_inputs_give_clear_errors(tmp_path, tiny, case, match):
    raw = datasets.load_from_disk(tiny["qc"])["train"]
    dataset, task, fold, extra = tiny["qc"], "qc", "0", []
    if case == "missing_column":
        dataset = _save(raw.remove_columns("target"), tmp_path / "d")
    elif case == "unknown_task":
        task = "qx"
    elif case == "fold_absent":
        fold = "7"
    elif case == "empty":
        dataset = _save(raw.select([]), tmp_path / "d")
    elif case == "no_train_rows":
        dataset = _save(raw.filter(lambda r: r["fold"] == 0), tmp_path / "d")
    elif case == "count_mismatch":
        task = "qc,qi"
    elif case == "wrong_task":
        task = "qi"
    elif case == "bad_label":
        dataset = _save(raw.map(lambda r: {"label": 3 if r["id"] == 1 else r["label"]}), tmp_path / "d")
    elif case == "bare_multitask":
        task, dataset, extra = "qc,qi", tiny["qc"], ["--template", "bare"]
    elif case == "early_stopping_without_eval":
        fold, extra = "-1", ["--early_stopping_patience", "2"]
    elif case == "qlora_without_gpu":
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        extra = ["--load_in_4bit"]
    with pytest.raises(ValueError, match=match):
        run(["--model_name_or_path", tiny["gemma3"], "--dataset_name", dataset, "--task", task, "--fold", fold,
             "--output_dir", str(tmp_path / "out"), *extra])


def test_hierarchy_ancestors_add_positive_prefixes_only():
    import datasets

    import run_relevance

    train = datasets.Dataset.from_dict({
        "id": ["1", "2", "3", "4"], "query": ["a", "a", "b", "c"], "label": [1, 0, 0, 1],
        "target": ["x > y > z", "x > y", "p > q", "solo"],
    })
    out = run_relevance.add_ancestor_rows(train, 2).to_list()
    # Row 1's parent (a, x > y) is already a row (a negative: the real label wins); its grandparent is added.
    # Negatives add nothing; a one-level path has no ancestor.
    assert out[:4] == train.to_list()
    assert out[4:] == [{"id": "1#a2", "query": "a", "label": 1, "target": "x"}]
    parent_only = run_relevance.add_ancestor_rows(train.select([0]), 1).to_list()
    assert [r["target"] for r in parent_only] == ["x > y > z", "x > y"]


def test_score_learning_rate_trains_the_head_alone_at_its_own_rate(tmp_path, tiny):
    """--learning_rate 0 freezes LoRA in effect; --score_learning_rate still moves the head (and only it)."""
    common = ["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "-1",
              "--learning_rate", "0", "--max_steps", "3", "--eval_strategy", "no", "--save_strategy", "no",
              "--warmup_steps", "0", "--seed", "0", *QUICK]
    run([*common, "--output_dir", str(tmp_path / "frozen")])
    run([*common, "--output_dir", str(tmp_path / "head"), "--score_learning_rate", "0.01"])
    frozen, head = adapter_tensors(tmp_path / "frozen"), adapter_tensors(tmp_path / "head")
    assert frozen.keys() == head.keys()
    scores = [k for k in head if "score" in k]
    assert scores and all((head[k] - frozen[k]).abs().max() > 1e-4 for k in scores)
    assert all(torch.equal(head[k], frozen[k]) for k in head if k not in scores)
    assert all(head[k].abs().max() == 0 for k in head if "lora_B" in k)
    settings = json.loads((tmp_path / "head" / "metrics.json").read_text())["settings"]
    assert settings["score_learning_rate"] == 0.01
