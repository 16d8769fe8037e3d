#!/usr/bin/env python
"""Add an English translation `query_en` to every split of a folded dataset (or of raw competition files).

Each distinct non-English query is translated once, cached in sqlite, resumable (design: docs/translation.md).

    python run_translate.py --model_name_or_path google/madlad400-3b-mt \
        --dataset_name outputs/folds_qc --output_dir outputs/folds_qc_en
    python run_translate.py --model_name_or_path .cache/models/gemma-3-270m \
        --raw_files train=data/train_QC.jsonl test=data/test_QC.jsonl --push_to_hub me/qc-translated
    accelerate launch --multi_gpu --num_processes 8 run_translate.py ...   # splits the queries across GPUs
    accelerate launch --multi_gpu --num_processes 2 run_translate.py --use_cpu ...   # CPU processes (gloo)
    python run_translate.py ... --dry_run   # counts rows, distinct queries and cache hits; loads no model
"""

import copy
import hashlib
import json
import logging
import os
import re
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import datasets
import torch
import transformers
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    HfArgumentParser,
    StoppingCriteria,
    StoppingCriteriaList,
    set_seed,
)

from utils_data import UserError, check_folder_or_hub_repo, load_folded_dataset, normalize_text, read_raw_file, run_cli

logger = logging.getLogger(__name__)

OUTPUT_COLUMN = "query_en"
REPORT_FILE = "translate_report.json"

# language column value -> (English name for prompts, NLLB-200 code, M2M-100 code). The competition's languages
# first (the test set has languages absent from the training data), then a few common ones.
LANGUAGES = {
    "en": ("English", "eng_Latn", "en"),
    "es": ("Spanish", "spa_Latn", "es"),
    "fr": ("French", "fra_Latn", "fr"),
    "ja": ("Japanese", "jpn_Jpan", "ja"),
    "ko": ("Korean", "kor_Hang", "ko"),
    "pt": ("Portuguese", "por_Latn", "pt"),
    "th": ("Thai", "tha_Thai", "th"),
    "de": ("German", "deu_Latn", "de"),
    "it": ("Italian", "ita_Latn", "it"),
    "pl": ("Polish", "pol_Latn", "pl"),
    "ar": ("Arabic", "arb_Arab", "ar"),
    "vi": ("Vietnamese", "vie_Latn", "vi"),
    "vn": ("Vietnamese", "vie_Latn", "vi"),  # the competition writes Vietnamese as "vn"
    "id": ("Indonesian", "ind_Latn", "id"),
    "nl": ("Dutch", "nld_Latn", "nl"),
    "ru": ("Russian", "rus_Cyrl", "ru"),
    "uk": ("Ukrainian", "ukr_Cyrl", "uk"),
    "tr": ("Turkish", "tur_Latn", "tr"),
    "he": ("Hebrew", "heb_Hebr", "he"),
    "zh": ("Chinese", "zho_Hans", "zh"),
    "hi": ("Hindi", "hin_Deva", "hi"),
    "ms": ("Malay", "zsm_Latn", "ms"),
    "sv": ("Swedish", "swe_Latn", "sv"),
    "cs": ("Czech", "ces_Latn", "cs"),
    "ro": ("Romanian", "ron_Latn", "ro"),
    "el": ("Greek", "ell_Grek", "el"),
}

INSTRUCTION = (
    "Translate each e-commerce search query into English. Keep brand names, model numbers and sizes unchanged."
)
# Lowercase like the folded `query` column (make_folds.py --lowercase is the default).
FEW_SHOT_EXAMPLES = [
    ("es", "cortinas para dormitorio", "bedroom curtains"),
    ("fr", "chaussures de course femme", "women's running shoes"),
    ("ja", "ワイヤレスイヤホン", "wireless earphones"),
    ("ko", "여름 원피스", "summer dress"),
    ("pt", "mochila escolar infantil", "kids school backpack"),
    ("de", "lampe für wohnzimmer", "living room lamp"),
]

