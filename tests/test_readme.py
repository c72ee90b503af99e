"""The README's Python and terminal examples run as written."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
# terminal examples: console blocks whose lines start with "$ "
SHELL_LINES = [line[2:] for block in re.findall(r"```console\n(.*?)```", TEXT, flags=re.S)
               for line in block.splitlines() if line.startswith("$ ")]


def test_readme_has_the_two_quickstart_commands():
    quick = TEXT.split("## Quickstart", 1)[1].split("##", 1)[0]
    block = re.search(r"```console\n(.*?)```", quick, flags=re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert "portable demo" in block[0] and "pytest" in block[1]


@pytest.mark.parametrize("code", [b for b in PYTHON_BLOCKS if "import portable" in b],
                         ids=lambda c: c.strip().splitlines()[-1][:40])
def test_python_examples_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})


def test_terminal_examples_run(tmp_path):
    assert SHELL_LINES, "the README lost its terminal example"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for line in SHELL_LINES:
        line = line.replace("python3 ", f"{sys.executable} ", 1) if line.startswith("python3 ") else line
        # bounded: a README command that hangs fails this test instead of the run (each takes seconds alone)
        proc = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
