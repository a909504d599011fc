"""Every user mistake: exit 2, one line naming the problem, and nothing in a run destroyed."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit import cli
from gankit.extensions.log_report import read_log
from gankit.gan.losses import GANLoss
from gankit.training import checkpoint
from gankit.training.checkpoint import list_snapshots, load_state

TINY = ["--width", "4", "--z-dim", "4", "--quiet", "--batch-size", "8", "--sample-every", "1000"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse-level errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def _png(path: Path, size: int = 8, value: int = 128) -> None:
    Image.fromarray(np.full((size, size), value, np.uint8), "L").save(path)


def test_data_path_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "run")
    missing = tmp_path / "nowhere"
    code, err = run(["train", "--data", f"folder:{missing}", "--out", out, *TINY], capsys)
    assert_one_line_error(code, err, str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run(["train", "--data", f"folder:{empty}", "--out", out, *TINY], capsys)
    assert_one_line_error(code, err, str(empty))

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for i in range(12):
        _png(corrupt / f"{i}.png")
    (corrupt / "5.png").write_bytes(b"\x89PNG not really")
    code, err = run(["train", "--data", f"folder:{corrupt}", "--out", out, *TINY], capsys)
    assert_one_line_error(code, err, "5.png")

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i in range(12):
        _png(mixed / f"{i}.png", size=8 if i else 16)
    code, err = run(["train", "--data", f"folder:{mixed}", "--out", out, *TINY], capsys)
    assert_one_line_error(code, err, "size", "pass --image-size SIZE")
    # The stated rule: with --image-size the same folder trains.
    code, err = run(["train", "--data", f"folder:{mixed}", "--image-size", "8",
                     "--iterations", "2", "--out", out, *TINY], capsys)
    assert code == 0, err
    assert not (tmp_path / "run-missing").exists()


@pytest.mark.parametrize(("extra", "needle"), [
    (["--batch-size", "100000"], "batch size 100000"),
    (["--recipe", "nope"], "unknown recipe 'nope'"),
    (["--loss", "nope"], "unknown loss 'nope'"),
    (["--penalty", "nope"], "unknown penalty 'nope'"),
    (["--iterations", "abc"], "--iterations"),
    (["--iterations", "-1"], "--iterations"),
    (["--lr-dis", "-0.1"], "--lr-dis"),
    (["--seed", "-4"], "--seed"),
    (["--snapshot-every", "0"], "--snapshot-every"),
    # argparse took a number in exponent form for an option ("expected one argument")
    (["--lr-dis", "-1e-3"], "--lr-dis: '-1e-3' must be a finite, non-negative number"),
    (["--lr-gen", "-inf"], "--lr-gen: '-inf' must be a finite, non-negative number"),
    (["--snapshot-every", "5x"], "training time such as 90s, 30m or 2h"),
])
def test_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                     needle: str) -> None:
    out = tmp_path / "run"
    code, err = run(["train", "--data", "digits", "--iterations", "2", "--out", str(out),
                     *TINY, *extra], capsys)
    assert_one_line_error(code, err, needle)
    assert not list_snapshots(out)


def test_npz_without_x_and_several_arrays_is_refused_naming_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, images=np.zeros((12, 8, 8), np.uint8), labels=np.zeros(12, np.int64))
    out = tmp_path / "run"
    code, err = run(["train", "--data", f"npz:{data}", "--iterations", "1", "--out", str(out),
                     *TINY], capsys)
    assert_one_line_error(code, err, "'images', 'labels'", "none named 'x'")
    assert not out.exists()


def test_unknown_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert run(["train", "--iterations", "2", "--out", str(out), *TINY], capsys)[0] == 0
    code, err = run(["eval", str(out), "--metrics", "fid,vibes"], capsys)
    assert_one_line_error(code, err, "vibes")


def test_output_directory_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.write_text("precious")
    code, err = run(["train", "--iterations", "2", "--out", str(target), *TINY], capsys)
    assert_one_line_error(code, err, "cannot write", str(target))
    assert target.read_text() == "precious"


def test_disk_full_snapshot_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    real = checkpoint.write_atomic
    calls = {"n": 0}

    def full_disk(path: Path, data: bytes, **kwargs: object) -> None:
        if str(path).endswith(".pt"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, **kwargs)

    monkeypatch.setattr(checkpoint, "write_atomic", full_disk)
    code, err = run(["train", "--iterations", "6", "--snapshot-every", "3", "--out", str(out),
                     *TINY], capsys)
    assert_one_line_error(code, err, "No space left on device", "snapshot_iter_3.pt is kept")
    assert [p.name for p in list_snapshots(out)] == ["snapshot_iter_3.pt"]
    assert load_state(out / "snapshot_iter_3.pt")["updater"]["iteration"] == 3
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_snapshot_from_another_recipe_or_shape(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(["train", "--iterations", "2", "--out", str(a), *TINY], capsys)[0] == 0
    assert run(["train", "--iterations", "2", "--out", str(b), *TINY, "--width", "6"],
               capsys)[0] == 0
    # b's snapshot copied into a: same recipe, other network shape.
    for f in list_snapshots(a):
        f.unlink()
    shutil.copy(b / "snapshot_iter_2.pt", a / "snapshot_iter_2.pt")
    code, err = run(["train", "--resume", str(a), "--iterations", "4"], capsys)
    assert_one_line_error(code, err, "does not fit this run")
    # A snapshot whose metadata names another recipe.
    state = load_state(b / "snapshot_iter_2.pt")
    state["metadata"]["recipe"] = "cyclegan"
    checkpoint.save_state(state, b / "snapshot_iter_2.pt")
    code, err = run(["train", "--resume", str(b), "--iterations", "4"], capsys)
    assert_one_line_error(code, err, "recipe")
    config = json.loads((b / "config.json").read_text())
    assert config["width"] == 6  # the run's files are untouched


def test_truncated_snapshot_falls_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert run(["train", "--iterations", "6", "--snapshot-every", "3", "--out", str(out),
                *TINY], capsys)[0] == 0
    newest = out / "snapshot_iter_6.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    capsys.readouterr()
    with pytest.warns(UserWarning, match="snapshot_iter_6.pt"):
        code = cli.main(["train", "--resume", str(out), "--iterations", "7"])
    assert code == 0
    assert "snapshot_iter_3.pt" in capsys.readouterr().err
    assert load_state(out / "snapshot_iter_7.pt")["updater"]["iteration"] == 7


def _nan_after(n: int) -> GANLoss:
    from gankit.gan.losses import get_loss

    ns = get_loss("ns")
    calls = {"n": 0}

    def dis_real(real_out):
        calls["n"] += 1
        loss = ns.dis_real(real_out)
        return loss * float("nan") if calls["n"] == n + 1 else loss  # one bad step

    return GANLoss("ns", dis_real, ns.dis_fake, ns.gen)


def test_nan_loss_stops_naming_key_and_iteration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import gankit.gan.updaters as updaters

    monkeypatch.setattr(updaters, "get_loss", lambda name: _nan_after(5))
    out = tmp_path / "run"
    code, err = run(["train", "--iterations", "40", "--snapshot-every", "3", "--out", str(out),
                     *TINY], capsys)
    assert_one_line_error(code, err, "dis/loss", "iteration 6")
    snaps = list_snapshots(out)
    assert [p.name for p in snaps] == ["snapshot_iter_3.pt"]  # the last finite one
    state = load_state(snaps[-1])
    for t in state["updater"]["models"]["dis"].values():
        assert t.isfinite().all()


def test_skip_nonfinite_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import gankit.gan.updaters as updaters

    monkeypatch.setattr(updaters, "get_loss", lambda name: _nan_after(5))
    out = tmp_path / "run"
    code, err = run(["train", "--iterations", "10", "--log-every", "10", "--out", str(out),
                     "--skip-nonfinite", *TINY], capsys)
    assert code == 0, err
    log = read_log(out / "log.json")
    assert log[-1]["skipped"] == 1.0
    state = load_state(list_snapshots(out)[-1])
    for t in state["updater"]["models"]["dis"].values():
        assert t.isfinite().all()