_WORD_RUN = re.compile(r"(?:^|\s)(\S+)(?:\s+\1){2,}(?=\s|$)")  # the same word three times in a row
_CHAR_RUN = re.compile(r"(\D.{0,11}?)\1{3,}", re.S)  # 1-12 characters four times in a row (not "10000")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={"help": "Translation model: a Hub id or a local folder (seq2seq MT model or causal LLM)."}
    )
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of the model on the Hub."})
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Allow custom modelling code from the checkpoint (off: only run code you trust)."},
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weights dtype: auto (bfloat16 on GPU, float32 on CPU), bfloat16, float16 or float32.",
            "choices": ["auto", "bfloat16", "float16", "float32"],
        },
    )
    use_cpu: bool = field(default=False, metadata={"help": "Run on CPU even when a GPU is available."})
    prompt_style: str = field(
        default="auto",
        metadata={
            "help": "Causal LLMs only: chat (the tokenizer's chat template), few_shot (a plain few-shot prompt), "
            "or auto (chat when the tokenizer has a chat template).",
            "choices": ["auto", "chat", "few_shot"],
        },
    )
    source_prefix: Optional[str] = field(
        default=None,
        metadata={
            "help": "Seq2seq only: text put before every source query. Default: '<2en> ' when the vocabulary has "
            "the MADLAD-400 token <2en>, nothing otherwise."
        },
    )
    language_codes: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Extra or overriding language codes for NLLB / M2M-100, as LANG=CODE (e.g. sw=swh_Latn for "
            "NLLB, sw=sw for M2M-100), for values of the language column missing from the built-in table."
        },
    )


@dataclass
class DataArguments:
    dataset_name: Optional[str] = field(
        default=None,
        metadata={"help": "The folded dataset (make_folds.py output): a save_to_disk folder or a Hub dataset id."},
    )
    raw_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Raw competition files (JSON lines, CSV or parquet, read by utils_data.read_raw_file) instead "
            "of --dataset_name, as SPLIT=PATH or PATH (split named after the file)."
        },
    )
    query_column: str = field(
        default="query",
        metadata={"help": "Column to translate; when absent (raw files), --fallback_query_column is used."},
    )
    fallback_query_column: str = field(
        default="origin_query", metadata={"help": "Column translated when --query_column is absent."}
    )
    language_column: str = field(default="language", metadata={"help": "Column with each row's source language."})
    source_languages_to_skip: list[str] = field(
        default_factory=lambda: ["en"],
        metadata={"help": "Languages that get query_en = query without a model call."},
    )
    lowercase: bool = field(
        default=True,
        metadata={
            "help": "Lowercase the translations, and the source query read from --fallback_query_column, like "
            "make_folds.py --lowercase (its default)."
        },
    )
    overwrite_query_en: bool = field(
        default=False, metadata={"help": "Replace an existing query_en column instead of stopping with an error."}
    )
    output_dir: Optional[str] = field(
        default=None, metadata={"help": "Where to save the dataset (save_to_disk) and translate_report.json."}
    )
    push_to_hub: Optional[str] = field(
        default=None, metadata={"help": "Hub dataset repo id to push the translated dataset to."}
    )
    hub_private: bool = field(default=True, metadata={"help": "Create the Hub dataset repo as private."})

    def __post_init__(self):
        if bool(self.dataset_name) == bool(self.raw_files):
            raise UserError("Give exactly one of --dataset_name (folded dataset) or --raw_files (raw files).")


@dataclass
class TranslationArguments:
    batch_size: int = field(default=32, metadata={"help": "Distinct queries per generate() call."})
    max_new_tokens: int = field(default=48, metadata={"help": "Most tokens generated per translation."})
    num_beams: int = field(default=1, metadata={"help": "Beam search width; 1 is greedy decoding."})
    no_repeat_ngram_size: int = field(
        default=0, metadata={"help": "Forbid repeating n-grams of this size in a translation (0: off)."}
    )
    max_source_length: int = field(
        default=128, metadata={"help": "Source queries are cut to this many tokens (the prompt is not counted)."}
    )
    max_length_ratio: float = field(
        default=5.0,
        metadata={
            "help": "A translation longer than this many times its source, in characters (and longer than "
            "--min_length_limit), is treated as degenerate and replaced by the source query."
        },
    )
    min_length_limit: int = field(
        default=32,
        metadata={"help": "Translations up to this many characters are never rejected as too long."},
    )
    cache_file: str = field(
        default=os.path.join(".cache", "translation_cache.sqlite"),
        metadata={
            "help": "sqlite translation cache, shared across runs and tasks; written after every batch so that a "
            "rerun after a crash resumes. All processes must see it on one local filesystem."
        },
    )
    dry_run: bool = field(
        default=False,
        metadata={
            "help": "Count rows, distinct queries, cache hits and pending translations, print them and stop "
            "before loading the model; nothing is written (the cache file is created if missing)."
        },
    )
    seed: int = field(default=42, metadata={"help": "Random seed (decoding is greedy or beam search: deterministic)."})
    prefix_cache: bool = field(
        default=True,
        metadata={
            "help": "Causal LLMs, greedy decoding: run the prompt's part shared by every query (instruction and "
            "examples) through the model once and start each batch from a copy of its cache, instead of "
            "recomputing it for every query (same translations; see docs/translation.md)."
        },
    )

    def __post_init__(self):
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.num_beams < 1:
            raise UserError("--batch_size, --max_new_tokens and --num_beams must be >= 1")


