"""One DCGAN update on digits, four ways: plain PyTorch, gankit, Ignite, pytorch-pfn-extras.

Every variant runs the same step — gankit's DCGANGenerator / DCGANDiscriminator (IMAGE_DEFAULTS
sizes), non-saturating loss, Adam(2e-4, betas (0.5, 0.999)), batch 64 of the digits train
split from one seeded DataLoader, one discriminator and one generator step per batch, the
generator's backward restricted to its own parameters — with equivalent logging:

- plain:  a ``for`` loop; interval means of the four reported values kept on the device, one
          line printed and the log rewritten as JSON every ``--log-every`` iterations, a tqdm
          bar;
- gankit: ``Trainer`` + ``GANUpdater`` + ``LogReport`` (log.json) + ``PrintReport`` +
          ``ProgressBar(force=True)``;
- ignite: ``Engine`` + one ``RunningAverage`` per value + an event handler printing them and
          rewriting a JSON log every ``--log-every`` iterations + ``ProgressBar`` (from
          ``ignite.contrib.handlers``);
- ppe:    ``ExtensionsManager`` + ``ppe.reporting.report`` + its ``LogReport`` (the "log"
          file) + ``PrintReport`` + ``ProgressBar``.

Printing and progress bars write to a null stream, so they do their work without a terminal.
The variants alternate (plain, gankit, ignite, ppe, plain, ...) for ``--rounds`` rounds in one
process; the table gives the median steps/s (wall and CPU clocks) and the ratio to the plain
loop. Ignite and pytorch-pfn-extras come from benchmarks/requirements.txt; a missing one is
skipped with the reason printed. Run from the repository root:

    .venv/bin/pip install -r benchmarks/requirements.txt
    .venv/bin/python benchmarks/peers.py            # --rounds 9 --iterations 400 (~4 min)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import gankit
from gankit.cli.recipes.dcgan import IMAGE_DEFAULTS
from gankit.data import load_dataset
from gankit.extensions import LogReport, PrintReport, ProgressBar
from gankit.gan.updaters import GANUpdater
from gankit.models import DCGANDiscriminator, DCGANGenerator

BATCH = 64
SEED = 0
KEYS = ("dis/loss", "dis/real", "dis/fake", "gen/loss")


def build() -> tuple[nn.Module, nn.Module, torch.optim.Optimizer, torch.optim.Optimizer, Any]:
    """Networks, optimizers and loader, identical for every variant and round."""
    torch.manual_seed(SEED)
    x = load_dataset("digits", "train").x
    gen = DCGANGenerator(IMAGE_DEFAULTS["z_dim"], tuple(x.shape[1:]), IMAGE_DEFAULTS["width"])
    dis = DCGANDiscriminator(tuple(x.shape[1:]), IMAGE_DEFAULTS["width"], norm="batch")
    betas = (0.5, 0.999)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x), batch_size=BATCH, shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(SEED))
    return (gen, dis, torch.optim.Adam(gen.parameters(), 2e-4, betas=betas),
            torch.optim.Adam(dis.parameters(), 2e-4, betas=betas), loader)


def dcgan_step(gen: nn.Module, dis: nn.Module, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The update GANUpdater(loss="ns") does, written out for the three other variants."""
    n = x.shape[0]
    with torch.no_grad():
        fake = gen(gen.sample_z(n))
    real_out, fake_out = dis(x), dis(fake)
    loss_d = F.softplus(-real_out).mean() + F.softplus(fake_out).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    loss_g = F.softplus(-dis(gen(gen.sample_z(n)))).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(gen.parameters()))  # no gradient into the discriminator
    opt_g.step()
    return {"dis/loss": loss_d.detach(), "dis/real": real_out.detach().mean(),
            "dis/fake": fake_out.detach().mean(), "gen/loss": loss_g.detach()}


class Clock:
    """Wall and CPU seconds of a block; CPU time is what other processes cannot inflate."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def run_plain(iterations: int, log_every: int, out: TextIO, folder: Path) -> Clock:
    gen, dis, opt_g, opt_d, loader = build()
    folder.mkdir(parents=True)
    sums, count, it, log = torch.zeros(len(KEYS)), 0, 0, []
    bar = tqdm(total=iterations, file=out)
    with Clock() as clock:
        while it < iterations:
            for (x,) in loader:
                values = dcgan_step(gen, dis, opt_g, opt_d, x)
                sums += torch.stack([values[k] for k in KEYS])
                count += 1
                it += 1
                bar.update(1)
                if it % log_every == 0:
                    entry = dict(zip(KEYS, (sums / count).tolist(), strict=True))
                    entry["iteration"] = it
                    log.append(entry)
                    print("  ".join(f"{v:<12.6g}" for v in entry.values()), file=out)
                    (folder / "log.json").write_text(json.dumps(log))
                    sums.zero_()
                    count = 0
                if it >= iterations:
                    break
        bar.close()
    return clock


def run_gankit(iterations: int, log_every: int, out: TextIO, folder: Path) -> Clock:
    gen, dis, opt_g, opt_d, loader = build()
    updater = GANUpdater(gen, dis, opt_g, opt_d, loader, loss="ns")
    trainer = gankit.Trainer(updater, (iterations, "iteration"), out=folder)
    trainer.extend(LogReport(trigger=(log_every, "iteration")))
    trainer.extend(PrintReport(["iteration", *KEYS], out=out))
    trainer.extend(ProgressBar(out=out, force=True))
    with Clock() as clock:
        trainer.run()
    return clock


def run_ignite(iterations: int, log_every: int, out: TextIO, folder: Path) -> Clock:
    from ignite.contrib.handlers import ProgressBar as IgniteBar
    from ignite.engine import Engine, Events
    from ignite.metrics import RunningAverage

    gen, dis, opt_g, opt_d, loader = build()
    folder.mkdir(parents=True)

    def process(engine: Engine, batch: Any) -> dict[str, torch.Tensor]:
        return dcgan_step(gen, dis, opt_g, opt_d, batch[0])

    engine = Engine(process)
    for key in KEYS:
        RunningAverage(output_transform=lambda out, key=key: out[key]).attach(engine, key)
    log: list[dict[str, float]] = []

    @engine.on(Events.ITERATION_COMPLETED(every=log_every))
    def write_log(engine: Engine) -> None:
        entry = {k: float(engine.state.metrics[k]) for k in KEYS}
        entry["iteration"] = engine.state.iteration
        log.append(entry)
        print("  ".join(f"{v:<12.6g}" for v in entry.values()), file=out)
        (folder / "log.json").write_text(json.dumps(log))

    IgniteBar(file=out).attach(engine, metric_names=list(KEYS))
    with Clock() as clock:
        engine.run(loader, max_iters=iterations)
    return clock


def run_ppe(iterations: int, log_every: int, out: TextIO, folder: Path) -> Clock:
    import pytorch_pfn_extras as ppe
    from pytorch_pfn_extras.training import extensions as ext

    gen, dis, opt_g, opt_d, loader = build()
    manager = ppe.training.ExtensionsManager(
        {"gen": gen, "dis": dis}, {"gen": opt_g, "dis": opt_d}, max_epochs=10**6,
        iters_per_epoch=len(loader), out_dir=str(folder), stop_trigger=(iterations, "iteration"))
    manager.extend(ext.LogReport(trigger=(log_every, "iteration")))
    manager.extend(ext.PrintReport(["iteration", *KEYS], out=out))
    manager.extend(ext.ProgressBar(training_length=(iterations, "iteration"), update_interval=10,
                                   out=out))
    with Clock() as clock:
        while not manager.stop_trigger:
            for (x,) in loader:
                with manager.run_iteration():
                    ppe.reporting.report(dcgan_step(gen, dis, opt_g, opt_d, x))
                if manager.stop_trigger:
                    break
    return clock


VARIANTS: dict[str, tuple[Callable[..., Clock], str | None]] = {
    "plain": (run_plain, None),
    "gankit": (run_gankit, None),
    "ignite": (run_ignite, "ignite"),
    "ppe": (run_ppe, "pytorch_pfn_extras"),
}


def available() -> dict[str, Callable[..., Clock]]:
    """The variants whose library imports here; the others are reported and skipped."""
    runs = {}
    for name, (fn, module) in VARIANTS.items():
        if module is not None:
            try:
                __import__(module)
            except Exception as exc:  # any import failure means: skip this peer, say why
                print(f"skipping {name}: cannot import {module} ({type(exc).__name__}: {exc}); "
                      "install it with .venv/bin/pip install -r benchmarks/requirements.txt",
                      file=sys.stderr)
                continue
        runs[name] = fn
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # ignite.contrib's notice
    runs = available()
    rates = {(v, c): [] for v in runs for c in ("wall", "cpu")}
    start = time.perf_counter()
    with open(os.devnull, "w") as null, tempfile.TemporaryDirectory() as tmp:
        for name, fn in runs.items():  # warm-up: lazy imports and first-call costs
            fn(20, args.log_every, null, Path(tmp, f"warmup-{name}"))
        for r in range(args.rounds):
            line = []
            for name, fn in runs.items():
                clock = fn(args.iterations, args.log_every, null, Path(tmp, f"{name}-{r}"))
                rates[name, "wall"].append(args.iterations / clock.wall)
                rates[name, "cpu"].append(args.iterations / clock.cpu)
                line.append(f"{name} {rates[name, 'wall'][-1]:6.1f}/{rates[name, 'cpu'][-1]:6.1f}")
            print(f"round {r + 1}/{args.rounds} steps/s wall/cpu: " + ", ".join(line),
                  file=sys.stderr, flush=True)
    med = {key: statistics.median(values) for key, values in rates.items()}
    print(f"\nDCGAN on digits (batch {BATCH}, {args.threads} thread, CPU), "
          f"{args.rounds} rounds x {args.iterations} iterations, medians; "
          f"{time.perf_counter() - start:.0f} s in all")
    print("| variant | wall steps/s | ratio to plain | CPU steps/s | ratio to plain |")
    print("|---|---|---|---|---|")
    for name in runs:
        print(f"| {name} | {med[name, 'wall']:.1f} | {med[name, 'wall'] / med['plain', 'wall']:.3f}"
              f" | {med[name, 'cpu']:.1f} | {med[name, 'cpu'] / med['plain', 'cpu']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
