"""Smoke tests of benchmarks/quality.py and benchmarks/throughput.py on tiny data and a tiny random model.

They check the benchmarks' own logic (the held-out test fold, the per-fold/ensemble scoring, equal work for the A/B
arms), not speed or quality: no timed assertions."""

import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

import run_relevance as rr
from benchmarks import quality, throughput
from tests.tiny_models import make_tiny_decoder, make_tiny_folded_dataset

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    return make_tiny_folded_dataset(tmp_path_factory.mktemp("folds") / "qc", task="qc", num_rows=120, num_folds=4)


def test_test_fold_is_held_out_and_scored(folded, tmp_path):
    data_dir = str(tmp_path / "data")
    info = quality.make_benchmark_dataset(folded, data_dir, test_fold=3, max_test=20, seed=0)
    dataset = quality.load_folded_dataset(data_dir)
    train, test = dataset["train"].to_pandas(), dataset["test"].to_pandas()
    assert len(test) == info["test_rows_scored"] == 20
    assert 3 not in set(train["fold"]) and set(test["fold"]) == {-1}
    # make_folds.py's purge lists: no training row shares a query with the test fold.
    assert not set(train["query"]) & set(test["query"])

    args = quality.QualityArguments(num_fold_models=2, max_train_samples=30, max_oof_samples=10, seed=0)
    results = quality.run_tfidf(args, "qc", data_dir, test)
    assert set(results) == {f"tfidf@{t} ({b})" for t in ("0.5", "tuned") for b in ("same rows", "all rows")}
    for result in results.values():
        assert len(result["fold_model_f1"]) == 2
        assert set(result["per_language_f1"]) == set(test["language"])
    assert results["tfidf@0.5 (all rows)"]["threshold_strategy"] == "fixed"

    table = quality.markdown({"qc": {"dataset": info, "num_fold_models": 2, "methods": results},
                              "qi": {"skipped": "qi_dev.jsonl not found"}}, {"steps": 0})
    assert "tfidf@tuned (all rows)" in table and "QI: skipped" in table


def test_score_test_ensemble_and_fold_models():
    labels = np.array([1, 1, 0, 0, 1])
    per_model = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.8], [0.1, 0.1], [0.3, 0.9]])
    thresholds = np.full(5, 0.5)
    result = quality.score_test(labels, ["en", "en", "fr", "fr", "fr"], per_model.mean(axis=1), per_model, thresholds)
    assert result["f1"] == pytest.approx(f1_score(labels, [1, 1, 1, 0, 1]))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, per_model.mean(axis=1)))
    assert result["fold_model_f1"] == pytest.approx([f1_score(labels, [1, 1, 0, 0, 0]), f1_score(labels, [0, 1, 1, 0, 1])])
    assert result["per_language_f1"] == pytest.approx({"en": 1.0, "fr": f1_score([0, 0, 1], [1, 0, 1])})
    gain = f1_score(labels, [1, 1, 1, 0, 1]) - f1_score(labels, [1] * 5)
    assert result["f1_minus_all_positive"] == pytest.approx(gain) and gain > 0
    low, high = result["f1_minus_all_positive_95"]
    assert low <= gain <= high


def test_quality_budget_flags_parse_as_run_relevance_arguments():
    """Every budget flag is one of run_relevance.py's; --max_steps -1 is one epoch for `seed` (no recipe) too."""
    def parsed(steps):
        argv = [*quality.SEED_FLAGS, *quality.budget_flags(quality.QualityArguments(max_steps=steps), "qc", "data"),
                "--fold", "0", "--output_dir", "out"]
        return rr.make_parser().parse_args_and_config(argv)[1]

    assert parsed(20).max_steps == 20
    one_epoch = parsed(-1)
    assert (one_epoch.max_steps, one_epoch.num_train_epochs) == (-1, 1.0)