# ---------------------------------------------------------------------------------------------------------------
# Input


def load_input(data_args: DataArguments):
    """The dataset to translate, and what reading raw files found (blank lines, per file)."""
    if data_args.dataset_name:
        return load_folded_dataset(data_args.dataset_name), []
    splits, read_stats = {}, []
    for entry in data_args.raw_files:
        name, sep, path = entry.partition("=")
        if not sep:
            path = entry
            name = re.sub(r"\W+", "_", os.path.splitext(os.path.basename(entry))[0])
        if name in splits:
            raise UserError(f"--raw_files: two files give the split name {name!r}; name them with SPLIT=PATH")
        # Validated like make_folds.py reads them; labels are not needed here, so they are not checked.
        frame, stats, _ = read_raw_file(path, labelled=False)
        splits[name] = datasets.Dataset.from_pandas(frame, preserve_index=False)
        read_stats.append(stats.to_dict())
    return datasets.DatasetDict(splits), read_stats


def language_key(value) -> str:
    return "" if value is None else str(value).strip().lower()


# ---------------------------------------------------------------------------------------------------------------
# Guard rails


def _repeats(text: str) -> bool:
    return bool(_WORD_RUN.search(text) or _CHAR_RUN.search(text))


def check_translation(source: str, output: str, max_length_ratio: float, min_length_limit: int) -> Optional[str]:
    """Why a raw model output must not be used (None when it is fine)."""
    if not output.strip():
        return "empty_output"
    if len(output) > max(max_length_ratio * len(source), min_length_limit):
        return "too_long"
    if _repeats(output) and not _repeats(source):
        return "degenerate_repetition"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Cache


class TranslationCache:
    """sqlite table of raw model outputs; the concurrency design is in docs/translation.md."""

    def __init__(self, path: str, model_id: str, settings_id: str, timeout: float = 600.0):
        self.path, self.model_id, self.settings_id = path, model_id, settings_id
        # The busy timeout makes a writer wait for another process's commit instead of failing.
        self.conn = sqlite3.connect(path, timeout=timeout)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a killed process (only a power loss can drop the last commits).
        self.conn.execute("PRAGMA synchronous=NORMAL")
        with self.conn:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS translations ("
                " model TEXT NOT NULL, settings TEXT NOT NULL, src_lang TEXT NOT NULL, src_text TEXT NOT NULL,"
                " translation TEXT NOT NULL, created_at REAL NOT NULL,"
                " PRIMARY KEY (model, settings, src_lang, src_text))"
            )

    def lookup(self) -> dict:
        cursor = self.conn.execute(
            "SELECT src_lang, src_text, translation FROM translations WHERE model = ? AND settings = ?",
            (self.model_id, self.settings_id),
        )
        return {(lang, text): translation for lang, text, translation in cursor}

    def add(self, items: list) -> None:
        now = time.time()
        with self.conn:  # one transaction per batch: all of it is stored, or none of it
            self.conn.executemany(
                "INSERT OR IGNORE INTO translations VALUES (?, ?, ?, ?, ?, ?)",
                [(self.model_id, self.settings_id, lang, text, out, now) for (lang, text), out in items],
            )

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------------------------------
# Backends


