"""``prepare_folder`` archives: the same images and splits as the folder, written safely."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_lazy import truncate, write_folder

from gankit.data import load_dataset, make_loader
from gankit.data.archive import prepare_folder
from gankit.data.lazy import LazyImages
from gankit.errors import GankitError

SRC = Path(__file__).resolve().parents[2] / "src"


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if f.is_file():
            h.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("fmt", ["shards", "zip"])
def test_archive_gives_the_folders_images_labels_and_split(tmp_path, fmt):
    src = tmp_path / "src"
    write_folder(src, n=25, size=(12, 16))
    out = tmp_path / ("a.zip" if fmt == "zip" else "a")
    summary = prepare_folder(src, out, image_size=8, fmt=fmt, progress=False)
    assert summary["count"] == 25 and summary["shape"] == (3, 8, 8)
    for split in ("train", "val", "all"):
        mem = load_dataset(f"folder:{src}", split, image_size=8, mode="memory")
        arc = load_dataset(f"{fmt}:{out}", split)
        assert isinstance(arc, LazyImages) and arc.n_classes == mem.n_classes == 2
        loaded = arc.load()
        assert torch.equal(loaded.x, mem.x) and torch.equal(loaded.y, mem.y), split
    a, b = (make_loader(d, 4, seed=5) for d in (
        load_dataset(f"folder:{src}", "train", image_size=8), load_dataset(f"{fmt}:{out}")))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_prepare_is_deterministic_whatever_the_workers(tmp_path):
    src = tmp_path / "src"
    write_folder(src, n=40, classes=())
    prepare_folder(src, tmp_path / "one", workers=1, progress=False)
    prepare_folder(src, tmp_path / "two", workers=2, progress=False)
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
    index = json.loads((tmp_path / "one" / "index.json").read_text())
    assert index["count"] == 40 and index["labels"] is None
    prepare_folder(src, tmp_path / "z1.zip", fmt="zip", progress=False)
    prepare_folder(src, tmp_path / "z2.zip", fmt="zip", workers=2, progress=False)
    assert digest(tmp_path / "z1.zip") == digest(tmp_path / "z2.zip")
    with zipfile.ZipFile(tmp_path / "z1.zip") as zf:  # stylegan2-ada's dataset_tool layout
        assert zf.namelist()[0] == "00000/img00000000.png"
        assert json.loads(zf.read("dataset.json")) == {"labels": None}


def test_prepare_rejects_a_corrupt_file_by_name_and_writes_nothing(tmp_path):
    src = tmp_path / "src"
    write_folder(src, n=10, classes=())
    truncate(src / "004.png")  # the header is fine: only decoding finds it
    out = tmp_path / "out"
    with pytest.raises(GankitError, match=r"cannot read image '.*004\.png'"):
        prepare_folder(src, out, workers=2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no archive, no leftovers
    (src / "junk.png").write_bytes(b"not an image")
    with pytest.raises(GankitError, match=r"junk\.png"):
        prepare_folder(src, out, progress=False)


def test_prepare_refuses_an_existing_output_and_a_bad_size(tmp_path):
    src = tmp_path / "src"
    write_folder(src, n=4, classes=())
    (tmp_path / "out").mkdir()
    with pytest.raises(GankitError, match="already exists"):
        prepare_folder(src, tmp_path / "out", progress=False)
    prepare_folder(src, tmp_path / "a", image_size=8, progress=False)
    with pytest.raises(GankitError, match="holds 8x8 images, not 16x16"):
        load_dataset(f"shards:{tmp_path / 'a'}", image_size=16)
    shard = tmp_path / "a" / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-5])
    with pytest.raises(GankitError, match="wrong size"):
        load_dataset(f"shards:{tmp_path / 'a'}")


def test_killed_prepare_leaves_no_archive_under_the_output_name(tmp_path):
    src = tmp_path / "src"
    write_folder(src, n=300, size=(64, 64), classes=())
    out = tmp_path / "out"
    code = ("import sys, time; from gankit.data import archive; "
            "orig = archive._write_shards\n"
            "def slow(tmp, images, *a):\n"
            "    def gen():\n"
            "        for x in images:\n"
            "            time.sleep(0.01); yield x\n"
            "    return orig(tmp, gen(), *a)\n"
            "archive._write_shards = slow\n"
            f"archive.prepare_folder({str(src)!r}, {str(out)!r}, progress=False)")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    partial = tmp_path / f".out.partial-{proc.pid}"
    deadline = time.monotonic() + 60
    while not (partial / "shard-00000.npy").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (partial / "shard-00000.npy").exists(), "prepare never started writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # a kill leaves at most the hidden partial folder
    prepare_folder(src, out, progress=False)  # the next prepare succeeds and tidies up
    assert not partial.exists()
    assert len(load_dataset(f"shards:{out}", "all")) == 300


def test_prepare_stops_when_asked(tmp_path):
    src = tmp_path / "src"
    write_folder(src, n=5, classes=())
    with pytest.raises(GankitError, match="stopped"):
        prepare_folder(src, tmp_path / "out", progress=False, should_stop=lambda: True)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_zip_from_another_tool_with_labels(tmp_path):
    f = tmp_path / "d.zip"
    with zipfile.ZipFile(f, "w") as zf:
        for i in range(6):
            buf = __import__("io").BytesIO()
            Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(buf, format="png")
            zf.writestr(f"x/{i}.png", buf.getvalue())
        zf.writestr("dataset.json", json.dumps({"labels": [[f"x/{i}.png", i % 3]
                                                           for i in range(6)]}))
    ds = load_dataset(f"zip:{f}", "all")
    assert ds.shape == (1, 8, 8) and ds.n_classes == 3 and ds.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert ds.load().x[:, 0, 0, 0].tolist() == [0, 40, 80, 120, 160, 200]