@pytest.fixture(scope="module")
def tiny_plan(tmp_path_factory, folded):
    from benchmarks import inference_speed as isp

    root = tmp_path_factory.mktemp("throughput")
    data_file = os.path.join(REPO_ROOT, "data", "sample", "train_QC.jsonl")
    import utils_data

    frame, _, _ = utils_data.read_raw_file(data_file, task="qc", labelled=True)
    frame = utils_data.add_model_columns(frame, "qc")
    texts = frame["query"].tolist() + frame["target"].tolist()
    import datasets

    texts += [t for t in datasets.load_from_disk(folded)["train"]["query"]]
    base = make_tiny_decoder(root / "base", texts=texts)
    adapters = isp.make_adapters(base, str(root / "adapters"),
                                 isp.BenchmarkArguments(task="qc", num_adapters=1, max_length=64))
    return {"base": base, "folds": folded, "data_file": data_file, "adapters": adapters}


def _args(**overrides):
    values = dict(task="qc", train_rows=16, batch_size=8, max_length=64, infer_rows=24, num_adapters=1, seed=0,
                  matmul_size=64, num_hidden_layers=None)
    values.update(overrides)
    return SimpleNamespace(**values)


def test_inference_arms_score_the_same_rows(tiny_plan):
    naive = throughput.worker_infer_naive(_args(), tiny_plan)
    ours = throughput.worker_infer_ours(_args(), tiny_plan)
    assert naive["sequences_scored"] == 24 and 0 < ours["sequences_scored"] <= 24
    for result in (naive, ours):
        assert result["executed_tokens"] >= result["useful_tokens"] > 0
        assert result["params"] > 0
    # Deduplication can only remove work.
    assert ours["useful_tokens"] <= naive["useful_tokens"]
    # A smaller token budget changes the batches, not the probabilities.
    quarter = throughput.worker_infer_ours_quarter(_args(), tiny_plan)
    assert quarter["max_tokens_per_batch"] * 4 == ours["max_tokens_per_batch"]
    np.testing.assert_allclose(quarter["probabilities_head"], ours["probabilities_head"], atol=1e-5)
    assert throughput.worker_matmul(_args(), tiny_plan)["matmul_flops_per_s"] > 0


def test_training_arms_see_the_same_tokens(tiny_plan):
    naive = throughput.worker_train_naive(_args(), tiny_plan)
    ours = throughput.worker_train_ours(_args(), tiny_plan)
    bigger = throughput.worker_train_ours_4x(_args(batch_size=4), tiny_plan)
    # One epoch over the same rows: the same non-padding tokens, whatever the order, padding and rows per step.
    assert naive["tokens"] == ours["tokens"] == bigger["tokens"] > 0
    assert (ours["steps"], bigger["steps"]) == (2, 1)


def test_non_embedding_parameters_counted_without_loading(tiny_plan):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_plan["base"])
    loaded = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    assert throughput._non_embedding_params(tiny_plan["base"]) == loaded > 0