class StopAtNewline(StoppingCriteria):
    """Finishes a row once its last token contains a newline: the answer is one line.

    transformers' `stop_strings` does the same but cannot handle some tokenizers (it assumes a subword
    vocabulary); checking the decoded last token works with any tokenizer.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.has_newline = {}

    def __call__(self, input_ids, scores, **kwargs):
        last = input_ids[:, -1].tolist()
        for token_id in last:
            if token_id not in self.has_newline:
                self.has_newline[token_id] = "\n" in self.tokenizer.decode([token_id])
        return torch.tensor([self.has_newline[t] for t in last], dtype=torch.bool, device=input_ids.device)


class Translator:
    """Turns (source language, query) units into model inputs and runs generation for one checkpoint."""

    def __init__(self, model_args: ModelArguments, tr_args: TranslationArguments):
        self.model_args, self.tr_args = model_args, tr_args
        self.config = AutoConfig.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=model_args.trust_remote_code,
        )
        self.tokenizer = AutoTokenizer.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=model_args.trust_remote_code,
        )
        self.model = None
        self.prefix, self.prefix_cache = [], None  # the shared prompt prefix and its cache (load_model)
        self.forced_bos_token_id = None
        self.source_prefix = ""
        self.prompt_style = None
        self.is_seq2seq = bool(getattr(self.config, "is_encoder_decoder", False))
        unk = self.tokenizer.unk_token_id

        def has_token(token):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            return token_id is not None and token_id != unk

        if self.is_seq2seq:
            self.tokenizer.padding_side = "right"
            if has_token("eng_Latn"):
                self.flavour = "nllb"
                self.forced_bos_token_id = self.tokenizer.convert_tokens_to_ids("eng_Latn")
            elif has_token("__en__") and hasattr(self.tokenizer, "get_lang_id"):
                self.flavour = "m2m100"
                self.forced_bos_token_id = self.tokenizer.get_lang_id("en")
            else:
                if has_token("<2en>"):
                    self.flavour = "madlad"
                else:
                    self.flavour = "marian" if self.config.model_type == "marian" else "seq2seq"
                self.source_prefix = "<2en> " if self.flavour == "madlad" else ""
            if model_args.source_prefix is not None:
                self.source_prefix = model_args.source_prefix
        else:
            self.flavour = "causal"
            self.tokenizer.padding_side = "left"  # generation continues from the right end of every row
            if self.tokenizer.pad_token_id is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            style = model_args.prompt_style
            if style == "auto":
                style = "chat" if getattr(self.tokenizer, "chat_template", None) else "few_shot"
            if style == "chat" and not getattr(self.tokenizer, "chat_template", None):
                raise UserError(
                    f"--prompt_style chat: the tokenizer of {model_args.model_name_or_path} has no chat template"
                )
            self.prompt_style = style

        self.language_codes = {}
        if self.flavour in ("nllb", "m2m100"):
            column = 1 if self.flavour == "nllb" else 2
            self.language_codes = {lang: entry[column] for lang, entry in LANGUAGES.items()}
            for item in model_args.language_codes:
                lang, sep, code = item.partition("=")
                if not sep or not lang.strip() or not code.strip():
                    raise UserError(f"--language_codes: {item!r} is not LANG=CODE")
                self.language_codes[language_key(lang)] = code.strip()
        # Only these backends see the source language; for the others one translation serves every language.
        self.uses_source_language = self.flavour in ("nllb", "m2m100", "causal")

    @property
    def model_id(self) -> str:
        name = self.model_args.model_name_or_path
        return name if self.model_args.model_revision == "main" else f"{name}@{self.model_args.model_revision}"

    def settings(self) -> dict:
        """Everything besides the model that changes a translation; hashed into the cache key."""
        settings = {
            "flavour": self.flavour,
            "max_new_tokens": self.tr_args.max_new_tokens,
            "num_beams": self.tr_args.num_beams,
            "no_repeat_ngram_size": self.tr_args.no_repeat_ngram_size,
            "max_source_length": self.tr_args.max_source_length,
        }
        if self.is_seq2seq:
            settings["source_prefix"] = self.source_prefix
        else:
            settings["prompt_style"] = self.prompt_style
            settings["prompt"] = [INSTRUCTION, FEW_SHOT_EXAMPLES]
        return settings

    def settings_id(self) -> str:
        blob = json.dumps(self.settings(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def check_languages(self, languages) -> None:
        if self.flavour not in ("nllb", "m2m100"):
            return
        unknown = sorted({lang for lang in languages if lang not in self.language_codes})
        if unknown:
            raise UserError(
                f"{self.flavour} needs a source-language code for every query; no code for language value(s) "
                f"{unknown}. Add them with --language_codes LANG=CODE."
            )

    # -- inputs ----------------------------------------------------------------------------------------------
    def _truncate_query(self, text: str) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.tr_args.max_source_length:
            return text
        return self.tokenizer.decode(ids[: self.tr_args.max_source_length], skip_special_tokens=True)

    def _prompt(self, lang: str, text: str):
        name = LANGUAGES.get(lang, (None,))[0]
        if self.prompt_style == "chat":

            def ask(example_lang, query):
                example_name = LANGUAGES.get(example_lang, (None,))[0]
                what = f"this {example_name} search query" if example_name else "this search query"
                content = f"{INSTRUCTION}\nTranslate {what} into English; answer with the translation only.\n\n{query}"
                return {"role": "user", "content": content}

            messages = []
            for example_lang, query, translation in FEW_SHOT_EXAMPLES:
                messages += [ask(example_lang, query), {"role": "assistant", "content": translation}]
            messages.append(ask(lang, text))
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        lines = [INSTRUCTION, ""]
        for example_lang, query, translation in FEW_SHOT_EXAMPLES:
            lines += [f"{LANGUAGES[example_lang][0]}: {query}", f"English: {translation}", ""]
        lines += [f"{name or 'Query'}: {text}", "English:"]
        return "\n".join(lines)

    def encode(self, lang: str, text: str) -> list:
        if self.is_seq2seq:
            if self.flavour in ("nllb", "m2m100"):
                self.tokenizer.src_lang = self.language_codes[lang]
            return self.tokenizer(
                self.source_prefix + text, truncation=True, max_length=self.tr_args.max_source_length
            )["input_ids"]
        prompt = self._prompt(lang, self._truncate_query(text))
        # A chat template already writes the BOS token itself.
        return self.tokenizer(prompt, add_special_tokens=self.prompt_style != "chat")["input_ids"]

    # -- generation ------------------------------------------------------------------------------------------
    def load_model(self, device, prompts=()) -> None:
        """Load the model on `device`; with `prompts` (the encoded inputs to come), also the shared-prefix cache."""
        dtype = self.model_args.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device.type == "cuda" else "float32"
        model_class = AutoModelForSeq2SeqLM if self.is_seq2seq else AutoModelForCausalLM
        self.model = model_class.from_pretrained(
            self.model_args.model_name_or_path,
            revision=self.model_args.model_revision,
            trust_remote_code=self.model_args.trust_remote_code,
            dtype=getattr(torch, dtype),
        )
        self.model.to(device).eval()
        gen = self.model.generation_config
        # Greedy or beam search only: drop sampling settings a checkpoint may ship with.
        gen.do_sample = False
        gen.temperature = gen.top_p = gen.top_k = None
        gen.num_beams = self.tr_args.num_beams
        gen.num_return_sequences = 1
        gen.max_new_tokens = self.tr_args.max_new_tokens
        gen.max_length = None
        gen.no_repeat_ngram_size = self.tr_args.no_repeat_ngram_size or None
        gen.pad_token_id = self.tokenizer.pad_token_id
        if self.forced_bos_token_id is not None:
            gen.forced_bos_token_id = self.forced_bos_token_id
        # The answer is one line: stop there instead of running to max_new_tokens.
        self.stopping_criteria = None if self.is_seq2seq else StoppingCriteriaList([StopAtNewline(self.tokenizer)])
        logger.info("Loaded %s (%s, %s) on %s", self.model_id, self.flavour, dtype, device)
        self.prefix, self.prefix_cache = [], None
        if prompts and not self.is_seq2seq and self.tr_args.prefix_cache and self.tr_args.num_beams == 1:
            # The tokens every prompt starts with, less one so that no prompt is all prefix.
            self.prefix = os.path.commonprefix([list(ids) for ids in prompts])[: min(map(len, prompts)) - 1]
            if self.prefix:
                with torch.inference_mode():
                    prefix = torch.tensor([self.prefix], device=self.model.device)
                    self.prefix_cache = self.model(input_ids=prefix, use_cache=True).past_key_values
                logger.info("Shared prompt prefix: %d tokens, run once", len(self.prefix))

    def _prefixed_batch(self, batch_ids: list) -> dict:
        """Rows as [shared prefix][padding][own tokens], the prefix's cache copied for every row: padding sits
        between, masked, so the prefix stays where it was cached; positions count unmasked tokens (generate)."""
        n, width = len(self.prefix), max(len(ids) for ids in batch_ids) - len(self.prefix)
        pad = self.tokenizer.pad_token_id
        input_ids = [self.prefix + [pad] * (width - len(ids) + n) + list(ids[n:]) for ids in batch_ids]
        mask = [[1] * n + [0] * (width - len(ids) + n) + [1] * (len(ids) - n) for ids in batch_ids]
        cache = copy.deepcopy(self.prefix_cache)
        cache.batch_repeat_interleave(len(batch_ids))
        device = self.model.device
        return {"input_ids": torch.tensor(input_ids, device=device), "attention_mask": torch.tensor(mask, device=device),
                "past_key_values": cache}

    @torch.inference_mode()
    def generate(self, batch_ids: list) -> list:
        if self.prefix_cache is not None and all(ids[: len(self.prefix)] == self.prefix for ids in batch_ids):
            batch = self._prefixed_batch(batch_ids)
        else:
            batch = self.tokenizer.pad({"input_ids": batch_ids}, return_tensors="pt").to(self.model.device)
        output = self.model.generate(**batch, stopping_criteria=self.stopping_criteria)
        if not self.is_seq2seq:
            output = output[:, batch["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(output, skip_special_tokens=True)
        return [text.strip().split("\n", 1)[0].strip() for text in texts]


# ---------------------------------------------------------------------------------------------------------------
# Main


def print_report(report: dict) -> None:
    rows = [
        ("rows", report["rows"]),
        ("rows with an empty query", report["rows_empty_query"]),
        ("rows skipped (language)", report["rows_skipped_language"]),
        ("distinct queries", report["distinct_queries"]),
        ("distinct queries to translate", report["distinct_to_translate"]),
        ("cache hits", report["cache_hits"]),
        ("model calls (queries translated now)", report["model_calls"]),
        ("generate() batches", report["generate_batches"]),
        ("fallbacks (distinct queries)", sum(report["fallbacks"].values())),
        ("rows with a fallback", report["rows_fallback"]),
        ("translation time (s)", f"{report['translation_seconds']:.1f}"),
        ("queries/s", f"{report['queries_per_second']:.2f}"),
        ("total time (s)", f"{report['total_seconds']:.1f}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    print("Translation report\n" + "\n".join(lines), flush=True)


def collect_units(dataset, data_args: DataArguments, translator: "Translator") -> tuple:
    """What each row needs, and the distinct (source language, query) units to translate.

    Returns (row_units, units, counts): row_units maps a split to one entry per row, ("empty", ""),
    ("skip", text) or ("translate", unit); counts holds rows_empty, rows_skipped and distinct_queries.
    """
    skip = {language_key(lang) for lang in data_args.source_languages_to_skip}
    row_units, distinct_texts, units = {}, set(), set()
    rows_empty = rows_skipped = 0
    for split, split_ds in dataset.items():
        if data_args.query_column in split_ds.column_names:
            queries = [normalize_text(q) for q in split_ds[data_args.query_column]]
        elif data_args.fallback_query_column in split_ds.column_names:
            queries = [
                normalize_text(q, lowercase=data_args.lowercase) for q in split_ds[data_args.fallback_query_column]
            ]
        else:
            raise UserError(
                f"split {split!r} has neither {data_args.query_column!r} nor {data_args.fallback_query_column!r}"
            )
        languages = [language_key(lang) for lang in split_ds[data_args.language_column]]
        per_row = []
        for text, lang in zip(queries, languages):
            if not text:
                per_row.append(("empty", ""))
                rows_empty += 1
                continue
            distinct_texts.add(text)
            if lang in skip:
                per_row.append(("skip", text))
                rows_skipped += 1
                continue
            unit = (lang if translator.uses_source_language else "", text)
            units.add(unit)
            per_row.append(("translate", unit))
        row_units[split] = per_row
    counts = {"rows_empty_query": rows_empty, "rows_skipped_language": rows_skipped,
              "distinct_queries": len(distinct_texts)}
    return row_units, units, counts


def pending_batches(cache: TranslationCache, batches: list, units: set, state: PartialState) -> tuple:
    """(cache hits, [(batch index, positions not cached yet)]): read by the main process, broadcast to all."""
    payload = [None]
    if state.is_main_process:
        cached = cache.lookup()
        pending = []
        for index, batch in enumerate(batches):
            todo = [position for position, unit in enumerate(batch) if unit not in cached]
            if todo:
                pending.append((index, todo))
        payload = [(sum(unit in cached for unit in units), pending)]
    broadcast_object_list(payload)
    return payload[0]


def translate_batch(translator: "Translator", cache: TranslationCache, todo_units: list, encoded: dict) -> None:
    """Generate one batch and commit it to the cache in one transaction."""
    outputs = translator.generate([encoded[unit] for unit in todo_units])
    cache.add(list(zip(todo_units, outputs)))


def translate_share(translator: "Translator", cache: TranslationCache, batches: list, mine: list, encoded: dict,
                    state: PartialState) -> dict:
    """Translate this process's pending batches; the model loads only when there is something to do."""
    translated = done_batches = 0
    start = time.time()
    if mine:
        translator.load_model(state.device, prompts=list(encoded.values()))
        total = sum(len(todo) for _, todo in mine)
        with tqdm(total=total, unit="query", desc="translating", disable=not state.is_local_main_process) as bar:
            for index, todo in mine:
                todo_units = [batches[index][position] for position in todo]
                translate_batch(translator, cache, todo_units, encoded)
                translated += len(todo_units)
                done_batches += 1
                bar.update(len(todo_units))
    return {"translated": translated, "batches": done_batches, "seconds": time.time() - start}


