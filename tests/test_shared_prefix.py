"""The shared prompt prefix: LastTokenClassifier runs the tokens every row of a batch starts with (the instruction)
once, and the rows continue from a copy of its KV cache. Same logits, loss and gradients as the plain batch."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import modeling_relevance as mr
from tests.tiny_models import make_tiny_decoder

# An 8-token instruction and rows of 1 to 8 own tokens: 16 in all, the tiny Gemma-3's sliding window.
PREFIX = [2, *range(10, 17)]
OWN = [[40], [41, 42, 43], [44, 45, 46, 47, 48, 49, 50, 51], [52, *range(60, 67)]]
LABELS = torch.tensor([1, 0, 1, 0])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {arch: make_tiny_decoder(root / arch, arch=arch) for arch in ("gemma3", "qwen3")}


def padded(tokenizer, rows, side):
    tokenizer.padding_side = side
    return tokenizer.pad([{"input_ids": ids} for ids in rows], return_tensors="pt", pad_to_multiple_of=8)


def backbone_lengths(model, batch):
    """Forward + backward; returns (logits, loss, gradients, the sequence lengths the backbone was called with)."""
    lengths = []
    hook = model.model.register_forward_pre_hook(lambda _, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]),
                                                 with_kwargs=True)
    model.zero_grad()
    out = model(**batch, labels=LABELS)
    out.loss.backward()
    hook.remove()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), out.loss.detach(), grads, lengths


@pytest.mark.parametrize("arch", ["gemma3", "qwen3"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_shared_prefix_gives_the_same_logits_loss_and_gradients(tiny, arch, side, attn_implementation):
    tokenizer = AutoTokenizer.from_pretrained(tiny[arch])
    model = mr.build_classifier(tiny[arch], num_labels=2, attn_implementation=attn_implementation, seed=0)
    model.train()  # no dropout in the tiny model: train mode only checks the gradient path
    batch = padded(tokenizer, [PREFIX + own for own in OWN], side)
    model.shared_prefix = False
    logits, loss, grads, plain_lengths = backbone_lengths(model, batch)
    model.shared_prefix = True
    shared_logits, shared_loss, shared_grads, shared_lengths = backbone_lengths(model, batch)
    # The prefix ran once (8 tokens, one row), then each row's own tokens (up to 8): the shared path was taken.
    assert plain_lengths == [batch["input_ids"].shape[1]] and shared_lengths == [8, 8]
    torch.testing.assert_close(shared_logits, logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(shared_loss, loss, atol=1e-5, rtol=0)
    assert shared_grads.keys() == grads.keys() and len(grads) > 3  # the backbone's weights, not only the head
    for name, grad in grads.items():
        torch.testing.assert_close(shared_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    # It has teeth: the own tokens run without the prefix's cache score otherwise.
    with torch.no_grad():
        _, own_ids, own_mask = mr.split_shared_prefix(batch["input_ids"], batch["attention_mask"], 4)
        alone = model.score(mr.pool_last(model.model(input_ids=own_ids, attention_mask=own_mask).last_hidden_state,
                                         own_mask))
    assert (alone - logits).abs().max() > 1e-3


def test_split_shared_prefix_layout_and_when_it_stands_aside():
    ids = torch.tensor([[0, 0, 5, 6, 7, 8, 9], [5, 6, 7, 8, 1, 2, 3]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    prefix, own_ids, own_mask = mr.split_shared_prefix(ids, mask, 2)
    assert prefix.tolist() == [[5, 6, 7, 8]]
    assert own_ids.tolist() == [[0, 0, 9], [1, 2, 3]] and own_mask.tolist() == [[0, 0, 1], [1, 1, 1]]
    # Every row keeps at least one token of its own, even when one row is all prefix.
    prefix, own_ids, _ = mr.split_shared_prefix(torch.tensor([[5, 6, 7], [5, 6, 7]]), torch.ones(2, 3), 2)
    assert prefix.tolist() == [[5, 6]] and own_ids.tolist() == [[7], [7]]
    assert mr.split_shared_prefix(ids, mask, 5) is None  # shorter than min_tokens
    assert mr.split_shared_prefix(ids[:1], mask[:1], 2) is None  # one row: nothing to share
    assert mr.split_shared_prefix(torch.tensor([[5, 6, 7, 8], [5, 9, 7, 8]]), torch.ones(2, 4), 2) is None


@pytest.mark.parametrize("rows", [
    [PREFIX + OWN[0], [2, 30, *PREFIX[2:]] + OWN[1]],  # two tasks' instructions (multitask) or the bare template
    [[2, *range(10, 29)] + own for own in OWN],  # past Gemma-3's sliding window (16 here), whose cache is cut
], ids=["no-shared-prefix", "past-the-sliding-window"])
def test_the_plain_path_runs_when_no_prefix_can_be_shared(tiny, rows):
    tokenizer = AutoTokenizer.from_pretrained(tiny["gemma3"])
    model = mr.build_classifier(tiny["gemma3"], num_labels=2, seed=0).eval()
    batch = padded(tokenizer, rows, "left")
    lengths = []
    model.model.register_forward_pre_hook(lambda _, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]),
                                          with_kwargs=True)
    with torch.no_grad():
        logits = model(**batch).logits
        model.shared_prefix = False
        torch.testing.assert_close(model(**batch).logits, logits, atol=0, rtol=0)
    assert lengths == [batch["input_ids"].shape[1]] * 2


def test_run_relevance_trains_alike_with_and_without_the_shared_prefix(tmp_path, tiny, monkeypatch):
    """Through the Trainer (a tiny Qwen3: no sliding window, so every one-task batch shares its instruction), dropout
    off: the logged losses and the out-of-fold probabilities agree with --shared_prefix false."""
    import pandas as pd

    import run_relevance
    from tests.tiny_models import make_tiny_folded_dataset

    data = make_tiny_folded_dataset(tmp_path / "folds_qc", task="qc")
    common = ["--model_name_or_path", tiny["qwen3"], "--dataset_name", data, "--task", "qc", "--fold", "0",
              "--max_steps", "4", "--eval_strategy", "no", "--save_steps", "4", "--load_best_model_at_end", "false",
              "--learning_rate", "1e-3", "--lora_dropout", "0", "--max_length", "64", "--per_device_train_batch_size",
              "8", "--logging_steps", "1", "--disable_tqdm", "true"]
    shared_lengths, split = [], mr.split_shared_prefix

    def recording_split(*args):
        result = split(*args)
        shared_lengths.append(None if result is None else result[0].shape[1])
        return result

    monkeypatch.setattr(mr, "split_shared_prefix", recording_split)
    losses, oof = {}, {}
    for flag in ("true", "false"):
        out = tmp_path / flag
        args = run_relevance.make_parser().parse_args_and_config([*common, "--output_dir", str(out),
                                                                  "--shared_prefix", flag])
        run_relevance.main(*args)
        state = max(out.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
        history = json.loads(state.read_text())["log_history"]
        losses[flag] = [entry["loss"] for entry in history if "loss" in entry]
        oof[flag] = pd.read_parquet(out / "oof_predictions.parquet")["probability"].to_numpy()
    assert len(losses["true"]) == 4
    # Every training and prediction batch of the first run shared its instruction; the second never split one.
    assert shared_lengths and None not in shared_lengths and min(shared_lengths) >= mr.MIN_SHARED_PREFIX
    np.testing.assert_allclose(losses["true"], losses["false"], atol=1e-4)
    np.testing.assert_allclose(oof["true"], oof["false"], atol=1e-5)


def test_the_benchmark_counts_the_tokens_the_model_runs(tiny):
    """benchmarks/throughput.py's `executed` tokens: the prefix once per batch where the model shares it."""
    from benchmarks import throughput

    model = mr.build_classifier(tiny["qwen3"], num_labels=2, seed=0)
    rows = [PREFIX + own for own in OWN] + [[2, 30, 31]]
    assert throughput._computed_tokens(model, rows, [[0, 1, 2, 3], [4]]) == 8 + 4 * 8 + 3
    model.shared_prefix = False
    assert throughput._computed_tokens(model, rows, [[0, 1, 2, 3], [4]]) == 4 * 16 + 3
