"""Padding-free (flattened) batches: run_relevance.py --padding_free, modeling_relevance's pooling of packed rows.

A flattened batch is one row holding the batch's rows one after the other, its position_ids restarting at 0 per row
(transformers' DataCollatorWithFlattening). On CPU, sdpa and eager attention keep the packed rows apart through the
position_ids (transformers' `find_packed_sequence_indices`, used when no attention mask is given); flash attention
(the GPU target) does the same with its variable-length kernel, and is not run here.
"""

import json

import datasets
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

import modeling_relevance as mr
import run_relevance
from tests.tiny_models import make_tiny_decoder, make_tiny_encoder, make_tiny_folded_dataset

# Lengths 6, 3, 1 and 22: a one-token row, and a row longer than the tiny Gemma-3's sliding window (16).
ROWS = [[2, 10, 11, 12, 13, 14], [2, 14, 15], [2], [2, *range(16, 37)]]
LABELS = [1, 0, 1, 0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"gemma3": make_tiny_decoder(root / "gemma3", arch="gemma3"),
            "qc": make_tiny_folded_dataset(root / "folds_qc", task="qc")}


def features(rows=ROWS, labels=LABELS):
    return [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": label} for ids, label in zip(rows, labels)]


def collators(tokenizer, attn_implementation="sdpa", padding_free=False):
    script_args = run_relevance.RelevanceArguments(padding_free=padding_free)
    model_args = type("ModelArgs", (), {"attn_implementation": attn_implementation})()
    return run_relevance.make_collator(script_args, model_args, tokenizer)


def test_collator_keeps_one_label_per_row(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny["gemma3"])
    batch = collators(tokenizer, padding_free=True)(features())
    assert isinstance(collators(tokenizer), run_relevance.DataCollatorWithPadding)
    assert set(batch) == {"input_ids", "position_ids", "labels"}  # no attention mask: the rows are told by position
    assert batch["input_ids"].tolist() == [sum(ROWS, [])]
    assert batch["position_ids"].tolist() == [[i for ids in ROWS for i in range(len(ids))]]
    assert batch["labels"].tolist() == LABELS and batch["labels"].dtype == torch.long
    torch.testing.assert_close(mr.packed_row_mask(batch["position_ids"]).sum(-1), torch.tensor([6, 3, 1, 22]))
    # Flash attention gets the row boundaries from the collator; unlabelled rows (prediction) get no labels.
    flash = collators(tokenizer, "flash_attention_2", padding_free=True)(features())
    assert flash["cu_seq_lens_q"].tolist() == [0, 6, 9, 10, 32] and flash["max_length_k"] == 22
    unlabelled = collators(tokenizer, padding_free=True)([{"input_ids": ids} for ids in ROWS])
    assert "labels" not in unlabelled


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("pooling", ["last", "first", "mean"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_flattened_logits_loss_and_gradient_equal_padded(tiny, attn_implementation, pooling, side):
    tokenizer = AutoTokenizer.from_pretrained(tiny["gemma3"])
    tokenizer.padding_side = side
    model = mr.build_classifier(tiny["gemma3"], num_labels=2, pooling=pooling,
                                attn_implementation=attn_implementation, seed=0)
    padded = collators(tokenizer, attn_implementation)(features())
    flat = collators(tokenizer, attn_implementation, padding_free=True)(features())
    assert padded["input_ids"].shape == (4, 24)
    results = []
    for batch in (padded, flat):
        model.zero_grad()
        out = model(**batch)
        out.loss.backward()
        results.append((out.logits.detach(), out.loss.detach(), model.score.weight.grad.clone()))
    (logits, loss, grad), (flat_logits, flat_loss, flat_grad) = results
    assert flat_logits.shape == (4, 2)
    torch.testing.assert_close(flat_logits, logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(flat_loss, loss, atol=1e-5, rtol=0)
    torch.testing.assert_close(flat_grad, grad, atol=1e-5, rtol=0)
    if pooling == "last":
        # The test has teeth: the same concatenation run as one sequence (rows not kept apart) gives other logits.
        with torch.no_grad():
            mixed = model.model(input_ids=flat["input_ids"]).last_hidden_state[0, [5, 8, 9, 31]]
        assert (model.score(mixed) - logits).abs().max() > 1e-3


def test_packed_row_mask_and_pooling_of_a_flattened_batch():
    hidden = torch.arange(7, dtype=torch.float32).reshape(1, 7, 1)
    position_ids = torch.tensor([[0, 1, 2, 0, 0, 1, 2]])
    assert mr.packed_row_mask(position_ids).tolist() == [[1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0],
                                                         [0, 0, 0, 0, 1, 1, 1]]
    assert mr.pool_hidden_states(hidden, None, "last", position_ids).reshape(-1).tolist() == [2.0, 3.0, 6.0]
    assert mr.pool_hidden_states(hidden, None, "first", position_ids).reshape(-1).tolist() == [0.0, 3.0, 4.0]
    assert mr.pool_hidden_states(hidden, None, "mean", position_ids).reshape(-1).tolist() == [1.0, 3.0, 5.0]
    padded = torch.tensor([[[1.0], [2.0], [9.0]], [[4.0], [6.0], [8.0]]])
    assert mr.pool_hidden_states(padded, torch.tensor([[1, 1, 0], [1, 1, 1]]), "mean", None).reshape(-1).tolist() \
        == [1.5, 6.0]
    with pytest.raises(ValueError, match="starting at 0"):
        mr.packed_row_mask(torch.tensor([[1, 2, 0]]))
    with pytest.raises(ValueError, match="shape"):
        mr.packed_row_mask(torch.tensor([[0, 1], [0, 1]]))


def test_encoder_refuses_flattened_batches(tmp_path, tiny):
    encoder = make_tiny_encoder(tmp_path / "xlmr", arch="xlm-roberta")
    model = mr.build_classifier(encoder, num_labels=2)
    with pytest.raises(ValueError, match="encoder"):
        model(input_ids=torch.tensor([[5, 6, 7, 5, 6]]), position_ids=torch.tensor([[0, 1, 2, 0, 1]]))
    with pytest.raises(ValueError, match="one or the other"):
        model(input_ids=torch.tensor([[5, 6]]), attention_mask=torch.ones(1, 2), position_ids=torch.tensor([[0, 1]]))
    with pytest.raises(mr.UserError, match="--padding_free needs a decoder"):
        run(["--model_name_or_path", encoder, "--dataset_name", tiny["qc"], "--fold", "0", "--output_dir",
             str(tmp_path / "out"), "--padding_free", "true", "--template", "bare", "--max_length", "64"])


def run(args):
    return run_relevance.main(*run_relevance.make_parser().parse_args_and_config(args))


def test_padding_free_run_trains_like_the_padded_run_and_writes_outputs(tmp_path, tiny):
    """Same rows, same length-grouped batches, dropout off: every logged loss of the padding-free run equals the
    padded run's, and the out-of-fold predictions (evaluated on flattened batches) equal the padded inference path's."""
    common = ["--model_name_or_path", tiny["gemma3"], "--dataset_name", tiny["qc"], "--task", "qc", "--fold", "0",
              "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--learning_rate", "1e-3",
              "--lora_dropout", "0", "--max_length", "64", "--per_device_train_batch_size", "8", "--logging_steps",
              "1", "--disable_tqdm", "true", "--save_total_limit", "1"]
    logged, tokens = {}, {}
    for name, extra in (("padded", []), ("flat", ["--padding_free", "true"])):
        out = tmp_path / name
        tokens[name] = run([*common, "--output_dir", str(out), *extra])["train"]["num_input_tokens_seen"]
        history = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
        logged[name] = [entry["loss"] for entry in history if "loss" in entry]
    # Counted from the attention mask, and without one from input_ids != pad id: the same (pad is no input token).
    assert tokens["flat"] == tokens["padded"] > 0
    for name in ("adapter_model.safetensors", "metrics.json", "oof_predictions.parquet", "README.md",
                 mr.SETTINGS_NAME):
        assert (out / name).exists(), name
    assert len(logged["flat"]) == 4
    np.testing.assert_allclose(logged["flat"], logged["padded"], atol=1e-5, rtol=0)
    assert "padding_free: true" in (out / "README.md").read_text()
    oof = pd.read_parquet(out / "oof_predictions.parquet")
    padded_oof = pd.read_parquet(tmp_path / "padded" / "oof_predictions.parquet")
    assert oof["id"].tolist() == padded_oof["id"].tolist()
    np.testing.assert_allclose(oof["probability"], padded_oof["probability"], atol=1e-5, rtol=0)
    model, tokenizer, settings = mr.load_for_inference(str(out))
    fold0 = datasets.load_from_disk(tiny["qc"])["train"].to_pandas().query("fold == 0")
    ordered = fold0.set_index(fold0["id"].astype(str)).loc[oof["id"]]
    probabilities = mr.predict_probabilities(model, tokenizer, ["qc"] * len(ordered), ordered["query"].tolist(),
                                             ordered["target"].tolist(), template=settings["template"],
                                             max_length=settings["max_length"], show_progress=False)
    np.testing.assert_allclose(probabilities, oof["probability"], atol=1e-5)