def assemble(dataset, cache: TranslationCache, units: set, row_units: dict, data_args: DataArguments,
             tr_args: TranslationArguments) -> dict:
    """Fill `query_en` from the cache (guard rails applied) in every split; returns the fallback counts."""
    cached = cache.lookup()
    missing = [unit for unit in units if unit not in cached]
    if missing:
        raise RuntimeError(f"{len(missing)} queries have no translation in {tr_args.cache_file} after the run")
    final, fallback_units = {}, set()
    fallbacks = {"empty_output": 0, "too_long": 0, "degenerate_repetition": 0}
    for unit in units:
        reason = check_translation(unit[1], cached[unit], tr_args.max_length_ratio, tr_args.min_length_limit)
        if reason:
            fallbacks[reason] += 1
            fallback_units.add(unit)
            final[unit] = unit[1]
        else:
            final[unit] = normalize_text(cached[unit], lowercase=data_args.lowercase)
    rows_fallback = 0
    for split in list(dataset):
        values = []
        for kind, value in row_units[split]:
            if kind == "translate":
                values.append(final[value])
                rows_fallback += value in fallback_units
            else:
                values.append(value)
        split_ds = dataset[split]
        if OUTPUT_COLUMN in split_ds.column_names:
            split_ds = split_ds.remove_columns(OUTPUT_COLUMN)
        dataset[split] = split_ds.add_column(OUTPUT_COLUMN, values)
    return {"rows_fallback": rows_fallback, "fallbacks": fallbacks}


