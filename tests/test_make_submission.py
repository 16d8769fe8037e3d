"""Tests of make_submission.py: ensemble inference, row order, deduplication, thresholds, the checker, and a
2-process `accelerate launch` run. Adapters are random LoRA + random score heads on a tiny base, made here."""

import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import torch

import make_submission as ms
import modeling_relevance as mr
from tests.tiny_models import make_tiny_decoder, make_tiny_folded_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
UNSEEN_LANGUAGE = "ja"
MAX_LENGTH = 36  # short enough that the longest rows get their target cut, as training would cut them


def _make_adapter(base_dir: str, out_dir: Path, seed: int, train: pd.DataFrame, fold: int, f1: float, task: str) -> str:
    """A 'trained-looking' adapter laid out as run_relevance.py saves one: LoRA with non-zero lora_B and a random
    score head (modules_to_save), tokenizer, relevance_config.json, metrics.json and the fold's OOF file
    (probabilities that lean towards the label)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    model = mr.build_classifier(base_dir, num_labels=2, pooling="auto", dtype="float32")
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules="all-linear"))
    torch.manual_seed(seed)
    for name, parameter in model.named_parameters():
        if "lora_B" in name or ("modules_to_save" in name and "score" in name):
            torch.nn.init.normal_(parameter, std=0.3)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    settings = {"base_model_name_or_path": base_dir, "tasks": [task], "fold": fold, "template": "instruct",
                "max_length": MAX_LENGTH, "use_translation": {task: False}, "num_labels": 2, "pooling": "last"}
    (out_dir / mr.SETTINGS_NAME).write_text(json.dumps(settings))
    (out_dir / "metrics.json").write_text(json.dumps({"eval": {"f1": f1}, "settings": settings}))
    rows = train[train["fold"] == fold]
    rng = np.random.RandomState(seed)
    probability = 1 / (1 + np.exp(-(2.0 * (2 * rows["label"].to_numpy() - 1) + rng.normal(0, 1.5, len(rows)))))
    pd.DataFrame({"id": rows["id"], "fold": fold, "task": rows["task"], "language": rows["language"],
                  "label": rows["label"], "probability": probability}).to_parquet(out_dir / ms.OOF_FILE)
    return str(out_dir)


def _make_dataset(root: Path, task: str) -> str:
    """Tiny folded dataset whose test split has repeated model inputs and a language absent from training."""
    raw = make_tiny_folded_dataset(root / f"raw_{task}", task=task, num_rows=60, num_test_rows=20)
    dataset = datasets.load_from_disk(raw)
    test = dataset["test"].to_list()
    for i, row in enumerate(test):
        # Queries of varied length, so that sorting by length really reorders the rows.
        row["origin_query"] += " red" * ((7 * i) % 6)
        row["query"] += " red" * ((7 * i) % 6)
    for i, row in enumerate(test[:6]):
        test.append({**row, "id": 20_000 + i})  # same query and target, new id
    for row in test[::5]:
        row["language"] = UNSEEN_LANGUAGE
    dataset["test"] = datasets.Dataset.from_list(test, features=dataset["test"].features)
    path = str(root / f"folds_{task}")
    dataset.save_to_disk(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("submission")
    base = make_tiny_decoder(root / "base")
    setup = {"root": root, "base": base}
    for task, folds in (("qc", (0, 1)), ("qi", (0,))):
        setup[f"data_{task}"] = _make_dataset(root, task)
        train = datasets.load_from_disk(setup[f"data_{task}"])["train"].to_pandas()
        setup[f"adapters_{task}"] = [
            _make_adapter(base, root / task / f"fold{fold}", seed=10 * fold + len(task) + (task == "qi"),
                          train=train, fold=fold, f1=0.6 + 0.1 * fold, task=task)
            for fold in folds
        ]
    return setup


def _encoded(tiny, task="qc", deduplicate=True):
    """Tokenizer, the test rows as (query, target) pairs, and their encoding."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny[f"adapters_{task}"][0])
    test = datasets.load_from_disk(tiny[f"data_{task}"])["test"]
    pairs = list(zip(test["query"], test["target"]))
    encoded = ms.encode_rows(tokenizer, task, test["query"], test["target"], None, "instruct", MAX_LENGTH, deduplicate)
    return tokenizer, pairs, encoded


