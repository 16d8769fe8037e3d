"""Tiny random models, a word-level tokenizer and a small folded dataset, built on the fly for the tests.

Every builder writes into the folder it is given and returns that folder as a `str`, so that it can be
passed straight to `--model_name_or_path` / `--dataset_name`. Everything is deterministic (fixed seeds)
and small: 2 layers, hidden size 64, a vocabulary of a few hundred words.

    from tests.tiny_models import make_tiny_decoder, make_tiny_folded_dataset
    model_dir = make_tiny_decoder(tmp_path / "model", arch="gemma3")   # model + tokenizer in one folder
    data_dir = make_tiny_folded_dataset(tmp_path / "folds_qc", task="qc")

Builders:
- `make_tiny_tokenizer(path, texts=None, style="decoder")`: word-level `PreTrainedTokenizerFast` with
  `<pad>`, `<eos>`, `<bos>`, `<unk>` (and `[CLS]`/`[SEP]`/`[MASK]` for `style="encoder"`).
- `make_tiny_decoder(path, arch="gemma3"|"qwen3"|"llama", pad_is_eos=False)`: causal LM checkpoint + tokenizer.
- `make_tiny_multimodal_gemma3(path)`: a `Gemma3ForConditionalGeneration` checkpoint (vision tower included).
- `make_tiny_encoder(path, arch="xlm-roberta"|"bert")`: masked-LM checkpoint + encoder-style tokenizer.
- `make_tiny_folded_dataset(path, task, num_rows=60, num_folds=3)`: a `DatasetDict` as `make_folds.py` writes it.
"""

import json
import os
import random
from pathlib import Path

# Words used by the synthetic datasets and the prompt templates; anything else maps to <unk>.
QUERY_WORDS = [
    "phone", "case", "shoe", "dress", "lamp", "watch", "bag", "cable", "toy", "cup",
    "red", "blue", "black", "kids", "women", "men", "mini", "large", "cheap", "new",
]
CATEGORY_PATHS = [
    ["phones & telecommunications", "mobile phone accessories", "phone case"],
    ["shoes", "women's shoes", "sandals"],
    ["women's clothing", "dresses", "summer dress"],
    ["home & garden", "lighting", "desk lamp"],
    ["watches", "men's watches", "quartz watch"],
    ["luggage & bags", "women's handbags", "shoulder bag"],
    ["consumer electronics", "accessories, parts", "usb cable"],
    ["toys & hobbies", "kids toys", "building toy"],
    ["home & garden", "kitchen, dining & bar", "coffee cup"],
]
TEMPLATE_WORDS = [
    "query", "category", "product", "title", "task", "search", "does", "the", "match", "answer",
    "yes", "no", "or", "is", "relevant", "to", "translation", "english", "a", "of", "item", "path",
    "for", "this", "and", "in", "with", "-", ":", ">", "?", ".", ",", "(", ")", "&", "'", "s",
]
LANGUAGES = ["en", "fr", "es"]

SPECIAL_DECODER = ["<pad>", "<eos>", "<bos>", "<unk>"]
SPECIAL_ENCODER = SPECIAL_DECODER + ["[CLS]", "[SEP]", "[MASK]"]


def _vocabulary(texts=None):
    from tokenizers import pre_tokenizers

    words = list(QUERY_WORDS) + list(TEMPLATE_WORDS)
    for levels in CATEGORY_PATHS:
        words.extend(" ".join(levels).split())
    pre = pre_tokenizers.Whitespace()
    for text in texts or []:
        words.extend(piece for piece, _ in pre.pre_tokenize_str(str(text).lower()))
    # Whitespace() splits punctuation off words; normalise the list the same way and deduplicate in order.
    seen, vocab = set(), []
    for word in words:
        for piece, _ in pre.pre_tokenize_str(word.lower()):
            if piece not in seen:
                seen.add(piece)
                vocab.append(piece)
    return vocab


def make_tiny_tokenizer(path, texts=None, style: str = "decoder") -> str:
    """Write a word-level fast tokenizer to `path` and return `path`.

    `style="decoder"` prepends `<bos>` (like Gemma/Llama); `style="encoder"` wraps in `[CLS] ... [SEP]`.
    `texts` adds their words to the fixed vocabulary. The pad, eos, bos and unk tokens are always set.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if style not in ("decoder", "encoder"):
        raise ValueError(f"style must be 'decoder' or 'encoder', got {style!r}")
    specials = SPECIAL_ENCODER if style == "encoder" else SPECIAL_DECODER
    vocab = {token: i for i, token in enumerate(specials)}
    for word in _vocabulary(texts):
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if style == "decoder":
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
        )
        extra = {}
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
        extra = {"cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", **extra
    )
    os.makedirs(path, exist_ok=True)
    tokenizer.save_pretrained(str(path))
    return str(path)


def _tiny_text_config(arch: str, vocab_size: int, pad_id: int, bos_id: int, eos_id: int):
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen3Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=256,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,
    )
    if arch == "gemma3":
        return Gemma3TextConfig(**common, sliding_window=16, layer_types=["sliding_attention", "full_attention"])
    if arch == "qwen3":
        return Qwen3Config(**common)
    if arch == "llama":
        return LlamaConfig(**{**common, "tie_word_embeddings": False})
    raise ValueError(f"unknown tiny decoder arch {arch!r}; use gemma3, qwen3 or llama")


def make_tiny_decoder(path, arch: str = "gemma3", texts=None, pad_is_eos: bool = False, seed: int = 0) -> str:
    """Write a random 2-layer causal LM (`Gemma3ForCausalLM`, `Qwen3ForCausalLM` or `LlamaForCausalLM`) and its
    tokenizer into `path`; return `path`. `pad_is_eos=True` makes the tokenizer pad with its EOS token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(path)
    make_tiny_tokenizer(path, texts=texts, style="decoder")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if pad_is_eos:
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.save_pretrained(path)
    config = _tiny_text_config(
        arch, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)
    return path


