"""make_folds.py: fold invariants, validation errors and skips, input formats, determinism, the CLI."""

import json
import os
import random
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import make_folds
from make_folds import assign_folds, fold_report
from utils_data import (
    DataValidationError,
    add_model_columns,
    category_prefix_key,
    grouping_key,
    load_folded_dataset,
    read_raw_file,
    run_cli,
    split_category_path,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGUAGES = ["en", "es", "fr", "ja", "ko", "pt", "th"]
# Category paths as the competition writes them; several level names contain ", ".
PATHS = [
    "phones & telecommunications,mobile phone accessories,phone cases & covers",
    "phones & telecommunications,mobile phone accessories,chargers, cables & adapters,data cables",
    "phones & telecommunications,cellphones",
    "automobiles, parts & accessories,interior accessories,car holders, stands & mounts",
    "automobiles, parts & accessories,car lights,headlight bulbs",
    "home & garden,kitchen, dining & bar,kitchen knives & accessories,kitchen knives,chef knives",
    "home & garden,home textile,bedding,bedding sets",
    "home & garden,pet products,dog supplies,dog collars, harnesses & leads",
    "beauty & health,makeup,lips,lipstick",
    "beauty & health,nail art & tools,nail gel",
    "women's clothing,dresses",
    "women's clothing,tops & tees,t-shirts",
    "luggage & bags,backpacks",
    "tools,power tools,electric drills",
    "jewelry & accessories,fine jewelry,rings",
    "jewelry & accessories,fashion jewelry,earrings",
]


def make_rows(task, n_queries, seed=0, languages=LANGUAGES):
    """Synthetic raw rows: repeated queries (with case/space variants) with several targets each."""
    rng = random.Random(seed)
    rows, next_id = [], 1
    for q in range(n_queries):
        language = rng.choice(languages)
        query = f"query {q} {language}"
        for _ in range(rng.choice([1, 2, 3, 4])):
            shown = rng.choice([query, query.upper(), "  " + query.replace(" ", "  ")])
            row = {"id": next_id, "task": task.upper(), "language": language, "origin_query": shown}
            if task == "qc":
                row["category_path"] = rng.choice(PATHS)
            else:
                row["item_title"] = f"Product {rng.randrange(10 * n_queries)} Title"
            row["label"] = int(rng.random() < 0.65)
            rows.append(row)
            next_id += 1
    return rows


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)


def check_invariants(frame, task, folds, exclude, num_folds, prefix_levels=2):
    """Independent checks of the fold contract (recomputed here, not taken from the report)."""
    folds = np.asarray(folds)
    assert len(folds) == len(frame)
    assert set(np.unique(folds)) <= set(range(num_folds))
    query_keys = [grouping_key(q) for q in frame["origin_query"]]
    folds_of = {}
    for key, fold in zip(query_keys, folds):
        folds_of.setdefault(key, set()).add(int(fold))
    if task == "qi":
        assert all(len(v) == 1 for v in folds_of.values()), "a QI query sits in two folds"
    else:
        prefix_folds = {}
        for path, fold in zip(frame["category_path"], folds):
            prefix_folds.setdefault(category_prefix_key(split_category_path(path), prefix_levels), set()).add(int(fold))
        assert all(len(v) == 1 for v in prefix_folds.values()), "a QC category prefix sits in two folds"
    for key, fold, excluded in zip(query_keys, folds, exclude):
        assert list(excluded) == sorted(folds_of[key] - {int(fold)})
    for k in range(num_folds):
        valid_queries = {key for key, f in zip(query_keys, folds) if f == k}
        train_queries = {key for key, f, ex in zip(query_keys, folds, exclude) if f != k and k not in ex}
        assert not valid_queries & train_queries, f"fold {k}: a validation query is in its training rows"


# ---------------------------------------------------------------------------------------------------------
# Text normalisation and category paths
# ---------------------------------------------------------------------------------------------------------