def _base(tiny):
    settings = {"num_labels": 2, "pooling": "last"}
    return ms.load_base_model(tiny["base"], settings, "float32", "sdpa", False, "cpu")


def _reference(tiny, adapter, tokenizer, pairs, task="qc"):
    """Each row alone, unpadded, through the unmerged PEFT model, in file order."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(_base(tiny), adapter).eval()
    out = []
    with torch.inference_mode():
        for query, target in pairs:
            ids = mr.encode_examples(tokenizer, [task], [query], [target], max_length=MAX_LENGTH)["input_ids"][0]
            out.append(torch.softmax(model(input_ids=torch.tensor([ids])).logits, -1)[0, 1].item())
    return np.array(out)


def test_ensemble_is_mean_of_single_adapters(tiny):
    tokenizer, pairs, encoded = _encoded(tiny)
    a0, a1 = tiny["adapters_qc"]
    base = _base(tiny)
    both, _ = ms.score_adapters(base, [a0, a1], encoded, tokenizer.pad_token_id, 4096, 64)
    only0, _ = ms.score_adapters(base, [a0], encoded, tokenizer.pad_token_id, 4096, 64)
    only1, _ = ms.score_adapters(base, [a1], encoded, tokenizer.pad_token_id, 4096, 64)
    # Each adapter's own score head is used: the two columns differ, and each equals its single-adapter run.
    assert np.abs(only0[:, 0] - only1[:, 0]).max() > 1e-2
    np.testing.assert_allclose(both, np.column_stack([only0[:, 0], only1[:, 0]]), atol=1e-6)
    np.testing.assert_allclose(ms.ensemble_probabilities(both), (only0[:, 0] + only1[:, 0]) / 2, atol=1e-6)
    assert not any("lora" in name for name, _ in base.named_parameters())
    np.testing.assert_allclose(only0[:, 0], _reference(tiny, a0, tokenizer, pairs), atol=1e-5)


def test_merge_scores_in_place_on_one_base_copy(tiny, monkeypatch):
    """Each adapter is merged into the one base model's weights, scored, and unmerged: no copy of the base."""
    tokenizer, pairs, encoded = _encoded(tiny)
    adapters = tiny["adapters_qc"]
    base = _base(tiny)
    before = {name: p.detach().clone() for name, p in base.named_parameters()}
    by_storage = {p.data_ptr(): p.detach().clone() for p in base.parameters()}
    scored_with = []
    score_sequences = ms.score_sequences

    def recording(model, *args, **kwargs):
        # Everything but the adapter's own tensors (LoRA factors, its score head) must be the base's storage.
        shared = [p for n, p in model.named_parameters() if "lora_" not in n and "modules_to_save" not in n]
        storage = {p.data_ptr() for p in shared}
        merged = storage <= set(by_storage) and any(not torch.equal(p, by_storage[p.data_ptr()]) for p in shared)
        scored_with.append((storage, merged))
        return score_sequences(model, *args, **kwargs)

    monkeypatch.setattr(ms, "score_sequences", recording)
    both, _ = ms.score_adapters(base, adapters, encoded, tokenizer.pad_token_id, 4096, 64)
    # Each column equals its adapter's unmerged reference: the second adapter's scores do not see the first.
    for column, adapter in enumerate(adapters):
        np.testing.assert_allclose(both[:, column], _reference(tiny, adapter, tokenizer, pairs), atol=1e-5)
    # One copy of the base: every adapter ran on the base's own tensors, merged into them in place.
    assert len(scored_with) == len(adapters)
    assert all(storage == set(by_storage) and merged for storage, merged in scored_with)
    # Unmerged afterwards: the base comes back without LoRA layers, its weights as before up to rounding.
    assert [name for name, _ in base.named_parameters()] == list(before)
    for name, p in base.named_parameters():
        torch.testing.assert_close(p, before[name], rtol=0, atol=1e-6)


