"""The project documents itself: no file refers to a design document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", ".test-deps", "runs", "build", "dist", "__pycache__",
             ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
TEXT = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".json", ".sh", ""}
# A design file by name (a DESIGN file in markdown, text or rst) or a path that climbs out of
# the repository into a sibling folder. Built from pieces so that this file passes itself.
OUTSIDE = re.compile("|".join([r"\b" + "DESIGN" + r"\.(md|txt|rst)\b",
                               r"\.\./+" + "shared" + r"\b",
                               r"/work/" + r"(shared|main)\b"]), re.I)


def offending_lines(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if not path.is_file() or path.suffix not in TEXT:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


def test_no_file_refers_to_a_design_file_outside_the_repository():
    assert offending_lines(ROOT) == []


def test_a_reference_is_caught(tmp_path: Path) -> None:
    ref = "../" + "shared/" + "DESIGN" + ".md"
    (tmp_path / "notes.md").write_text(f"fine\nsee {ref} for the rule\n")
    (tmp_path / "ok.py").write_text("# the design of Chainer's Trainer\n")
    (tmp_path / "tool.py").write_text("# see " + "design" + ".txt\n")
    assert offending_lines(tmp_path) == [f"notes.md:2: see {ref} for the rule",
                                         "tool.py:1: # see design" + ".txt"]