def test_category_path_keeps_comma_space_inside_level_names():
    path = "automobiles, parts & accessories,interior accessories,car holders, stands & mounts"
    assert split_category_path(path) == [
        "automobiles, parts & accessories",
        "interior accessories",
        "car holders, stands & mounts",
    ]
    assert split_category_path(" a ,b,  c ,d") == ["a", "b,  c", "d"]
    assert split_category_path(None) == [] and split_category_path("") == []
    frame = pd.DataFrame({"origin_query": ["  Chef   KNIFE "], "category_path": [
        "Home & Garden,Kitchen, Dining & Bar,Kitchen Knives"]})
    out = add_model_columns(frame, "qc", lowercase=True)
    assert out["query"][0] == "chef knife"
    assert out["category_levels"][0] == ["home & garden", "kitchen, dining & bar", "kitchen knives"]
    assert out["target"][0] == "home & garden > kitchen, dining & bar > kitchen knives"
    assert frame["origin_query"][0] == "  Chef   KNIFE "  # raw column untouched
    kept_case = add_model_columns(frame, "qc", lowercase=False)
    assert kept_case["query"][0] == "Chef KNIFE" and kept_case["category_levels"][0][0] == "Home & Garden"


def test_grouping_key_folds_case_width_and_space():
    assert grouping_key("  iPhone\t15  ") == grouping_key("iphone 15") == grouping_key("ｉＰｈｏｎｅ 15")
    assert grouping_key(None) == "" == grouping_key("   ")
    assert category_prefix_key(["A, B", "C", "D"], 2) == category_prefix_key(["a, b", "c", "x"], 2)
    assert category_prefix_key(["a"], 2) == "a"


# ---------------------------------------------------------------------------------------------------------
# Fold invariants
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    task=st.sampled_from(["qc", "qi"]),
    n_queries=st.integers(min_value=12, max_value=60),
    num_folds=st.integers(min_value=2, max_value=5),
    prefix_levels=st.integers(min_value=1, max_value=3),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_fold_invariants_hold_on_random_data(task, n_queries, num_folds, prefix_levels, seed):
    frame = pd.DataFrame(make_rows(task, n_queries, seed=seed))
    folds, exclude, info = assign_folds(frame, task, num_folds, seed, prefix_levels)
    check_invariants(frame, task, folds, exclude, num_folds, prefix_levels)
    report = fold_report(frame, task, folds, exclude, info, num_folds)
    assert report["leakage_group_key"] == 0 and report["leakage_query_after_purge"] == 0
    assert sum(f["rows"] for f in report["folds"]) == len(frame)
    if task == "qi":
        assert report["train_rows_purged_total"] == 0


def test_folds_are_roughly_balanced():
    rows = make_rows("qi", 900, seed=3)
    frame = pd.DataFrame(rows)
    folds, exclude, info = assign_folds(frame, "qi", 5, 42)
    report = fold_report(frame, "qi", folds, exclude, info, 5)
    overall = frame["label"].mean()
    for fold in report["folds"]:
        assert abs(fold["share"] - 0.2) < 0.03
        assert abs(fold["positive_rate"] - overall) < 0.04
        for language in LANGUAGES:
            share = fold["languages"].get(language, 0) / fold["rows"]
            assert abs(share - (frame["language"] == language).mean()) < 0.04

    qc = pd.DataFrame(make_rows("qc", 900, seed=4))
    folds, exclude, info = assign_folds(qc, "qc", 4, 42, category_prefix_levels=2)
    check_invariants(qc, "qc", folds, exclude, 4)
    sizes = np.bincount(folds, minlength=4) / len(qc)
    # 13 prefix groups of uneven size: folds cannot be exact, but none may be empty or dominant.
    assert sizes.min() > 0.1 and sizes.max() < 0.45


