"""The README's offline commands run as written.

Each ```bash block after a `<!-- runs offline ... -->` marker is read; it must activate the venv before its first
`python` line, and each `python SCRIPT FLAGS...` line must name a script whose `--help` exits 0 and lists every flag
the line uses, and input files of the repository (data/, recipes/) that exist. Running the commands themselves
takes the demo's minutes: `make demo` and tests/test_demo.py do that.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- runs offline[^>]*-->\s*```bash\n(.*?)```", re.S)
ACTIVATE = ([".", ".venv/bin/activate"], ["source", ".venv/bin/activate"])


def offline_blocks() -> list:
    """Each marked block as a list of command lines (continuations joined, comments dropped)."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for block in BLOCK.findall(text):
        lines = [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()]
        blocks.append([words for words in lines if words])
    return blocks


COMMANDS = [words[1:] for block in offline_blocks() for words in block if words[0] == "python"]


def test_offline_blocks_activate_the_venv_first():
    blocks = offline_blocks()
    assert blocks, "no <!-- runs offline --> block in README.md"
    for block in blocks:
        first_python = next(i for i, words in enumerate(block) if words[0] == "python")
        assert any(words[:2] in ACTIVATE for words in block[:first_python]), block
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize("script", sorted({words[0] for words in COMMANDS}))
def test_offline_commands_match_their_help(script):
    used = [words for words in COMMANDS if words[0] == script]
    flags = sorted({word.split("=")[0] for words in used for word in words[1:] if word.startswith("--")})
    # A recipe (`--config FILE`, read by trl's parser, not one of its flags) goes along: it must load too.
    config = next((words[i:i + 2] for words in used for i, word in enumerate(words) if word == "--config"), [])
    result = subprocess.run([sys.executable, script, *config, "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    listed = set(re.findall(r"--[\w-]+", result.stdout)) | set(config[:1])
    assert [flag for flag in flags if flag not in listed] == []
    inputs = [word for words in used for word in words[1:] if word.startswith(("data/", "recipes/"))]
    assert [path for path in inputs if not (REPO_ROOT / path).exists()] == []