def save(dataset, report: dict, data_args: DataArguments) -> None:
    if data_args.output_dir:
        dataset.save_to_disk(data_args.output_dir)
        with open(os.path.join(data_args.output_dir, REPORT_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
        logger.info("Saved the translated dataset and %s to %s", REPORT_FILE, data_args.output_dir)
    if data_args.push_to_hub:
        dataset.push_to_hub(data_args.push_to_hub, private=data_args.hub_private)
        logger.info("Pushed the translated dataset to %s", data_args.push_to_hub)


def main(argv: Optional[list] = None) -> dict:
    start = time.time()
    # 1. Arguments, logging, processes ------------------------------------------------------------------------
    parser = HfArgumentParser((ModelArguments, DataArguments, TranslationArguments))
    if argv is None and len(sys.argv) == 2 and sys.argv[1].endswith((".yaml", ".yml", ".json")):
        path = os.path.abspath(sys.argv[1])
        parse = parser.parse_yaml_file if path.endswith((".yaml", ".yml")) else parser.parse_json_file
        model_args, data_args, tr_args = parse(path)
    else:
        model_args, data_args, tr_args = parser.parse_args_into_dataclasses(args=argv)
    # Spans two dataclasses (--dry_run writes nothing by design).
    if not data_args.output_dir and not data_args.push_to_hub and not tr_args.dry_run:
        raise UserError("Nothing would be written: give --output_dir and/or --push_to_hub.")
    check_folder_or_hub_repo(model_args.model_name_or_path, "--model_name_or_path")  # before the data loads

    # Without an accelerator, ask accelerate for CPU processes (gloo) so that a multi-process launch still works.
    state = PartialState(cpu=model_args.use_cpu or not torch.accelerator.is_available())
    logging.basicConfig(
        format=f"%(asctime)s - %(levelname)s - %(name)s - [rank {state.process_index}] %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO if state.is_local_main_process else logging.WARNING,
        force=True,
    )
    for library in (datasets, transformers):
        library.utils.logging.set_verbosity_warning()
    set_seed(tr_args.seed)
    logger.info("Processes: %d, device: %s", state.num_processes, state.device)

    # 2. Input (every split) -----------------------------------------------------------------------------------
    with state.main_process_first():
        dataset, read_stats = load_input(data_args)
    for split, split_ds in dataset.items():
        if data_args.language_column not in split_ds.column_names:
            raise UserError(f"split {split!r} has no column {data_args.language_column!r} (--language_column)")
        if OUTPUT_COLUMN in split_ds.column_names and not data_args.overwrite_query_en:
            raise UserError(f"split {split!r} already has a {OUTPUT_COLUMN!r} column; pass --overwrite_query_en")
    logger.info("Input: %s", {split: len(ds) for split, ds in dataset.items()})

    # 3. Distinct translation units, planned into batches ------------------------------------------------------
    translator = Translator(model_args, tr_args)
    row_units, units, counts = collect_units(dataset, data_args, translator)
    translator.check_languages(lang for lang, _ in units)
    # The plan covers every unit, cached or not, so that batches do not depend on what a crashed run finished.
    encoded = {unit: translator.encode(*unit) for unit in units}
    plan = sorted(units, key=lambda unit: (len(encoded[unit]), unit))
    batches = [plan[i : i + tr_args.batch_size] for i in range(0, len(plan), tr_args.batch_size)]
    settings_id = translator.settings_id()
    logger.info(
        "%d distinct queries, %d to translate with %s (%s, settings %s) in %d batches",
        counts["distinct_queries"], len(units), translator.model_id, translator.flavour, settings_id, len(batches),
    )

    # 4. Cache: the main process decides what is pending ------------------------------------------------------
    if state.is_main_process:
        os.makedirs(os.path.dirname(os.path.abspath(tr_args.cache_file)), exist_ok=True)
        TranslationCache(tr_args.cache_file, translator.model_id, settings_id).close()  # creates it, sets WAL
    state.wait_for_everyone()
    cache = TranslationCache(tr_args.cache_file, translator.model_id, settings_id)
    try:
        cache_hits, pending = pending_batches(cache, batches, units, state)
        mine = pending[state.process_index :: state.num_processes]
        logger.info(
            "Cache %s: %d of %d queries already translated; %d batches pending, %d for this process",
            tr_args.cache_file, cache_hits, len(units), len(pending), len(mine),
        )
        report = {
            "model": translator.model_id,
            "backend": translator.flavour,
            "prompt_style": translator.prompt_style,
            "settings_id": settings_id,
            "settings": translator.settings(),
            "cache_file": tr_args.cache_file,
            "num_processes": state.num_processes,
            "rows": sum(len(per_row) for per_row in row_units.values()),
            "rows_per_split": {split: len(per_row) for split, per_row in row_units.items()},
            "rows_empty_query": counts["rows_empty_query"],
            "rows_skipped_language": counts["rows_skipped_language"],
            "distinct_queries": counts["distinct_queries"],
            "distinct_to_translate": len(units),
            "cache_hits": cache_hits,
            "pending": sum(len(todo) for _, todo in pending),
            "raw_files_read": read_stats,
        }
        if tr_args.dry_run:
            if state.is_main_process:
                print(json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2, ensure_ascii=False))
            return report

        # 5. Translate this process's share -----------------------------------------------------------------
        per_process = gather_object([translate_share(translator, cache, batches, mine, encoded, state)])
        state.wait_for_everyone()

        # 6. Assemble on the main process ---------------------------------------------------------------------
        if state.is_main_process:
            report.update(assemble(dataset, cache, units, row_units, data_args, tr_args))
            seconds = max(process["seconds"] for process in per_process)
            model_calls = sum(process["translated"] for process in per_process)
            report.update(
                model_calls=model_calls,
                generate_batches=sum(process["batches"] for process in per_process),
                translation_seconds=seconds,
                queries_per_second=model_calls / seconds if model_calls and seconds > 0 else 0.0,
                total_seconds=time.time() - start,
                arguments={**asdict(model_args), **asdict(data_args), **asdict(tr_args)},
            )
    finally:
        cache.close()

    # 7. Save and/or push ------------------------------------------------------------------------------------
    if state.is_main_process:
        save(dataset, report, data_args)
        print_report(report)
    state.wait_for_everyone()
    return report


if __name__ == "__main__":
    run_cli(main)
    PartialState().destroy_process_group()