def test_row_order_and_deduplication(tiny):
    tokenizer, pairs, encoded = _encoded(tiny)
    adapter = tiny["adapters_qc"][0]
    base = _base(tiny)
    reference = _reference(tiny, adapter, tokenizer, pairs)
    assert encoded.num_unique < len(pairs)  # the fixture repeats 6 rows
    assert encoded.target_truncated > 0  # MAX_LENGTH cuts some targets, as training does
    # A small token budget gives many batches, so the length sorting really reorders the rows.
    batches = ms.length_batches([len(s) for s in encoded.input_ids], 80, 64)
    assert len(batches) > 3 and sorted(i for b in batches for i in b) != [i for b in batches for i in b]
    deduplicated, stats = ms.score_adapters(base, [adapter], encoded, tokenizer.pad_token_id, 80, 64)
    assert stats["sequences_scored"] == encoded.num_unique
    np.testing.assert_allclose(deduplicated[:, 0], reference, atol=1e-5)
    _, _, separate = _encoded(tiny, deduplicate=False)
    each, stats = ms.score_adapters(base, [adapter], separate, tokenizer.pad_token_id, 80, 64)
    assert stats["sequences_scored"] == len(pairs)
    np.testing.assert_allclose(each[:, 0], deduplicated[:, 0], atol=1e-5)
    repeated = [i for i, pair in enumerate(pairs) if pairs.index(pair) != i]
    assert repeated and all(deduplicated[i, 0] == deduplicated[pairs.index(pairs[i]), 0] for i in repeated)


def test_length_batches_cover_every_row_within_budget():
    lengths = list(np.random.RandomState(0).randint(1, 50, size=200)) + [300]
    batches = ms.length_batches(lengths, max_tokens_per_batch=256, max_batch_size=16)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) <= 16
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 256


def test_best_threshold_matches_brute_force():
    from sklearn.metrics import f1_score

    rng = np.random.RandomState(1)
    labels = rng.randint(0, 2, 300)
    probabilities = np.round(0.3 * labels + rng.uniform(0, 0.7, 300), 2)
    threshold, f1 = ms.best_f1_threshold(labels, probabilities)
    brute = max(f1_score(labels, probabilities >= t) for t in np.unique(probabilities))
    assert f1 == pytest.approx(brute)
    assert f1_score(labels, probabilities >= threshold) == pytest.approx(brute)
    assert ms.best_f1_threshold([1, 1, 1], [0.2, 0.5, 0.9]) == (None, None)


def test_per_language_thresholds_fall_back():
    rng = np.random.RandomState(2)
    languages = ["en"] * 300 + ["fr"] * 300 + ["es"] * 20 + ["ko"] * 50
    labels = rng.randint(0, 2, len(languages))
    labels[-50:] = 1  # ko: a single label, no F1-optimal threshold of its own
    shift = np.where(np.array(languages) == "fr", 0.3, 0.0)  # fr probabilities run higher
    oof = pd.DataFrame({"id": range(len(languages)), "fold": np.arange(len(languages)) % 3, "task": "QC",
                        "language": languages, "label": labels,
                        "probability": np.clip(0.35 * labels + shift + rng.uniform(0, 0.5, len(languages)), 0, 1)})
    fitted = ms.fit_thresholds(oof, min_rows_per_language=100)
    assert set(fitted["per_language"]) == {"en", "fr"}
    assert set(fitted["fallback_languages"]) == {"es", "ko"}
    assert fitted["per_language"]["fr"] > fitted["per_language"]["en"]
    rows = ms.row_thresholds(["en", "fr", "es", UNSEEN_LANGUAGE], fitted, "per_language", 0.5)
    assert rows.tolist() == [fitted["per_language"]["en"], fitted["per_language"]["fr"], fitted["global"],
                             fitted["global"]]


def test_adapter_items_with_a_task_prefix_belong_to_that_task_only(tmp_path):
    for name in ("fold0", "fold1"):
        (tmp_path / "qc" / name).mkdir(parents=True)
    spec = f"qc={tmp_path}/qc/fold*, qi=org/run-qi-fold0-seed42,org/shared-{{task}}"
    assert ms.expand_paths(spec, "qc") == [f"{tmp_path}/qc/fold0", f"{tmp_path}/qc/fold1", "org/shared-qc"]
    assert ms.expand_paths(spec, "qi") == ["org/run-qi-fold0-seed42", "org/shared-qi"]