def test_recipe_experiments_table_recomputes_metrics_from_the_oof_rows(tmp_path):
    import json

    from sklearn.metrics import log_loss

    from benchmarks import recipe_experiments

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    probabilities = np.clip(0.3 * labels + rng.uniform(0.2, 0.7, 50), 0.01, 0.99)
    run = tmp_path / "qc_epoch_run"
    run.mkdir()
    pd.DataFrame({"id": [str(i) for i in range(50)], "fold": 0, "task": "QC", "language": ["en", "ja"] * 25,
                  "label": labels, "probability": probabilities}).to_parquet(run / "oof_predictions.parquet")
    (run / "metrics.json").write_text(json.dumps({"train": {"train_rows": 100, "epoch": 2.0},
                                                  "eval": {"train_prior": 0.6}}))
    (run / "command.txt").write_text("python run_relevance.py --max_steps 60 --per_device_train_batch_size 8 "
                                     "--max_steps -1 --num_train_epochs 2")
    (run / "wall_s.txt").write_text("12")
    table = recipe_experiments.run_table(SimpleNamespace(runs_dir=str(tmp_path)))
    row = next(line for line in table.splitlines() if line.startswith("| qc_epoch_run"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # An epoch-based run (the last --max_steps is -1): steps = ceil(100 / 8) x 2 epochs.
    assert cells[1:4] == ["26", "100 / 50", "12"]
    assert cells[4] == f"{log_loss(labels, probabilities):.3f}"
    assert cells[5] == f"{log_loss(labels, np.full(50, 0.6)):.3f}"
    assert cells[6] == f"{roc_auc_score(labels, probabilities):.3f}"
    assert cells[7] == f"{f1_score(labels, probabilities >= 0.5):.3f}"
    assert "en " in cells[10] and "ja " in cells[10]


def test_phase3_reads_only_its_task_from_a_multitask_arm(tmp_path):
    import json

    from benchmarks import phase3

    def write(name, tasks):
        run = tmp_path / name
        run.mkdir()
        pd.DataFrame([{"id": f"{task}{i}", "fold": 0, "task": task.upper(), "language": "en", "label": i % 2,
                       "probability": 0.5} for task in tasks for i in range(4)]).to_parquet(run / "oof_predictions.parquet")
        (run / "metrics.json").write_text(json.dumps({"train": {"train_rows": 8}, "eval": {"train_prior": 0.6}}))

    write("p3_qc_ref_f0", ["qc"])
    write("p3_qcqi_multitask_f0", ["qc", "qi"])
    args = SimpleNamespace(runs_dir=str(tmp_path), task="qc")
    ref, ref_facts = phase3.load_arm(args, "ref")
    multi, multi_facts = phase3.load_arm(args, "qcqi_multitask")
    assert list(multi["id"]) == list(ref["id"]) == [f"qc{i}" for i in range(4)]
    # Its training prior pools both tasks: not reported (the reference's stands in).
    assert ref_facts[0]["prior"] == 0.6 and multi_facts[0]["prior"] is None


def test_phase3_ensemble_arm_averages_its_arms_probabilities_fold_by_fold(tmp_path):
    import json

    from benchmarks import phase3

    def write(name, fold, probabilities, train_s):
        run = tmp_path / name
        run.mkdir()
        pd.DataFrame({"id": [f"{fold}-{i}" for i in range(4)], "fold": fold, "task": "QC", "language": "en",
                      "label": [0, 1, 0, 1], "probability": probabilities}).to_parquet(run / "oof_predictions.parquet")
        (run / "metrics.json").write_text(json.dumps({"train": {"train_rows": 8, "train_runtime": train_s},
                                                      "eval": {"train_prior": 0.5}}))

    for fold in (0, 1):
        write(f"p3_qc_ref_f{fold}", fold, [0.2, 0.6, 0.4, 0.8], 10)
        write(f"p3_qc_seed43_f{fold}", fold, [0.4, 0.2, 0.6, 0.8], 20)
    args = SimpleNamespace(runs_dir=str(tmp_path), task="qc")
    both, facts = phase3.load_arm(args, "ref+seed43")
    ref, _ = phase3.load_arm(args, "ref")
    assert list(both["id"]) == list(ref["id"])
    np.testing.assert_allclose(both["probability"], np.tile([0.3, 0.4, 0.5, 0.8], 2))
    assert [f["run"] for f in facts] == ["p3_qc_ref_f0+p3_qc_seed43_f0", "p3_qc_ref_f1+p3_qc_seed43_f1"]
    assert [f["train_s"] for f in facts] == [30, 30] and [len(f["members"]) for f in facts] == [2, 2]
    write("p3_qc_other_f0", 0, [0.1, 0.2, 0.3, 0.4], 5)  # fold 0 only: other rows than ref's two folds
    with pytest.raises(SystemExit, match="different rows"):
        phase3.load_arm(args, "ref+other")


def test_phase3_language_table_gives_each_languages_auc_against_the_reference():
    from benchmarks import phase3

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 80)
    language = np.array(["en", "ja"] * 40)
    ref = pd.DataFrame({"id": [str(i) for i in range(80)], "language": language, "label": labels,
                        "probability": rng.uniform(size=80)})
    # The arm ranks the ja rows perfectly and the en rows as the reference does.
    arm = ref.assign(probability=np.where(language == "ja", labels * 0.5 + 0.25, ref["probability"]))
    results = {"ref": {"_oof": ref}, "translate": {"_oof": arm, "same_rows_as_reference": True}}
    lines = phase3.language_auc_table(results, "ref", ["ref", "translate"], SimpleNamespace(bootstrap=50, seed=0))
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")]
                                          for line in lines if line.startswith("| en") or line.startswith("| ja"))}
    en = language == "en"
    assert rows["en"][1] == "40" and rows["en"][2] == f"{roc_auc_score(labels[en], ref['probability'][en]):.3f}"
    assert rows["en"][3].startswith(f"{roc_auc_score(labels[en], ref['probability'][en]):.3f} (+0.000")
    assert rows["ja"][3].startswith("1.000 (+")
    assert results["translate"]["auc_minus_ref_per_language"]["en"][0] == 0


