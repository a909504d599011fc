"""The Snapshot extension: retention, refusing NaN, the final snapshot on a signal."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.extensions import NonFiniteError, Snapshot
from gankit.training import PRIORITY_WRITER, list_snapshots, load_state


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("snapshot"))


@pytest.mark.parametrize(
    ("n_retains", "kept"),
    [(2, [6, 8]), (1, [8]), (None, [2, 4, 6, 8]), (10, [2, 4, 6, 8])],
)
def test_n_retains_keeps_the_last_k(make_trainer, n_retains, kept):
    trainer = make_trainer(stop=(9, "iteration"))
    trainer.extend(Snapshot(n_retains=n_retains, trigger=(2, "iteration")))
    trainer.run()
    assert [int(p.stem.split("_")[-1]) for p in list_snapshots(trainer.out)] == kept
    # One file per snapshot (its digest is inside it).
    assert names(trainer.out) == sorted(f"snapshot_iter_{i}.pt" for i in kept)
    assert load_state(trainer.out / f"snapshot_iter_{kept[-1]}.pt")["updater"]["iteration"] == 8


def test_a_snapshot_holds_the_trainer_state(make_trainer):
    trainer = make_trainer(stop=(3, "iteration"))
    trainer.extend(Snapshot(trigger=(3, "iteration")))
    trainer.run()
    state = load_state(trainer.out / "snapshot_iter_3.pt")
    net = trainer.updater.models["net"]
    for key, value in net.state_dict().items():
        assert torch.equal(state["updater"]["models"]["net"][key], value)
    assert state["updater"]["iteration"] == 3
    assert "Snapshot" in state["extensions"]


def test_custom_filenames_are_kept_outside_retention(make_trainer):
    trainer = make_trainer(stop=(4, "iteration"))
    trainer.extend(Snapshot("model_{iteration}.pt", n_retains=1, trigger=(1, "iteration")))
    trainer.run()
    assert names(trainer.out) == []
    assert sorted(p.name for p in trainer.out.glob("model_*.pt")) == [
        f"model_{i}.pt" for i in range(1, 5)]


def test_snapshot_refuses_non_finite_parameters(make_trainer):
    trainer = make_trainer(stop=(2, "iteration"))
    snapshot = Snapshot(trigger=(1, "iteration"))
    trainer.extend(snapshot)
    trainer.run()
    with torch.no_grad():
        trainer.updater.models["net"][0].bias.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"model 'net' has NaN/Inf in '0\.bias' at "
                                             r"iteration 2"):
        snapshot(trainer)
    trainer.out.joinpath("snapshot_iter_2.pt").unlink()
    with pytest.raises(NonFiniteError):
        snapshot(trainer)
    assert not trainer.out.joinpath("snapshot_iter_2.pt").exists()


def test_n_retains_must_be_positive():
    with pytest.raises(ValueError, match=r"n_retains must be at least 1 or None, got 0"):
        Snapshot(n_retains=0)


@pytest.mark.parametrize(("on_signal", "expected"), [(True, [4]), (False, [])])
def test_a_signal_writes_a_final_snapshot(make_trainer, on_signal, expected):
    trainer = make_trainer(stop=(50, "iteration"))
    trainer.extend(Snapshot(trigger=(10, "iteration"), on_signal=on_signal))

    def interrupt(t) -> None:
        if t.updater.iteration == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer.extend(interrupt, priority=PRIORITY_WRITER)
    trainer.run()
    assert trainer.stop_reason == "signal"
    assert [int(p.stem.split("_")[-1]) for p in list_snapshots(trainer.out)] == expected


def test_no_duplicate_final_snapshot_when_one_was_just_written(make_trainer, monkeypatch):
    from gankit.extensions import snapshot as snapshot_module

    written = []
    real_save = snapshot_module.save_state
    monkeypatch.setattr(snapshot_module, "save_state",
                        lambda state, path: (written.append(path.name), real_save(state, path)))
    trainer = make_trainer(stop=(50, "iteration"))
    trainer.extend(Snapshot(trigger=(2, "iteration"), n_retains=None))

    def interrupt(t) -> None:
        if t.updater.iteration == 4:
            os.kill(os.getpid(), signal.SIGINT)

    trainer.extend(interrupt, priority=PRIORITY_WRITER)
    trainer.run()
    assert written == ["snapshot_iter_2.pt", "snapshot_iter_4.pt"]


def test_resume_from_a_file_or_a_folder(make_trainer, tmp_path):
    first = make_trainer(stop=(6, "iteration"), out=tmp_path / "a")
    first.extend(Snapshot(trigger=(3, "iteration"), n_retains=None))
    first.run()
    for source, iteration in ((tmp_path / "a", 6), (tmp_path / "a" / "snapshot_iter_3.pt", 3)):
        second = make_trainer(stop=(6, "iteration"), out=tmp_path / "b")
        second.extend(Snapshot(trigger=(3, "iteration")))
        path = second.resume(source)
        assert path.name == f"snapshot_iter_{iteration}.pt"
        assert second.updater.iteration == iteration


def test_resume_into_a_different_network_is_a_clear_error(make_trainer, tmp_path):
    first = make_trainer(stop=(2, "iteration"), out=tmp_path / "a")
    first.extend(Snapshot(trigger=(2, "iteration")))
    first.run()
    second = make_trainer(stop=(4, "iteration"), out=tmp_path / "b")
    second.updater.raw_models["net"].append(nn.Linear(1, 1))
    with pytest.raises(GankitError, match=r"snapshot .*snapshot_iter_2\.pt does not fit this run "
                                          r"\(.*\); resume with the same recipe"):
        second.resume(tmp_path / "a")


def test_resume_from_an_empty_folder_is_a_first_run(make_trainer, tmp_path):
    trainer = make_trainer()
    assert trainer.resume(tmp_path) is None
    assert trainer.updater.iteration == 0
