"""Every example runs, briefly, and does what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testsupport import load_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> Any:
    return load_module(EXAMPLES / name, f"gankit_example_{name}")


def test_two_models_student_learns(tmp_path, capsys):
    log = load("two_models.py").main(["--iterations", "200", "--out", str(tmp_path)])
    assert [e["iteration"] for e in log] == [100, 200]
    student = [e["student/loss"] for e in log]
    teacher = [e["teacher/loss"] for e in log]
    assert student[-1] < 0.5 * student[0], student
    assert teacher[-1] < teacher[0], teacher
    assert (tmp_path / "log.json").is_file()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["iteration", "teacher/loss", "student/loss"]
    assert [line.split()[0] for line in printed[1:]] == ["100", "200"]