def test_f1_ceiling_matches_sampled_binormal_scores_and_solves_for_the_margin(tmp_path):
    from benchmarks import f1_ceiling as fc

    p = 0.7
    # AUC 0.5: no threshold beats predicting every row relevant.
    assert fc.binormal_best_f1(0.5, p) == pytest.approx(fc.all_positive_f1(p), abs=1e-6)
    # The closed form against the best threshold on many sampled binormal scores with the same AUC and rate.
    rng = np.random.default_rng(0)
    labels = (rng.random(200_000) < p).astype(int)
    d = np.sqrt(2) * fc.norm.ppf(0.8)
    scores = rng.normal(size=labels.size) + d * labels
    assert roc_auc_score(labels, scores) == pytest.approx(0.8, abs=0.005)
    assert fc.mr.best_threshold(labels, scores)[1] == pytest.approx(fc.binormal_best_f1(0.8, p), abs=0.003)
    needed = fc.auc_needed(p, 0.02)
    assert 0.7 < needed < 0.8
    assert fc.binormal_best_f1(needed, p) == pytest.approx(fc.all_positive_f1(p) + 0.02, abs=1e-4)
    assert fc.auc_needed(p, 0.2) is None  # beyond what even AUC 0.9999 reaches at this rate

    run = tmp_path / "p3_qc_ref_f0"
    run.mkdir()
    pd.DataFrame({"label": labels[:2000], "probability": scores[:2000]}).to_parquet(run / "oof_predictions.parquet")
    record = fc.main(fc.CeilingArguments(prevalence="0.7", runs=str(tmp_path / "p3_*"),
                                         output_file=str(tmp_path / "c.md")))
    (measured,) = record["runs"]
    assert measured["rows"] == 2000 and measured["auc"] == pytest.approx(0.8, abs=0.03)
    assert (tmp_path / "c.md").read_text().count("| p3_qc_ref_f0 | 2000 |") == 1
    with pytest.raises(SystemExit, match="--aucs"):
        fc.CeilingArguments(aucs="0.4")


def test_group_features_compare_each_pair_with_its_querys_other_pairs():
    from benchmarks import group_features as gf
    import make_submission as ms

    queries = ["Red Shoe", "red shoe ", "red shoe", "blue hat"]
    targets = ["red shoe", "red running shoe", "green sock", "red shoe"]
    base = ms.pair_features("qi", queries, targets, ["en"] * 4)
    out = gf.group_features(base, queries, targets)
    assert list(out["query_rows"]) == [3, 3, 3, 1]  # case and outer spaces folded
    assert list(out["target_rows"]) == [2, 1, 1, 2]
    # The best-matching pair of a query is 0 below its max; a lone query's pair is its own max and mean.
    assert out["matched_fraction_minus_max"].tolist() == [0.0, 0.0, -1.0, 0.0]
    assert out["trigram_coverage_rank"].iloc[2] < out["trigram_coverage_rank"].iloc[0]
    assert out.loc[3, "trigram_jaccard_minus_mean"] == 0.0
    assert list(out.columns[: len(base.columns)]) == list(base.columns)  # the features model's columns, then these


