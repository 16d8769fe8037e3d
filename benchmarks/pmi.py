#!/usr/bin/env python
"""Zero-shot PMI of the embedded LM (issue 14, lever 5): log p(target | query) - log p(target), no training.

For every row of the given phase-3 runs' validation folds (their OOF files name the rows), the causal LM (all its
layers and its LM head) scores the target's tokens after "Search query: {query}\\n{Target name}: " and after
"{Target name}: " alone; PMI is the difference of the two sums. `benchmarks/phase3.py --pmi_file` then reports it
alone and cross-fitted as a blend with each arm's score.

    OMP_NUM_THREADS=1 python benchmarks/pmi.py --task qc --dataset_name outputs/folds_qc_dev \
        --runs "outputs/recipe/p3_qc_ref_f*" --output_file outputs/recipe/pmi_qc.parquet
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils_data import load_folded_dataset  # noqa: E402

TARGET_NAMES = {"qc": "Product category", "qi": "Product title"}


@torch.inference_mode()
def sum_log_probs(model, tokenizer, pairs: list, batch_size: int, desc: str) -> np.ndarray:
    """For (context, continuation) pairs: the sum of log p(continuation tokens | context), longest first."""
    encoded = []
    for context, continuation in pairs:
        head = tokenizer(context)["input_ids"]  # with BOS
        tail = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        encoded.append((head, tail))
    order = sorted(range(len(pairs)), key=lambda i: -len(encoded[i][0]) - len(encoded[i][1]))
    out = np.zeros(len(pairs))
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", mininterval=10):
        rows = order[start : start + batch_size]
        seqs = [encoded[i][0] + encoded[i][1] for i in rows]
        width = max(map(len, seqs))
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, seq in enumerate(seqs):
            ids[r, : len(seq)], mask[r, : len(seq)] = torch.tensor(seq), 1
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        for r, i in enumerate(rows):
            head, tail = encoded[i]
            # the states that predict the continuation's tokens: positions len(head)-1 .. len(seq)-2
            states = hidden[r, len(head) - 1 : len(head) + len(tail) - 1]
            logits = model.lm_head(states).float()
            if getattr(model.config, "final_logit_softcapping", None):
                cap = model.config.final_logit_softcapping
                logits = torch.tanh(logits / cap) * cap
            out[i] = torch.log_softmax(logits, -1).gather(1, torch.tensor(tail).unsqueeze(1)).sum().item()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=["qc", "qi"], help="Task of the runs.")
    parser.add_argument("--dataset_name", required=True, help="The folded dataset the runs used (row texts).")
    parser.add_argument("--runs", required=True, help="Glob of run_relevance.py folders whose OOF rows to score.")
    parser.add_argument("--model_name_or_path", default=".cache/models/gemma-3-270m", help="A causal LM.")
    parser.add_argument("--batch_size", type=int, default=16, help="Rows per forward pass.")
    parser.add_argument("--output_file", required=True, help="Parquet: id, fold, label, logp_cond, logp_target, pmi.")
    args = parser.parse_args()

    runs = sorted(glob.glob(args.runs))
    oof = pd.concat([pd.read_parquet(os.path.join(run, "oof_predictions.parquet")) for run in runs])
    oof["id"] = oof["id"].astype(str)
    split = load_folded_dataset(args.dataset_name)["train"].select_columns(["id", "query", "target"]).to_pandas()
    split["id"] = split["id"].astype(str)
    rows = oof[["id", "fold", "language", "label"]].merge(split, on="id", how="left", validate="one_to_one")
    if rows["target"].isna().any():
        raise SystemExit(f"{int(rows['target'].isna().sum())} OOF ids are not in {args.dataset_name}")

    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, dtype=torch.float32).eval()
    name = TARGET_NAMES[args.task]
    start = time.time()
    cond = sum_log_probs(model, tokenizer, [(f"Search query: {q}\n{name}:", f" {t}") for q, t in
                                            zip(rows["query"], rows["target"])], args.batch_size, "with query")
    targets = sorted(set(rows["target"]))
    alone = dict(zip(targets, sum_log_probs(model, tokenizer, [(f"{name}:", f" {t}") for t in targets],
                                            args.batch_size, "target alone")))
    rows["logp_cond"], rows["logp_target"] = cond, rows["target"].map(alone)
    rows["pmi"] = rows["logp_cond"] - rows["logp_target"]
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    rows.drop(columns=["query", "target"]).to_parquet(args.output_file, index=False)
    meta = {"command": " ".join(sys.argv), "runs": runs, "rows": len(rows), "distinct_targets": len(targets),
            "seconds": round(time.time() - start, 1), "threads": torch.get_num_threads(), "load": os.getloadavg()}
    with open(os.path.splitext(args.output_file)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