def test_cross_fitting_evaluates_on_held_out_folds():
    # Fold 0 separates at 0.85, fold 1 at 0.55: thresholds fitted on one fold misjudge the other.
    probability = [0.9, 0.8] * 10 + [0.6, 0.5] * 10
    label = [1, 0] * 20
    oof = pd.DataFrame({"id": range(40), "fold": [0] * 20 + [1] * 20, "task": "QC", "language": "en",
                        "label": label, "probability": probability})
    # In-sample the best global threshold (0.55) gets every positive and fold 0's negatives: F1 0.8.
    assert ms.best_f1_threshold(oof["label"], oof["probability"])[1] == pytest.approx(0.8)
    # Cross-fitted: fold 0 all positive (P 0.5, R 1), fold 1 all negative: pooled P 0.5, R 0.5.
    assert ms.cross_fitted_f1(oof, "global", 1, 0.5, seed=0) == pytest.approx(0.5)
    assert ms.cross_fitted_f1(oof, "fixed", 1, 0.5, seed=0) == pytest.approx(2 / 3)


def test_oof_rows_of_several_seeds_are_averaged(tmp_path):
    """A stage with seeds: each fold's rows are in one OOF file per seed; each row gets the mean probability."""
    def oof_file(name, ids, fold, probability, label=1):
        path = str(tmp_path / f"{name}.parquet")
        pd.DataFrame({"id": ids, "fold": fold, "task": "QI", "language": "en", "label": label,
                      "probability": probability}).to_parquet(path)
        return path

    files = [oof_file("f0s42", ["a", "b"], 0, [0.2, 0.6]), oof_file("f0s43", ["b", "a"], 0, [0.8, 0.4]),
             oof_file("f1s42", ["c"], 1, [0.9])]
    oof = ms.read_oof_predictions(files, "qi")
    assert list(oof.columns) == list(ms.OOF_COLUMNS) and oof["id"].tolist() == ["a", "b", "c"]
    assert oof["probability"].tolist() == pytest.approx([0.3, 0.7, 0.9])
    assert oof["fold"].tolist() == [0, 0, 1] and oof["label"].tolist() == [1, 1, 1]
    with pytest.raises(ms.UserError, match="given twice"):
        ms.read_oof_predictions(files + files[:1], "qi")
    other = oof_file("other", ["a"], 0, [0.5], label=0)  # the same id with another label: another dataset
    with pytest.raises(ms.UserError, match=r"id 'a' has another fold, label or language in each of .*other"):
        ms.read_oof_predictions(files + [other], "qi")


def test_auto_submits_all_positive_when_no_threshold_beats_it_out_of_fold():
    # The cross-fitting example above: global 0.5, fixed 2/3, every row relevant 2/3 (20 of 40 positive), a tie
    # that goes to the model's fixed threshold.
    probability = [0.9, 0.8] * 10 + [0.6, 0.5] * 10
    oof = pd.DataFrame({"id": range(40), "fold": [0] * 20 + [1] * 20, "task": "QC", "language": "en",
                        "label": [1, 0] * 20, "probability": probability})
    args = ms.PredictionArguments(threshold_strategy="auto")
    report = ms.choose_thresholds(oof, args)
    assert report["cross_fitted_f1"]["all_positive"] == pytest.approx(2 / 3) and report["strategy"] == "fixed"
    # 70 % positives and scores that carry nothing: every fitted threshold loses to all-positive out of fold.
    rng = np.random.RandomState(0)
    labels = (rng.uniform(size=600) < 0.7).astype(int)
    noise = pd.DataFrame({"id": range(600), "fold": np.arange(600) % 3, "task": "QC", "language": "en",
                          "label": labels, "probability": rng.uniform(size=600)})
    report = ms.choose_thresholds(noise, args)
    assert report["strategy"] == "all_positive"
    all_positive = 2 * labels.mean() / (1 + labels.mean())
    assert report["cross_fitted_f1"]["all_positive"] == pytest.approx(all_positive)
    assert max(report["cross_fitted_f1"][s] for s in ("fixed", "global", "per_language")) < all_positive
    assert ms.row_thresholds(["en", UNSEEN_LANGUAGE], report, "all_positive", 0.5).tolist() == [0.0, 0.0]
    # Scores that separate the labels: a threshold of the model wins.
    informative = noise.assign(probability=np.clip(0.5 * labels + rng.uniform(0, 0.6, 600), 0, 1))
    assert ms.choose_thresholds(informative, args)["strategy"] != "all_positive"


