"""Data helpers shared by make_folds.py, run_translate.py, run_relevance.py and make_submission.py.

Kept small on purpose: reading and validating the competition's raw files, normalising text, parsing
category paths and loading a folded dataset from a Hub id or a local directory. See docs/conventions.md.
"""

import os
import re

import datasets

TASKS = ("qc", "qi")
TARGET_COLUMN = {"qc": "category_path", "qi": "item_title"}

# Levels are joined by "," but a level name may itself contain ", " (e.g. "phones & telecommunications,
# mobile phone accessories, parts"): split only on a comma that is not followed by whitespace.
_LEVEL_SPLIT = re.compile(r",(?=\S)")
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text, lowercase: bool = False) -> str:
    """Strip and collapse whitespace (None becomes ""), optionally lowercase."""
    if text is None:
        return ""
    text = _WHITESPACE.sub(" ", str(text)).strip()
    return text.lower() if lowercase else text


def split_category_path(path) -> list:
    """Split a raw category path into its levels; ", " stays inside a level name."""
    if path is None:
        return []
    return [level.strip() for level in _LEVEL_SPLIT.split(str(path)) if level.strip()]


def load_folded_dataset(name_or_path: str, **kwargs) -> datasets.DatasetDict:
    """Load what make_folds.py (or run_translate.py) wrote: a save_to_disk folder, or a Hub dataset id."""
    if os.path.isdir(name_or_path) and (
        os.path.exists(os.path.join(name_or_path, "dataset_dict.json"))
        or os.path.exists(os.path.join(name_or_path, "state.json"))
    ):
        loaded = datasets.load_from_disk(name_or_path)
    else:
        loaded = datasets.load_dataset(name_or_path, **kwargs)
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded
