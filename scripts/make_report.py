#!/usr/bin/env python
"""Write a Markdown report of a pipeline run (scripts/run_recipe.py output folder), with a PNG plot.

Everything in it is read from what the pipeline wrote, nothing is re-run:

* F1 of the positive class per fold and per language, on each fold's held-out rows at threshold 0.5
  (`{stage}/{task}/fold{k}/oof_predictions.parquet`, the submission stage's folds), and pooled over the folds;
* out-of-fold F1 at 0.5 against the tuned thresholds, global and per language, in-sample and cross-fitted
  (`submission/thresholds_{task}.json` from make_submission.py) and the strategy the submission used;
* the plot `f1_vs_threshold.png`: OOF F1 against the decision threshold per task (all rows and per language) and
  the OOF probability histograms by label;
* wall time per step (`run_recipe_timings.json`, `demo_timings.json`; a step skipped on a rerun shows the time
  it took when it ran, from `demo_history.jsonl`);
* the submission files re-checked against the raw test files with make_submission.check_submission;
* a few translations (`data/folds_{task}_en`) and the Hub repos the run created (local Hub storage).

    python scripts/make_report.py --output_dir outputs/demo     # -> outputs/demo/report.md
"""

import datetime
import glob
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import f1_score, roc_auc_score
from transformers import HfArgumentParser

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

logger = logging.getLogger("make_report")

OOF_FILE = "oof_predictions.parquet"
PLOT_FILE = "f1_vs_threshold.png"
STRATEGIES = ("fixed", "global", "per_language", "all_positive")


@dataclass
class ReportArguments:
    """Which run to report on and where the report goes."""

    output_dir: str = field(
        default=os.path.join("outputs", "demo"), metadata={"help": "Output folder of scripts/run_recipe.py."}
    )
    pipeline: Optional[str] = field(
        default=None,
        metadata={"help": "Pipeline YAML that ran. Default: OUTPUT_DIR/demo_pipeline.yaml (written by scripts/demo.py)."},
    )
    report_file: Optional[str] = field(default=None, metadata={"help": "Default: OUTPUT_DIR/report.md."})
    num_translations: int = field(default=12, metadata={"help": "Translations quoted in the report (0: none)."})
    num_errors: int = field(default=10, metadata={"help": "Most confident false positives and negatives listed per "
                                                          "task (0: none)."})


# ----------------------------------------------------------------------------------------------------------------
# Reading what the pipeline wrote
# ----------------------------------------------------------------------------------------------------------------


def read_json(path, default=None):
    if not os.path.isfile(path):
        return default
    with open(path) as f:
        return json.load(f)


def fold_runs(out: str, pipe: dict) -> tuple:
    """(stage name, {task: [(fold, run folder)]}) of the stage the submission ensembles (else the last stage)."""
    stages = pipe.get("stages") or []
    name = (pipe.get("submission") or {}).get("stage") or (stages[-1]["name"] if stages else None)
    runs = {}
    for folder in sorted(glob.glob(os.path.join(out, str(name), "*", "fold[0-9]*"))):
        task = os.path.basename(os.path.dirname(folder))
        runs.setdefault(task, []).append((int(os.path.basename(folder)[4:]), folder))
    return name, {task: sorted(items) for task, items in sorted(runs.items())}


def read_oof(runs: dict) -> dict:
    """task -> OOF rows of all its folds (missing files are listed in the report, not skipped silently)."""
    oof, missing = {}, []
    for task, items in runs.items():
        frames = []
        for fold, folder in items:
            path = os.path.join(folder, OOF_FILE)
            if os.path.isfile(path):
                frames.append(pd.read_parquet(path).assign(fold=fold))
            else:
                missing.append(path)
        if frames:
            oof[task] = pd.concat(frames, ignore_index=True)
    return oof, missing


def f1(labels, probabilities, threshold=0.5) -> float:
    return float(f1_score(np.asarray(labels, dtype=int), np.asarray(probabilities) >= threshold, zero_division=0))


def f1_curve(labels, probabilities, grid) -> np.ndarray:
    """F1 of the positive class at every threshold of `grid` (predict 1 when probability >= threshold)."""
    labels = np.asarray(labels, dtype=bool)
    predicted = np.asarray(probabilities)[None, :] >= grid[:, None]
    tp = (predicted & labels).sum(1)
    fp = (predicted & ~labels).sum(1)
    fn = (~predicted & labels).sum(1)
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


