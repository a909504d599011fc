"""`gankit prepare`, `--data-mode lazy`, exact resume with workers, and corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.extensions.log_report import read_log
from gankit.training.checkpoint import list_snapshots, load_state

FAST = ["--quiet", "--width", "8", "--z-dim", "8", "--batch-size", "8", "--ema", "0",
        "--log-every", "3", "--sample-every", "1000", "--snapshot-every", "1000"]


def folder(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            root / f"{i:03d}.png")
    return root


def final_models(out: Path) -> dict[str, torch.Tensor]:
    state = load_state(list_snapshots(out)[-1])["updater"]["models"]
    return {f"{m}.{k}": v for m, sd in state.items() for k, v in sd.items()}


def test_resume_on_a_lazy_source_with_two_workers_is_bitwise(tmp_path):
    data = folder(tmp_path / "imgs")  # 36 training images: 4 batches of 8 an epoch
    args = ["--data", f"folder:{data}", "--data-mode", "lazy", "--workers", "2", *FAST]
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    assert main(["train", *args, "--iterations", "10", "--out", str(ref)]) == 0
    assert main(["train", *args, "--iterations", "6", "--out", str(cut)]) == 0  # mid-epoch
    assert main(["train", "--resume", str(cut), "--iterations", "10", "--quiet"]) == 0
    a, b = final_models(ref), final_models(cut)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # And the in-memory source trains bitwise the same run.
    mem = tmp_path / "mem"
    argv = ["train", *args, "--iterations", "10", "--out", str(mem)]
    argv[argv.index("lazy")] = "memory"
    assert main(argv) == 0
    assert all(torch.equal(v, final_models(mem)[k]) for k, v in a.items())
    # So a run may continue from the other source.
    switched = tmp_path / "switched"
    assert main(["train", *args, "--iterations", "6", "--out", str(switched)]) == 0
    assert main(["train", "--resume", str(switched), "--iterations", "10", "--data-mode",
                 "memory", "--quiet"]) == 0
    assert all(torch.equal(v, final_models(switched)[k]) for k, v in a.items())


def test_corrupt_file_in_lazy_training_exits_2_or_is_skipped(tmp_path, capsys):
    data = folder(tmp_path / "imgs")
    bad = data / "007.png"
    bad.write_bytes(bad.read_bytes()[:60])  # the header still reads: only decoding fails
    args = ["train", "--data", f"folder:{data}", "--data-mode", "lazy", "--iterations", "9",
            *FAST]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "007.png" in err and "--skip-corrupt" in err and len(err.strip().splitlines()) == 1
    assert not list_snapshots(tmp_path / "a")

    out = tmp_path / "b"
    assert main([*args, "--skip-corrupt", "--out", str(out)]) == 0
    assert "skipping: cannot read image" in capsys.readouterr().err
    log = read_log(out / "log.json")
    assert log[-1]["data/skipped"] == 1.0  # one file, counted once over several epochs


def test_a_file_broken_after_the_start_is_skipped_on_resume(tmp_path, capsys):
    data = folder(tmp_path / "imgs")
    out = tmp_path / "run"
    args = ["--data", f"folder:{data}", "--data-mode", "lazy", *FAST]
    assert main(["train", *args, "--iterations", "3", "--out", str(out)]) == 0
    bad = data / "007.png"
    bad.write_bytes(bad.read_bytes()[:60])
    snapshot = list_snapshots(out)[-1].read_bytes()
    assert main(["train", "--resume", str(out), "--iterations", "12", "--quiet"]) == 2
    assert "--skip-corrupt" in capsys.readouterr().err
    assert list_snapshots(out)[-1].read_bytes() == snapshot  # nothing lost
    assert main(["train", "--resume", str(out), "--iterations", "12", "--skip-corrupt",
                 "--quiet"]) == 0
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == 12


def test_prepare_then_train_on_the_archive(tmp_path, capsys):
    data = folder(tmp_path / "imgs")
    arc = tmp_path / "arc"
    assert main(["prepare", str(data), "-o", str(arc), "--image-size", "8", "--workers", "2",
                 "--quiet"]) == 0
    assert f"train on it with --data shards:{arc}" in capsys.readouterr().err
    assert main(["prepare", str(data), "-o", str(arc), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["train", "--data", f"shards:{arc}", "--iterations", "4", "--out", str(out),
                 *FAST]) == 0
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == 4
    assert main(["sample", str(out), "-n", "4", "-o", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 3, 8, 8)


@pytest.mark.parametrize("argv, message", [
    (["prepare", "/no/such/folder", "-o", "OUT"], "source '/no/such/folder' does not exist"),
    (["train", "--data", "digits", "--data-mode", "lazy"], "does not apply to the built-in"),
    (["train", "--data", "digits", "--data-mode", "quick"], "--data-mode must be"),
    (["train", "--data", "shards:/no/such", "--iterations", "1"], "does not exist"),
])
def test_bad_data_input_exits_2(tmp_path, capsys, argv, message):
    argv = [a.replace("OUT", str(tmp_path / "o")) for a in argv]
    assert main([*argv, "--quiet"] if argv[0] == "prepare" else
                [*argv, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r" / "config.json").exists()


def test_sigterm_stops_prepare_and_removes_its_partial_output(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    data = folder(tmp_path / "imgs", n=200)
    out = tmp_path / "arc"
    code = ("import sys, time; from gankit.data import archive; from gankit.cli import main\n"
            "orig = archive._write_shards\n"
            "def slow(tmp, images, *a):\n"
            "    def gen():\n"
            "        for x in images:\n"
            "            time.sleep(0.02); yield x\n"
            "    return orig(tmp, gen(), *a)\n"
            "archive._write_shards = slow\n"
            f"sys.exit(main(['prepare', {str(data)!r}, '-o', {str(out)!r}, '--workers', '2']))")
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE,
                            text=True)
    partial = tmp_path / f".arc.partial-{proc.pid}"
    deadline = time.monotonic() + 60
    shard = partial / "shard-00000.npy"
    # Mid-write: some images are in the shard (16x16x3 = 768 bytes each, after the header).
    while (not shard.exists() or shard.stat().st_size < 128 + 10 * 768) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shard.exists(), "prepare never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "nothing was written" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]


def test_prepare_to_a_zip_name_writes_the_zip_format(tmp_path, capsys):
    data = folder(tmp_path / "imgs", n=12)
    arc = tmp_path / "photos.zip"
    assert main(["prepare", str(data), "-o", str(arc), "--quiet"]) == 0
    assert arc.is_file()  # a zip archive, not a shards folder under a .zip name
    assert f"train on it with --data zip:{arc}" in capsys.readouterr().err
    other = tmp_path / "other.zip"
    assert main(["prepare", str(data), "-o", str(other), "--format", "shards", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--format shards writes a folder" in err and "\n" not in err
    assert not other.exists()
    # without a .zip name the default stays shards
    assert main(["prepare", str(data), "-o", str(tmp_path / "shards"), "--quiet"]) == 0
    assert (tmp_path / "shards").is_dir()
