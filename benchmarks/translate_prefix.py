"""run_translate.py's shared-prefix cache against none: alternated arms, the same queries, translations compared.

    OMP_NUM_THREADS=1 python benchmarks/translate_prefix.py --num_queries 64     # figures in docs/translation.md
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import run_translate as rt  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model_name_or_path", default=".cache/models/gemma-3-270m", help="A causal LLM folder or id.")
parser.add_argument("--data_file", default="data/sample/train_QC.jsonl", help="Raw QC/QI file: its non-English queries.")
parser.add_argument("--num_queries", type=int, default=64, help="Distinct (language, query) units translated.")
parser.add_argument("--batch_size", type=int, default=16, help="Queries per generate() call.")
parser.add_argument("--max_new_tokens", type=int, default=32, help="As run_translate.py.")
parser.add_argument("--repeats", type=int, default=2, help="Rounds of the two arms, alternated.")
args = parser.parse_args()

rows = [json.loads(line) for line in open(args.data_file, encoding="utf-8") if line.strip()]
units = sorted({(r["language"], str(r["origin_query"]).lower()) for r in rows
                if r.get("language") != "en" and r.get("origin_query")})[: args.num_queries]
outputs, seconds = {}, {True: [], False: []}
for _ in range(args.repeats):
    for prefix_cache in (True, False):
        translator = rt.Translator(rt.ModelArguments(model_name_or_path=args.model_name_or_path),
                                   rt.TranslationArguments(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                                           prefix_cache=prefix_cache))
        encoded = [translator.encode(*unit) for unit in units]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # as run_translate.py plans batches
        translator.load_model(torch.device("cpu"), prompts=encoded)
        start, result = time.time(), {}
        for i in range(0, len(order), args.batch_size):
            batch = order[i : i + args.batch_size]
            result.update(zip(batch, translator.generate([encoded[j] for j in batch])))
        seconds[prefix_cache].append(round(time.time() - start, 1))
        outputs.setdefault(prefix_cache, [result[i] for i in range(len(units))])
same = sum(a == b for a, b in zip(outputs[True], outputs[False]))
print(json.dumps({"queries": len(units), "prefix_tokens": len(os.path.commonprefix(encoded)),
                  "seconds_with_prefix_cache": seconds[True], "seconds_without": seconds[False],
                  "same_translations": same, "threads": torch.get_num_threads(), "load": os.getloadavg()}))
