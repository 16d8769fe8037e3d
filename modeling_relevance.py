"""The relevance classifier shared by run_relevance.py (training) and make_submission.py (inference).

    from modeling_relevance import load_for_inference, predict_probabilities
    model, tokenizer, settings = load_for_inference("outputs/qc_fold0")  # a run_relevance.py output (or Hub id)
    p = predict_probabilities(model, tokenizer, ["qc"], ["red shoe"], ["shoes > sandals"],
                              template=settings["template"], max_length=settings["max_length"])

Where to change what (training and prediction both go through here, so they cannot disagree):
- the prompt: `PROMPTS` (one entry per `--template`) and `TASK_WORDS` (one per task), filled in `build_input_parts`;
- the pooling: a `pool_*` function and its entry in `POOLINGS` (`--pooling auto` is resolved in `resolve_pooling`;
  a flattened, padding-free batch is split back into its rows in `pool_hidden_states`, nowhere else);
- the head: `LastTokenClassifier.score`, a bias-free float32 linear layer, initialised in `build_classifier`;
- the loss: `relevance_loss`, called by `LastTokenClassifier.forward`.

`probability` is always P(relevant): softmax(logits)[:, 1] with two labels, sigmoid(logit) with one.
"""

import inspect
import json
import logging
import math
import os
import sys

import huggingface_hub
import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import HFValidationError
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import validate_repo_id
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

logger = logging.getLogger(__name__)

# The prompt: text before and after the target (only the target is cut to fit --max_length). {query} is the
# query, or "query - query_en" with a translation (format_query); the other fields come from TASK_WORDS.
PROMPTS = {
    "bare": ("{query} [SEP] ", ""),  # the winners' form; it names no task, so single-task only
    "instruct": ("{question}\nQuery: {query}\n{target_name}: ", "\nAnswer:"),  # ends where an LM says yes/no
}
TASK_WORDS = {
    "qc": {"question": "Is the product category relevant to the search query? Answer yes or no.",
           "target_name": "Category"},
    "qi": {"question": "Is the product title relevant to the search query? Answer yes or no.",
           "target_name": "Product title"},
}
TASKS = tuple(TASK_WORDS)
TEMPLATES = tuple(PROMPTS)
SCORE_INITS = ("random", "answer_tokens")
# Written beside the adapter: everything prediction needs to rebuild the exact training-time input and head.
SETTINGS_NAME = "relevance_config.json"
# What every adapter of one ensemble must share with the first (they run on one base, with one tokenisation).
SHARED_SETTINGS = ("base_model_name_or_path", "num_labels", "pooling", "template", "max_length", "num_hidden_layers")

# Multimodal checkpoints store the language model under one of these prefixes (Hub layout and in-memory layout).
_LANGUAGE_MODEL_KEY_MAPPING = {r"^language_model\.model\.": "", r"^model\.language_model\.": ""}


# --------------------------------------------------------------------------------------------------------------
# Input text
# --------------------------------------------------------------------------------------------------------------


def format_query(query: str, query_en=None) -> str:
    """The query part of the input: `"{query} - {query_en}"` (the winners' form) when a different translation
    exists, else the query alone."""
    query = "" if query is None else str(query)
    if query_en is None:
        return query
    query_en = str(query_en).strip()
    if not query_en or query_en == query.strip():
        return query
    return f"{query} - {query_en}"


def _check_task(task: str) -> str:
    task = str(task).lower()
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return task


def build_input_parts(task: str, query: str, target: str, query_en=None, template: str = "instruct"):
    """The input text as `(head, target, tail)` (see `PROMPTS`), so that the target alone can be truncated."""
    task = _check_task(task)
    if template not in PROMPTS:
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    head, tail = PROMPTS[template]
    target = "" if target is None else str(target)
    return head.format(query=format_query(query, query_en), **TASK_WORDS[task]), target, tail


def build_input_text(task: str, query: str, target: str, query_en=None, template: str = "instruct") -> str:
    """The model's input text for one (query, target) pair; see `build_input_parts`."""
    return "".join(build_input_parts(task, query, target, query_en=query_en, template=template))


# --------------------------------------------------------------------------------------------------------------
# Tokenisation: truncate the target, never the query
# --------------------------------------------------------------------------------------------------------------


def _truncate_one(tokenizer, head: str, target: str, tail: str, max_length: int):
    """Tokenise `head + target + tail`, cutting the target at a token boundary until the whole fits in
    `max_length`. Returns `(encoding, target_was_cut, query_too_long)`; the head (with the query) is never cut."""
    cut = False
    for _ in range(8):
        text = head + target + tail
        enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        excess = len(enc["input_ids"]) - max_length
        if excess <= 0:
            return enc, cut, False
        start, end = len(head), len(head) + len(target)
        # Tokens lying inside the target span, in order (special tokens have empty (0, 0) offsets).
        target_tokens = [(s, e) for s, e in enc["offset_mapping"] if e > s and s >= start and e <= end]
        if not target_tokens:
            break
        keep = len(target_tokens) - excess
        cut = True
        target = "" if keep <= 0 else target[: target_tokens[keep - 1][1] - start].rstrip()
        if keep <= 0:
            break
    enc = tokenizer(head + target + tail, add_special_tokens=True, return_offsets_mapping=True)
    return enc, cut, len(enc["input_ids"]) > max_length


