"""run_translate.py with test hooks, patched in from outside so that the script carries no test-only code.

In this process:  `with hooks(call_log=PATH, crash_after_batches=N, batch_delay=S): run_translate.main(args)`
As a script (subprocesses, `accelerate launch`): `python tests/translate_hooks.py --hook_call_log=PATH
--hook_batch_delay=S --hook_crash_after_batches=N RUN_TRANSLATE_ARGS...` (the `--hook_*=VALUE` flags come first).

- call_log: one JSON line {"rank", "lang", "text"} per query handed to the model (to count model calls);
- batch_delay: sleep between generating a batch and committing it (so that a kill lands on a batch in flight);
- crash_after_batches: raise RuntimeError("simulated crash") once this process has committed N batches.
"""

import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run_translate  # noqa: E402


@contextlib.contextmanager
def hooks(call_log=None, batch_delay: float = 0.0, crash_after_batches=None):
    original = run_translate.translate_batch
    committed = 0

    def translate_batch(translator, cache, todo_units, encoded):
        nonlocal committed
        if call_log:
            rank = run_translate.PartialState().process_index
            with open(call_log, "a", encoding="utf-8") as log:
                for lang, text in todo_units:
                    log.write(json.dumps({"rank": rank, "lang": lang, "text": text}) + "\n")
        generate = translator.generate
        if batch_delay:
            translator.generate = lambda batch_ids: (generate(batch_ids), time.sleep(batch_delay))[0]
        try:
            original(translator, cache, todo_units, encoded)
        finally:
            translator.generate = generate
        committed += 1
        if crash_after_batches is not None and committed >= crash_after_batches:
            raise RuntimeError(f"simulated crash after {committed} committed batches (test hook)")

    run_translate.translate_batch = translate_batch
    try:
        yield
    finally:
        run_translate.translate_batch = original


if __name__ == "__main__":
    options, args = {}, sys.argv[1:]
    while args and args[0].startswith("--hook_"):
        name, _, value = args.pop(0)[len("--hook_"):].partition("=")
        options[name] = value
    sys.argv = [run_translate.__file__, *args]
    with hooks(call_log=options.get("call_log"), batch_delay=float(options.get("batch_delay", 0)),
               crash_after_batches=int(options["crash_after_batches"]) if "crash_after_batches" in options else None):
        run_translate.run_cli(run_translate.main)
    run_translate.PartialState().destroy_process_group()