def test_fresh_rows_are_the_rows_of_the_fold_that_no_run_scored(tmp_path):
    import datasets

    from benchmarks import fresh_rows

    train = datasets.Dataset.from_dict({"id": [str(i) for i in range(10)], "fold": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]})

    def run(name, ids):
        (tmp_path / name).mkdir()
        pd.DataFrame({"id": ids, "probability": 0.5}).to_parquet(tmp_path / name / "oof_predictions.parquet")
        return str(tmp_path / name)

    runs = [run("a", ["0", "3"]), run("b", ["3", "0"])]
    options = SimpleNamespace(max_rows=None, seed=0)
    assert fresh_rows.fresh_split(train, runs, 0, options)["id"] == ["1", "2", "4"]
    subset = fresh_rows.fresh_split(train, runs, 0, SimpleNamespace(max_rows=2, seed=0))["id"]
    assert len(subset) == 2 and set(subset) < {"1", "2", "4"}
    with pytest.raises(SystemExit, match="scored different rows"):
        fresh_rows.fresh_split(train, runs + [run("c", ["0"])], 0, options)


def test_unseen_languages_are_never_trained_on_and_still_scored(tmp_path):
    """benchmarks/unseen_languages.py: whichever fold validates, no training row is in a held-out language, and the
    held-out languages' rows of that fold are still validation rows; --compose takes each held-out language's rows
    from the run that held it out."""
    import json

    from benchmarks import unseen_languages as ul

    folded = make_tiny_folded_dataset(tmp_path / "qc", task="qc", num_rows=60, num_folds=3)
    held = ul.main(ul.Arguments(output_dir=str(tmp_path / "unseen_en"), dataset_name=folded, languages="en"))
    assert held["rows_held_out"] > 0
    script = SimpleNamespace(dataset_name=[str(tmp_path / "unseen_en")], dataset_split="train",
                             use_translation=None, hierarchy_ancestors=0, max_train_samples=None,
                             max_eval_samples=None, fold=0)
    original = SimpleNamespace(**{**vars(script), "dataset_name": [folded]})
    for fold in (0, 1, 2):
        script.fold = original.fold = fold
        train, validation, _ = rr.load_task_datasets(script, ["qc"], seed=0)
        train_all, validation_all, _ = rr.load_task_datasets(original, ["qc"], seed=0)
        assert "en" not in set(train["language"]) and "en" in set(train_all["language"])
        assert set(train["id"]) == {i for i, lang in zip(train_all["id"], train_all["language"]) if lang != "en"}
        assert validation["id"] == validation_all["id"] and "en" in set(validation["language"])

    # Two runs per arm, each holding one language out; the composite takes each language from its own run.
    languages = sorted(set(train_all["language"]))[:2]
    runs = tmp_path / "runs"
    for lang in languages:
        data = ul.main(ul.Arguments(output_dir=str(tmp_path / f"unseen_{lang}"), dataset_name=folded, languages=lang))
        assert data["languages_held_out"] == [lang]
        for fold in (0, 1):
            run = runs / f"p3_qc_unseen{lang}_f{fold}"
            run.mkdir(parents=True)
            (run / "relevance_config.json").write_text(json.dumps({"dataset_name": [str(tmp_path / f"unseen_{lang}")]}))
            (run / "metrics.json").write_text("{}")
            rows = pd.DataFrame({"id": ["1", "2", "3"], "language": [languages[0], languages[1], "zz"],
                                 "fold": fold, "label": 1, "probability": 0.1 if lang == languages[0] else 0.9})
            rows.to_parquet(run / "oof_predictions.parquet")
    # A one-run arm (here standing for the reference) scores the same rows: every language some member held out.
    arms = "+".join(f"unseen{lang}" for lang in languages)
    ul.compose(ul.Arguments(output_dir=str(tmp_path / "out"), compose=f"{arms},unseen{languages[1]}",
                            names="unseen,ref", runs_dir=str(runs)))
    composed = pd.read_parquet(tmp_path / "out" / "p3_qc_unseen_f1" / "oof_predictions.parquet")
    assert list(composed["language"]) == languages and list(composed["probability"]) == [0.1, 0.9]
    composed = pd.read_parquet(tmp_path / "out" / "p3_qc_ref_f0" / "oof_predictions.parquet")
    assert list(composed["language"]) == languages and list(composed["probability"]) == [0.9, 0.9]
    with pytest.raises(SystemExit, match="2 members held"):
        ul.compose(ul.Arguments(output_dir=str(tmp_path / "out2"), compose=f"{arms}+unseen{languages[0]}",
                                names="a", runs_dir=str(runs)))