def _test_rows(n=5):
    return [{"id": i, "language": "en", "origin_query": f"q{i}", "category_path": "a,b", "label": 1}
            for i in range(n)]


def _write_lines(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return str(path)


def _submission(rows):
    return [{"id": r["id"], "language": r["language"], "origin_query": r["origin_query"],
             "category_path": r["category_path"], "prediction": 1} for r in rows]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s[:-1], "id 4 of the test rows is missing"),
        (lambda s: s + [s[2]], "id 2 duplicated (first on line 3)"),
        (lambda s: s + [{**s[0], "id": 99}], "id 99 is not in the test rows"),
        (lambda s: [{**s[0], "prediction": 2}] + s[1:], ":1: id 0: field 'prediction' must be 0 or 1, got 2"),
        (lambda s: [{**s[0], "prediction": True}] + s[1:], "must be 0 or 1, got True"),
        (lambda s: [{**s[0], "prediction": "1"}] + s[1:], "must be 0 or 1, got '1'"),
        (lambda s: [{**s[0], "prediction": 0.5}] + s[1:], "must be 0 or 1, got 0.5"),
        (lambda s: [{**s[0], "id": "0"}] + s[1:], "id '0' is not in the test rows"),
        (lambda s: [{**s[0], "origin_query": "other"}] + s[1:], "field 'origin_query' is 'other'"),
        (lambda s: [{k: v for k, v in s[0].items() if k != "language"}] + s[1:], "missing field(s) ['language']"),
        (lambda s: ["{not json"] + s[1:], ":1: not valid JSON"),
    ],
)
def test_checker_catches_bad_submissions(tmp_path, change, message):
    rows = _test_rows()
    good = _write_lines(tmp_path / "good.txt", _submission(rows))
    assert ms.check_submission(good, rows, "qc")["rows"] == 5
    bad = _write_lines(tmp_path / "bad.txt", change(_submission(rows)))
    with pytest.raises(ms.SubmissionError) as error:
        ms.check_submission(bad, rows, "qc")
    assert message in str(error.value)


def test_check_only_command_line(tmp_path):
    rows = _test_rows()
    test_file = _write_lines(tmp_path / "test_QC.jsonl", [{k: v for k, v in r.items() if k != "label"} for r in rows])
    good = _write_lines(tmp_path / "submit_QC.txt", _submission(rows))
    summary = ms.main(["--check_only", "--submission_file", good, "--test_file", test_file])
    assert summary[0]["rows"] == 5 and summary[0]["positives"] == 5
    bad = _write_lines(tmp_path / "bad.txt", _submission(rows)[1:])
    with pytest.raises(ms.SubmissionError, match="id 0 of the test rows is missing"):
        ms.main(["--check_only", "--submission_file", bad, "--test_file", test_file])


def _args(tiny, output_dir, task="qc,qi"):
    return ["--task", task, "--dataset_name", str(tiny["root"] / "folds_{task}"),
            "--adapters", str(tiny["root"] / "{task}" / "fold*"), "--output_dir", str(output_dir),
            "--max_tokens_per_batch", "80", "--min_rows_per_language", "15"]