# ----------------------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------------------


def show_path(path) -> str:
    """Paths inside the repository are shown relative to it (the report may be read on another machine)."""
    if not path or not os.path.isabs(str(path)):
        return str(path)
    inside = os.path.commonpath([str(path), REPO_ROOT]) == REPO_ROOT
    return os.path.relpath(path, REPO_ROOT) if inside else str(path)


def fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)


def table(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def auc(labels, probabilities):
    labels = np.asarray(labels, dtype=int)
    return float(roc_auc_score(labels, probabilities)) if 0 < labels.sum() < len(labels) else None


def section_learned(oof: dict) -> list:
    """One line per task that says at once whether the model learned anything."""
    lines = ["## Did the model learn?", ""]
    for task, frame in oof.items():
        score, at_half, trivial = auc(frame["label"], frame["probability"]), f1(frame["label"], frame["probability"]), \
            f1(frame["label"], np.ones(len(frame)))
        verdict = ("it ranks no better than chance" if score is None or score < 0.55 else
                   "it ranks better than chance" + ("" if at_half > trivial else
                                                    ", but F1 at 0.5 does not beat predicting every row relevant"))
        lines.append(f"- **{task.upper()}**: out-of-fold AUC {fmt(score)}, F1 at 0.5 {at_half:.3f} against "
                     f"{trivial:.3f} for all-positive ({len(frame)} rows, {frame['label'].mean():.0%} positive): "
                     f"{verdict}.")
    return lines + [""]


def section_f1(oof: dict) -> list:
    lines = ["## F1 per fold and per language (threshold 0.5)", "",
             "F1 of the positive class on each fold's held-out rows, predicted by the model that did not train on "
             "them (out-of-fold), at the fixed threshold 0.5, beside the F1 of predicting every row relevant "
             "(all-pos) and the AUC; `OOF` pools the folds. Language cells: F1 / all-pos (rows).", ""]
    for task, frame in oof.items():
        languages = sorted(frame["language"].unique())
        rows = []
        for fold, part in [(f"fold {k}", g) for k, g in frame.groupby("fold", sort=True)] + [("OOF", frame)]:
            row = [task.upper(), fold, len(part), auc(part["label"], part["probability"]),
                   f1(part["label"], part["probability"]), f1(part["label"], np.ones(len(part)))]
            for language in languages:
                sub = part[part["language"] == language]
                row.append(f"{f1(sub['label'], sub['probability']):.3f} / {f1(sub['label'], np.ones(len(sub))):.3f} "
                           f"({len(sub)})" if len(sub) else "-")
            rows.append(row)
        lines += table(["task", "fold", "rows", "AUC", "F1 at 0.5", "F1 all-pos"] + languages, rows)
    return lines


def section_errors(out: str, oof: dict, num: int) -> list:
    """The most confident out-of-fold errors: false positives and false negatives with the highest confidence."""
    from datasets import load_from_disk

    lines = ["## Most confident out-of-fold errors", "",
             f"The {num} false positives with the highest P(relevant) and the {num} false negatives with the lowest, "
             "at threshold 0.5 (label = the dataset's).", ""]
    for task, frame in oof.items():
        folder = next((f for f in (os.path.join(out, "data", f"folds_{task}_en"), os.path.join(out, "data",
                                                                                               f"folds_{task}"))
                       if os.path.isfile(os.path.join(f, "dataset_dict.json"))), None)
        if folder is None:
            lines += [f"{task.upper()}: no folded dataset under {show_path(os.path.join(out, 'data'))}.", ""]
            continue
        text = load_from_disk(folder)["train"].select_columns(["id", "query", "target"]).to_pandas()
        rows = frame.assign(id=frame["id"].astype(str)).merge(text.assign(id=text["id"].astype(str)), on="id")
        errors = [("false positive", rows[(rows["label"] == 0) & (rows["probability"] >= 0.5)]
                   .nlargest(num, "probability")),
                  ("false negative", rows[(rows["label"] == 1) & (rows["probability"] < 0.5)]
                   .nsmallest(num, "probability"))]
        lines += [f"### {task.upper()}", ""]
        lines += table(["error", "P(relevant)", "language", "query", "target"],
                       [[kind, r.probability, r.language, str(r.query).replace("|", "/"),
                         str(r.target).replace("|", "/")[:120]]
                        for kind, part in errors for r in part.itertuples()])
    return lines


def section_thresholds(out: str, oof: dict) -> list:
    lines = ["## Out-of-fold F1: threshold 0.5 against tuned thresholds", "",
             "From `submission/thresholds_{task}.json` (make_submission.py). *In-sample*: thresholds fitted and "
             "scored on the same OOF rows (optimistic). *Cross-fitted*: fitted on the other folds, scored on the "
             "held-out fold (honest). The submission uses the strategy marked *used*.", ""]
    for task in sorted(oof):
        report = read_json(os.path.join(out, "submission", f"thresholds_{task}.json"))
        if report is None:
            lines += [f"{task.upper()}: no thresholds file (the submission step did not run).", ""]
            continue
        rows = []
        for strategy in STRATEGIES:
            if strategy == "fixed":
                threshold = fmt(report.get("fixed"))
            elif strategy == "global":
                threshold = fmt(report.get("global"))
            elif strategy == "all_positive":
                threshold = "every row relevant"
            else:
                threshold = f"{len(report.get('per_language', {}))} languages, others global"
            rows.append([strategy + (" (used)" if report.get("strategy") == strategy else ""), threshold,
                         report.get("in_sample_f1", {}).get(strategy), report.get("cross_fitted_f1", {}).get(strategy)])
        lines += [f"### {task.upper()} ({report.get('oof_rows', 0)} OOF rows)", ""]
        lines += table(["thresholds", "value", "OOF F1 in-sample", "OOF F1 cross-fitted"], rows)
        frame = oof[task]
        per_language = report.get("per_language", {})
        rows = []
        for language, group in frame.groupby("language", sort=True):
            tuned = per_language.get(language)
            used = tuned if tuned is not None else report.get("global")
            rows.append([language, len(group), f1(group["label"], group["probability"]),
                         fmt(tuned) if tuned is not None else f"global {fmt(report.get('global'))}",
                         f1(group["label"], group["probability"], used) if used is not None else None])
        lines += table(["language", "OOF rows", "F1 at 0.5", "tuned threshold", "F1 at tuned (in-sample)"], rows)
        fallback = report.get("fallback_languages") or {}
        if fallback:
            lines += ["Languages on the global threshold: " + ", ".join(f"{k} ({v})" for k, v in fallback.items()),
                      ""]
    return lines


def plot(oof: dict, out: str, plot_path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    tasks = sorted(oof)
    grid = np.linspace(0.0, 1.0, 201)
    fig, axes = plt.subplots(2, len(tasks), figsize=(6 * len(tasks), 8), squeeze=False)
    for column, task in enumerate(tasks):
        frame = oof[task]
        ax = axes[0][column]
        for language, group in frame.groupby("language", sort=True):
            ax.plot(grid, f1_curve(group["label"], group["probability"], grid), linewidth=0.8, alpha=0.6,
                    label=f"{language} ({len(group)})")
        ax.plot(grid, f1_curve(frame["label"], frame["probability"], grid), color="black", linewidth=2.5,
                label=f"all ({len(frame)})")
        ax.axvline(0.5, color="grey", linestyle=":", label="0.5")
        report = read_json(os.path.join(out, "submission", f"thresholds_{task}.json"), {})
        if report.get("global") is not None:
            ax.axvline(report["global"], color="red", linestyle="--", label=f"tuned {report['global']:.3f}")
        ax.set(title=f"{task.upper()}: out-of-fold F1 against the threshold", xlabel="threshold on P(relevant)",
               ylabel="F1 (positive class)", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(fontsize=7, loc="lower left")
        ax = axes[1][column]
        bins = np.linspace(0, 1, 41)
        for label, color in ((0, "tab:blue"), (1, "tab:orange")):
            ax.hist(frame.loc[frame["label"] == label, "probability"], bins=bins, alpha=0.6, color=color,
                    label=f"label {label}")
        ax.set(title=f"{task.upper()}: out-of-fold P(relevant) by label", xlabel="P(relevant)", ylabel="rows",
               xlim=(0, 1))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(plot_path, dpi=100)
    plt.close(fig)


def section_timings(out: str) -> list:
    lines = ["## Wall time per step", ""]
    demo = read_json(os.path.join(out, "demo_timings.json"), {})
    driver = read_json(os.path.join(out, "run_recipe_timings.json"), [])
    earlier = {}
    history = os.path.join(out, "demo_history.jsonl")
    if os.path.isfile(history):
        with open(history) as f:
            for line in f:
                run = json.loads(line)
                for item in run["steps"]:
                    if item["status"] in ("done", "pushed"):
                        earlier[item["step"]] = (item["seconds"], run["finished_at"])
    rows = []
    for item in demo.get("steps", []):
        rows.append(["demo", item["step"], "done", f"{item['seconds']:.1f}"])
    for item in driver:
        status, seconds = item["status"], item["seconds"]
        if status == "skipped" and item["step"] in earlier:
            status = f"skipped ({item.get('reason', 'done')}); it took {earlier[item['step']][0]} s on " \
                     f"{earlier[item['step']][1]}"
        elif status == "skipped":
            status = f"skipped ({item.get('reason', 'done')})"
        rows.append(["pipeline", item["step"], status, f"{seconds:.1f}"])
    lines += table(["part", "step", "status", "seconds"], rows)
    if demo:
        lines += [f"This invocation of scripts/demo.py: {fmt(demo.get('seconds'), 1)} s before the report, started "
                  f"{demo.get('started_at')}, {demo.get('cpu_count')} CPU cores, OMP_NUM_THREADS="
                  f"{demo.get('omp_num_threads')}"
                  + (f" ({demo['threads_chosen_from']})" if demo.get("threads_chosen_from") else "")
                  + (f", fp32 matmul {demo['matmul_gflops_per_thread']} GFLOP/s per thread at the start"
                     if demo.get("matmul_gflops_per_thread") else "")
                  + ". Times on a shared machine vary from run to run: compare them at similar matmul figures.", ""]
    return lines


def section_submission(out: str, pipe: dict) -> list:
    import make_submission as ms

    lines = ["## Submission", ""]
    rows = []
    for task in ("qc", "qi"):
        path = os.path.join(out, "submission", ms.SUBMISSION_FILE[task])
        test_file = ((pipe.get("data") or {}).get(task) or {}).get("test_file")
        if not os.path.isfile(path):
            rows.append([ms.SUBMISSION_FILE[task], "-", "-", "missing"])
            continue
        if not test_file:
            rows.append([ms.SUBMISSION_FILE[task], "-", "-", "no test file in the pipeline to check against"])
            continue
        test_path = test_file if os.path.isabs(test_file) else os.path.join(REPO_ROOT, test_file)
        try:
            result = ms.check_submission(path, ms.load_reference_rows(task, test_file=test_path), task)
            rows.append([ms.SUBMISSION_FILE[task], result["rows"], f"{100 * result['positive_rate']:.1f} %",
                         f"passed against {test_file}"])
        except (ms.SubmissionError, ValueError, OSError) as error:
            rows.append([ms.SUBMISSION_FILE[task], "-", "-", f"FAILED: {str(error).splitlines()[0]}"])
    lines += table(["file", "rows", "predicted positive", "check"], rows)
    zip_path = os.path.join(out, "submission", ms.ZIP_FILE)
    if os.path.isfile(zip_path):
        import zipfile

        with zipfile.ZipFile(zip_path) as archive:
            lines += [f"`{os.path.relpath(zip_path, out)}` holds {sorted(archive.namelist())}.", ""]
    else:
        lines += [f"No `{ms.ZIP_FILE}`.", ""]
    return lines


def section_translations(out: str, pipe: dict, num: int) -> list:
    if not pipe.get("translate") or num <= 0:
        return []
    from datasets import load_from_disk

    lines = ["## Translations (query_en)", "",
             f"Model: `{pipe['translate'].get('model_name_or_path')}`. A few distinct non-English queries and their "
             "translations, as training and prediction saw them:", ""]
    for task in sorted((pipe.get("data") or {})):
        folder = os.path.join(out, "data", f"folds_{task}_en")
        if not os.path.isfile(os.path.join(folder, "dataset_dict.json")):
            continue
        frame = load_from_disk(folder)["train"].select_columns(["language", "query", "query_en"]).to_pandas()
        frame = frame[(frame["language"] != "en") & (frame["query"] != "")].drop_duplicates("query")
        per_language = max(1, num // max(frame["language"].nunique(), 1))
        sample = frame.sort_values(["language", "query"]).groupby("language").head(per_language).head(num)
        stats = read_json(os.path.join(folder, "translate_report.json"), {})
        counts = {k: stats[k] for k in ("distinct_queries", "distinct_to_translate", "cache_hits") if k in stats}
        lines += [f"### {task.upper()} {json.dumps(counts) if counts else ''}", ""]
        lines += table(["language", "query", "query_en"],
                       [[r.language, r.query.replace("|", "/"), r.query_en.replace("|", "/")]
                        for r in sample.itertuples()])
        break  # one task is enough to judge the translations (QI reuses most of QC's queries)
    return lines


def section_hub(out: str) -> list:
    demo = read_json(os.path.join(out, "demo_timings.json"), {})
    storage = demo.get("hub_storage")
    if not storage or not os.path.isdir(os.path.join(storage, "repos")):
        return []
    repos = []
    for kind in ("datasets", "models"):
        for path in sorted(glob.glob(os.path.join(storage, "repos", kind, "*", "*", "repo.json"))):
            namespace, name = path.split(os.sep)[-3:-1]
            repos.append(f"{kind[:-1]} `{namespace}/{name}`")
    return ["## Hub repos", "",
            f"Pushed to the local Hub ({demo.get('hub_endpoint')}, storage `{os.path.relpath(storage, out)}`) and "
            "read back from it by the later steps:", ""] + [f"- {r}" for r in repos] + [""]


# ----------------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------------


def main(argv=None) -> str:
    logging.basicConfig(format="[make_report] %(message)s", level=logging.INFO, stream=sys.stdout)
    (args,) = HfArgumentParser(ReportArguments).parse_args_into_dataclasses(args=argv)
    out = os.path.abspath(args.output_dir)
    pipeline = args.pipeline or os.path.join(out, "demo_pipeline.yaml")
    if not os.path.isfile(pipeline):
        raise FileNotFoundError(f"{pipeline} not found: pass --pipeline (the pipeline YAML that ran)")
    with open(pipeline) as f:
        pipe = yaml.safe_load(f)
    report_path = args.report_file or os.path.join(out, "report.md")
    plot_path = os.path.join(os.path.dirname(os.path.abspath(report_path)), PLOT_FILE)

    # 1. Out-of-fold predictions of the ensembled stage.
    stage, runs = fold_runs(out, pipe)
    oof, missing = read_oof(runs)
    logger.info("Stage %s: OOF rows %s", stage, {task: len(frame) for task, frame in oof.items()})
    demo = read_json(os.path.join(out, "demo_timings.json"), {})

    # 2. The report, section by section.
    lines = [f"# Pipeline report: {pipe.get('name')}", "",
             f"Written {datetime.datetime.now().isoformat(timespec='seconds')} from `{out}`. Pipeline "
             f"`{os.path.relpath(pipeline, out)}` (as it ran); model `{show_path(demo.get('model', '?'))}`; Hub "
             f"{demo.get('hub', '?')} (namespace `{demo.get('hub_namespace', '?')}`); fold ensemble of stage "
             f"`{stage}`.", ""]
    if demo.get("overrides") or demo.get("train_args"):
        lines += [f"Changes to the pipeline for this run: `{demo.get('overrides')}`, extra training arguments "
                  f"`{demo.get('train_args')}`.", ""]
    if missing:
        lines += ["Missing OOF files (folds not in the tables): " + ", ".join(missing), ""]
    if oof:
        lines += section_learned(oof)
        lines += section_f1(oof)
        lines += section_thresholds(out, oof)
        if args.num_errors > 0:
            lines += section_errors(out, oof, args.num_errors)
        plot(oof, out, plot_path)
        lines += ["## Plot", "", f"![F1 against the threshold]({os.path.relpath(plot_path, os.path.dirname(os.path.abspath(report_path)))})",
                  "", "Top: out-of-fold F1 against the decision threshold per task (black: all rows; thin: one line "
                  "per language, rows in brackets; dotted: 0.5; dashed red: the tuned global threshold). Bottom: "
                  "the out-of-fold probabilities by label (well separated humps mean a useful model).", ""]
    else:
        lines += ["No out-of-fold predictions: the training stage did not run.", ""]
    lines += section_submission(out, pipe)
    lines += section_timings(out)
    lines += section_translations(out, pipe, args.num_translations)
    lines += section_hub(out)
    with open(report_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    logger.info("Wrote %s%s", report_path, f" and {plot_path}" if oof else "")
    return report_path


if __name__ == "__main__":
    main()