def test_learning_curve_sorts_arms_by_rows_and_fits_one_slope_over_the_series(tmp_path):
    """benchmarks/learning_curve.py: arms sorted by training rows whatever the order given, each step's AUC gain
    over the step's doublings, one slope of AUC on log2(rows) over the series (each its own intercept), and the rows
    at which that line reaches the target."""
    import json

    from benchmarks import learning_curve as lc

    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, 400)
    noise = rng.normal(size=400)
    # more rows, more signal: AUC rises; the seed-43 series is a shifted copy
    signal = {"rows100": 0.2, "rows200": 0.6, "ref": 1.0, "rows100seed43": 0.4, "seed43": 1.2}
    rows = {"rows100": 100, "rows200": 200, "ref": 800, "rows100seed43": 100, "seed43": 800}
    for arm in signal:
        for fold in (0, 1):
            run = tmp_path / f"p3_qc_{arm}_f{fold}"
            run.mkdir()
            (run / "metrics.json").write_text(json.dumps({"train": {"train_rows": rows[arm], "train_runtime": 1.0},
                                                          "eval": {}}))
            half = slice(0, 200) if fold == 0 else slice(200, 400)
            probability = 1 / (1 + np.exp(-(signal[arm] * labels[half] + noise[half])))
            pd.DataFrame({"id": [str(i) for i in range(400)][half], "language": "en", "fold": fold,
                          "label": labels[half], "probability": probability}
                         ).to_parquet(run / "oof_predictions.parquet")
    result = lc.main(lc.Arguments(task="qc", arms="ref,rows100,rows200;seed43,rows100seed43", runs_dir=str(tmp_path),
                                  bootstrap=50, target_auc=0.99, output_file=str(tmp_path / "curve.md")))
    first, second = result["series"]
    assert [p["arm"] for p in first] == ["rows100", "rows200", "ref"]
    assert [p["arm"] for p in second] == ["rows100seed43", "seed43"]
    assert [p["doublings"] for p in first[1:]] == [1.0, 2.0]
    aucs = [p["auc"] for p in first]
    assert aucs == sorted(aucs) and aucs[0] == roc_auc_score(labels, 1 / (1 + np.exp(-(0.2 * labels + noise))))
    assert first[2]["per_doubling"] == pytest.approx((aucs[2] - aucs[1]) / 2)
    assert first[2]["per_doubling_ci"][0] <= first[2]["per_doubling"] <= first[2]["per_doubling_ci"][1]
    fit = result["fit"]
    x = [[np.log2(100), np.log2(200), np.log2(800)], [np.log2(100), np.log2(800)]]
    assert fit["slope_per_doubling"] == pytest.approx(lc.within_series_slope(x, [aucs, [p["auc"] for p in second]]))
    assert fit["slope_ci"][0] <= fit["slope_per_doubling"] <= fit["slope_ci"][1]
    fold_means = [[np.mean(list(p["auc_per_fold"].values())) for p in points] for points in (first, second)]
    assert fit["slope_per_doubling_mean_fold_auc"] == pytest.approx(lc.within_series_slope(x, fold_means))
    assert fit["slope_per_doubling_each_series"][1] == pytest.approx((second[1]["auc"] - second[0]["auc"]) / 3)
    assert fit["rows_for_target"] == pytest.approx(
        lc.rows_for(0.99, fit["fitted_auc_top"], 800, fit["slope_per_doubling"]))
    assert (tmp_path / "curve.md").read_text().count("| rows") == 3 and (tmp_path / "curve.json").is_file()
    # the fit: a seed's offset is not a row effect; the rows a target takes at a rate
    assert lc.within_series_slope([[0, 1, 2], [0, 1]], [[0.5, 0.6, 0.7], [0.6, 0.7]]) == pytest.approx(0.1)
    assert lc.rows_for(0.75, 0.70, 1000, 0.025) == pytest.approx(4000)
    assert lc.rows_for(0.75, 0.70, 1000, -0.01) is None and lc.rows_for(0.75, 0.80, 1000, 0.01) == 1000
    with pytest.raises(SystemExit, match="as many rows"):
        lc.main(lc.Arguments(task="qc", arms="rows100,rows100seed43", runs_dir=str(tmp_path), bootstrap=10))