@pytest.mark.parametrize("task", ["qc", "qi"])
def test_deterministic_under_seed_and_row_order(task):
    frame = pd.DataFrame(make_rows(task, 200, seed=7))
    folds_a, exclude_a, _ = assign_folds(frame, task, 5, seed=1)
    folds_b, exclude_b, _ = assign_folds(frame, task, 5, seed=1)
    assert folds_a.tolist() == folds_b.tolist() and exclude_a == exclude_b
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    folds_d, _, _ = assign_folds(shuffled, task, 5, seed=1)
    by_id = dict(zip(frame["id"], folds_a.tolist()))
    assert [by_id[i] for i in shuffled["id"]] == folds_d.tolist()
    if task == "qi":
        # Many query groups tie on their class spread, and the seed orders the ties. (A dozen QC prefix
        # groups rarely tie, so there the seed may change nothing: that is StratifiedGroupKFold's design.)
        folds_c, _, _ = assign_folds(frame, task, 5, seed=2)
        assert folds_c.tolist() != folds_a.tolist()


def test_too_few_groups_is_a_clear_error():
    frame = pd.DataFrame(make_rows("qi", 3, seed=0))
    with pytest.raises(ValueError, match="distinct group"):
        assign_folds(frame, "qi", 5, 0)


# ---------------------------------------------------------------------------------------------------------
# End to end: files in, DatasetDict + report out
# ---------------------------------------------------------------------------------------------------------


def run_main(*argv):
    return make_folds.main(list(argv))


def test_end_to_end_qi_with_test_split(tmp_path):
    train = make_rows("qi", 60, seed=11)
    train += [
        {"id": 9001, "task": "QI", "language": "en", "origin_query": "", "item_title": "Something", "label": 0},
        {"id": 9002, "task": "QI", "language": "en", "origin_query": "usb cable", "item_title": None, "label": 0},
        {"id": 9003, "task": "QI", "language": "en", "origin_query": "usb cable", "item_title": "  ", "label": 0},
    ]
    test = [{k: v for k, v in r.items() if k != "label"} for r in make_rows("qi", 15, seed=12, languages=["de", "vn"])]
    for offset, row in enumerate(test):
        row["id"] = 50_000 + offset
    test[0]["origin_query"] = "   "
    test[1]["item_title"] = None
    out = tmp_path / "folds"
    dataset, report = run_main(
        "--train_file", write_jsonl(tmp_path / "train.jsonl", train),
        "--test_file", write_jsonl(tmp_path / "test.jsonl", test),
        "--output_dir", str(out), "--num_folds", "4",
    )
    loaded = load_folded_dataset(str(out))
    assert set(loaded) == {"train", "test"}
    assert len(loaded["train"]) == len(train) and len(loaded["test"]) == len(test)
    expected = {"id", "task", "language", "origin_query", "item_title", "label", "query", "target", "fold",
                "exclude_from_train_folds"}
    assert set(loaded["train"].column_names) == expected
    # One schema for both splits (the Hub needs it): the test split's labels are null, not made up.
    assert loaded["test"].column_names == loaded["train"].column_names
    assert loaded["test"].features == loaded["train"].features
    assert set(loaded["test"]["label"]) == {None}
    assert set(loaded["test"]["fold"]) == {-1} and all(x == [] for x in loaded["test"]["exclude_from_train_folds"])
    assert loaded["test"]["id"] == [r["id"] for r in test]
    rows = {r["id"]: r for r in loaded["train"]}
    assert rows[9001]["query"] == "" and rows[9002]["item_title"] is None and rows[9002]["target"] == ""
    assert rows[9003]["item_title"] == "  " and rows[9003]["target"] == ""
    # raw columns as read, model columns normalised and lowercased
    for raw in train:
        assert rows[raw["id"]]["origin_query"] == raw["origin_query"]
        assert rows[raw["id"]]["query"] == " ".join(raw["origin_query"].split()).lower()
    check_invariants(loaded["train"].to_pandas(), "qi", loaded["train"]["fold"],
                     loaded["train"]["exclude_from_train_folds"], 4)
    saved = json.loads((out / "fold_report.json").read_text())
    assert saved["inputs"]["train"]["empty_queries"] == 1
    assert saved["inputs"]["train"]["null_or_empty_item_title"] == 2
    assert saved["inputs"]["train"]["null_item_title"] == 1
    assert saved["inputs"]["test"]["empty_queries"] == 1 and saved["inputs"]["test"]["null_item_title"] == 1
    assert saved["inputs"]["test"]["languages_not_in_train"] == ["de", "vn"]
    assert saved["leakage_query"] == 0 and saved["leakage_query_after_purge"] == 0 and saved["wall_time_s"] > 0
    assert report["rows"] == len(train)
    # A rerun over its own output replaces it; a foreign non-empty folder is refused.
    run_main("--train_file", str(tmp_path / "train.jsonl"), "--output_dir", str(out), "--num_folds", "4")
    assert set(load_folded_dataset(str(out))) == {"train"}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="overwrite_output_dir"):
        run_main("--train_file", str(tmp_path / "train.jsonl"), "--output_dir", str(foreign))


