#!/usr/bin/env python
"""Make a folded dataset whose training rows never include some languages: a check on languages unseen in training.

The competition's test set (and the held-out sets this project is judged on) has languages that are absent from
training; every dev language is in every fold's training rows, so the dev folds cannot show what happens to them.
This script copies a folded dataset (make_folds.py, or run_translate.py's copy with `query_en`) and adds every fold
but its own to the `exclude_from_train_folds` of each row in the held-out languages: whichever fold a run
validates on, it trains on none of those rows and still scores them (they stay in their own validation fold).
Rows, ids and folds are unchanged, so runs on the copy pair with runs on the original row for row.

    python benchmarks/unseen_languages.py --dataset_name outputs/folds_qc_dev --languages fr,ja \
        --output_dir outputs/folds_qc_dev_unseenfrja
    python benchmarks/unseen_languages.py --dataset_name outputs/folds_qc_dev_en --languages fr,ja \
        --output_dir outputs/folds_qc_dev_en_unseenfrja
    bash benchmarks/recipe_experiments.sh p3_qc_unseenfrja_f0 p3_qc_translateunseenfrja_f0

With two held-out sets (fr,ja and es,ko), `--compose` pools them: each composite arm scores every row of a held-out
language with the run that held that language out (read from the run's dataset), and a plain arm (the reference,
trained on every language) scores the same rows. It writes phase-3 run folders, so phase3.py makes the table:

    python benchmarks/unseen_languages.py --compose unseenfrja+unseenesko,translateunseenfrja+translateunseenesko,ref \
        --names unseen,translateunseen,ref --runs_dir outputs/recipe --output_dir outputs/unseen_qc/runs
    python benchmarks/phase3.py --task qc --dataset_name outputs/folds_qc_dev --runs_dir outputs/unseen_qc/runs \
        --arms unseen,translateunseen,ref
"""

import glob
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd
from transformers import HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.fresh_rows import OOF_FILE, RUN_FILES  # noqa: E402  (the files of a phase-3 run folder)
from utils_data import load_folded_dataset  # noqa: E402


@dataclass
class Arguments:
    output_dir: str = field(metadata={"help": "Where to write the copy (save_to_disk), or --compose's run folders."})
    dataset_name: Optional[str] = field(default=None, metadata={"help": "Folded dataset folder (make_folds.py or "
                                                                "run_translate.py)."})
    languages: Optional[str] = field(default=None, metadata={"help": "Comma-separated languages to hold out of "
                                                             "every fold's training rows."})
    split: str = field(default="train", metadata={"help": "The folded split."})
    compose: Optional[str] = field(
        default=None,
        metadata={"help": "Instead: comma-separated composite arms, members joined by '+' (runs "
                  "RUNS_DIR/p3_<task>_<member>_f<fold>); each held-out language's rows come from the member that "
                  "held it out. Only rows of languages some member held out are kept."},
    )
    names: Optional[str] = field(default=None, metadata={"help": "--compose: the composite arms' names, in order."})
    runs_dir: str = field(default="outputs/recipe", metadata={"help": "--compose: folder of the p3_* runs."})
    task: str = field(default="qc", metadata={"help": "--compose: the task of the runs."})

    def __post_init__(self):
        if self.compose:
            self.compose = [arm.split("+") for arm in self.compose.split(",") if arm.strip()]
            self.names = [n.strip() for n in (self.names or "").split(",") if n.strip()]
            if len(self.names) != len(self.compose):
                raise SystemExit(f"--names: give one name per --compose arm ({len(self.compose)})")
            return
        if not self.dataset_name or not self.languages:
            raise SystemExit("give --dataset_name and --languages (or --compose with --names)")
        self.languages = [lang.strip() for lang in self.languages.split(",") if lang.strip()]
        if not self.languages:
            raise SystemExit("--languages: give at least one language, e.g. --languages fr,ja")
        if not os.path.isdir(self.dataset_name):
            raise SystemExit(f"--dataset_name {self.dataset_name}: no such folder; write it with make_folds.py")


