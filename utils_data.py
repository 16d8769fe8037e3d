"""Data helpers shared by make_folds.py, run_translate.py and make_submission.py.

Kept small on purpose: reading and validating the competition's raw files, normalising text, parsing
category paths. See docs/conventions.md. `UserError`, `run_cli`, `parse_tasks`, `check_folder_or_hub_repo` and
`load_folded_dataset` are defined in modeling_relevance.py (training runs from two files) and re-exported here.

Raw-file policy (what `read_raw_file` / `read_raw_dataset` do):
- Required fields: `id`, `language`, `origin_query`, the task's target (`category_path` for QC, `item_title`
  for QI) and, for a labelled (train) file, `label`. A `task` field, when present, must match the task.
- An error names the file, the line (JSON lines) or data row (CSV, parquet, dataset) and the field. With
  `skip_invalid=True` (train files only) the bad row is skipped instead and listed in `ReadStats.skipped`;
  an unlabelled (test) row is never skipped, since every test row needs a prediction.
- A null/empty `origin_query` and a null/empty target are valid: the row is kept, the raw value stays as
  read (null stays null) and the model-facing column becomes `""`. Callers count them.
- Fully blank lines in a JSON-lines file are ignored and counted.
- A file that is not UTF-8 text (binary, or another encoding) is one error naming the file, line and byte offset.

User errors (`UserError`: bad flags, bad input files) end a script with one line, `SCRIPT: error: MESSAGE`, and
exit code 1 through `run_cli`; set RELEVANCE_DEBUG=1 to get the traceback instead.
"""

import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa

# Defined in modeling_relevance.py (so that run_relevance.py + modeling_relevance.py run alone); re-exported here.
from modeling_relevance import (  # noqa: F401
    CATEGORY_JOINER,
    DEBUG_VARIABLE,
    TASKS,
    UserError,
    check_folder_or_hub_repo,
    load_folded_dataset,
    parse_tasks,
    run_cli,
)

TARGET_COLUMN = {"qc": "category_path", "qi": "item_title"}
RAW_REQUIRED_FIELDS = ("id", "language", "origin_query")
LABEL_COLUMN = "label"
# Columns make_folds.py adds; a raw input must not already carry them (they would be silently replaced).
DERIVED_COLUMNS = ("query", "target", "category_levels", "fold", "exclude_from_train_folds")
JSON_LINES_EXTENSIONS = (".jsonl", ".json", ".txt")
CSV_EXTENSIONS = (".csv", ".tsv")
PARQUET_EXTENSIONS = (".parquet", ".pq")

# Levels are joined by "," but a level name may itself contain ", " (e.g. "phones & telecommunications,
# mobile phone accessories, parts"): split only on a comma that is not followed by whitespace.
_LEVEL_SPLIT = re.compile(r",(?=\S)")
_WHITESPACE = re.compile(r"\s+")
# Errors listed in one exception message; the rest are counted.
_MAX_LISTED_ERRORS = 20


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


def grouping_key(text) -> str:
    """Key used to group rows for cross-validation: NFKC, lowercased, whitespace collapsed.

    Always case- and width-folded, whatever the model-facing `--lowercase` setting, so that "iPhone case",
    "iphone  case" and "ｉｐｈｏｎｅ case" can never sit on both sides of a fold boundary.
    """
    if text is None:
        return ""
    return normalize_text(unicodedata.normalize("NFKC", str(text)), lowercase=True)


def category_prefix_key(levels, num_levels: int) -> str:
    """Grouping key of the first `num_levels` category levels (all of them when the path is shorter)."""
    return CATEGORY_JOINER.join(grouping_key(level) for level in levels[:num_levels])


def _map_unique(function, values) -> list:
    # Queries and category paths repeat a lot: compute each distinct value once.
    cache = {value: function(value) for value in set(values)}
    return [cache[value] for value in values]


def add_model_columns(df: pd.DataFrame, task: str, lowercase: bool = True) -> pd.DataFrame:
    """Add the model-facing columns `query`, `target` and (QC) `category_levels`; raw columns stay as read."""
    df = df.copy()
    df["query"] = _map_unique(lambda q: normalize_text(q, lowercase), df["origin_query"].tolist())
    if task == "qc":
        levels = _map_unique(
            lambda path: tuple(normalize_text(level, lowercase) for level in split_category_path(path)),
            df["category_path"].tolist(),
        )
        df["target"] = [CATEGORY_JOINER.join(lv) for lv in levels]
        df["category_levels"] = [list(lv) for lv in levels]
    else:
        df["target"] = [normalize_text(title, lowercase) for title in df["item_title"].tolist()]
    return df


