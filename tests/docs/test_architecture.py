"""The import rules of docs/architecture.md hold in src/: the table there is the rule.

Every import of every module counts (module level and inside functions, relative imports
resolved); an import of a gankit package the table does not allow for the importing package
fails the test, naming the module and the import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DOC = ROOT / "docs" / "architecture.md"


def allowed_imports(text: str) -> dict[str, set[str]]:
    """{package: packages it may import} from the doc's "may import" table."""
    rows = re.findall(r"^\| `(gankit\.\w+)` \| (.+?) \|$", text, flags=re.M)
    table = {pkg: set(re.findall(r"`(gankit\.\w+)`", cell)) for pkg, cell in rows}
    for pkg, cell in rows:
        if "every package" in cell:
            table[pkg] = set(table) - {pkg}
    return table


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path, module: str) -> list[tuple[str, list[str] | None]]:
    """(imported module, names taken from it; None for ``import X``) for every import
    statement of ``path``, the module ``module``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append((base, [a.name for a in node.names]))
    return found


def layer(module: str) -> str:
    """``gankit.gan.losses`` -> ``gankit.gan``; ``gankit.errors`` stays itself."""
    return ".".join(module.split(".")[:2])


def violations(table: dict[str, set[str]], files: dict[str, Path]) -> list[str]:
    bad = []
    for module, path in sorted(files.items()):
        own = layer(module)
        for target, names in imports_of(path, module):
            if target != "gankit" and not target.startswith("gankit."):
                continue
            if module == "gankit.__main__":
                if layer(target) != "gankit.cli":
                    bad.append(f"{module} imports {target} (only gankit.cli)")
                continue
            if module == "gankit":  # the top-level package re-exports the library
                if layer(target) == "gankit.cli":
                    bad.append(f"gankit/__init__ imports {target}")
                continue
            if target == "gankit":
                if names is None and uses_more_than_version(path):
                    bad.append(f"{module} uses more than gankit.__version__")
                elif names is not None and names != ["__version__"]:
                    bad.append(f"{module} takes {names} from the top-level package")
                continue
            other = layer(target)
            if other != own and other not in table.get(own, set()):
                bad.append(f"{module} imports {target}")
    return sorted(bad)


def uses_more_than_version(path: Path) -> bool:
    """Whether ``import gankit`` serves anything but ``gankit.__version__`` in ``path``."""
    tree = ast.parse(path.read_text())
    attrs = {n.attr for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
             and n.value.id == "gankit"}
    return not attrs <= {"__version__"}


def source_files() -> dict[str, Path]:
    return {module_name(p): p for p in (SRC / "gankit").rglob("*.py")}


def test_the_doc_states_a_rule_for_every_package():
    table = allowed_imports(DOC.read_text())
    packages = {layer(m) for m in source_files() if m.count(".") >= 1}
    packages.discard("gankit.__main__")
    assert packages <= set(table), sorted(packages - set(table))
    assert table["gankit.errors"] == set()
    assert "gankit.cli" not in set().union(*(v for k, v in table.items() if k != "gankit.cli"))


def test_src_imports_follow_the_doc():
    assert violations(allowed_imports(DOC.read_text()), source_files()) == []


def test_a_wrong_import_is_caught(tmp_path: Path) -> None:
    """The check can fail: a function-level import against the rule, a relative import
    against it, and a name taken from the top-level package are each reported."""
    table = allowed_imports(DOC.read_text())
    pkg = tmp_path / "src" / "gankit" / "models"
    pkg.mkdir(parents=True)
    (pkg / "bad.py").write_text(
        "def f():\n    from gankit.gan import losses\n"
        "from ..data import load_dataset\n"
        "from gankit import Trainer\n")
    (pkg / "fine.py").write_text("import gankit\nfrom . import layers\nV = gankit.__version__\n")
    (pkg / "worse.py").write_text("import gankit\nT = gankit.Trainer\n")
    files = {"gankit.models.bad": pkg / "bad.py", "gankit.models.fine": pkg / "fine.py",
             "gankit.models.worse": pkg / "worse.py"}
    assert violations(table, files) == [
        "gankit.models.bad imports gankit.data",
        "gankit.models.bad imports gankit.gan",
        "gankit.models.bad takes ['Trainer'] from the top-level package",
        "gankit.models.worse uses more than gankit.__version__"]