def encode_examples(tokenizer, tasks, queries, targets, queries_en=None, template="instruct", max_length=256):
    """Tokenise a batch of examples (lists of equal length; `queries_en` may be None or contain None).

    Returns `{"input_ids", "attention_mask", "target_truncated", "query_too_long"}`: the last two are per-row
    booleans so the caller can count and report them. A row whose head (instruction + query) alone exceeds
    `max_length` keeps its whole query with an empty target and is flagged `query_too_long`.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("encode_examples needs a fast tokenizer (offset mappings are used to cut the target)")
    n = len(queries)
    if queries_en is None:
        queries_en = [None] * n
    parts = [
        build_input_parts(task, q, t, query_en=q_en, template=template)
        for task, q, t, q_en in zip(tasks, queries, targets, queries_en)
    ]
    texts = ["".join(p) for p in parts]
    enc = tokenizer(texts, add_special_tokens=True)
    input_ids, attention_mask = list(enc["input_ids"]), list(enc["attention_mask"])
    truncated, too_long = [False] * n, [False] * n
    for i, ids in enumerate(input_ids):
        if len(ids) > max_length:
            one, truncated[i], too_long[i] = _truncate_one(tokenizer, *parts[i], max_length)
            input_ids[i], attention_mask[i] = one["input_ids"], one["attention_mask"]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "target_truncated": truncated,
        "query_too_long": too_long,
    }


def prepare_tokenizer(tokenizer):
    """Give the tokenizer a pad token (its EOS when it has none): pooling reads the attention mask, not the
    pad id, so pad == EOS is safe."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a pad token nor an EOS token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --------------------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------------------


