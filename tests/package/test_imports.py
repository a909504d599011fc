"""Every module imports on its own (no import cycle hidden by import order), the layers keep
their direction, and every name the README imports is importable exactly as written."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
README = Path(__file__).resolve().parents[2] / "README.md"
MODULES = sorted(
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for p in (SRC / "gankit").rglob("*.py")
)


def _import_each_in_a_fresh_child(modules: list[str]) -> dict[str, str]:
    """Fork a child per module from a parent that holds torch but no gankit module: each
    child imports its module first, as a fresh interpreter would, without paying for torch."""
    code = f"""
import os, sys, traceback
sys.path.insert(0, {str(SRC)!r})
import numpy, torch  # the heavy third-party imports, shared by every child
assert not any(m == "gankit" or m.startswith("gankit.") for m in sys.modules)
for name in {modules!r}:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            __import__(name)
            msg = b""
        except BaseException:
            msg = traceback.format_exc().encode()
        os.write(w, msg or b"ok")
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    if out != b"ok":
        print("FAIL", name, out.decode().splitlines()[-1].replace(chr(10), " "))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    failures = {}
    for line in proc.stdout.splitlines():
        if line.startswith("FAIL "):
            _, name, why = line.split(" ", 2)
            failures[name] = why
    return failures


def test_every_module_imports_first_in_a_fresh_process():
    assert len(MODULES) > 40  # the walk found the package
    assert _import_each_in_a_fresh_child(MODULES) == {}


def test_a_cycle_would_be_caught():
    """The check itself can fail: a module pair importing each other is reported."""
    pkg = SRC / "gankit" / "_cycle_probe"
    pkg.mkdir()
    try:
        (pkg / "__init__.py").write_text("from gankit._cycle_probe.a import A\n")
        (pkg / "a.py").write_text("from gankit._cycle_probe.b import B\nA = 1\n")
        (pkg / "b.py").write_text("from gankit._cycle_probe.a import A\nB = 2\n")
        failures = _import_each_in_a_fresh_child(["gankit._cycle_probe.b"])
    finally:
        for f in sorted(pkg.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        pkg.rmdir()
    assert "gankit._cycle_probe.b" in failures
    assert "partially initialized" in failures["gankit._cycle_probe.b"]


# Who may import whom: the library never imports the CLI, gan/ never imports extensions/,
# models/ never imports gan/ (docs/architecture.md states the rule of direction).
FORBIDDEN = [
    ("gankit", "gankit.cli"),
    ("gankit.gan", "gankit.extensions"),
    ("gankit.models", "gankit.gan"),
    ("gankit.training", "gankit.gan"),
    ("gankit.training", "gankit.extensions"),
]


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize(("layer", "banned"), FORBIDDEN)
def test_layers_import_in_one_direction(layer, banned):
    offenders = []
    for path in (SRC / "gankit").rglob("*.py"):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        inside = module == layer or module.startswith(layer + ".")
        entry_point = module == "gankit.__main__"  # `python -m gankit` is the CLI's door
        if not inside or entry_point or module == banned or module.startswith(banned + "."):
            continue
        if any(m == banned or m.startswith(banned + ".") for m in _imports_of(path)):
            offenders.append(module)
    assert offenders == []


def _readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_every_name_the_readme_imports_imports_as_written():
    lines = []
    for block in _readme_python_blocks():
        tree = ast.parse(block)
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and "gankit" in ast.unparse(node):
                lines.append(ast.unparse(node))
    assert len(lines) >= 2, "the README shows no gankit imports"
    # Attributes used off the package (gankit.Updater, gankit.report, ...) must exist too.
    attrs = sorted({m for block in _readme_python_blocks()
                    for m in re.findall(r"\bgankit\.([A-Za-z_]\w*)", block)})
    code = "\n".join(["import gankit", *lines,
                      *[f"assert hasattr(gankit, {a!r}), {a!r}" for a in attrs]])
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
