"""tools/prepare_model.py: sha256 refusal, chunk assembly and reuse of a complete folder.

The real 240 MB conversion takes over a minute, so it is not run here; the conversion step is replaced by
a fake that records its calls, which is enough to check the control flow around it.
"""

import hashlib
import json
import subprocess
import sys

from pathlib import Path

import pytest

from tools import prepare_model as pm

REPO_ROOT = Path(__file__).resolve().parent.parent


def _write_chunks(tmp_path, parts):
    paths = []
    for index, data in enumerate(parts):
        path = tmp_path / f"chunk.part{index:02d}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_assemble_concatenates_chunks_in_order_and_verifies(tmp_path):
    parts = [b"GGUF-head-", b"middle-", b"tail"]
    chunks = _write_chunks(tmp_path, parts)
    expected = hashlib.sha256(b"".join(parts)).hexdigest()
    target = pm.assemble_gguf(chunks, tmp_path / "out" / "model.gguf", expected)
    assert target.read_bytes() == b"GGUF-head-middle-tail"
    assert pm.sha256_file(target) == expected


def test_assemble_refuses_on_sha256_mismatch_and_leaves_no_file(tmp_path):
    chunks = _write_chunks(tmp_path, [b"not", b"the model"])
    target = tmp_path / "out" / "model.gguf"
    with pytest.raises(ValueError, match="sha256 mismatch.*Refusing to continue"):
        pm.assemble_gguf(chunks, target, pm.EXPECTED_SHA256)
    assert not target.exists()
    assert not list((tmp_path / "out").iterdir()), "a rejected file must not be left behind"


def test_assemble_replaces_an_existing_corrupted_target(tmp_path):
    parts = [b"abc", b"def"]
    chunks = _write_chunks(tmp_path, parts)
    target = tmp_path / "model.gguf"
    target.write_bytes(b"truncated")
    expected = hashlib.sha256(b"abcdef").hexdigest()
    pm.assemble_gguf(chunks, target, expected)
    assert target.read_bytes() == b"abcdef"


def test_prepare_model_stops_before_converting_on_mismatch(tmp_path, monkeypatch):
    chunks = _write_chunks(tmp_path, [b"fake gguf bytes"])
    monkeypatch.setattr(pm, "gguf_chunk_paths", lambda: chunks)
    converted = []
    monkeypatch.setattr(pm, "convert_gguf", lambda *a, **k: converted.append(a))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        pm.prepare_model(tmp_path / "model", gguf_dir=tmp_path / "gguf")
    assert converted == []
    assert not (tmp_path / "model").exists()


def _fake_convert(calls):
    def convert(gguf_path, output_dir, expected_sha256):
        calls.append(str(gguf_path))
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.json").write_text("{}")
        (output_dir / pm.MARKER_FILE).write_text(json.dumps({"gguf_sha256": expected_sha256}))
        return output_dir

    return convert


def test_prepare_model_reuses_a_complete_folder_and_rebuilds_with_force(tmp_path, monkeypatch):
    chunks = _write_chunks(tmp_path, [b"fake ", b"model"])
    expected = hashlib.sha256(b"fake model").hexdigest()
    monkeypatch.setattr(pm, "gguf_chunk_paths", lambda: chunks)
    calls = []
    monkeypatch.setattr(pm, "convert_gguf", _fake_convert(calls))
    output_dir = tmp_path / "model"

    assert pm.prepare_model(output_dir, expected_sha256=expected) == output_dir
    assert len(calls) == 1
    assert pm.is_complete(output_dir, expected)

    pm.prepare_model(output_dir, expected_sha256=expected)
    assert len(calls) == 1, "a complete folder must be reused, not converted again"

    pm.prepare_model(output_dir, expected_sha256=expected, force=True)
    assert len(calls) == 2


def test_incomplete_folder_is_rebuilt(tmp_path, monkeypatch):
    chunks = _write_chunks(tmp_path, [b"x"])
    expected = hashlib.sha256(b"x").hexdigest()
    monkeypatch.setattr(pm, "gguf_chunk_paths", lambda: chunks)
    calls = []
    monkeypatch.setattr(pm, "convert_gguf", _fake_convert(calls))
    output_dir = tmp_path / "model"
    output_dir.mkdir()
    (output_dir / "config.json").write_text("{}")  # e.g. a run killed before the marker was written
    assert not pm.is_complete(output_dir, expected)
    pm.prepare_model(output_dir, expected_sha256=expected)
    assert len(calls) == 1
    # A marker from another GGUF does not count as complete either.
    assert not pm.is_complete(output_dir, pm.EXPECTED_SHA256)


def test_installed_chunks_are_found():
    chunks = pm.gguf_chunk_paths()
    assert len(chunks) == 4
    assert [c.name for c in chunks] == [f"{pm.GGUF_FILE_NAME}.part{i:02d}" for i in range(4)]


def test_cli_prints_only_the_path_of_a_complete_folder(tmp_path):
    output_dir = tmp_path / "model"
    output_dir.mkdir()
    (output_dir / "config.json").write_text("{}")
    (output_dir / pm.MARKER_FILE).write_text(json.dumps({"gguf_sha256": pm.EXPECTED_SHA256}))
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "prepare_model.py"), "--output_dir", str(output_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == str(output_dir)
    assert "reusing" in result.stderr
