"""The code passes the project's linter and type checker (pyproject.toml configures both)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff() -> None:
    out = _run("ruff", "check", "--no-cache", "inlink", "tests", "bench")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy(tmp_path: Path) -> None:
    out = _run("mypy", "--cache-dir", str(tmp_path / "mypy"), "inlink")
    assert out.returncode == 0, out.stdout + out.stderr