def main(args: Arguments) -> dict:
    dataset = load_folded_dataset(args.dataset_name)
    folded = dataset[args.split]
    present = set(folded["language"])
    missing = [lang for lang in args.languages if lang not in present]
    if missing:
        raise SystemExit(f"--languages: {missing} not in {args.dataset_name} (its languages: {sorted(present)})")
    folds = sorted(set(folded["fold"]))
    held_out = set(args.languages)

    def hold_out(row):
        if row["language"] in held_out:
            row["exclude_from_train_folds"] = [f for f in folds if f != row["fold"]]
        return row

    dataset[args.split] = folded.map(hold_out, desc="holding out " + ",".join(args.languages))
    dataset.save_to_disk(args.output_dir)
    info = {"dataset_name": args.dataset_name, "languages_held_out": args.languages, "folds": folds,
            "rows_held_out": sum(lang in held_out for lang in folded["language"]), "rows": len(folded),
            "command": "python " + " ".join(sys.argv)}
    with open(os.path.join(args.output_dir, "unseen_languages.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(json.dumps(info))
    return info


def held_out_languages(run: str) -> list:
    """The languages the run's dataset held out of training (none for a dataset this script did not write)."""
    config = json.load(open(os.path.join(run, "relevance_config.json")))
    info = os.path.join(config["dataset_name"][0], "unseen_languages.json")
    return json.load(open(info))["languages_held_out"] if os.path.isfile(info) else []


def compose(args: Arguments) -> None:
    runs = {m: sorted(glob.glob(os.path.join(args.runs_dir, f"p3_{args.task}_{m}_f[0-9]")))
            for arm in args.compose for m in arm}
    for member, found in runs.items():
        if not found:
            raise SystemExit(f"--compose: no run p3_{args.task}_{member}_f* in {args.runs_dir}")
    folds = [sorted(run[-1] for run in runs[arm[0]]) for arm in args.compose]
    if any(f != folds[0] for f in folds):
        raise SystemExit(f"--compose: the members were run on different folds ({folds})")
    held = {m: held_out_languages(found[0]) for m, found in runs.items()}
    kept = sorted({lang for languages in held.values() for lang in languages})
    if not kept:
        raise SystemExit("--compose: no member held any language out (benchmarks/unseen_languages.py datasets)")
    for name, arm in zip(args.names, args.compose):
        for fold in folds[0]:
            frames, oof = [], {}  # oof: each member run's rows, read once
            for lang in kept:
                members = [m for m in arm if lang in held[m]] or (arm if len(arm) == 1 else [])
                if len(members) != 1:
                    raise SystemExit(f"--compose {'+'.join(arm)}: {len(members)} members held {lang} out; need one")
                if members[0] not in oof:
                    run = os.path.join(args.runs_dir, f"p3_{args.task}_{members[0]}_f{fold}")
                    oof[members[0]] = pd.read_parquet(os.path.join(run, OOF_FILE))
                frames.append(oof[members[0]][oof[members[0]]["language"] == lang])
            out = os.path.join(args.output_dir, f"p3_{args.task}_{name}_f{fold}")
            os.makedirs(out, exist_ok=True)
            first = os.path.join(args.runs_dir, f"p3_{args.task}_{arm[0]}_f{fold}")
            for file in RUN_FILES:
                if os.path.isfile(os.path.join(first, file)):
                    shutil.copy(os.path.join(first, file), out)
            pd.concat(frames, ignore_index=True).to_parquet(os.path.join(out, OOF_FILE))
            with open(os.path.join(out, "composed.json"), "w") as f:
                json.dump({"members": {m: held[m] for m in arm}, "languages": kept,
                           "command": "python " + " ".join(sys.argv)}, f, indent=2)
    print(f"composed {args.names} on languages {kept}, folds {folds[0]}: {args.output_dir}")


if __name__ == "__main__":
    (arguments,) = HfArgumentParser(Arguments).parse_args_into_dataclasses()
    compose(arguments) if arguments.compose else main(arguments)