def test_no_lowercase_keeps_case_but_groups_case_insensitively(tmp_path):
    rows = make_rows("qc", 40, seed=5)
    dataset, report = run_main("--train_file", write_jsonl(tmp_path / "t.jsonl", rows), "--output_dir",
                               str(tmp_path / "o"), "--no_lowercase")
    train = dataset["train"]
    upper = [r for r in train if r["origin_query"].isupper()]
    assert upper and all(r["query"] == " ".join(r["origin_query"].split()) for r in upper)
    check_invariants(train.to_pandas(), "qc", train["fold"], train["exclude_from_train_folds"], 5)


def test_csv_and_parquet_inputs_give_the_same_folds(tmp_path):
    rows = make_rows("qi", 50, seed=9)
    rows[3]["item_title"] = None  # an empty CSV cell
    rows[4]["origin_query"] = "NA"  # a real query, not a missing value
    frame = pd.DataFrame(rows)
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    results = {}
    for name in ("train.csv", "train.parquet"):
        dataset, _ = run_main("--train_file", str(tmp_path / name), "--output_dir", str(tmp_path / f"out_{name}"))
        results[name] = dataset["train"]
    json_dataset = run_main("--train_file", write_jsonl(tmp_path / "train.jsonl", rows), "--output_dir",
                            str(tmp_path / "out_jsonl"))[0]["train"]
    for dataset in results.values():
        assert dataset["id"] == json_dataset["id"] and dataset["fold"] == json_dataset["fold"]
        assert dataset["label"] == json_dataset["label"]
        assert dataset[3]["item_title"] is None and dataset[4]["origin_query"] == "NA"


def test_dataset_folder_input(tmp_path):
    import datasets

    rows = make_rows("qc", 40, seed=13)
    test = [{k: v for k, v in r.items() if k != "label"} for r in make_rows("qc", 5, seed=14)]
    for offset, row in enumerate(test):
        row["id"] = 70_000 + offset
    raw = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(test)})
    raw.save_to_disk(str(tmp_path / "raw"))
    dataset, _ = run_main("--dataset_name", str(tmp_path / "raw"), "--output_dir", str(tmp_path / "out"))
    assert len(dataset["train"]) == len(rows) and set(dataset["test"]["fold"]) == {-1}
    # A folder of data files (read by `datasets.load_dataset`).
    files = tmp_path / "files"
    files.mkdir()
    write_jsonl(files / "train.jsonl", rows)
    dataset_files, _ = run_main("--dataset_name", str(files), "--output_dir", str(tmp_path / "out2"))
    assert dataset_files["train"]["fold"] == dataset["train"]["fold"] and "test" not in dataset_files


def test_task_is_inferred_or_required(tmp_path):
    rows = make_rows("qc", 20, seed=1)
    assert read_raw_file(write_jsonl(tmp_path / "a.jsonl", rows))[2] == "qc"
    both = [{**r, "item_title": "x"} for r in rows]
    for r in both:
        r.pop("task")
    with pytest.raises(DataValidationError, match="--task"):
        read_raw_file(write_jsonl(tmp_path / "b.jsonl", both))
    assert read_raw_file(str(tmp_path / "b.jsonl"), task="qi")[2] == "qi"
    with pytest.raises(DataValidationError, match=r"a\.jsonl: missing required column\(s\) \['item_title'\]"):
        read_raw_file(str(tmp_path / "a.jsonl"), task="qi")


