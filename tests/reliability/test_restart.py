"""One command starts and restarts a run, as a requeued cluster job needs."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from test_kill_resume import _start, assert_same_end

from gankit.cli import main
from gankit.training.checkpoint import list_snapshots

TINY = ["--data", "digits", "--batch-size", "16", "--width", "4", "--z-dim", "4", "--quiet",
        "--device", "cpu", "--sample-every", "1000", "--log-every", "2"]


def test_killed_before_its_first_snapshot_the_same_command_completes_the_run(
        tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    proc = _start(reference)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    out = tmp_path / "killed"
    proc = _start(out, kill="iter:4")  # snapshots come every 7 iterations
    assert proc.wait(timeout=300) == -signal.SIGKILL
    assert not list_snapshots(out) and (out / "config.json").is_file()
    (out / ".snapshot_iter_7.pt.tmp4242").write_bytes(b"torn")  # as a killed write leaves
    proc = _start(out)  # the very same command
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "removed .snapshot_iter_7.pt.tmp4242" in err
    assert_same_end(reference, out)
    assert not any(".tmp" in p.name for p in out.iterdir())


def test_resume_of_a_run_without_snapshot_starts_it(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "2", "--out", str(out)]) == 0
    for p in list_snapshots(out):
        p.unlink()
    assert main(["train", "--resume", str(out)]) == 0
    assert [p.name for p in list_snapshots(out)] == ["snapshot_iter_2.pt"]


def test_conditional_on_unlabelled_data_is_refused_before_anything_is_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    data = tmp_path / "points.npz"
    np.savez(data, x=np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    out = tmp_path / "run"
    code = main(["train", "--data", f"npz:{data}", "--conditional", "--iterations", "2",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--conditional needs labelled data" in err and "no labels" in err
    assert not out.exists()


def test_keep_samples_bounds_the_samples_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [*TINY, "--iterations", "8", "--out", str(out), "--keep-samples", "2"]
    args[args.index("--sample-every") + 1] = "2"
    assert main(["train", *args]) == 0
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "iter_0000006.png", "iter_0000008.png"]


def test_snapshot_every_wall_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.training import Trainer, Updater

    clock = {"t": 0.0}
    monkeypatch.setattr(Trainer, "elapsed_time", property(lambda self: clock["t"]))
    real_update = Updater.update

    def slow_update(self) -> None:  # each iteration "takes" 25 s of training time
        clock["t"] += 25.0
        real_update(self)

    monkeypatch.setattr(Updater, "update", slow_update)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "9", "--out", str(out),
                 "--snapshot-every", "1m", "--keep-snapshots", "10"]) == 0
    # 60 s passes at iterations 3 (75 s), 6 (150 s), 9 (225 s), and 9 is the end anyway.
    assert [p.name for p in list_snapshots(out)] == [
        "snapshot_iter_3.pt", "snapshot_iter_6.pt", "snapshot_iter_9.pt"]


@pytest.mark.parametrize("bad", ["30x", "0m", "m"])
def test_snapshot_every_rejects_bad_durations(tmp_path: Path, bad: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *TINY, "--iterations", "2", "--out", str(tmp_path / "r"),
                 "--snapshot-every", bad]) == 2
    assert f"--snapshot-every {bad!r} is not an interval" in capsys.readouterr().err
