"""Run the portable CLI (or a Python snippet) in a subprocess with a time and memory bound, for hostile files:
a crash fails the test instead of the test run."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Address-space bound for a child (bytes): generous for scikit-learn + onnxruntime, far below a memory bomb.
MEMORY_LIMIT = 3 << 30


def _limit() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_python(code: str, *args: str, timeout: float = 120, cwd: Path | None = None) -> Run:
    env = dict(os.environ, PYTHONFAULTHANDLER="", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_limit, cwd=cwd, env=env)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_cli(*args: str, timeout: float = 120, cwd: Path | None = None) -> Run:
    return run_python("import sys; from portable.cli import main; main(sys.argv[1:])", *args, timeout=timeout,
                      cwd=cwd)


def assert_clean_failure(run: Run, codes: tuple[int, ...] = (1,), *, needle: str | None = None) -> str:
    """Exit code in `codes`, a one-paragraph message, no traceback, no crash (negative code = a signal)."""
    assert run.returncode in codes, (run.returncode, run.output[-3000:])
    assert "Traceback" not in run.output, run.output[-3000:]
    message = run.stderr.strip() or run.stdout.strip()
    assert message, "no message"
    assert "\n\n" not in message.strip(), message
    if needle is not None:
        assert needle.lower() in run.output.lower(), run.output[-3000:]
    return message