class DataValidationError(UserError):
    """Bad input data; the message names the file, the line or row and the field."""


@dataclass
class RawIssue:
    """One problem found in a raw file: where, which field, what."""

    location: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: field '{self.field}': {self.reason}"

    def to_dict(self) -> dict:
        return {"location": self.location, "field": self.field, "reason": self.reason}


@dataclass
class ReadStats:
    """What reading one raw file did: rows read and kept, blank lines ignored, rows skipped and why."""

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    blank_lines: int = 0
    skipped: list = field(default_factory=list)

    def skip_counts(self) -> dict:
        counts = {}
        for issue in self.skipped:
            counts[issue.field] = counts.get(issue.field, 0) + 1
        return counts

    def to_dict(self, max_listed: int = 100) -> dict:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "blank_lines_ignored": self.blank_lines,
            "rows_skipped": len(self.skipped),
            "skipped_by_field": self.skip_counts(),
            "skipped_rows": [issue.to_dict() for issue in self.skipped[:max_listed]],
        }


def _is_null(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _to_python(value):
    # numpy scalars -> plain Python, so that type checks and Arrow see one type per column.
    if _is_null(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def infer_task(columns, task_values=()) -> str:
    """QC if the data has `category_path` only, QI if `item_title` only, else the `task` column's value."""
    columns = set(columns)
    has_qc, has_qi = TARGET_COLUMN["qc"] in columns, TARGET_COLUMN["qi"] in columns
    if has_qc != has_qi:
        return "qc" if has_qc else "qi"
    values = {str(v).strip().lower() for v in task_values if not _is_null(v)}
    if len(values) == 1 and values <= set(TASKS):
        return values.pop()
    raise DataValidationError(
        f"cannot infer the task from columns {sorted(columns)} (task values {sorted(values)}); "
        "pass --task qc or --task qi"
    )


def text_lines(path: str):
    """Yield (line number, text) of a UTF-8 text file; a byte that is not UTF-8, or a NUL (a binary file), is a
    DataValidationError naming the file, the line and the byte offset."""
    offset = 0
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad, what = err.start, f"byte 0x{raw[err.start]:02x} is not UTF-8"
            else:
                bad, what = raw.find(b"\0"), "a NUL byte (binary data)"
            if bad >= 0:
                raise DataValidationError(
                    f"{path}:{line_number}: {what} at byte offset {offset + bad}; is it a binary file or in another "
                    "encoding? Give UTF-8 text"
                )
            # A byte-order mark at the start of a Windows-exported file is not part of line 1.
            yield line_number, text.removeprefix("\ufeff") if line_number == 1 else text
            offset += len(raw)


def _read_json_lines(path: str):
    """Yield (location, record or RawIssue) for each non-blank line; returns the number of blank lines."""
    rows, blank = [], 0
    for line_number, line in text_lines(path):
        location = f"{path}:{line_number}"
        if not line.strip():
            blank += 1
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            # Some messages end in "at" ("Unterminated string starting at"): the column completes them.
            reason = f"malformed JSON ({err.msg.removesuffix(' at')} at column {err.colno})"
            rows.append((location, RawIssue(location, "<line>", reason)))
            continue
        if not isinstance(record, dict):
            reason = f"expected a JSON object, got {type(record).__name__}"
            rows.append((location, RawIssue(location, "<line>", reason)))
            continue
        rows.append((location, record))
    return rows, blank


def _rows_from_frame(frame: pd.DataFrame, source: str):
    columns = list(frame.columns)
    return [
        (f"{source}: row {index}", {c: _to_python(v) for c, v in zip(columns, values)})
        for index, values in enumerate(frame.itertuples(index=False, name=None), start=1)
    ]


def _read_tabular(path: str):
    lower = path.lower()
    if lower.endswith(CSV_EXTENSIONS):
        text_columns = {c: str for c in ("language", "task", "origin_query", "category_path", "item_title")}
        # Only an empty cell is null: "NA" or "null" can be a real query or product name.
        separator = "\t" if lower.endswith(".tsv") else ","
        try:
            frame = pd.read_csv(path, sep=separator, dtype=text_columns, keep_default_na=False, na_values=[""])
        except UnicodeDecodeError:
            for _ in text_lines(path):  # raises, naming the line and byte offset
                pass
            raise
    else:
        try:
            frame = pd.read_parquet(path)
        except pa.ArrowInvalid as err:
            raise DataValidationError(f"{path}: not a parquet file ({err}); give a .parquet file") from err
    return frame


def _check_columns(columns, source: str, task: str, labelled: bool):
    required = list(RAW_REQUIRED_FIELDS) + [TARGET_COLUMN[task]] + ([LABEL_COLUMN] if labelled else [])
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataValidationError(f"{source}: missing required column(s) {missing} (columns: {list(columns)})")


def _validate_label(value):
    """Return 0/1 or None when the value is not a 0/1 label."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return None


def validate_rows(rows, source: str, task: str, labelled: bool, skip_invalid: bool = False, blank_lines: int = 0):
    """Validate parsed rows; return (DataFrame of the kept rows with raw columns as read, ReadStats).

    `rows` is a list of (location, record dict or RawIssue from parsing). Raises DataValidationError listing
    every problem (file, line/row, field) unless `skip_invalid` (train only), which skips and records them.
    """
    allow_skip = skip_invalid and labelled
    stats = ReadStats(source=source, rows_read=len(rows), blank_lines=blank_lines)
    target_column = TARGET_COLUMN[task]
    required = list(RAW_REQUIRED_FIELDS) + [target_column] + ([LABEL_COLUMN] if labelled else [])
    issues, kept = [], []
    seen_ids = {}
    id_type = None
    for location, record in rows:
        if isinstance(record, RawIssue):
            issues.append(record)
            continue
        problem = None
        for name in required:
            if name not in record:
                problem = RawIssue(location, name, "missing required field")
                break
        if problem is None:
            record = dict(record)
            problem = _check_record(record, location, task, labelled)
        if problem is None:
            row_id = record["id"]
            if id_type is None:
                id_type = type(row_id)
            if type(row_id) is not id_type:
                reason = f"{type(row_id).__name__} id {row_id!r} in a file of {id_type.__name__} ids"
                problem = RawIssue(location, "id", reason)
            elif row_id in seen_ids:
                problem = RawIssue(location, "id", f"duplicate id {row_id!r} (first seen at {seen_ids[row_id]})")
            else:
                seen_ids[row_id] = location
        if problem is None:
            kept.append(record)
        else:
            issues.append(problem)
    if issues and not allow_skip:
        hint = "pass --skip_invalid to skip bad train rows and list them in the report" if labelled else (
            "unlabelled/test rows are never skipped: every test row needs a prediction"
        )
        # The first line is the whole error for one bad row; more rows are listed on the next lines.
        message = f"{issues[0]} ({hint})"
        if len(issues) > 1:
            listed = "\n  ".join(str(issue) for issue in issues[1:_MAX_LISTED_ERRORS])
            more = f"\n  ... and {len(issues) - _MAX_LISTED_ERRORS} more" if len(issues) > _MAX_LISTED_ERRORS else ""
            message = f"{len(issues)} invalid rows in {source}, the first: {message}; the others:\n  {listed}{more}"
        raise DataValidationError(message)
    stats.skipped = issues
    stats.rows_kept = len(kept)
    if not kept:
        raise DataValidationError(f"{source}: no valid rows")
    frame = pd.DataFrame.from_records(kept)
    # Raw columns keep the file's order; nulls stay null (None), not NaN.
    frame = frame.astype(object).where(frame.notna(), None)
    if labelled:
        frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype("int64")
    elif LABEL_COLUMN in frame.columns and frame[LABEL_COLUMN].notna().all():
        frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype("int64")
    if id_type is int:
        frame["id"] = frame["id"].astype("int64")
    return frame, stats


def _check_record(record: dict, location: str, task: str, labelled: bool):
    """Check and normalise the types of one record in place; return a RawIssue or None."""
    row_id = record["id"]
    if _is_null(row_id):
        return RawIssue(location, "id", "null id")
    if isinstance(row_id, float) and row_id.is_integer():
        row_id = record["id"] = int(row_id)
    blank_string = isinstance(row_id, str) and not row_id.strip()
    if isinstance(row_id, bool) or not isinstance(row_id, (int, str)) or blank_string:
        return RawIssue(location, "id", f"expected an integer or a non-empty string, got {row_id!r}")
    language = record["language"]
    if not isinstance(language, str) or not language.strip():
        return RawIssue(location, "language", f"expected a non-empty language code, got {language!r}")
    for name in ("origin_query", TARGET_COLUMN[task]):
        value = record[name]
        if _is_null(value):
            record[name] = None
        elif not isinstance(value, str):
            return RawIssue(location, name, f"expected a string or null, got {type(value).__name__} {value!r}")
    if "task" in record and not _is_null(record["task"]):
        if str(record["task"]).strip().lower() != task:
            return RawIssue(location, "task", f"{record['task']!r} row in a {task.upper()} file")
    if not labelled and LABEL_COLUMN in record and _is_null(record[LABEL_COLUMN]):
        record[LABEL_COLUMN] = None
    elif labelled or LABEL_COLUMN in record:
        # An unlabelled file may still carry labels (a held-out set); they must be 0/1 as well.
        label = _validate_label(record[LABEL_COLUMN])
        if label is None:
            return RawIssue(location, LABEL_COLUMN, f"expected 0 or 1, got {record[LABEL_COLUMN]!r}")
        record[LABEL_COLUMN] = label
    return None


def _finish(rows, source, columns, task, labelled, skip_invalid, blank_lines, task_values):
    if task is None:
        task = infer_task(columns, task_values)
    if task not in TASKS:
        raise DataValidationError(f"unknown task {task!r}; expected one of {TASKS}")
    clashing = [c for c in DERIVED_COLUMNS if c in columns]
    if clashing:
        raise DataValidationError(
            f"{source}: already has derived column(s) {clashing}; pass the raw competition data, not a folded dataset"
        )
    frame, stats = validate_rows(rows, source, task, labelled, skip_invalid, blank_lines)
    return frame, stats, task


def read_raw_file(path: str, task: str = None, labelled: bool = True, skip_invalid: bool = False):
    """Read and validate one raw competition file (JSON lines .jsonl/.json/.txt, .csv/.tsv, .parquet).

    Returns (DataFrame with the raw columns as read, ReadStats, task). `task` is inferred when None.
    """
    if not os.path.isfile(path):
        raise DataValidationError(f"{path}: no such file")
    lower = path.lower()
    if lower.endswith(JSON_LINES_EXTENSIONS):
        rows, blank = _read_json_lines(path)
        columns = {}
        for _, record in rows:
            if isinstance(record, dict):
                columns.update(dict.fromkeys(record))
        task_values = {r.get("task") for _, r in rows if isinstance(r, dict) and isinstance(r.get("task"), str)}
        if columns:
            # A field absent from every line is one file-level error, not one error per line.
            _check_columns(columns, path, task if task is not None else infer_task(columns, task_values), labelled)
    elif lower.endswith(CSV_EXTENSIONS + PARQUET_EXTENSIONS):
        frame = _read_tabular(path)
        blank = 0
        columns = dict.fromkeys(frame.columns)
        task_values = set(frame["task"].dropna().unique()) if "task" in frame.columns else set()
        resolved = task if task is not None else infer_task(columns, task_values)
        _check_columns(columns, path, resolved, labelled)
        rows = _rows_from_frame(frame, path)
    else:
        raise DataValidationError(
            f"{path}: unknown file type; expected one of {JSON_LINES_EXTENSIONS + CSV_EXTENSIONS + PARQUET_EXTENSIONS}"
        )
    return _finish(rows, path, list(columns), task, labelled, skip_invalid, blank, task_values)


def read_raw_split(dataset: datasets.Dataset, source: str, task: str = None, labelled: bool = True,
                   skip_invalid: bool = False):
    """Read and validate one split of raw competition data already loaded as a `datasets.Dataset`."""
    frame = dataset.to_pandas()
    columns = dict.fromkeys(frame.columns)
    task_values = set(frame["task"].dropna().unique()) if "task" in frame.columns else set()
    resolved = task if task is not None else infer_task(columns, task_values)
    _check_columns(columns, source, resolved, labelled)
    rows = _rows_from_frame(frame, source)
    return _finish(rows, source, list(columns), resolved, labelled, skip_invalid, 0, task_values)


def read_raw_dataset(name_or_path: str, split: str, task: str = None, labelled: bool = True,
                     skip_invalid: bool = False, config_name: str = None):
    """Read and validate one split of raw competition data from a Hub dataset id or a local dataset folder."""
    loaded = load_folded_dataset(name_or_path, **({"name": config_name} if config_name else {}))
    if split not in loaded:
        raise DataValidationError(f"{name_or_path}: no split {split!r} (splits: {list(loaded)})")
    return read_raw_split(loaded[split], f"{name_or_path}[{split}]", task, labelled, skip_invalid)