def test_sample_fixture_folds_cleanly(tmp_path):
    sample = os.path.join(REPO_ROOT, "data", "sample")
    for task in ("QC", "QI"):
        dataset, report = run_main(
            "--train_file", os.path.join(sample, f"train_{task}.jsonl"),
            "--test_file", os.path.join(sample, f"test_{task}.jsonl"), "--output_dir", str(tmp_path / task),
        )
        train = dataset["train"].to_pandas()
        check_invariants(train, task.lower(), train["fold"], train["exclude_from_train_folds"], 5)
        assert 0.55 < report["positive_rate"] < 0.75
        assert report["inputs"]["train"]["empty_queries"] >= 1 and report["inputs"]["test"]["empty_queries"] >= 1
        assert report["inputs"]["test"]["languages_not_in_train"]
        if task == "QI":
            assert report["inputs"]["train"]["null_item_title"] >= 1


# ---------------------------------------------------------------------------------------------------------
# Bad input: an error naming file, line and field, or a counted skip
# ---------------------------------------------------------------------------------------------------------

GOOD = {"id": 1, "task": "QI", "language": "en", "origin_query": "usb cable", "item_title": "USB Cable", "label": 1}


def bad_file(tmp_path, bad_line):
    lines = [json.dumps({**GOOD, "id": i, "origin_query": f"q{i}"}) for i in range(1, 8)]
    lines.insert(2, bad_line)  # becomes line 3
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