def _gather(hidden_states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(hidden_states.shape[0], device=hidden_states.device)
    return hidden_states[rows, index.to(hidden_states.device)]


def pool_last(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The last position whose attention mask is 1 (decoders). The mask, not the token id, says what is padding:
    right padding, left padding and pad == EOS all work."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return _gather(hidden_states, torch.where(attention_mask.bool(), positions, -1).max(dim=-1).values)


def pool_first(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The first position whose attention mask is 1 (encoders: their CLS / <s> token)."""
    length = attention_mask.shape[1]
    positions = torch.arange(length, device=attention_mask.device)
    return _gather(hidden_states, torch.where(attention_mask.bool(), positions, length).min(dim=-1).values)


def pool_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean over the positions whose attention mask is 1: prompt, query and target alike."""
    mask = attention_mask.to(hidden_states.dtype).unsqueeze(1)  # (batch, 1, length); bmm accepts an expanded view
    return torch.bmm(mask, hidden_states).squeeze(1) / mask.sum(dim=-1)


# --pooling: one hidden state per row, (batch, length, hidden) + mask -> (batch, hidden). "auto": resolve_pooling.
POOLINGS = {"last": pool_last, "first": pool_first, "mean": pool_mean}
POOLING_CHOICES = ("auto", *POOLINGS)
# A batch whose rows all start with this many tokens or more (the instruction) runs them once (split_shared_prefix).
MIN_SHARED_PREFIX = 4
# What DataCollatorWithFlattening(return_flash_attn_kwargs=True) adds to a flattened batch for flash attention.
FLASH_ATTENTION_KWARGS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


def packed_row_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """The rows of a flattened batch as a padded-style mask. A flattened batch (padding-free training,
    transformers' `DataCollatorWithFlattening`) is one row of shape (1, total tokens) holding the original rows one
    after the other, its `position_ids` restarting at 0 where each of them starts. Returns a (rows, total tokens)
    mask whose row r is 1 on the tokens of original row r, in order."""
    if position_ids.ndim != 2 or position_ids.shape[0] != 1 or position_ids.shape[1] == 0 or position_ids[0, 0] != 0:
        raise ValueError(f"a flattened batch has position_ids of shape (1, total tokens) starting at 0, got shape "
                         f"{tuple(position_ids.shape)}")
    row_of_token = (position_ids[0] == 0).long().cumsum(0) - 1
    rows = torch.arange(int(row_of_token[-1]) + 1, device=position_ids.device)
    return (row_of_token.unsqueeze(0) == rows.unsqueeze(1)).long()


def pool_hidden_states(
    hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str, packed_position_ids=None
) -> torch.Tensor:
    """The hidden state `POOLINGS[pooling]` picks in each row. With `packed_position_ids` (a flattened batch, no
    attention mask) the one packed row is seen as one row per original row, each masked to its own tokens
    (`packed_row_mask`), so the same `POOLINGS` function picks the same token as on the padded batch: one pooled
    state per original row, in order."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}")
    if packed_position_ids is not None:
        attention_mask = packed_row_mask(packed_position_ids)
        hidden_states = hidden_states.expand(attention_mask.shape[0], -1, -1)  # a view: nothing is copied
    if not attention_mask.bool().any(dim=-1).all():
        raise ValueError("a row of the batch has no token with attention_mask == 1")
    return POOLINGS[pooling](hidden_states, attention_mask)


def split_shared_prefix(input_ids: torch.Tensor, attention_mask: torch.Tensor, min_tokens: int):
    """The batch as `(prefix, own_ids, own_mask)` when all its rows start with the same `min_tokens` or more tokens
    (the prompt's instruction, `PROMPTS`), else None. `prefix` (1, P) holds those tokens; `own_ids` / `own_mask`
    (rows, L) the rest of each row, left-padded, at least one token each. Works on left- and right-padded batches."""
    rows = [ids[mask.bool()] for ids, mask in zip(input_ids, attention_mask)]
    shortest = min(len(row) for row in rows)
    if len(rows) < 2 or shortest - 1 < min_tokens:
        return None
    heads = torch.stack([row[: shortest - 1] for row in rows])
    length = int((heads == heads[:1]).all(dim=0).long().cumprod(dim=0).sum())
    if length < min_tokens:
        return None
    width = max(len(row) for row in rows) - length
    own_ids = input_ids.new_zeros((len(rows), width))
    own_mask = attention_mask.new_zeros((len(rows), width))
    for i, row in enumerate(rows):
        own_ids[i, width - len(row) + length :] = row[length:]
        own_mask[i, width - len(row) + length :] = 1
    return heads[:1, :length], own_ids, own_mask


def relevance_loss(logits, labels, label_smoothing: float = 0.0, num_items_in_batch=None) -> torch.Tensor:
    """The training loss: cross-entropy of the rows (binary cross-entropy with one logit), label smoothing optional.

    With `num_items_in_batch` (passed by the Trainer: labelled rows over all gradient-accumulation micro-batches)
    it is the sum over this micro-batch divided by that count, so that the summed micro-batch losses, i.e. what the
    Trainer logs, are the true mean of the optimizer step, even with uneven micro-batches.
    """
    labels = labels.to(logits.device).long().reshape(-1)
    if logits.shape[-1] == 1:
        targets = labels.float() * (1.0 - label_smoothing) + 0.5 * label_smoothing
        per_row = F.binary_cross_entropy_with_logits(logits.reshape(-1).float(), targets, reduction="none")
    else:
        per_row = F.cross_entropy(logits.float(), labels, reduction="none", label_smoothing=label_smoothing)
    if num_items_in_batch is None:
        return per_row.mean()
    return per_row.sum() / torch.as_tensor(num_items_in_batch, device=per_row.device).float()


def probabilities_from_logits(logits) -> np.ndarray:
    """P(relevant) from the score head's logits: sigmoid for one logit, softmax[:, 1] for two."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float32)
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return torch.sigmoid(logits.reshape(-1)).numpy()
    return torch.softmax(logits, dim=-1)[:, 1].numpy()


class LastTokenClassifier(PreTrainedModel):
    """Text backbone + bias-free float32 linear score head on one pooled hidden state.

    `forward(input_ids, attention_mask, labels)` returns a `SequenceClassifierOutput` (loss: `relevance_loss`).
    """

    config_class = PreTrainedConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    # The wrapper adds no attention of its own: whatever the backbone supports, it supports.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # Tells the Trainer to pass `num_items_in_batch` and not to divide the loss again by the accumulation steps.
    accepts_loss_kwargs = True

    def __init__(
        self,
        config,
        backbone: nn.Module,
        num_labels: int = 2,
        pooling: str = "last",
        label_smoothing: float = 0.0,
        shared_prefix: bool = True,
    ):
        super().__init__(config)
        if num_labels not in (1, 2):
            raise ValueError(f"num_labels must be 1 (sigmoid) or 2 (softmax), got {num_labels}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        self.model = backbone
        self.num_labels = num_labels
        self.pooling = pooling
        self.label_smoothing = float(label_smoothing)
        self.shared_prefix = bool(shared_prefix)
        self.is_decoder_backbone = not _is_encoder(config)
        self.score = nn.Linear(config.hidden_size, num_labels, bias=False, dtype=torch.float32)
        self.post_init()

    def init_weights(self):
        # The backbone is already loaded: only the new head is initialised (never the pretrained weights).
        std = getattr(self.config, "initializer_range", 0.02)
        with torch.no_grad():
            self.score.weight.normal_(mean=0.0, std=std)

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return None

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        labels=None,
        num_items_in_batch=None,
        position_ids=None,
        **kwargs,
    ):
        if position_ids is not None:  # a flattened (padding-free) batch: its rows are told apart by position
            backbone_kwargs = self._flattened_batch_kwargs(attention_mask, position_ids, kwargs)
            outputs = self.model(input_ids=input_ids, inputs_embeds=inputs_embeds, **backbone_kwargs)
            pooled = pool_hidden_states(outputs.last_hidden_state, None, self.pooling, position_ids)
        else:
            if attention_mask is None:
                reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
                attention_mask = torch.ones(reference.shape[:2], dtype=torch.long, device=reference.device)
            hidden_states, attention_mask = self._padded_hidden_states(input_ids, attention_mask, inputs_embeds)
            pooled = pool_hidden_states(hidden_states, attention_mask, self.pooling)
        logits = self.score(pooled.to(self.score.weight.dtype))

        loss = None
        if labels is not None:
            loss = relevance_loss(logits, labels, self.label_smoothing, num_items_in_batch)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def _padded_hidden_states(self, input_ids, attention_mask, inputs_embeds):
        """The backbone's last hidden states of a padded batch, and the mask that says which are tokens.

        With `shared_prefix` (decoders, last-token pooling) the instruction every row starts with runs once, at
        batch size 1, and the rows continue from a copy of its KV cache, laid out [prefix][padding][own tokens]
        (the padding masked): same logits and gradients up to rounding, for far fewer token computations
        (docs/scaling.md, "Shared prompt prefix")."""
        shared = self.shared_prefix_split(input_ids, attention_mask)
        if shared is None:
            kwargs = {}
            if self.is_decoder_backbone:
                # Positions count real tokens only, so a left-padded row sees the same positions as unpadded.
                kwargs = {"use_cache": False, "position_ids": (attention_mask.long().cumsum(-1) - 1).clamp(min=0)}
            outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                 **kwargs)
            return outputs.last_hidden_state, attention_mask
        prefix, own_ids, own_mask = shared
        length = prefix.shape[1]
        cache = self.model(input_ids=prefix, position_ids=torch.arange(length, device=prefix.device)[None],
                           use_cache=True).past_key_values
        cache.batch_repeat_interleave(own_ids.shape[0])  # differentiable: gradients flow back into the prefix run
        full_mask = torch.cat([own_mask.new_ones((own_ids.shape[0], length)), own_mask], dim=1)
        outputs = self.model(input_ids=own_ids, attention_mask=full_mask, past_key_values=cache, use_cache=True,
                             position_ids=length + (own_mask.long().cumsum(-1) - 1).clamp(min=0))
        return outputs.last_hidden_state, own_mask

    def shared_prefix_split(self, input_ids, attention_mask):
        """`split_shared_prefix` of this padded batch where the shared-prefix path applies to it, else None."""
        if not (self.shared_prefix and self.is_decoder_backbone and self.pooling == "last" and input_ids is not None
                and not getattr(self.model, "gradient_checkpointing", False)):
            return None
        shared = split_shared_prefix(input_ids, attention_mask, MIN_SHARED_PREFIX)
        # A sliding-window cache keeps only the window: past it the continued rows would differ (measured).
        window = getattr(self.config, "sliding_window", None)
        if shared is not None and window and shared[0].shape[1] + shared[1].shape[1] > window:
            return None
        return shared

    def _flattened_batch_kwargs(self, attention_mask, position_ids, kwargs) -> dict:
        """The backbone's arguments for a flattened batch (`position_ids` given, no attention mask): transformers
        then keeps each packed row to itself (causal masks: `find_packed_sequence_indices`; flash attention: the
        `cu_seq_lens_*` / `max_length_*` the collator may add, else derived from `position_ids`)."""
        if attention_mask is not None:
            raise ValueError("a flattened batch (position_ids) has no attention_mask; a padded batch has no "
                             "position_ids: give one or the other")
        if _is_encoder(self.config):
            raise ValueError(f"padding-free (flattened) batches need a causal decoder; {self.config.model_type} is an "
                             "encoder, whose bidirectional attention would mix the packed rows")
        flash = {k: v for k, v in kwargs.items() if k in FLASH_ATTENTION_KWARGS}
        return {"use_cache": False, "position_ids": position_ids, **flash}


def resolve_pooling(config, pooling: str = "auto") -> str:
    """`auto`: first-token pooling for encoder (masked-LM) architectures, last-token pooling otherwise."""
    if pooling not in POOLING_CHOICES:
        raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLING_CHOICES}")
    if pooling != "auto":
        return pooling
    return "first" if _is_encoder(config) else "last"


def _is_encoder(config) -> bool:
    """A masked-LM (bidirectional encoder) architecture: XLM-R, BERT, ..."""
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _torch_dtype(dtype):
    """`auto`/None -> bfloat16 on a GPU that supports it, float32 otherwise (CPU training in bf16 is slow and
    lossy); names map to torch dtypes."""
    if dtype is None or dtype == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    return getattr(torch, str(dtype))


def _auto_model_class(config, trust_remote_code):
    try:
        return AutoModel._model_mapping[type(config)]
    except (KeyError, ValueError):
        return None


def load_backbone(
    model_name_or_path: str,
    dtype=None,
    attn_implementation=None,
    revision=None,
    trust_remote_code: bool = False,
    quantization_config=None,
    device_map=None,
    token=None,
    num_hidden_layers=None,
):
    """Load the text backbone with `AutoModel` (no LM head). For a multimodal checkpoint whose config has a
    `text_config` (Gemma-3 4B/12B/27B), only the language model is built and loaded: the vision tower's weights
    are never materialised. `num_hidden_layers` keeps only the first N transformer layers (the others are never
    built; their weights are skipped). Returns `(backbone, text_config)`."""
    config = AutoConfig.from_pretrained(
        model_name_or_path, revision=revision, trust_remote_code=trust_remote_code, token=token
    )
    text_config = config.get_text_config()
    if num_hidden_layers is not None:
        total = text_config.num_hidden_layers
        if not 1 <= num_hidden_layers <= total:
            raise ValueError(f"num_hidden_layers={num_hidden_layers}: {model_name_or_path} has {total} layers")
        # Both at once: the config validates that per-layer lists (Gemma-3's sliding/full pattern) match the count.
        truncated = {"num_hidden_layers": num_hidden_layers}
        for name in ("layer_types", "mlp_layer_types"):
            if getattr(text_config, name, None) is not None:
                truncated[name] = list(getattr(text_config, name))[:num_hidden_layers]
        text_config.__dict__.update(truncated)
        if num_hidden_layers < total:
            logger.info("keeping the first %d of %s's %d layers", num_hidden_layers, model_name_or_path, total)
    kwargs = {
        "dtype": _torch_dtype(dtype),
        "revision": revision,
        "trust_remote_code": trust_remote_code,
        "token": token,
    }
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:
        kwargs["device_map"] = device_map

    multimodal = text_config is not config
    if multimodal:
        logger.info(
            "%s is a %s checkpoint: loading only its language model (%s), no vision tower",
            model_name_or_path,
            type(config).__name__,
            type(text_config).__name__,
        )
        backbone, info = AutoModel.from_pretrained(
            model_name_or_path,
            config=text_config,
            key_mapping=_LANGUAGE_MODEL_KEY_MAPPING,
            output_loading_info=True,
            **kwargs,
        )
        # The language model's weights must all come from the checkpoint; a random one would train silently.
        if info["missing_keys"]:
            missing = sorted(info["missing_keys"])
            raise ValueError(
                f"{model_name_or_path}: {len(missing)} language-model weights were not found in the checkpoint "
                f"(first: {missing[:5]}); its weight names do not follow a known multimodal layout"
            )
        skipped = len(info["unexpected_keys"])
        logger.info("skipped %d non-language-model tensors (vision tower, projector, LM head)", skipped)
        backbone.config._name_or_path = model_name_or_path
    else:
        # An encoder's pooler is unused by first-token pooling (and absent from masked-LM checkpoints): not built,
        # it stays out of LoRA, of DDP's unused-parameter check and of the "newly initialised" warnings.
        model_class = _auto_model_class(config, trust_remote_code)
        if model_class is not None and "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
            kwargs["add_pooling_layer"] = False
        backbone = AutoModel.from_pretrained(model_name_or_path, config=config, **kwargs)
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None
    return backbone, backbone.config


def answer_token_ids(tokenizer, answer_tokens) -> list:
    """Token ids of the answer words (e.g. `["no", "yes"]`): for each word, the first of `" word"` / `"word"` that
    is a single token (a leading space is how the word follows `"Answer:"`)."""
    ids = []
    for word in answer_tokens:
        word = word.strip()
        found = None
        for candidate in (" " + word, word):
            pieces = tokenizer.encode(candidate, add_special_tokens=False)
            if len(pieces) == 1:
                found = pieces[0]
                break
        if found is None:
            raise ValueError(f"answer token {word!r} is not a single token of this tokenizer")
        ids.append(found)
    if len(set(ids)) != len(ids):
        raise ValueError(f"answer tokens {answer_tokens} map to the same token id")
    return ids


def _lm_head_rows(model_name_or_path, backbone, text_config, token_ids, revision=None, token=None) -> torch.Tensor:
    """Rows `token_ids` of the checkpoint's LM head: the input embedding when tied, else the `lm_head.weight`
    tensor read straight from the safetensors files (only those rows)."""
    if getattr(text_config, "tie_word_embeddings", False):
        weight = backbone.get_input_embeddings().weight
        from transformers.integrations import is_deepspeed_zero3_enabled

        if is_deepspeed_zero3_enabled():
            import deepspeed

            with deepspeed.zero.GatheredParameters([weight], modifier_rank=None):
                return weight[token_ids].detach().float().clone()
        return weight[token_ids].detach().float().clone()

    from safetensors import safe_open
    from transformers.utils import cached_file

    index_file = cached_file(
        model_name_or_path,
        "model.safetensors.index.json",
        revision=revision,
        token=token,
        _raise_exceptions_for_missing_entries=False,
    )
    if index_file:
        with open(index_file) as f:
            weight_map = json.load(f)["weight_map"]
    else:
        weight_map = None
    candidates = ("lm_head.weight", "language_model.lm_head.weight", "model.lm_head.weight")
    for key in candidates:
        filename = weight_map.get(key) if weight_map is not None else "model.safetensors"
        if filename is None:
            continue
        path = cached_file(model_name_or_path, filename, revision=revision, token=token)
        with safe_open(path, framework="pt") as f:
            if key not in f.keys():
                continue
            sliced = f.get_slice(key)
            return torch.stack([sliced[i : i + 1][0] for i in token_ids]).float()
    raise ValueError(f"{model_name_or_path}: no LM head tensor ({', '.join(candidates)}) to initialise the score from")


def build_classifier(
    model_name_or_path: str,
    num_labels: int = 2,
    pooling: str = "auto",
    dtype=None,
    attn_implementation=None,
    revision=None,
    trust_remote_code: bool = False,
    quantization_config=None,
    device_map=None,
    score_init: str = "random",
    answer_token_ids=None,
    label_smoothing: float = 0.0,
    token=None,
    seed=None,
    num_hidden_layers=None,
    shared_prefix: bool = True,
) -> LastTokenClassifier:
    """Load the backbone and put a fresh score head on it.

    `score_init="answer_tokens"` copies the LM-head rows of `answer_token_ids` (negative class first, e.g.
    no, yes) into the head: with two labels the rows themselves, with one label their difference (yes - no), so
    the untrained classifier already scores like the language model's yes/no answer.
    """
    if score_init not in SCORE_INITS:
        raise ValueError(f"unknown score_init {score_init!r}; expected one of {SCORE_INITS}")
    backbone, text_config = load_backbone(
        model_name_or_path,
        dtype=dtype,
        attn_implementation=attn_implementation,
        revision=revision,
        trust_remote_code=trust_remote_code,
        quantization_config=quantization_config,
        device_map=device_map,
        token=token,
        num_hidden_layers=num_hidden_layers,
    )
    resolved = resolve_pooling(text_config, pooling)
    if seed is not None:
        torch.manual_seed(seed)
    model = LastTokenClassifier(text_config, backbone, num_labels=num_labels, pooling=resolved,
                                label_smoothing=label_smoothing, shared_prefix=shared_prefix)
    model.name_or_path = model_name_or_path
    if score_init == "answer_tokens":
        if not answer_token_ids or len(answer_token_ids) != 2:
            raise ValueError("score_init='answer_tokens' needs two answer token ids (negative class first)")
        rows = _lm_head_rows(model_name_or_path, backbone, text_config, list(answer_token_ids), revision, token)
        with torch.no_grad():
            model.score.weight.copy_(rows if num_labels == 2 else (rows[1] - rows[0]).unsqueeze(0))
    device = next(backbone.parameters()).device
    model.score.to(device)
    return model


# --------------------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------------------


def read_settings(adapter_name_or_path: str, revision=None, token=None) -> dict:
    """Read `relevance_config.json` from an adapter folder or Hub repo (what run_relevance.py saved there)."""
    if os.path.isdir(adapter_name_or_path):
        path = os.path.join(adapter_name_or_path, SETTINGS_NAME)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: is {adapter_name_or_path} a run_relevance.py output?")
    else:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(adapter_name_or_path, SETTINGS_NAME, revision=revision, token=token)
    with open(path) as f:
        return json.load(f)


def check_shared_settings(adapters, all_settings, task=None, skip=()) -> None:
    """Adapters scored on one base must agree with the first on SHARED_SETTINGS, and on their tasks (or, with
    `task`, on that task's use of translation). UserError naming the first difference."""
    def shared(settings: dict) -> dict:
        extra = {"tasks": settings.get("tasks")} if task is None else {
            "use_translation": (settings.get("use_translation") or {}).get(task)}
        return {**{key: settings.get(key) for key in SHARED_SETTINGS if key not in skip}, **extra}

    expected = shared(all_settings[0])
    for adapter, settings in zip(adapters[1:], all_settings[1:]):
        for key, value in shared(settings).items():
            if value != expected[key]:
                raise UserError(f"{adapter} was trained with {key}={value!r} but {adapters[0]} with "
                                f"{expected[key]!r}; they cannot be scored on one base model")


def load_for_inference(
    adapters,
    base_model_name_or_path=None,
    dtype=None,
    device=None,
    attn_implementation="sdpa",
    revision=None,
    token=None,
):
    """Load the base model once and apply one or several adapters (LoRA + score head) trained by run_relevance.py.

    `adapters`: a folder / Hub id, or a list of them (a fold ensemble). They are loaded as PEFT adapters named
    `adapter_0`, `adapter_1`, ...; the first is active; switch with `model.set_adapter(name)`. Every adapter must
    share the base model, number of labels, pooling, template and tasks of the first one (checked).

    Returns `(model, tokenizer, settings)`: `settings` is the first adapter's relevance_config.json plus
    `"adapter_names"`.
    """
    from peft import PeftModel

    if isinstance(adapters, str):
        adapters = [adapters]
    if not adapters:
        raise ValueError("load_for_inference needs at least one adapter")
    all_settings = [read_settings(a, revision=revision, token=token) for a in adapters]
    settings = dict(all_settings[0])
    check_shared_settings(adapters, all_settings, skip=("base_model_name_or_path",) if base_model_name_or_path else ())
    base = base_model_name_or_path or settings["base_model_name_or_path"]
    model = build_classifier(
        base,
        num_labels=settings["num_labels"],
        pooling=settings["pooling"],
        dtype=dtype,
        attn_implementation=attn_implementation,
        token=token,
        num_hidden_layers=settings.get("num_hidden_layers"),
    )
    names = [f"adapter_{i}" for i in range(len(adapters))]
    model = PeftModel.from_pretrained(model, adapters[0], adapter_name=names[0], revision=revision, token=token)
    for name, adapter in zip(names[1:], adapters[1:]):
        model.load_adapter(adapter, adapter_name=name, revision=revision, token=token)
    model.set_adapter(names[0])
    model.eval()
    if device is not None:
        model.to(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(adapters[0], revision=revision, token=token)
    except (OSError, ValueError):
        tokenizer = AutoTokenizer.from_pretrained(base, token=token)
    prepare_tokenizer(tokenizer)
    settings["adapter_names"] = names
    return model, tokenizer, settings


@torch.no_grad()
def predict_probabilities(
    model,
    tokenizer,
    tasks,
    queries,
    targets,
    queries_en=None,
    template="instruct",
    max_length=256,
    batch_size=32,
    show_progress=True,
) -> np.ndarray:
    """P(relevant) for each row, with the same tokenisation as training. Rows are sorted by length internally
    (less padding), and returned in input order."""
    from tqdm.auto import tqdm

    enc = encode_examples(tokenizer, tasks, queries, targets, queries_en, template=template, max_length=max_length)
    order = np.argsort([len(ids) for ids in enc["input_ids"]], kind="stable")
    device = next(model.parameters()).device
    out = np.empty(len(order), dtype=np.float64)
    model.eval()
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc="scoring", disable=not show_progress, total=math.ceil(len(order) / batch_size)):
        rows = order[start : start + batch_size]
        features = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]} for i in rows]
        batch = tokenizer.pad(features, return_tensors="pt", pad_to_multiple_of=8)
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
        out[rows] = probabilities_from_logits(logits.float().cpu())
    return out