def test_two_tasks_end_to_end(tiny, tmp_path):
    written = ms.main(_args(tiny, tmp_path))
    assert set(written) == {"qc", "qi"}
    for task in ("qc", "qi"):
        test = datasets.load_from_disk(tiny[f"data_{task}"])["test"]
        rows = ms.load_reference_rows(task, dataset=test)
        ms.check_submission(str(tmp_path / ms.SUBMISSION_FILE[task]), rows, task)
        predictions = pd.read_parquet(tmp_path / f"predictions_{task}.parquet")
        assert predictions["id"].tolist() == test["id"]
        columns = [c for c in predictions.columns if c.startswith("probability_")]
        assert len(columns) == len(tiny[f"adapters_{task}"])
        np.testing.assert_allclose(predictions["probability"], predictions[columns].mean(axis=1), atol=1e-9)
        report = json.loads((tmp_path / f"thresholds_{task}.json").read_text())
        assert set(report["cross_fitted_f1"]) == {"fixed", "global", "per_language", "all_positive"}
        assert report["strategy"] in ("fixed", "global", "per_language", "all_positive")
        unseen = predictions[predictions["language"] == UNSEEN_LANGUAGE]
        assert len(unseen) and UNSEEN_LANGUAGE not in report["per_language"]
        expected = {"fixed": 0.5, "all_positive": 0.0}.get(report["strategy"], report["global"])
        assert (unseen["threshold"] == expected).all()
        submitted = [json.loads(line)["prediction"] for line in open(tmp_path / ms.SUBMISSION_FILE[task])]
        assert submitted == predictions["prediction"].tolist()
    with zipfile.ZipFile(tmp_path / ms.ZIP_FILE) as archive:
        assert sorted(archive.namelist()) == ["submit_QC.txt", "submit_QI.txt"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_two_processes_return_every_id_in_order(tiny, tmp_path):
    single = tmp_path / "single"
    ms.main(_args(tiny, single, task="qc") + ["--write_submission", "false"])
    double = tmp_path / "double"
    # `--cpu` would start one process only (accelerate 1.15 needs mpirun for that); the torchrun launcher
    # behind `--multi_gpu` starts two, and with no visible GPU they run on CPU with gloo.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "make_submission.py",
               *_args(tiny, double, task="qc")]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 process(es)" in result.stdout + result.stderr
    expected = datasets.load_from_disk(tiny["data_qc"])["test"]["id"]
    got = pd.read_parquet(double / "predictions_qc.parquet")
    assert got["id"].tolist() == expected
    scoring = json.loads((double / "thresholds_qc.json").read_text())["scoring"]
    assert scoring["batches"] >= 2  # both processes had batches to score
    assert scoring["sequences_scored"] == 2 * _encoded(tiny)[2].num_unique  # 2 adapters x distinct inputs
    reference = pd.read_parquet(single / "predictions_qc.parquet")
    np.testing.assert_allclose(got["probability"], reference["probability"], atol=1e-5)
    rows = ms.load_reference_rows("qc", dataset=datasets.load_from_disk(tiny["data_qc"])["test"])
    ms.check_submission(str(double / ms.SUBMISSION_FILE["qc"]), rows, "qc")


