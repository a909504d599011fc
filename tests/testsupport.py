"""What several tests share: a script loaded as a module, nested state flattened and compared,
"these two runs ended bitwise equal", a test script run in a fresh interpreter.
(``pyproject.toml`` puts ``tests/`` on the path.)"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.training.checkpoint import list_snapshots, load_state
from gankit.training.distributed import cleanup

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent


class TinyG(nn.Module):
    """A 4x4 one-channel generator from 4-d noise, for GANUpdater tests of seconds."""

    n_classes = 0

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 16)

    def sample_z(self, n: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.randn(n, 4, device=device)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.lin(z)).view(-1, 1, 4, 4)


def load_module(path: Path, name: str) -> Any:
    """The Python file ``path`` imported as module ``name`` (scripts, examples)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"/a/b/0": leaf}`` for nested dicts, lists and tuples (a state dict, a snapshot)."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {prefix: tree}
    return {k: v for key, sub in items for k, v in flatten(sub, f"{prefix}/{key}").items()}


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same dtype, shape and bytes (a NaN equals the same NaN; -0.0 is not 0.0)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.detach().cpu().contiguous().reshape(-1), b.detach().cpu().contiguous().reshape(-1)
    return torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def differing(a: Any, b: Any) -> list[str]:
    """The leaves of ``a`` and ``b`` that differ (tensors bitwise); both must have one layout."""
    fa, fb = flatten(a), flatten(b)
    assert fa.keys() == fb.keys(), sorted(set(fa) ^ set(fb))
    return [k for k, v in fa.items() if not _same_leaf(v, fb[k])]


def _same_leaf(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and same_bits(a, b)
    return type(a) is type(b) and bool(a == b)


def assert_bitwise_equal(a: Any, b: Any) -> None:
    """Two state trees have one layout, equal plain values and bitwise equal tensors."""
    diff = differing(a, b)
    assert diff == [], f"{len(diff)} leaves differ, e.g. {diff[:8]}"


def run_state(run: str | Path | dict[str, Any], *parts: str) -> dict[str, Any]:
    """What two runs that did the same work end bitwise equal on: the ``parts`` (default
    ``"updater"``: models, optimizers, counters; also ``"rng"``, ``"extensions/EMA"``, ...)
    of ``run``, a loaded snapshot, a snapshot file or a run directory (its newest one)."""
    if not isinstance(run, dict):
        path = Path(run)
        run = load_state(list_snapshots(path)[-1] if path.is_dir() else path)
    out = {}
    for part in parts or ("updater",):
        node: Any = run
        for key in part.split("/"):
            node = node[key]
        out[part] = node
    return out


def assert_runs_equal(a: str | Path | dict[str, Any], b: str | Path | dict[str, Any],
                      *parts: str) -> None:
    """Runs ``a`` and ``b`` (see ``run_state``) ended bitwise equal on ``parts``."""
    assert_bitwise_equal(run_state(a, *parts), run_state(b, *parts))


def run_script(script: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS`` in a fresh interpreter on this checkout's gankit, one thread."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS)]),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def run_gankit(*argv: str, env: dict[str, str] | None = None, timeout: float = 300,
               check: int | None = None) -> subprocess.CompletedProcess:
    """``python -m gankit ARGV`` in a fresh interpreter on this checkout's gankit, one thread,
    the environment's cache (plus ``env``); ``check`` asserts the exit status (with stderr)."""
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS)]),
                OMP_NUM_THREADS="1", **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "gankit", *argv], env=full,
                          capture_output=True, text=True, timeout=timeout)
    if check is not None:
        assert proc.returncode == check, proc.stderr[-3000:]
    return proc


def run_and_save(trainer: Any, out: str | Path, resume: bool, state: dict[str, Any],
                 log_keys: tuple[str, ...] | None = None) -> Any:
    """A resume script's run: resume (if asked) and train, then save what the test compares,
    ``state()`` to ``final.pt`` and the LogReport's entries (``log_keys`` prefixes only) to
    ``final_log.json``."""
    if resume:
        trainer.resume(out)
    trainer.run()
    torch.save(state(trainer), Path(out) / "final.pt")
    log = [{k: v for k, v in e.items() if log_keys is None or k.startswith(log_keys)}
           for e in trainer.get_extension("LogReport").log]
    Path(out, "final_log.json").write_text(json.dumps(log))
    return trainer


def script_main(run: Any, argv: list[str] | None = None) -> None:
    """``python SCRIPT OUT ITERATIONS [--resume]`` for a resume script's ``run``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("iterations", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    run(args.out, args.iterations, args.resume)


def make_cyclegan_updater(cls: Any = None, **kwargs: Any) -> Any:
    """A seeded CycleGANUpdater (``cls``, default CycleGANUpdater) on 8x8 one-channel images:
    two one-block translators, two width-4 DCGAN discriminators, one batch of 4 each."""
    from gankit.gan.cyclegan import CycleGANUpdater
    from gankit.models import DCGANDiscriminator, ResnetTranslator

    torch.manual_seed(0)
    gens = [ResnetTranslator((1, 8, 8), 4, n_blocks=1) for _ in range(2)]
    dis = [DCGANDiscriminator((1, 8, 8), 4) for _ in range(2)]
    batches = [(torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 8, 8) * 2 - 1)]
    opt_gen = torch.optim.Adam([p for g in gens for p in g.parameters()], 1e-3)
    opt_dis = torch.optim.Adam([p for d in dis for p in d.parameters()], 1e-3)
    return (cls or CycleGANUpdater)(*gens, *dis, opt_gen, opt_dis, batches, **kwargs)


def digits_as_mnist_idx(folder: Path, side: int = 28) -> Path:
    """sklearn's embedded digits upscaled to ``side`` and written as the four MNIST idx files
    (1497 "train", 300 "t10k"): MNIST-like digits in a folder, without a download."""
    from gankit.data import load_digits
    from gankit.data.stackedmnist import write_mnist_idx

    parts = []
    for split in ("train", "val"):
        ds = load_digits(split, image_size=side)
        assert ds.y is not None
        pixels = ds.x[:, 0].add(1.0).mul(127.5).round().to(torch.uint8).numpy()
        parts.append((pixels, ds.y.numpy()))
    return write_mnist_idx(folder, parts[0], parts[1])


def leave_spawned_rank() -> None:
    """End a rank started by ``torch.multiprocessing.spawn`` once its work is done: gankit's
    ``cleanup()`` (a barrier, then the group destroyed), then ``os._exit(0)``. A normal
    interpreter exit runs the C++ destructors of gloo's file-store threads, which at times
    abort the process ("terminate called without an active exception") after every result is
    written; skipping them ends the rank with status 0."""
    cleanup()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
