"""Several processes on the CPU (gloo): DDP, sharded data, reduced logs, rank-0 files, faults.

The multi-process tests start two ranks through torchrun's launcher, a few seconds each;
``ddp_worker.py`` is the program every rank runs. The one-process references are built in
this process from the same code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_worker import STEPS, flat_parameters, pair_trainer

import gankit.training.distributed as gd
from gankit.cli import main
from gankit.cli.launch import _without_option
from gankit.errors import GankitError
from gankit.extensions.log_report import read_log
from gankit.training import load_state

WORKER = Path(__file__).with_name("ddp_worker.py")
MULTIPROCESS = pytest.mark.multiprocess
SRC = Path(gd.__file__).parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in gd._TORCHRUN_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def _launch_worker(scenario: str, out: Path, timeout: float, **env: str):
    """Two ranks of ddp_worker.py through gankit.training.distributed.launch; (result, seconds)."""
    code = ("import sys; from gankit.cli.launch import launch; "
            f"sys.exit(launch([{scenario!r}, {str(out)!r}], 2, script={str(WORKER)!r}))")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], env=_env(**env), timeout=timeout,
                            capture_output=True, text=True)
    return result, time.monotonic() - start


# ------------------------------------------------------------------------ one process
@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "--nproc", "2", "--quiet"], ["train", "--quiet"]),
    (["train", "--nproc=2", "--out", "x"], ["train", "--out", "x"]),
    (["train", "--out", "x"], ["train", "--out", "x"]),
])
def test_launch_drops_nproc_from_the_workers_arguments(argv, expected):
    assert _without_option(argv, "--nproc") == expected


def test_without_torchrun_everything_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert gd.init_distributed("cpu") == torch.device("cpu")
    assert gd.rank_and_world_size() == (0, 1)
    assert not gd.is_distributed()
    assert gd.all_gather_object({"a": 1}) == [{"a": 1}]
    gd.barrier()  # no group, no wait


@pytest.mark.parametrize(("world", "message"), [
    ("2", "RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT is not"),
    ("two", "WORLD_SIZE='two' is not a number"),
])
def test_a_broken_torchrun_environment_is_refused(monkeypatch, world, message):
    monkeypatch.setenv("WORLD_SIZE", world)
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(GankitError, match=message):
        gd.init_distributed("cpu")


@pytest.mark.parametrize(("value", "expected"), [(None, 600.0), ("12.5", 12.5), ("abc", None),
                                                 ("0", None), ("-3", None)])
def test_the_collective_timeout_comes_from_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(gd.TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(gd.TIMEOUT_ENV, value)
    if expected is None:
        with pytest.raises(GankitError, match=f"GANKIT_DIST_TIMEOUT='{value}'"):
            gd._timeout_s()
    else:
        assert gd._timeout_s() == expected


def test_nproc_inside_torchrun_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--nproc", "2"]) == 2
    assert "inside a torchrun launch" in capsys.readouterr().err


STATE = {"rng": "rank0", "rng_per_rank": ["rank0", "rank1"]}


@pytest.mark.parametrize(("rank", "world", "state", "expected"), [
    (0, 1, {"rng": "own"}, "own"),              # a one-process snapshot, one process
    (0, 2, {"rng": "own"}, "own"),              # ...resumed by two: rank 0 takes it,
    (1, 2, {"rng": "own"}, None),               # rank 1 keeps its own seeded streams
    (0, 2, STATE, "rank0"),
    (1, 2, STATE, "rank1"),
    (2, 3, STATE, None),                        # more ranks than the snapshot had
    (0, 1, STATE, "rank0"),
])
def test_each_rank_resumes_its_own_rng_streams(monkeypatch, rank, world, state, expected):
    monkeypatch.setattr(gd, "rank_and_world_size", lambda: (rank, world))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the world-size mismatch warning
        assert gd.own_rng_state(state) == expected


def test_ranks_draw_different_noise_and_rank_0_keeps_its_stream(monkeypatch):
    draws = {}
    for rank in (0, 1, 2):
        monkeypatch.setattr(gd, "rank_and_world_size", lambda r=rank: (r, 3))
        torch.manual_seed(5)
        np.random.seed(5)
        gd.seed_rank(5)
        draws[rank] = (torch.rand(3), np.random.rand())
    torch.manual_seed(5)
    assert torch.equal(draws[0][0], torch.rand(3))
    assert not torch.equal(draws[1][0], draws[2][0])
    assert not torch.equal(draws[0][0], draws[1][0])
    assert draws[1][1] != draws[2][1]


# ------------------------------------------------------------------------ two processes
@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The ``train`` scenario of ddp_worker.py, run once by two ranks."""
    out = tmp_path_factory.mktemp("ddp")
    result, _ = _launch_worker("train", out, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, torch.load(out / "result.pt", weights_only=True)


@pytest.fixture(scope="module")
def one_rank_double_batch(tmp_path_factory):
    trainer = pair_trainer(tmp_path_factory.mktemp("one") / "run", batch_size=16)
    trainer.run()
    return trainer


@MULTIPROCESS
def test_parameters_are_identical_on_every_rank(two_ranks):
    _, result = two_ranks
    rank0, rank1 = result["params"]
    assert torch.equal(rank0, rank1)
    gan0, gan1 = result["gan_params"]
    assert torch.equal(gan0, gan1)  # also with per-rank noise and an R1 penalty


@MULTIPROCESS
def test_two_ranks_of_batch_b_train_like_one_process_of_batch_2b(two_ranks,
                                                                 one_rank_double_batch):
    # DDP averages the two ranks' gradients, each a mean over its B samples: the gradient of
    # the mean over the same 2B samples. Only the summation order differs, so the weights
    # agree to float32 rounding after 6 steps of two optimizers.
    _, result = two_ranks
    single = flat_parameters(one_rank_double_batch)
    start = flat_parameters(pair_trainer(Path("unused"), batch_size=16))
    assert not torch.allclose(single, start, atol=1e-3)  # training moved the weights
    torch.testing.assert_close(result["params"][0], single, rtol=1e-5, atol=1e-6)


@MULTIPROCESS
def test_logged_means_and_evaluations_are_reduced_over_ranks(two_ranks, one_rank_double_batch):
    # Rank 0 alone saw half of each batch and half of the validation data; its own means
    # would differ from the one-process run's by far more than the tolerance.
    _, result = two_ranks
    single = one_rank_double_batch.get_extension("LogReport").log
    assert [e["iteration"] for e in result["log"]] == [3, STEPS]
    for ours, ref in zip(result["log"], single, strict=True):
        for key in ("gen/loss", "dis/loss", "val/dis/real", "val/dis/fake"):
            assert ours[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), key


@MULTIPROCESS
def test_only_rank_0_writes_files(two_ranks):
    out, _ = two_ranks
    written = sorted(p.relative_to(out / "rank0").as_posix()
                     for p in (out / "rank0").rglob("*") if p.is_file())
    assert written == ["log.json", "loss.png", f"samples/iter_{STEPS:07d}.png",
                       "snapshot_iter_3.pt", f"snapshot_iter_{STEPS}.pt"]
    assert not (out / "rank1").exists()


@MULTIPROCESS
def test_a_resumed_two_rank_run_continues_exactly(two_ranks):
    _, result = two_ranks
    # Each rank restored its own RNG streams from the snapshot, so it drew the same noise as
    # the uninterrupted run; with rank 0's streams on both, rank 1's noise would differ.
    assert result["resumed_equal"] == [True, True]
    rng0, rng1 = result["rng_per_rank"]
    assert not torch.equal(rng0["torch"], rng1["torch"])


@MULTIPROCESS
def test_a_signal_to_one_rank_stops_every_rank_after_the_same_iteration(two_ranks):
    out, result = two_ranks
    # The ranks exchange their stop flags about twice a second (not every iteration) and stop
    # after the same iteration, at or after the signal's (4); the final snapshot (a
    # collective) then has both ranks' RNG streams, and no rank runs a step the other does not.
    (reason0, it0), (reason1, it1) = result["stops"]
    assert reason0 == reason1 == "signal" and it0 == it1 >= 4
    assert len(load_state(out / "signal" / f"snapshot_iter_{it0}.pt")["rng_per_rank"]) == 2


@MULTIPROCESS
@pytest.mark.parametrize(("scenario", "env", "blamed", "said"), [
    ("die", {}, "rank 1 of 2 was killed by SIGKILL", None),
    ("hang", {"GANKIT_DIST_TIMEOUT": "5", "HANG_S": "8"}, "rank 0 of 2 exited with status 1",
     "Timed out"),
])
def test_a_lost_rank_fails_the_run_quickly_and_says_which(tmp_path, scenario, env, blamed,
                                                          said):
    # die: the agent sees rank 1 gone and stops rank 0, whose collective also fails at once.
    # hang: rank 1 stalls; rank 0's collective gives up after GANKIT_DIST_TIMEOUT seconds.
    result, seconds = _launch_worker(scenario, tmp_path, timeout=150, **env)
    assert result.returncode == 1
    assert f"gankit: error: {blamed}" in result.stderr
    assert said is None or said in result.stderr
    assert seconds < 100


# ------------------------------------------------------------------------ the command line
@MULTIPROCESS
def test_cli_trains_and_resumes_with_two_processes(tmp_path):
    data = tmp_path / "img.npz"
    np.savez(data, x=np.random.default_rng(0).integers(0, 256, (80, 8, 8), dtype=np.uint8))
    out = tmp_path / "run"
    common = ["--nproc", "2", "--device", "cpu", "--quiet"]
    first = subprocess.run(
        [sys.executable, "-m", "gankit", "train", "--data", f"npz:{data}", "--out", str(out),
         "--iterations", "4", "--batch-size", "8", "--width", "8", "--z-dim", "8",
         "--log-every", "2", "--snapshot-every", "2", "--sample-every", "4", *common],
        env=_env(), capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stderr.count("done: 4 iterations") == 1  # rank 0 only
    state = load_state(out / "snapshot_iter_4.pt")
    assert len(state["rng_per_rank"]) == 2
    # 72 training images over 2 ranks of batch 8: 4 batches per rank per epoch.
    assert state["updater"]["epoch"] == 1

    second = subprocess.run(
        [sys.executable, "-m", "gankit", "train", "--resume", str(out), "--iterations", "6",
         *common], env=_env(), capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("resuming from") == 1
    assert f"resuming from {out / 'snapshot_iter_4.pt'} (iteration 4)" in second.stderr
    log = read_log(out / "log.json")
    assert [e["iteration"] for e in log] == [2, 4, 6]
    assert (out / "snapshot_iter_6.pt").is_file()
