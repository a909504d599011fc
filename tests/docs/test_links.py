"""Every relative link of the README, docs/ and benchmarks/RESULTS.md reaches a file of the
repository and, with ``#anchor``, a heading of that file (GitHub's anchor rule)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def prose(path: Path) -> str:
    """The text of ``path`` without its code blocks and code spans."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def broken_links(doc: Path) -> list[str]:
    bad = []
    for target in LINK.findall(prose(doc)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, frag = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            bad.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            bad.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    return bad


def test_links_reach_files_and_headings():
    docs = [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md",
            *sorted((ROOT / "docs").rglob("*.md"))]
    assert [b for d in docs for b in broken_links(d)] == []


def test_a_broken_link_is_caught(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# The demo (`make demo`)\n\n## 8. Making it\n")
    doc = tmp_path / "b.md"
    doc.write_text("[ok](a.md#the-demo-make-demo) [ok](a.md#8-making-it) [web](https://x.y)\n"
                   "[gone](c.md) [no heading](a.md#the-demo) `f(x)[0](y)`\n"
                   "```python\nm[0](z)\n```\n")
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        assert broken_links(doc) == ["b.md: c.md (no such file)",
                                     "b.md: a.md#the-demo (no such heading)"]
    finally:
        ROOT = old
