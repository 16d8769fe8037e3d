"""run_translate.py: each distinct query translated once, rows aligned, crash/kill -9 resume, 2 processes == 1.

Tiny random models (2 layers, d_model 32) and word-level tokenizers are built here. Their "translations" are
noise, which is enough: the tests check which queries reach the model (tests/translate_hooks.py logs every
query handed to generate()), where the outputs land, and that interrupted or split runs give exactly the
dataset an uninterrupted single-process run gives.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HOOKED_SCRIPT = str(REPO_ROOT / "tests" / "translate_hooks.py")  # run_translate.py plus the test hooks

WORDS = (
    "red shoes women case phone dress summer lamp wireless earphones silicone running living room bag watch band "
    "magnetic bracelet cover kids toy car blue black white small large new cheap gift for with and of the yoga mat "
    "user assistant English:"
).split()

# (language, origin_query): repeats after normalisation, the same text in two languages, English rows,
# a whitespace-only query and a null one.
TRAIN_QUERIES = [
    ("es", "zapatos rojos"), ("es", "Zapatos  Rojos"), ("es", "funda iphone 13"), ("es", "sac à main"),
    ("fr", "sac à main"), ("fr", "robe d'été"), ("fr", " Robe d'été "), ("fr", "bracelet magnétique montre"),
    ("ja", "ドラクエ バッグ"), ("ja", "ワイヤレスイヤホン"), ("ko", "카메라 가방"),
    ("pt", "capinha samsung"), ("pt", "lâmpada led"), ("de", "lampe für wohnzimmer"), ("en", "red shoes"),
    ("en", "Phone  Case"),
    ("es", "   "), ("fr", None), ("es", "zapatos rojos"), ("vn", "giày đỏ"),
]
TEST_QUERIES = [("es", "zapatos rojos"), ("fr", "tapis de yoga"), ("en", "yoga mat"), ("it", "scarpe rosse")]
BATCH = ["--batch_size", "2", "--max_new_tokens", "8", "--no_repeat_ngram_size", "1"]


def norm(text):
    return " ".join((text or "").split()).lower()


def expected_units(queries, with_language=True):
    return {(lang if with_language else "", norm(q)) for lang, q in queries if lang != "en" and norm(q)}


ALL_QUERIES = TRAIN_QUERIES + TEST_QUERIES


# ---------------------------------------------------------------------------------------------------------------
# Tiny models and data


def word_tokenizer(kind):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    words = set(WORDS)
    for _, query in ALL_QUERIES:
        words.update(norm(query).split())
    vocab = {token: i for i, token in enumerate(specials + sorted(words))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if kind == "seq2seq":  # the encoder input ends with EOS, as Marian's does
        backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    else:
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 3)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )


def build_marian(path):
    import torch
    from transformers import MarianConfig, MarianMTModel

    tokenizer = word_tokenizer("seq2seq")
    torch.manual_seed(0)
    # A large init_std makes the random model's output depend on its input (at 0.02 every query gets the same).
    config = MarianConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=None, init_std=0.5,
    )
    MarianMTModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def build_llama(path, chat_template=None):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = word_tokenizer("causal")
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=3, eos_token_id=1, pad_token_id=0,
        initializer_range=0.5,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def build_nllb(path):
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "▁": 4}
    for char in sorted(set("".join(norm(q) for _, q in ALL_QUERIES).replace(" ", ""))):
        vocab.setdefault(char, len(vocab))
    tokenizer = NllbTokenizer(vocab=vocab, merges=[])  # adds the 200+ NLLB language codes as special tokens
    torch.manual_seed(0)
    config = M2M100Config(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=1, eos_token_id=2, bos_token_id=0, decoder_start_token_id=2, init_std=0.5,
    )
    M2M100ForConditionalGeneration(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def write_raw(path, queries, start_id):
    with open(path, "w", encoding="utf-8") as f:
        for i, (lang, query) in enumerate(queries):
            row = {"id": start_id + i, "task": "QC", "language": lang, "origin_query": query,
                   "category_path": "shoes,women's shoes", "label": i % 2}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("translate")
    build_marian(root / "marian")
    build_llama(root / "llama")
    write_raw(root / "train.jsonl", TRAIN_QUERIES, 0)
    write_raw(root / "test.jsonl", TEST_QUERIES, 1000)
    return root


def raw_args(assets):
    return ["--raw_files", f"train={assets / 'train.jsonl'}", f"test={assets / 'test.jsonl'}"]


def run(args, **hook_options):
    """run_translate.main in this process, with the test hooks of tests/translate_hooks.py."""
    import run_translate
    from translate_hooks import hooks

    with hooks(**hook_options):
        return run_translate.main([str(a) for a in args])


def read_log(path):
    if not Path(path).exists():
        return []
    return [(e["lang"], e["text"]) for e in map(json.loads, Path(path).read_text(encoding="utf-8").splitlines())]


def load(path):
    import datasets

    loaded = datasets.load_from_disk(str(path))
    return {split: (loaded[split].features, loaded[split].to_list()) for split in loaded}


def cache_units(path):
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            rows = conn.execute("SELECT src_lang, src_text FROM translations").fetchall()
        except sqlite3.OperationalError as error:
            # A run polled right after it created the file, before it created the table, has cached nothing yet.
            if "no such table" not in str(error):
                raise
            return set()
        return {(lang, text) for lang, text in rows}


@pytest.fixture(scope="module")
def llama_reference(assets):
    """An uninterrupted single-process run of the causal backend: what every other run must reproduce."""
    out, log = assets / "llama_reference", assets / "llama_reference.log"
    report = run(["--model_name_or_path", assets / "llama", *raw_args(assets), "--output_dir", out,
                  "--cache_file", assets / "llama_reference.sqlite", *BATCH], call_log=log)
    return {"out": out, "report": report, "calls": read_log(log), "data": load(out)}


# ---------------------------------------------------------------------------------------------------------------
# Tests


def test_folded_dataset_seq2seq_once_per_distinct_query(assets, tmp_path):
    import datasets

    # A folded dataset as make_folds.py writes it (train with folds, test with fold -1).
    def split(queries, start_id, fold):
        return datasets.Dataset.from_dict({
            "id": list(range(start_id, start_id + len(queries))),
            "language": [lang for lang, _ in queries],
            "origin_query": [q for _, q in queries],
            "query": [norm(q) for _, q in queries],
            "target": ["shoes > women's shoes"] * len(queries),
            "fold": [fold if fold < 0 else i % 3 for i in range(len(queries))],
            "exclude_from_train_folds": [[] for _ in queries],
        })

    folded = datasets.DatasetDict({"train": split(TRAIN_QUERIES, 0, 0), "test": split(TEST_QUERIES, 1000, -1)})
    folded.save_to_disk(str(tmp_path / "folds"))
    args = ["--model_name_or_path", assets / "marian", "--dataset_name", tmp_path / "folds",
            "--output_dir", tmp_path / "out", "--cache_file", tmp_path / "cache.sqlite", *BATCH]
    log = tmp_path / "calls.log"
    report = run(args, call_log=log)

    # Marian does not see the language: "sac à main" in es and fr is one query.
    units = expected_units(ALL_QUERIES, with_language=False)
    calls = read_log(log)
    assert Counter(calls) == Counter(units)  # every distinct non-English query exactly once, nothing else
    assert report["model_calls"] == report["distinct_to_translate"] == len(units) and report["cache_hits"] == 0
    assert report["rows"] == len(ALL_QUERIES) and report["rows_empty_query"] == 2
    assert report["rows_skipped_language"] == sum(lang == "en" for lang, _ in ALL_QUERIES)
    assert report["backend"] == "marian"
    assert json.loads((tmp_path / "out" / "translate_report.json").read_text())["model_calls"] == len(units)

    result = datasets.load_from_disk(str(tmp_path / "out"))
    assert sorted(result) == ["test", "train"]
    by_query = {}
    for name in ("train", "test"):
        before, after = folded[name], result[name]
        assert after.column_names == before.column_names + ["query_en"]
        assert after.remove_columns("query_en").to_list() == before.to_list()  # nothing else changed or moved
        for row in after:
            if row["language"] == "en" or not row["query"]:
                assert row["query_en"] == row["query"]
            else:
                assert row["query_en"], row
                by_query.setdefault(row["query"], set()).add(row["query_en"])
    assert all(len(values) == 1 for values in by_query.values())  # repeats of a query get the same translation
    # The model's output is used (not every query fell back to itself), so the comparisons above mean something.
    assert sum(query not in values for query, values in by_query.items()) >= 3
    assert sum(report["fallbacks"].values()) == sum(query in values for query, values in by_query.items())

    # Second run on the same cache: no model call at all, identical dataset.
    report = run([*args[:5], tmp_path / "out2", *args[6:]], call_log=log)
    assert report["model_calls"] == 0 and report["cache_hits"] == len(units)
    assert read_log(log) == calls
    assert load(tmp_path / "out2") == load(tmp_path / "out")


def test_causal_few_shot_reference_run(assets, llama_reference):
    report, calls = llama_reference["report"], llama_reference["calls"]
    units = expected_units(ALL_QUERIES)  # the prompt names the language: (language, query) is the unit
    assert report["backend"] == "causal" and report["prompt_style"] == "few_shot"
    assert Counter(calls) == Counter(units) and report["model_calls"] == len(units)
    train = llama_reference["data"]["train"][1]
    assert [row["id"] for row in train] == list(range(len(TRAIN_QUERIES)))
    for row, (lang, query) in zip(train, TRAIN_QUERIES):
        assert row["origin_query"] == query
        if lang == "en" or not norm(query):
            assert row["query_en"] == norm(query)  # raw input: the normalised origin_query
    # Only the new tokens are decoded: at most --max_new_tokens (8) words, never the ~100-token prompt.
    with sqlite3.connect(assets / "llama_reference.sqlite") as conn:
        raw = [out for (out,) in conn.execute("SELECT translation FROM translations")]
    assert len(raw) == len(units) and all(len(out.split()) <= 8 for out in raw)
    translated = [row for row in train if row["language"] != "en" and norm(row["origin_query"])]
    assert sum(row["query_en"] != norm(row["origin_query"]) for row in translated) >= 3


def test_causal_output_is_new_tokens_cut_at_newline(assets, tmp_path):
    import torch

    import run_translate

    build_llama(tmp_path / "llama")
    tokenizer = word_tokenizer("causal")
    tokenizer.add_tokens(["\n"])
    tokenizer.save_pretrained(tmp_path / "llama")
    translator = run_translate.Translator(run_translate.ModelArguments(model_name_or_path=str(tmp_path / "llama")),
                                          run_translate.TranslationArguments(max_new_tokens=8))
    newline = tokenizer.convert_tokens_to_ids("\n")
    red, shoes, bag = tokenizer.convert_tokens_to_ids(["red", "shoes", "bag"])

    stop = run_translate.StopAtNewline(translator.tokenizer)
    assert stop(torch.tensor([[red, newline], [newline, red]]), None).tolist() == [True, False]

    prompts = [translator.encode("es", "zapatos rojos"), translator.encode("fr", "sac à main")]
    width = max(map(len, prompts))

    class Generated:  # what generate() returns for a left-padded batch: the prompt, then the new tokens
        device = torch.device("cpu")

        def generate(self, input_ids, attention_mask, stopping_criteria):
            assert input_ids.shape[1] == width and stopping_criteria is translator.stopping_criteria
            new = torch.tensor([[red, shoes, newline, bag], [bag, newline, red, red]])
            return torch.cat([input_ids, new], dim=1)

    translator.stopping_criteria = "criteria"
    translator.model = Generated()
    assert translator.generate(prompts) == ["red shoes", "bag"]


def test_shared_prefix_cache_gives_the_same_translations(assets, llama_reference, tmp_path):
    import torch

    import run_translate

    out = tmp_path / "out"
    run(["--model_name_or_path", assets / "llama", *raw_args(assets), "--output_dir", out,
         "--cache_file", tmp_path / "cache.sqlite", *BATCH, "--prefix_cache", "false"])
    assert load(out) == llama_reference["data"]  # the reference run used the prefix cache (the default)

    translator = run_translate.Translator(run_translate.ModelArguments(model_name_or_path=str(assets / "llama")),
                                          run_translate.TranslationArguments(max_new_tokens=8))
    prompts = [translator.encode(lang, query) for lang, query in TRAIN_QUERIES if query and lang != "en"]
    assert len({len(ids) for ids in prompts}) > 1  # rows of several lengths: padding between prefix and row
    translator.load_model(torch.device("cpu"), prompts=prompts)
    assert len(translator.prefix) > 20 and translator.prefix_cache.get_seq_length() == len(translator.prefix)
    with_cache = translator.generate(prompts)
    translator.prefix_cache = None
    assert translator.generate(prompts) == with_cache and len(set(with_cache)) > 1


def test_crash_hook_then_resume_is_identical(assets, llama_reference, tmp_path):
    cache, log = tmp_path / "cache.sqlite", tmp_path / "calls.log"
    args = ["--model_name_or_path", assets / "llama", *raw_args(assets), "--output_dir", tmp_path / "out",
            "--cache_file", cache, *BATCH]
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(args, crash_after_batches=2, call_log=log)
    assert len(cache_units(cache)) == 4  # two committed batches of two
    assert not (tmp_path / "out").exists()

    report = run(args, call_log=log)
    units = expected_units(ALL_QUERIES)
    assert report["cache_hits"] == 4 and report["model_calls"] == len(units) - 4
    assert Counter(read_log(log)) == Counter(units)  # over both runs: no query translated twice
    assert load(tmp_path / "out") == llama_reference["data"]


def test_kill_9_mid_run_then_resume_is_identical(assets, llama_reference, tmp_path):
    cache, log = tmp_path / "cache.sqlite", tmp_path / "calls.log"
    args = ["--model_name_or_path", assets / "llama", *raw_args(assets), "--output_dir", tmp_path / "out",
            "--cache_file", cache, *BATCH]
    # The delay sits between generate() and the commit, so the kill very likely lands on a batch in flight.
    process = subprocess.Popen([sys.executable, HOOKED_SCRIPT, "--hook_batch_delay=0.4", f"--hook_call_log={log}",
                                *map(str, args)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600  # a loaded machine: imports alone can take minutes
        while time.monotonic() < deadline and process.poll() is None:
            if cache.exists() and len(cache_units(cache)) >= 4:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode(errors="replace")[-3000:]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "out" / "dataset_dict.json").exists()
    units = expected_units(ALL_QUERIES)
    cached_before = cache_units(cache)
    assert 4 <= len(cached_before) < len(units)
    first_calls = read_log(log)

    report = run(args, call_log=log)
    rerun_calls = read_log(log)[len(first_calls):]
    assert not set(rerun_calls) & cached_before  # nothing cached is translated again
    assert Counter(rerun_calls) == Counter(units - cached_before)
    assert report["cache_hits"] == len(cached_before) and report["model_calls"] == len(units) - len(cached_before)
    assert load(tmp_path / "out") == llama_reference["data"]


def test_accelerate_two_processes_match_one(assets, llama_reference, tmp_path):
    log = tmp_path / "calls.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
        HOOKED_SCRIPT, f"--hook_call_log={log}", "--use_cpu", "--model_name_or_path", str(assets / "llama"),
        *map(str, raw_args(assets)),
        "--output_dir", str(tmp_path / "out"), "--cache_file", str(tmp_path / "cache.sqlite"), *BATCH,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "translate_report.json").read_text())
    assert report["num_processes"] == 2
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert {entry["rank"] for entry in entries} == {0, 1}  # both processes translated
    assert Counter((e["lang"], e["text"]) for e in entries) == Counter(expected_units(ALL_QUERIES))
    assert report["model_calls"] == len(entries)
    assert load(tmp_path / "out") == llama_reference["data"]


def test_nllb_language_codes_forced_bos_and_madlad_prefix(assets, tmp_path):
    import torch

    import run_translate

    build_nllb(tmp_path / "nllb")
    model_args = run_translate.ModelArguments(model_name_or_path=str(tmp_path / "nllb"))
    translator = run_translate.Translator(model_args, run_translate.TranslationArguments(max_new_tokens=4))
    tokenizer = translator.tokenizer
    assert translator.flavour == "nllb" and translator.uses_source_language
    for lang, code in [("es", "spa_Latn"), ("ja", "jpn_Jpan"), ("vn", "vie_Latn"), ("ar", "arb_Arab")]:
        ids = translator.encode(lang, "zapatos rojos")
        assert ids[0] == tokenizer.convert_tokens_to_ids(code) and ids[-1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="--language_codes"):
        translator.check_languages(["es", "xx"])
    extended = run_translate.Translator(
        run_translate.ModelArguments(model_name_or_path=str(tmp_path / "nllb"), language_codes=["xx=swh_Latn"]),
        run_translate.TranslationArguments(),
    )
    extended.check_languages(["es", "xx"])
    assert extended.encode("xx", "sac")[0] == tokenizer.convert_tokens_to_ids("swh_Latn")

    translator.load_model(torch.device("cpu"))
    batch = tokenizer.pad({"input_ids": [translator.encode("es", "zapatos"), translator.encode("fr", "robe d'été")]},
                          return_tensors="pt")
    generated = translator.model.generate(**batch)
    assert generated[:, 1].tolist() == [tokenizer.convert_tokens_to_ids("eng_Latn")] * 2  # English forced first
    assert len(translator.generate(batch["input_ids"].tolist()[:1])) == 1

    # MADLAD-400 is recognised by its <2en> token and gets the prefix.
    madlad = tmp_path / "madlad"
    build_marian(madlad)
    tok = word_tokenizer("seq2seq")
    tok.add_tokens(["<2en>"], special_tokens=True)
    tok.save_pretrained(madlad)
    translator = run_translate.Translator(run_translate.ModelArguments(model_name_or_path=str(madlad)),
                                          run_translate.TranslationArguments())
    assert translator.flavour == "madlad" and not translator.uses_source_language
    assert translator.encode("es", "zapatos rojos")[0] == tok.convert_tokens_to_ids("<2en>")


def test_chat_template_prompt_and_cache_key(assets, tmp_path):
    import run_translate

    template = ("{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
                "{% if add_generation_prompt %}<s> assistant{% endif %}")
    build_llama(tmp_path / "chat", chat_template=template)
    tr_args = run_translate.TranslationArguments()
    chat = run_translate.Translator(run_translate.ModelArguments(model_name_or_path=str(tmp_path / "chat")), tr_args)
    assert chat.prompt_style == "chat"
    text = chat.tokenizer.decode(chat.encode("fr", "robe d'été"))
    assert text.rstrip().endswith("robe d'été </s> <s> assistant")
    assert text.count("<s>") == 2 * len(run_translate.FEW_SHOT_EXAMPLES) + 2  # no second BOS added on top
    few_shot = run_translate.Translator(
        run_translate.ModelArguments(model_name_or_path=str(tmp_path / "chat"), prompt_style="few_shot"), tr_args
    )
    assert few_shot.prompt_style == "few_shot"
    assert few_shot.tokenizer.decode(few_shot.encode("fr", "robe d'été")).rstrip().endswith("robe d'été English:")
    # Different prompts must never share cache entries; different beams neither.
    beams = run_translate.Translator(run_translate.ModelArguments(model_name_or_path=str(tmp_path / "chat")),
                                     run_translate.TranslationArguments(num_beams=2))
    assert len({chat.settings_id(), few_shot.settings_id(), beams.settings_id()}) == 3


@pytest.mark.parametrize(
    "source, output, reason",
    [
        ("zapatos rojos", "red shoes", None),
        ("靴", "shoes", None),  # short CJK sources expand a lot in English: the floor keeps them
        ("batería 10000mah", "10000mah battery", None),
        ("zapatos", "   ", "empty_output"),
        ("zapatos rojos", "red shoes " * 12, "too_long"),
        ("funda", "case case case", "degenerate_repetition"),
        ("ドラクエ", "ドドドドドド", "degenerate_repetition"),
        ("bora bora bora", "bora bora bora", None),  # the repetition is in the source
    ],
)
def test_guard_rails(source, output, reason):
    import run_translate

    assert run_translate.check_translation(source, output, max_length_ratio=5.0, min_length_limit=32) == reason


def test_errors_name_the_problem(assets, tmp_path):
    from utils_data import DataValidationError

    bad = tmp_path / "bad.jsonl"
    bad.write_text((assets / "train.jsonl").read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    common = ["--model_name_or_path", assets / "marian", "--output_dir", tmp_path / "out",
              "--cache_file", tmp_path / "c.sqlite"]
    with pytest.raises(DataValidationError, match=rf"bad.jsonl:{len(TRAIN_QUERIES) + 1}"):
        run([*common, "--raw_files", bad])
    with pytest.raises(ValueError, match="exactly one of"):
        run(common)
    run([*common, *raw_args(assets), *BATCH])
    with pytest.raises(ValueError, match="--overwrite_query_en"):
        run(["--model_name_or_path", assets / "marian", "--dataset_name", tmp_path / "out",
             "--output_dir", tmp_path / "again", "--cache_file", tmp_path / "c.sqlite"])


def test_push_to_hub(assets, hub_server, tmp_path):
    import uuid

    import datasets

    repo = f"user/translated-{uuid.uuid4().hex[:8]}"
    run(["--model_name_or_path", assets / "marian", *raw_args(assets), "--push_to_hub", repo,
         "--output_dir", tmp_path / "out", "--cache_file", tmp_path / "c.sqlite", *BATCH])
    pulled = datasets.load_dataset(repo)
    saved = datasets.load_from_disk(str(tmp_path / "out"))
    assert sorted(pulled) == sorted(saved)
    for split in saved:
        assert pulled[split]["query_en"] == saved[split]["query_en"]
        assert pulled[split]["id"] == saved[split]["id"]


def test_dry_run_counts_and_writes_nothing(assets, llama_reference, tmp_path):
    import shutil

    cache = tmp_path / "cache.sqlite"
    shutil.copy(assets / "llama_reference.sqlite", cache)
    args = ["--model_name_or_path", assets / "llama", *raw_args(assets), "--cache_file", cache, *BATCH]
    report = run([*args, "--dry_run"])
    units = expected_units(ALL_QUERIES)
    assert report["distinct_to_translate"] == len(units) and report["cache_hits"] == len(units)
    assert report["pending"] == 0 and report["rows"] == len(ALL_QUERIES)
    # A different generation setting is another cache key: everything is pending again.
    report = run([*args, "--num_beams", "2", "--dry_run"])
    assert report["cache_hits"] == 0 and report["pending"] == len(units)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("cache.sqlite")) == []