def test_features_model_and_blend_learn_what_the_model_score_misses():
    # The label is "a query word is in the target"; the model score is noise, so only the features can rank.
    from sklearn.metrics import roc_auc_score

    rng = np.random.RandomState(0)
    words = [f"w{i}" for i in range(40)]
    rows = []
    for i in range(400):
        query = " ".join(rng.choice(words, 2, replace=False))
        relevant = i % 2
        target = query.split()[0] + " > x" if relevant else "y > z"
        rows.append({"id": i, "fold": (i // 2) % 2, "language": ["en", "fr"][i % 3 == 0], "label": relevant,
                     "query": query, "target": target, "exclude_from_train_folds": [1 - (i // 2) % 2] * (i < 8)})
    labelled = datasets.Dataset.from_list(rows)
    features = ms.pair_features("qc", labelled["query"], labelled["target"], labelled["language"])
    assert features.loc[1, "matched_words"] == 1 and features.loc[0, "matched_words"] == 0
    assert set(features["top_level"]) == {"y"} | {q.split()[0] for q in labelled["query"][1::2]}
    scores, model = ms.feature_scores("qc", labelled, seed=0)
    assert sorted(scores) == sorted(str(i) for i in range(400))
    labels = np.array(labelled["label"])
    assert roc_auc_score(labels, [scores[str(i)] for i in range(400)]) > 0.95

    oof = pd.DataFrame({"id": [str(i) for i in range(400)], "fold": labelled["fold"], "label": labels,
                        "probability": rng.uniform(0.2, 0.8, 400)})
    assert roc_auc_score(labels, oof["probability"]) < 0.6
    feature_probability = ms.oof_feature_scores(oof, scores, "tiny")
    assert roc_auc_score(labels, ms.cross_fitted_blend(oof, feature_probability, seed=0)) > 0.95
    with pytest.raises(ValueError, match="1 OOF row id"):
        ms.oof_feature_scores(oof.assign(id=["x"] + oof["id"].tolist()[1:]), scores, "tiny")
    # A language and a top level never seen in fitting are treated as missing, not an error.
    new = ms.pair_features("qc", ["w1 w2", "w1 w2"], ["w1 > q", "nothing > here"], ["ar", "ar"])
    probability = model.predict(new)
    assert np.isfinite(probability).all() and probability[0] > probability[1]
    blend = ms.Blend().fit(oof["probability"], feature_probability, labels)
    assert blend.predict([0.5, 0.5], probability)[0] > blend.predict([0.5, 0.5], probability)[1]


def test_combiner_stack_and_auto_end_to_end(tiny, tmp_path):
    ms.main(_args(tiny, tmp_path / "stack", task="qc") + ["--combiner", "stack", "--write_submission", "false"])
    predictions = pd.read_parquet(tmp_path / "stack" / "predictions_qc.parquet")
    assert "probability_mean" in predictions and not np.allclose(predictions["probability"],
                                                                  predictions["probability_mean"])
    report = json.loads((tmp_path / "stack" / "thresholds_qc.json").read_text())
    assert report["combiner"]["used"] == "stack" and set(report["combiner"]["cross_fitted_f1"]) == {"mean", "stack"}
    ms.main(_args(tiny, tmp_path / "auto", task="qc") + ["--combiner", "auto", "--write_submission", "false"])
    auto = json.loads((tmp_path / "auto" / "thresholds_qc.json").read_text())["combiner"]
    scores = auto["cross_fitted_f1"]
    assert auto["used"] == ("stack" if scores["stack"] > scores["mean"] else "mean")
    assert scores == report["combiner"]["cross_fitted_f1"]


def test_adapters_that_disagree_on_a_shared_setting_are_refused(tmp_path):
    # One check (modeling_relevance.check_shared_settings) serves make_submission.py and load_for_inference.
    base = {"base_model_name_or_path": "m", "num_labels": 2, "pooling": "last", "template": "instruct",
            "max_length": 96, "num_hidden_layers": 9, "tasks": ["qc", "qi"], "use_translation": {"qc": True}}
    folders = []
    for name, change in (("a", {}), ("b", {"use_translation": {"qc": False}}), ("c", {"max_length": 128}),
                         ("d", {"tasks": ["qc"]})):
        folder = tmp_path / name
        folder.mkdir()
        (folder / mr.SETTINGS_NAME).write_text(json.dumps({**base, **change}))
        folders.append(str(folder))
    a, b, c, d = folders
    assert ms.read_adapter_settings([a, d], "qc")["max_length"] == 96  # tasks may differ when each has the task
    with pytest.raises(mr.UserError, match=r"use_translation=False .* cannot be scored on one base model"):
        ms.read_adapter_settings([a, b], "qc")
    assert ms.read_adapter_settings([a, b], "qi")["template"] == "instruct"  # qi's translation use agrees (None)
    with pytest.raises(mr.UserError, match=r"max_length=128"):
        mr.check_shared_settings([a, c], [json.loads(open(os.path.join(f, mr.SETTINGS_NAME)).read()) for f in (a, c)])
    with pytest.raises(mr.UserError, match=r"tasks=\['qc'\]"):
        mr.check_shared_settings([a, d], [{**base}, {**base, "tasks": ["qc"]}])
    mr.check_shared_settings([a, c], [base, {**base, "base_model_name_or_path": "n"}], skip=("base_model_name_or_path",))


def test_a_relative_base_model_path_that_is_no_folder_here_is_one_clear_error(tiny, tmp_path):
    import shutil

    adapter = tmp_path / "fold0"
    shutil.copytree(tiny["adapters_qc"][0], adapter)
    settings = json.loads((adapter / mr.SETTINGS_NAME).read_text())
    (adapter / mr.SETTINGS_NAME).write_text(json.dumps({**settings, "base_model_name_or_path": ".cache/no/model"}))
    with pytest.raises(mr.UserError, match=r"base model .cache/no/model .* run from the directory the adapters were "
                                           r"trained in, or pass --model_name_or_path"):
        ms.plan_adapters("qc", ms.ModelArguments(adapters=str(adapter)))
    plan = ms.plan_adapters("qc", ms.ModelArguments(adapters=str(adapter), model_name_or_path=tiny["base"]))
    assert plan["base"] == tiny["base"]