def make_tiny_multimodal_gemma3(path, texts=None, seed: int = 0) -> str:
    """Write a random `Gemma3ForConditionalGeneration` checkpoint (tiny SigLIP vision tower + 2-layer text model,
    config with `text_config`/`vision_config`, like google/gemma-3-4b-it) and a tokenizer into `path`."""
    import torch
    from transformers import AutoTokenizer, Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    path = str(path)
    make_tiny_tokenizer(path, texts=texts, style="decoder")
    tokenizer = AutoTokenizer.from_pretrained(path)
    text_config = _tiny_text_config(
        "gemma3", len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    )
    vision_config = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    unk = tokenizer.unk_token_id
    config = Gemma3Config(
        text_config=text_config.to_dict(),
        vision_config=vision_config.to_dict(),
        mm_tokens_per_image=4,
        boi_token_index=unk,
        eoi_token_index=unk,
        image_token_index=unk,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    model.save_pretrained(path)
    return path


def make_tiny_encoder(path, arch: str = "xlm-roberta", texts=None, seed: int = 0) -> str:
    """Write a random 2-layer encoder (`XLMRobertaForMaskedLM` or `BertForMaskedLM`) and an encoder-style
    tokenizer (`[CLS] ... [SEP]`) into `path`; return `path`."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, XLMRobertaConfig

    path = str(path)
    make_tiny_tokenizer(path, texts=texts, style="encoder")
    tokenizer = AutoTokenizer.from_pretrained(path)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=256 + 2,
        pad_token_id=tokenizer.pad_token_id,
    )
    if arch == "xlm-roberta":
        config = XLMRobertaConfig(**common)
    elif arch == "bert":
        config = BertConfig(**common)
    else:
        raise ValueError(f"unknown tiny encoder arch {arch!r}; use xlm-roberta or bert")
    torch.manual_seed(seed)
    model = AutoModelForMaskedLM.from_config(config)
    model.save_pretrained(path)
    return path


def _synthetic_rows(task: str, num_rows: int, num_folds: int, seed: int, with_translation: bool):
    """Rows in the folded-dataset layout; label 1 when the query shares a word with the target, so that a
    model can learn something. Queries repeat across rows, and a few repeated queries cross folds, so that
    `exclude_from_train_folds` is exercised."""
    rng = random.Random(seed)
    task = task.lower()
    rows = []
    for i in range(num_rows):
        levels = CATEGORY_PATHS[rng.randrange(len(CATEGORY_PATHS))]
        target_words = " ".join(levels).replace(",", " ").split()
        relevant = rng.random() < 0.6
        if relevant:
            query = f"{rng.choice(target_words)} {rng.choice(QUERY_WORDS[10:])}"
        else:
            other = [w for w in QUERY_WORDS[:10] if w not in target_words]
            query = f"{rng.choice(QUERY_WORDS[10:])} {rng.choice(other)}"
        language = LANGUAGES[(i // num_folds) % len(LANGUAGES)]
        fold = i % num_folds
        row = {
            "id": i + 1,
            "task": task.upper(),
            "language": language,
            "origin_query": query.upper() if i % 7 == 0 else query,
            "label": int(relevant),
            "query": query,
            "fold": fold,
        }
        if task == "qc":
            row["category_path"] = ",".join(levels)
            row["target"] = " > ".join(levels)
            row["category_levels"] = list(levels)
        else:
            title = f"{rng.choice(QUERY_WORDS[10:])} " + " ".join(target_words[-3:])
            row["item_title"] = title
            row["target"] = title
        if with_translation:
            row["query_en"] = query if language == "en" else f"{query} english"
        rows.append(row)
    # Rows sharing a normalised query with a row of another fold: excluded from training for that fold.
    folds_of_query = {}
    for row in rows:
        folds_of_query.setdefault(row["query"], set()).add(row["fold"])
    for row in rows:
        row["exclude_from_train_folds"] = sorted(f for f in folds_of_query[row["query"]] if f != row["fold"])
    return rows


def make_tiny_folded_dataset(
    path,
    task: str = "qc",
    num_rows: int = 60,
    num_folds: int = 3,
    num_test_rows: int = 10,
    with_translation: bool = False,
    seed: int = 0,
) -> str:
    """Write a small folded `DatasetDict` (`train` with `fold` and `exclude_from_train_folds`, plus a `test` split
    whose labels are null) to `path` with `save_to_disk`, as docs/conventions.md describes; return `path`."""
    import datasets

    if task.lower() not in ("qc", "qi"):
        raise ValueError(f"task must be qc or qi, got {task!r}")
    rows = _synthetic_rows(task, num_rows, num_folds, seed, with_translation)
    test_rows = _synthetic_rows(task, num_test_rows, 1, seed + 1, with_translation)
    for i, row in enumerate(test_rows):
        row["label"] = None  # as make_folds.py writes an unlabelled test split: one schema for every split
        row["id"] = 10_000 + i
        row["fold"] = -1
        row["exclude_from_train_folds"] = []
    train = datasets.Dataset.from_list(rows)
    test = datasets.Dataset.from_list(test_rows)
    test = test.cast(train.features)
    dataset = datasets.DatasetDict({"train": train, "test": test})
    path = str(path)
    dataset.save_to_disk(path)
    report = {"task": task.upper(), "num_folds": num_folds, "rows": num_rows, "synthetic": True}
    Path(path, "fold_report.json").write_text(json.dumps(report, indent=2))
    return path