BAD_LINES = {
    "malformed": ('{"id": 100, "task": "QI", "language": "en", "origin_query": "x"', "<line>", "malformed JSON"),
    "not_object": ("[1, 2, 3]", "<line>", "expected a JSON object"),
    "missing_field": (json.dumps({k: v for k, v in {**GOOD, "id": 100}.items() if k != "item_title"}),
                      "item_title", "missing required field"),
    "missing_label": (json.dumps({k: v for k, v in {**GOOD, "id": 100}.items() if k != "label"}),
                      "label", "missing required field"),
    "label_2": (json.dumps({**GOOD, "id": 100, "label": 2}), "label", "expected 0 or 1"),
    "label_text": (json.dumps({**GOOD, "id": 100, "label": "yes"}), "label", "expected 0 or 1"),
    "label_null": (json.dumps({**GOOD, "id": 100, "label": None}), "label", "expected 0 or 1"),
    "duplicate_id": (json.dumps({**GOOD, "id": 1}), "id", "duplicate id 1"),
    "null_id": (json.dumps({**GOOD, "id": None}), "id", "null id"),
    "wrong_task": (json.dumps({**GOOD, "id": 100, "task": "QC"}), "task", "row in a QI file"),
    "query_not_text": (json.dumps({**GOOD, "id": 100, "origin_query": ["a"]}), "origin_query", "expected a string"),
    "empty_language": (json.dumps({**GOOD, "id": 100, "language": ""}), "language", "language code"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_is_an_error_naming_file_line_and_field(tmp_path, case):
    line, field, reason = BAD_LINES[case]
    path = bad_file(tmp_path, line)
    with pytest.raises(DataValidationError) as err:
        read_raw_file(path, task="qi")
    message = str(err.value)
    assert f"{path}:3: field '{field}'" in message and reason in message
    assert "--skip_invalid" in message


@pytest.mark.parametrize("case", ["malformed", "label_2", "duplicate_id", "missing_field"])
def test_skip_invalid_counts_and_lists_skips(tmp_path, case):
    line, field, reason = BAD_LINES[case]
    path = bad_file(tmp_path, line)
    dataset, report = run_main("--train_file", path, "--task", "qi", "--skip_invalid", "--num_folds", "3",
                               "--output_dir", str(tmp_path / "out"))
    assert len(dataset["train"]) == 7
    stats = report["inputs"]["train"]
    assert stats["rows_read"] == 8 and stats["rows_kept"] == 7 and stats["rows_skipped"] == 1
    assert stats["skipped_by_field"] == {field: 1}
    assert stats["skipped_rows"][0]["location"] == f"{path}:3" and reason in stats["skipped_rows"][0]["reason"]


def test_test_rows_are_never_skipped(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", make_rows("qi", 20, seed=2))
    test_rows = [{k: v for k, v in GOOD.items() if k != "label"} for _ in range(3)]
    for i, row in enumerate(test_rows):
        row["id"] = 500 + i
    test_rows[2]["id"] = 500  # duplicate id in the test file
    test = write_jsonl(tmp_path / "test.jsonl", test_rows)
    with pytest.raises(DataValidationError, match=r"test\.jsonl:3: field 'id': duplicate id 500") as err:
        run_main("--train_file", train, "--test_file", test, "--skip_invalid", "--output_dir", str(tmp_path / "o"))
    assert "never skipped" in str(err.value)


def test_blank_lines_are_counted_and_bom_ignored(tmp_path):
    rows = make_rows("qi", 10, seed=3)
    text = "\ufeff" + "\n\n".join(json.dumps(r) for r in rows) + "\n\n"
    path = tmp_path / "t.jsonl"
    path.write_text(text, encoding="utf-8")
    frame, stats, task = read_raw_file(str(path))
    assert len(frame) == len(rows) and stats.blank_lines == len(rows) and task == "qi"


def test_csv_errors_name_the_row_and_column(tmp_path):
    frame = pd.DataFrame(make_rows("qi", 10, seed=4))
    frame.loc[1, "label"] = 3
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataValidationError, match=r"bad\.csv: row 2: field 'label': expected 0 or 1, got 3"):
        read_raw_file(str(tmp_path / "bad.csv"))
    frame.drop(columns=["language"]).to_csv(tmp_path / "nolang.csv", index=False)
    with pytest.raises(DataValidationError, match=r"nolang\.csv: missing required column\(s\) \['language'\]"):
        read_raw_file(str(tmp_path / "nolang.csv"))
    (tmp_path / "data.xlsx").write_text("")
    with pytest.raises(DataValidationError, match="unknown file type"):
        read_raw_file(str(tmp_path / "data.xlsx"))


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------


def test_help_documents_every_flag():
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "make_folds.py"), "--help"],
                            capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    for dataclass_type in (make_folds.DataArguments, make_folds.FoldArguments, make_folds.OutputArguments):
        for item in fields(dataclass_type):
            assert f"--{item.name}" in result.stdout
            assert item.metadata.get("help"), f"{item.name} has no help string"
    assert "--no_lowercase" in result.stdout and "--no_hub_private" in result.stdout


def test_cli_exits_nonzero_with_a_readable_error(tmp_path, monkeypatch, capsys):
    path = bad_file(tmp_path, "{not json")
    monkeypatch.setattr(sys, "argv", ["make_folds.py", "--train_file", path, "--output_dir", str(tmp_path / "o")])
    monkeypatch.delenv("RELEVANCE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(make_folds.main)
    assert exit_info.value.code == 1
    assert f"make_folds.py: error: {path}:3: field '<line>': malformed JSON" in capsys.readouterr().err


def test_unlabelled_read_keeps_and_checks_labels_when_present(tmp_path):
    rows = make_rows("qi", 10, seed=6)
    frame, _, _ = read_raw_file(write_jsonl(tmp_path / "held_out.jsonl", rows), labelled=False)
    assert frame["label"].tolist() == [r["label"] for r in rows] and str(frame["label"].dtype) == "int64"
    rows[1]["label"] = 5
    with pytest.raises(DataValidationError, match=r"held_out\.jsonl:2: field 'label': expected 0 or 1, got 5"):
        read_raw_file(write_jsonl(tmp_path / "held_out.jsonl", rows), labelled=False)
