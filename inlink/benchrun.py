"""Find, run and record the benchmarks in the source tree's `bench/` folder (`inlink bench`).

Each benchmark is `bench/<name>_bench.py` exposing `run(**options) -> dict` and
`to_markdown(result) -> str`; its figures always include a reference measured in the same run.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from inlink.errors import InvalidInput, NotFound

DOCS_FILE = "docs/benchmarks.md"


def source_root() -> Path:
    """The checkout inlink runs from (the folder holding `inlink/` and `bench/`)."""
    return Path(__file__).resolve().parents[1]


def bench_dir() -> Path:
    folder = source_root() / "bench"
    if not folder.is_dir():
        raise NotFound(
            f"no benchmarks at {folder}: they live in the source checkout's bench/ folder, "
            "so run `inlink bench` from a clone installed with `pip install -e .`"
        )
    return folder


def available() -> list[str]:
    """Names of the benchmarks present, sorted."""
    return sorted(p.name.removesuffix("_bench.py") for p in bench_dir().glob("*_bench.py"))


def load(name: str) -> ModuleType:
    """Import `bench/<name>_bench.py` as a module."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise InvalidInput("benchmark", f"{name!r} is not a benchmark name")
    path = bench_dir() / f"{name}_bench.py"
    if not path.exists():
        raise InvalidInput("benchmark",
                           f"unknown benchmark {name!r}; have: {', '.join(available())}")
    spec = importlib.util.spec_from_file_location(f"inlink_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(name: str, **options: Any) -> tuple[dict[str, Any], str]:
    """Run one benchmark; returns its result and its markdown section."""
    module = load(name)
    result: dict[str, Any] = module.run(**options)
    return result, module.to_markdown(result)


def machine_line() -> str:
    """One line describing where the figures were measured."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def record(name: str, markdown: str, docs: Path | None = None) -> Path:
    """Replace (or append) the benchmark's section in docs/benchmarks.md."""
    docs = docs or source_root() / DOCS_FILE
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{begin}\n{markdown.strip()}\n\n_Measured on: {machine_line()}._\n{end}"
    text = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    docs.write_text(text, encoding="utf-8")
    return docs
