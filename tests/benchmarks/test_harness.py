"""benchmarks/_harness.py (the options, jobs and JSON every benchmark shares) and the rules
every benchmark script keeps: it goes through the harness, uses gankit's public API only and
patches nothing of gankit; `make bench` runs a script that exists."""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _harness as harness  # noqa: E402

SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_seeds_are_a_count_or_a_list():
    assert harness.parse_seeds("3") == [0, 1, 2]
    assert harness.parse_seeds("0,2") == [0, 2]
    assert harness.parse_seeds("3,") == [3]
    for bad in ("0", "x", "1,1", "-1,", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            harness.parse_seeds(bad)


def test_the_shared_options_parse_alike():
    p = harness.parser("demo", jobs=2, seeds="5")
    args = p.parse_args([])
    assert (args.out, args.jobs, args.seeds, args.json) == (None, 2, [0, 1, 2, 3, 4], None)
    args = p.parse_args(["--out", "o", "--jobs", "3", "--seeds", "7,", "--json", "f.json"])
    assert (args.out, args.jobs, args.seeds, args.json) == ("o", 3, [7], "f.json")
    with pytest.raises(SystemExit):
        p.parse_args(["--jobs", "0"])
    bare = harness.parser("demo", out=False, json_out=False)
    assert not any(a.dest in ("out", "json", "jobs", "seeds") for a in bare._actions)
    assert harness.parser("d", out_default="runs/x").parse_args([]).out == "runs/x"


def slow_square(x: int) -> int:
    time.sleep(0.05 * (3 - x))  # the first item finishes last
    return x * x


def test_jobs_run_side_by_side_in_order():
    assert list(harness.run_jobs(slow_square, [0, 1, 2], 3)) == [0, 1, 4]
    assert list(harness.run_jobs(slow_square, [2, 1], 1)) == [4, 1]
    with pytest.raises(ZeroDivisionError):
        list(harness.run_jobs(lambda x: 1 // x, [1, 0], 2))


def test_out_dir_and_json(tmp_path: Path) -> None:
    with harness.out_dir(None) as tmp:
        assert tmp.is_dir()
    assert not tmp.exists()  # a temporary one is removed
    with harness.out_dir(str(tmp_path / "kept")) as kept:
        (kept / "x").write_text("1")
    assert (tmp_path / "kept" / "x").exists()
    harness.write_json(str(tmp_path / "sub" / "f.json"), {"a": [1, 2]})
    assert json.loads((tmp_path / "sub" / "f.json").read_text()) == {"a": [1, 2]}
    harness.write_json(None, {"a": 1})  # nothing to write


def test_scripts_with_shared_options_take_them_from_the_harness():
    """A script that offers --out, --jobs, --seeds or --json builds its parser with the
    harness, so the options mean the same everywhere."""
    own = []
    for script in SCRIPTS:
        text = script.read_text()
        for opt in ("--out", "--jobs", "--seeds", "--json"):
            if re.search(r"add_argument\(\s*[\"']" + opt + r"[\"']", text):
                own.append(f"{script.name} {opt}")
    assert own == []
    assert sum("harness.parser(" in s.read_text() for s in SCRIPTS) >= 6


def gankit_names(tree: ast.Module) -> set[str]:
    """Names bound by ``import gankit...`` / ``from gankit... import ...`` anywhere."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names
                      if a.name.split(".")[0] == "gankit"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gankit"):
            names |= {a.asname or a.name for a in node.names}
    return names


def patches(source: str) -> list[str]:
    """What a script changes in gankit or takes that is private to it."""
    tree = ast.parse(source)
    names = gankit_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gankit"):
            found += [f"imports {a.name}" for a in node.names if a.name.startswith("_")]
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        for target in targets:
            root = target
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id in names and root is not target:
                found.append(f"assigns {ast.unparse(target)}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "setattr" and node.args
                and isinstance(node.args[0], ast.Name) and node.args[0].id in names):
            found.append(f"setattr on {node.args[0].id}")
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                and node.value.id in names):
            found.append(f"reads {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_patches_nothing_of_gankit(script: Path) -> None:
    assert patches(script.read_text()) == []


def test_a_patch_is_caught():
    source = ("import gankit.gan.updaters as updaters\n"
              "from gankit.cli.recipes.cyclegan import CycleGANRecipe\n"
              "from gankit.extensions.ema import EMA, _private\n"
              "updaters.get_loss = None\nCycleGANRecipe.down = 1\n"
              "setattr(CycleGANRecipe, 'n_blocks', 3)\nEMA._consume\nx = EMA\n")
    assert patches(source) == ["imports _private", "assigns updaters.get_loss",
                               "assigns CycleGANRecipe.down", "setattr on CycleGANRecipe",
                               "reads EMA._consume"]


def test_make_bench_runs_an_existing_script():
    makefile = (BENCH.parent / "Makefile").read_text()
    bench = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert bench, "the Makefile has no bench target"
    scripts = re.findall(r"benchmarks/(\w+\.py)", bench.group(1))
    assert scripts and all((BENCH / s).exists() for s in scripts)