# --------------------------------------------------------------------------------------------------------------
# Metrics (scikit-learn), shared by training (per-fold metrics) and prediction (threshold tuning on OOF)
# --------------------------------------------------------------------------------------------------------------


def best_threshold(labels, probabilities):
    """The probability threshold (predict relevant when `probability >= threshold`) that maximises F1 of the
    positive class on these rows. Returns `(threshold, f1)`; `(0.5, 0.0)` when there is no positive row."""
    from sklearn.metrics import precision_recall_curve

    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.sum() == 0:
        return 0.5, 0.0
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    # The last (precision, recall) pair has no threshold: drop it.
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.where(denominator > 0, 2 * precision * recall / np.where(denominator > 0, denominator, 1), 0.0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def binary_metrics(labels, probabilities, threshold: float = 0.5, prior=None) -> dict:
    """F1 / precision / recall of the positive class and accuracy at `threshold`, ROC-AUC, log-loss, the
    log-loss of always predicting `prior` (default: this set's positive rate), the best threshold on this set
    and the F1 there. ROC-AUC is None when only one class is present."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

    labels = np.asarray(labels).astype(int)
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    predictions = (probabilities >= threshold).astype(int)
    positive_rate = float(labels.mean()) if len(labels) else float("nan")
    prior = positive_rate if prior is None else float(prior)
    prior = min(max(prior, 1e-7), 1 - 1e-7)
    both_classes = len(np.unique(labels)) == 2
    threshold_star, f1_star = best_threshold(labels, probabilities)
    return {
        "num_examples": int(len(labels)),
        "positive_rate": positive_rate,
        "f1": float(f1_score(labels, predictions, zero_division=0)),
        "precision": float(precision_score(labels, predictions, zero_division=0)),
        "recall": float(recall_score(labels, predictions, zero_division=0)),
        "accuracy": float(accuracy_score(labels, predictions)),
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both_classes else None,
        "log_loss": float(log_loss(labels, probabilities, labels=[0, 1])),
        "prior_log_loss": float(log_loss(labels, np.full(len(labels), prior), labels=[0, 1])),
        "best_threshold": threshold_star,
        "best_threshold_f1": f1_star,
    }


# --------------------------------------------------------------------------------------------------------------
# Command-line helpers (utils_data.py re-exports them): one-line user errors, --task, a folder or Hub repo check,
# loading a folded dataset
# --------------------------------------------------------------------------------------------------------------

# Model-facing QC targets join the category levels with this (make_folds.py writes them so).
CATEGORY_JOINER = " > "
DEBUG_VARIABLE = "RELEVANCE_DEBUG"


class UserError(ValueError):
    """A mistake in the flags or the input, not a bug: reported by `run_cli` as one line, without a traceback.

    The message says what is wrong, where (file:line, field or flag) and what to do. A ValueError, so that callers
    and tests that catch ValueError keep working.
    """


def run_cli(main, parse=None):
    """Run a script's `main()` (or `main(*parse())`): a UserError ends it with `SCRIPT: error: MESSAGE` on stderr and
    exit code 1 (argparse's own errors exit with 2), no traceback unless RELEVANCE_DEBUG=1. A ValueError from
    `parse` is a bad flag too (TrainingArguments and trl's ModelConfig check theirs with ValueError), and so is an
    OSError (trl's parser reading a missing --config file)."""
    try:
        if parse is None:
            return main()
        try:
            args = parse()
        except (ValueError, OSError) as err:
            raise UserError(str(err)) from err
        return main(*args)
    except UserError as err:
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        print(f"{os.path.basename(sys.argv[0])}: error: {err}", file=sys.stderr)
        sys.exit(1)


def parse_tasks(task_arg: str) -> list:
    """The tasks named by a `--task` value: `qc`, `qi` or `qc,qi` (lowercase, in the given order)."""
    tasks = [t.strip().lower() for t in str(task_arg).split(",") if t.strip()]
    if not tasks:
        raise UserError("--task is empty; use qc, qi or qc,qi")
    for task in tasks:
        if task not in TASKS:
            raise UserError(f"unknown task {task!r} in --task {task_arg!r}; use qc, qi or qc,qi")
    if len(set(tasks)) != len(tasks):
        raise UserError(f"--task {task_arg!r} names a task twice")
    return tasks


def _neither_folder_nor_hub_id(name) -> bool:
    """A name that is no local folder and cannot be a Hub repo id: './x', '/x', 'x/y/z', '' (no Hub request)."""
    if os.path.isdir(name):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def check_folder_or_hub_repo(name: str, flag: str, repo_type: str = "model") -> None:
    """Fail fast, before any download or model load, unless `name` is a local folder or a repo the Hub has.

    One request at most (`repo_exists`), and only for a name that can be a repo id; a Hub that cannot be reached
    is one clear error too. With HF_HUB_OFFLINE=1, a repo downloaded before (in the Hub cache) passes.
    """
    if os.path.isdir(name):
        return
    if os.path.exists(name):
        raise UserError(f"{flag} {name}: a file, not a folder; give the folder that holds it, or a Hub repo id")
    if _neither_folder_nor_hub_id(name):
        raise UserError(f"{flag} {name}: no such folder or Hub repo (no folder of that name here, and not a Hub "
                        "repo id NAME or NAMESPACE/NAME); give an existing folder or a Hub repo id")
    if hf_constants.HF_HUB_OFFLINE:
        if os.path.isdir(os.path.join(hf_constants.HF_HUB_CACHE, repo_folder_name(repo_id=name, repo_type=repo_type))):
            return  # the libraries load it from the cache
        raise UserError(f"{flag} {name}: no such folder, and no cached copy of the Hub {repo_type} repo {name} "
                        "(HF_HUB_OFFLINE is set); give an existing folder, or unset HF_HUB_OFFLINE to download it")
    try:
        found = huggingface_hub.repo_exists(name, repo_type=repo_type)
    except Exception as err:  # the HTTP client's own errors (connection refused, timeout, offline mode): any of them
        raise UserError(f"{flag} {name}: no such folder, and the Hub at {hf_constants.ENDPOINT} could not be asked "
                        f"about a {repo_type} repo {name} ({type(err).__name__}: {str(err).splitlines()[0]}); give an "
                        "existing folder, or check the network, HF_ENDPOINT and HF_HUB_OFFLINE") from err
    if not found:
        raise UserError(f"{flag} {name}: no such folder or Hub repo ({hf_constants.ENDPOINT} has no {repo_type} repo "
                        f"{name}, or it is private and your token cannot read it); give an existing folder or repo")


def load_folded_dataset(name_or_path: str, **kwargs) -> "datasets.DatasetDict":
    """Load what make_folds.py (or run_translate.py) wrote: a save_to_disk folder, or a Hub dataset id."""
    import datasets  # here, not at the top: inference and benchmarks/gpu_check.py need no datasets

    if os.path.isdir(name_or_path) and (
        os.path.exists(os.path.join(name_or_path, "dataset_dict.json"))
        or os.path.exists(os.path.join(name_or_path, "state.json"))
    ):
        loaded = datasets.load_from_disk(name_or_path)
    else:
        # A missing folder or repo is one clear error here, not datasets' retries and traceback.
        check_folder_or_hub_repo(name_or_path, "--dataset_name", repo_type="dataset")
        loaded = datasets.load_dataset(name_or_path, **kwargs)
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded
