"""What ``gankit train`` costs over a raw PyTorch loop, beside pytorch-pfn-extras and Ignite.

Two workloads (``--workload``), each run four ways (``--variants``) with the same step:

- ``ring8`` (default): a ~2 ms 2-D GAN step on one thread: an MLP generator (z 2 -> three
  ReLU layers of width 128 -> 2) and an MLP discriminator (three LeakyReLU(0.2) layers -> one
  logit), the shapes of ``gankit.models.MLPGenerator`` / ``MLPDiscriminator`` at the CLI's
  2-D width, Adam(1e-3, betas (0, 0.999)), batch 256 of 8 Gaussians on a ring. The networks
  are defined here, not imported from gankit, so the peers' processes do not import gankit.
- ``digits``: the DCGAN update on the embedded digits: gankit's ``DCGANGenerator`` /
  ``DCGANDiscriminator`` at the digits recipe's sizes (z 32, width 32, batch norm),
  Adam(2e-4, betas (0.5, 0.999)), batch 64 (formerly ``benchmarks/peers.py``). Every variant
  imports gankit for the networks and the data.

In both: non-saturating loss, one seeded torch DataLoader over a TensorDataset, one
discriminator then one generator step per batch, the generator's backward restricted to its
own parameters. Each variant also does the same files and prints, so the ratio is the cost of
the framework, not of the work: every ``--log-every`` iterations the interval means of
dis/loss, dis/real, dis/fake and gen/loss become one printed line, the JSON log is rewritten
and a PNG plot of the two losses is drawn; a progress bar advances every 10 iterations; one
snapshot (models and optimizers) is written at the end:

- raw:    a ``for`` loop that keeps the interval sums on the device (one ``stack`` and add per
          step), checks the means are finite when it reads them, prints, writes and plots by
          hand (a bare Agg figure, as PlotReport draws), a tqdm bar and ``torch.save``;
- gankit: ``Trainer`` + ``GANUpdater(loss="ns")`` with exactly the extensions ``gankit train``
          adds (src/gankit/cli/train.py): FailOnNonFinite, LogReport and PlotReport every
          ``--log-every`` iterations and at the last one (the CLI's interval triggers),
          PrintReport (the dcgan recipe's print keys), ProgressBar and Snapshot at the last
          iteration. Left out, in every variant: the dcgan recipe's own extensions (EMA,
          SampleGrid, GANEvaluator, the best-FID snapshot), which are the recipe's work, not
          the framework's;
- ppe:    pytorch-pfn-extras' ``ExtensionsManager`` + ``ppe.reporting.report`` + LogReport +
          PlotReport + PrintReport + ProgressBar + ``snapshot`` at the last iteration;
- ignite: Ignite's ``Engine`` + handlers: the raw loop's interval sums and its
          print/JSON/plot every ``--log-every`` iterations, Ignite's ``ProgressBar`` every 10
          iterations, ``Checkpoint`` + ``DiskSaver`` on COMPLETED.

The first round checks that the four logs hold the same losses (same seed, data order and
step), so a ratio never compares different work. Printing and bars go to a null stream
(ProgressBar with ``force=True``), so they do their work without a terminal. Two
measurements, both against the raw loop of the same run:

- loop only: ``--rounds`` rounds in one process, each running the four variants for
  ``--iterations`` steps in an order rotated every round; the clock holds the training loop
  only (networks, loader and extensions are built outside it). Median steps/s over rounds,
  wall clock and process CPU time; CPU time is what the other jobs on a shared machine
  disturb least.
- whole process: a fresh ``python`` per variant, ``--process-rounds`` rounds, rotated; the
  clock runs from just before the process is spawned until it has done ``--process-steps``
  steps (imports, building and the loop inside the clock; interpreter teardown outside).

``--profile`` instead runs the gankit variant and the raw loop under cProfile and prints the
per-iteration cost of the functions of gankit's loop. ``--json FILE`` also writes the table's
figures. Run from the repository root:

    .venv/bin/pip install -r benchmarks/requirements.txt
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/overhead.py   # ~4 min
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/overhead.py --workload digits \\
        --rounds 9 --iterations 400 --process-rounds 0
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/overhead.py --profile
"""

from __future__ import annotations

# Only the standard library at module level: a whole-process child must import torch, gankit
# and the peers inside its clock.
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import _harness as harness

SRC = harness.SRC
BATCH = 256
HIDDEN = 128
Z_DIM = 2
# One epoch longer than any run here (2,048 batches): a torch RandomSampler draws one more
# permutation when a `for` loop exhausts its iterator, which gankit's Updater (it stops after
# len(loader) batches) never asks for, so across an epoch boundary the variants would see
# different batches and the same-work check below would rightly refuse to compare them.
N_POINTS = BATCH * 2048
SEED = 0
WORKLOADS = ("ring8", "digits")
LOG_EVERY = {"ring8": 250, "digits": 50}  # the CLI's 2-D default; the former peers.py's
DESCRIPTION = {
    "ring8": f"2-D GAN step (MLPs width {HIDDEN}, batch {BATCH}, Adam, ns loss)",
    "digits": "DCGAN on digits (gankit's networks, z 32, width 32, batch 64, Adam, ns loss)",
}
WORKLOAD = "ring8"  # set by main() and by a whole-process child from --workload
KEYS = ("dis/loss", "dis/real", "dis/fake", "gen/loss")
PLOT_KEYS = ("gen/loss", "dis/loss")
BAR_EVERY = 10
VARIANTS = ("raw", "gankit", "ppe", "ignite")
PEER_MODULES = {"ppe": "pytorch_pfn_extras", "ignite": "ignite"}


def build(seed: int = SEED) -> tuple[Any, Any, Any, Any, Any]:
    """Networks, optimizers and loader of the workload, identical for every variant and
    round."""
    if WORKLOAD == "digits":
        return build_digits(seed)
    import math

    import torch
    from torch import nn

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            for i in range(3):
                layers += [nn.Linear(Z_DIM if i == 0 else HIDDEN, HIDDEN), nn.ReLU(inplace=True)]
            self.body = nn.Sequential(*layers)
            self.out = nn.Linear(HIDDEN, 2)

        def sample_z(self, n: int, device: Any = None) -> torch.Tensor:
            return torch.randn(n, Z_DIM, device=device)

        def forward(self, z: torch.Tensor, y: Any = None) -> torch.Tensor:
            return self.out(self.body(z))

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            for i in range(3):
                layers += [nn.Linear(2 if i == 0 else HIDDEN, HIDDEN),
                           nn.LeakyReLU(0.2, inplace=True)]
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(HIDDEN, 1)

        def forward(self, x: torch.Tensor, y: Any = None) -> torch.Tensor:
            return self.head(self.body(x)).squeeze(1)

    torch.manual_seed(seed)
    angle = torch.randint(8, (N_POINTS,)) * (2 * math.pi / 8)
    x = torch.stack([angle.cos(), angle.sin()], 1) + 0.01 * torch.randn(N_POINTS, 2)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x), batch_size=BATCH, shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(seed))
    gen, dis = Generator(), Discriminator()
    betas = (0.0, 0.999)  # the CLI's 2-D default
    return (gen, dis, torch.optim.Adam(gen.parameters(), 1e-3, betas=betas),
            torch.optim.Adam(dis.parameters(), 1e-3, betas=betas), loader)


def build_digits(seed: int = SEED) -> tuple[Any, Any, Any, Any, Any]:
    """The DCGAN of the digits recipe on the digits train split, batch 64. The split is
    repeated so that one epoch is longer than any run (see N_POINTS)."""
    import torch

    from gankit.data import load_dataset
    from gankit.models import DCGANDiscriminator, DCGANGenerator

    batch = 64
    torch.manual_seed(seed)
    x = load_dataset("digits", "train").x.float()
    x = x.repeat(-(-batch * 2048 // len(x)), 1, 1, 1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x), batch_size=batch, shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(seed))
    shape = tuple(x.shape[1:])
    gen = DCGANGenerator(32, shape, 32)
    dis = DCGANDiscriminator(shape, 32, norm="batch")
    betas = (0.5, 0.999)
    return (gen, dis, torch.optim.Adam(gen.parameters(), 2e-4, betas=betas),
            torch.optim.Adam(dis.parameters(), 2e-4, betas=betas), loader)


def every_and_at_end(every: int, iterations: int) -> Any:
    """Every ``every`` iterations and at the last one: the trigger ``gankit train`` gives
    its log, plot and snapshot extensions, built from the public trigger API."""
    from gankit.training.triggers import get_stop_trigger, get_trigger

    periodic = get_trigger((every, "iteration"))
    stop = get_stop_trigger((iterations, "iteration"))
    return get_trigger(lambda trainer: periodic(trainer) or stop(trainer))


def gan_step(gen: Any, dis: Any, opt_g: Any, opt_d: Any, x: Any, gen_params: list[Any]) -> Any:
    """The update GANUpdater(loss="ns") does, written out for the three other variants."""
    import torch
    import torch.nn.functional as F

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
    loss_g.backward(inputs=gen_params)  # no gradient into the discriminator
    opt_g.step()
    return (loss_d.detach(), real_out.detach().mean(), fake_out.detach().mean(),
            loss_g.detach())


def draw_plot(log: list[dict[str, float]], path: Path) -> None:
    """The two losses against the iteration as a PNG, drawn the way PlotReport draws."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key in PLOT_KEYS:
        ax.plot([e["iteration"] for e in log], [e[key] for e in log],
                marker="." if len(log) < 50 else None, label=key)
    ax.set_xlabel("iteration")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_file(path, buffer.getvalue())


def write_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class HandLog:
    """Interval means on the device, then a printed line, the JSON log and the plot: what
    LogReport + PrintReport + PlotReport do, by hand (the raw loop and Ignite use it)."""

    def __init__(self, folder: Path, out: TextIO) -> None:
        import torch

        self.folder, self.out = folder, out
        self.sums = torch.zeros(len(KEYS))
        self.count = 0
        self.log: list[dict[str, float]] = []
        self.start = time.perf_counter()
        print("  ".join(k.ljust(12) for k in ("iteration", *KEYS)), file=out)

    def add(self, values: tuple[Any, ...]) -> None:
        import torch

        self.sums += torch.stack(values)
        self.count += 1

    def write(self, iteration: int, epoch: int) -> None:
        means = (self.sums / self.count).tolist()
        if not all(m == m and abs(m) != float("inf") for m in means):
            raise FloatingPointError(f"a loss became NaN/Inf before iteration {iteration}")
        entry = dict(zip(KEYS, means, strict=True))
        entry.update(epoch=epoch, iteration=iteration,
                     elapsed_time=time.perf_counter() - self.start)
        self.log.append(entry)
        print(f"{iteration:<12d}  " + "  ".join(f"{m:<12.6g}" for m in means), file=self.out)
        text = "[\n" + ",\n".join(json.dumps(e) for e in self.log) + "\n]\n"
        write_file(self.folder / "log.json", text.encode())
        draw_plot(self.log, self.folder / "loss.png")
        self.sums.zero_()
        self.count = 0


def make_raw(iterations: int, log_every: int, out: TextIO, folder: Path) -> Callable[[], None]:
    import torch
    from tqdm import tqdm

    gen, dis, opt_g, opt_d, loader = build()
    gen_params = list(gen.parameters())
    folder.mkdir(parents=True, exist_ok=True)

    def run() -> None:
        hand = HandLog(folder, out)
        bar = tqdm(total=iterations, file=out, unit="it", dynamic_ncols=True)
        it = epoch = 0
        while it < iterations:
            for (x,) in loader:
                hand.add(gan_step(gen, dis, opt_g, opt_d, x, gen_params))
                it += 1
                if it % BAR_EVERY == 0:
                    bar.update(BAR_EVERY)
                if it % log_every == 0 or it == iterations:
                    hand.write(it, epoch)
                if it >= iterations:
                    break
            else:
                epoch += 1
        bar.close()
        state = {"iteration": it, "gen": gen.state_dict(), "dis": dis.state_dict(),
                 "opt_gen": opt_g.state_dict(), "opt_dis": opt_d.state_dict()}
        torch.save(state, folder / f"snapshot_iter_{it}.pt.tmp")
        os.replace(folder / f"snapshot_iter_{it}.pt.tmp", folder / f"snapshot_iter_{it}.pt")

    return run


def make_gankit(iterations: int, log_every: int, out: TextIO, folder: Path) -> Callable[[], None]:
    from gankit.extensions import (
        FailOnNonFinite,
        LogReport,
        PlotReport,
        PrintReport,
        ProgressBar,
        Snapshot,
    )
    from gankit.gan import GANUpdater
    from gankit.training import Trainer

    # The dcgan recipe's keys: the CLI's table and plot (val/* stay empty without the evaluator).
    print_keys = ["epoch", "iteration", "gen/loss", "dis/loss", "val/fid", "elapsed_time"]
    plot_keys = ["gen/loss", "dis/loss", "val/gen/loss", "val/dis/loss"]
    gen, dis, opt_g, opt_d, loader = build()
    updater = GANUpdater(gen, dis, opt_g, opt_d, loader, loss="ns", device="cpu")
    trainer = Trainer(updater, (iterations, "iteration"), folder)
    # The extensions cmd_train adds, in its order, less the recipe's own.
    trainer.extend(FailOnNonFinite())
    trainer.extend(LogReport(trigger=every_and_at_end(log_every, iterations)))
    trainer.extend(PlotReport(plot_keys, trigger=every_and_at_end(log_every, iterations)))
    trainer.extend(PrintReport(print_keys, out=out))
    trainer.extend(ProgressBar(update_interval=BAR_EVERY, out=out, force=True))
    trainer.extend(Snapshot(n_retains=3), trigger=every_and_at_end(iterations, iterations))
    return trainer.run


def make_ppe(iterations: int, log_every: int, out: TextIO, folder: Path) -> Callable[[], None]:
    import matplotlib

    matplotlib.use("Agg")
    import pytorch_pfn_extras as ppe
    from pytorch_pfn_extras.training import extensions as ext

    gen, dis, opt_g, opt_d, loader = build()
    gen_params = list(gen.parameters())
    manager = ppe.training.ExtensionsManager(
        {"gen": gen, "dis": dis}, {"gen": opt_g, "dis": opt_d}, max_epochs=10**6,
        iters_per_epoch=len(loader), out_dir=str(folder), stop_trigger=(iterations, "iteration"))
    every = (log_every, "iteration")
    manager.extend(ext.LogReport(trigger=every, filename="log.json"))
    manager.extend(ext.PlotReport(list(PLOT_KEYS), "iteration", trigger=every,
                                  filename="loss.png"))
    manager.extend(ext.PrintReport(["epoch", "iteration", *KEYS], out=out))
    manager.extend(ext.ProgressBar(training_length=(iterations, "iteration"),
                                   update_interval=BAR_EVERY, out=out))
    manager.extend(ext.snapshot(n_retains=3), trigger=(iterations, "iteration"))

    def run() -> None:
        while not manager.stop_trigger:
            for (x,) in loader:
                with manager.run_iteration():
                    values = gan_step(gen, dis, opt_g, opt_d, x, gen_params)
                    ppe.reporting.report(dict(zip(KEYS, values, strict=True)))
                if manager.stop_trigger:
                    break

    return run


def make_ignite(iterations: int, log_every: int, out: TextIO, folder: Path) -> Callable[[], None]:
    from ignite.engine import Engine, Events
    from ignite.handlers import Checkpoint, DiskSaver, ProgressBar

    gen, dis, opt_g, opt_d, loader = build()
    gen_params = list(gen.parameters())
    folder.mkdir(parents=True, exist_ok=True)

    def process(engine: Engine, batch: Any) -> tuple[Any, ...]:
        return gan_step(gen, dis, opt_g, opt_d, batch[0], gen_params)

    engine = Engine(process)
    hand: list[HandLog] = []

    @engine.on(Events.STARTED)
    def start(engine: Engine) -> None:
        hand.append(HandLog(folder, out))

    @engine.on(Events.ITERATION_COMPLETED)
    def add(engine: Engine) -> None:
        hand[0].add(engine.state.output)

    @engine.on(Events.ITERATION_COMPLETED(every=log_every) | Events.COMPLETED)
    def write(engine: Engine) -> None:
        if hand[0].count:
            hand[0].write(engine.state.iteration, engine.state.epoch - 1)

    ProgressBar(file=out).attach(engine, event_name=Events.ITERATION_COMPLETED(every=BAR_EVERY))
    checkpoint = Checkpoint({"gen": gen, "dis": dis, "opt_gen": opt_g, "opt_dis": opt_d},
                            DiskSaver(str(folder), require_empty=False), n_saved=3)
    engine.add_event_handler(Events.COMPLETED, checkpoint)

    def run() -> None:
        engine.run(loader, max_iters=iterations)

    return run


MAKERS: dict[str, Callable[[int, int, TextIO, Path], Callable[[], None]]] = {
    "raw": make_raw, "gankit": make_gankit, "ppe": make_ppe, "ignite": make_ignite}


def timed(variant: str, iterations: int, log_every: int, out: TextIO,
          folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the training loop alone (everything built beforehand)."""
    import torch

    torch.set_num_threads(1)
    run = MAKERS[variant](iterations, log_every, out, folder)
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def child(variant: str, steps: int, log_every: int, folder: Path) -> None:
    """A whole-process run: build and train, then report the process's wall end and CPU."""
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    with open(os.devnull, "w") as null:
        MAKERS[variant](steps, log_every, null, folder)()
    print(json.dumps({"end": time.time(), "cpu": time.process_time()}), flush=True)


def process_run(variant: str, steps: int, log_every: int, folder: Path) -> tuple[float, float]:
    """Seconds from spawning ``python`` to ``steps`` steps done, wall and the child's CPU."""
    env = harness.child_env(OMP_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, "--workload", WORKLOAD,
           "--process-steps", str(steps), "--log-every", str(log_every), "--out", str(folder)]
    start = time.time()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {variant} process failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["end"] - start, result["cpu"]


def same_work(names: list[str], folders: list[Path]) -> None:
    """Refuse to compare variants that did not train the same way: same seed, same data order
    and the same step give the same logged losses, to float rounding."""
    from gankit.extensions.log_report import read_log

    # gankit appends JSON lines; the peers and the raw loop rewrite one JSON array.
    logs = [read_log(f / "log.json") for f in folders]
    for name, log in zip(names, logs, strict=True):
        for mine, raw in zip(log, logs[0], strict=True):
            if any(abs(mine[k] - raw[k]) > 1e-5 * (1 + abs(raw[k])) for k in PLOT_KEYS):
                raise RuntimeError(f"{name} logged {mine} where the raw loop logged {raw}; "
                                   "the variants no longer run the same step.")


def available(names: list[str]) -> list[str]:
    """The variants whose library imports here; the others are reported and skipped."""
    keep = []
    for name in names:
        module = PEER_MODULES.get(name)
        if module is not None:
            try:
                __import__(module)
            except Exception as exc:  # any import failure: skip this peer, say why
                print(f"skipping {name}: cannot import {module} ({type(exc).__name__}: {exc}); "
                      "pip install -r benchmarks/requirements.txt", file=sys.stderr)
                continue
        keep.append(name)
    return keep


def profile(iterations: int, log_every: int, top: int) -> None:
    """Per-iteration cost of gankit's loop functions, and of the raw loop for scale."""
    import cProfile
    import pstats

    with open(os.devnull, "w") as null, tempfile.TemporaryDirectory() as tmp:
        for variant in ("raw", "gankit"):
            timed(variant, 40, 20, null, Path(tmp, f"warm-{variant}"))  # lazy imports
            run = MAKERS[variant](iterations, log_every, null, Path(tmp, variant))
            prof = cProfile.Profile(time.process_time)  # CPU time: the load stretches wall
            prof.runcall(run)
            stats = pstats.Stats(prof)
            total = stats.total_tt  # type: ignore[attr-defined]
            print(f"\n{variant}: {1e6 * total / iterations:.0f} us of CPU per iteration under "
                  f"cProfile ({iterations} iterations)")
            rows = []
            for (path, line, func), (_, ncalls, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
                if variant == "raw" or "gankit" in path:
                    rows.append((ct, tt, ncalls, f"{_short(path)}:{line}({func})"))
            rows.sort(reverse=True)
            print(f"{'cum us/it':>10} {'own us/it':>10} {'calls/it':>9}  function")
            for ct, tt, ncalls, where in rows[:top]:
                print(f"{1e6 * ct / iterations:10.1f} {1e6 * tt / iterations:10.1f} "
                      f"{ncalls / iterations:9.2f}  {where}")


def bare_cost(iterations: int, rounds: int) -> None:
    """CPU per iteration of the loop around a step that only reports four fresh scalars: the
    Trainer with the CLI's extensions against the raw loop's own bookkeeping. No step, no
    loader and no log line (the log trigger never fires), so what is left is framework."""
    import torch
    from tqdm import tqdm

    from gankit.extensions import (
        FailOnNonFinite,
        LogReport,
        PlotReport,
        PrintReport,
        ProgressBar,
        Snapshot,
    )
    from gankit.training import Trainer, Updater
    from gankit.training.reporter import report

    one = [torch.tensor(1.0) for _ in KEYS]
    never = 10**9

    class Bare(Updater):
        def update_core(self, batch: Any) -> None:
            report(dict(zip(KEYS, (v * 1 for v in one), strict=True)))

    def gankit_run(out: TextIO, folder: Path) -> Callable[[], None]:
        gen, dis, opt_g, opt_d, _ = build()
        updater = Bare({"gen": gen, "dis": dis}, {"gen": opt_g, "dis": opt_d}, list(range(64)))
        trainer = Trainer(updater, (iterations, "iteration"), folder)
        # the CLI's triggers with an end the run never reaches, so none of them fires
        trainer.extend(FailOnNonFinite())
        trainer.extend(LogReport(trigger=every_and_at_end(never, never)))
        trainer.extend(PlotReport(list(PLOT_KEYS), trigger=every_and_at_end(never, never)))
        trainer.extend(PrintReport(["epoch", "iteration", *KEYS], out=out))
        trainer.extend(ProgressBar(update_interval=BAR_EVERY, out=out, force=True))
        trainer.extend(Snapshot(), trigger=every_and_at_end(never, never))
        return trainer.run

    def raw_run(out: TextIO, folder: Path) -> Callable[[], None]:
        def run() -> None:
            sums, count, it = torch.zeros(len(KEYS)), 0, 0
            bar = tqdm(total=iterations, file=out)
            while it < iterations:
                for _ in range(64):
                    sums += torch.stack([v * 1 for v in one])
                    count += 1
                    it += 1
                    if it % BAR_EVERY == 0:
                        bar.update(BAR_EVERY)
                    if it >= iterations:
                        break
            bar.close()
        return run

    cost: dict[str, list[float]] = {"raw": [], "gankit": []}
    with open(os.devnull, "w") as null, tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, make in (("raw", raw_run), ("gankit", gankit_run)):
                run = make(null, Path(tmp, f"bare-{name}-{r}"))
                cpu = time.process_time()
                run()
                cost[name].append(1e6 * (time.process_time() - cpu) / iterations)
    raw, gk = statistics.median(cost["raw"]), statistics.median(cost["gankit"])
    print(f"\nbare loop (no step), CPU us per iteration, median of {rounds} x {iterations}: "
          f"raw bookkeeping {raw:.1f}, gankit Trainer + CLI extensions {gk:.1f}: "
          f"gankit adds {gk - raw:.1f} us per iteration")


def _short(path: str) -> str:
    marker = os.sep + "gankit" + os.sep
    return "gankit/" + path.split(marker, 1)[1] if marker in path else path


def main(argv: list[str] | None = None) -> int:
    global WORKLOAD
    parser = harness.parser(__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=WORKLOADS, default="ring8",
                        help="ring8: the 2-D step of gankit train's defaults; digits: DCGAN")
    parser.add_argument("--rounds", type=int, default=5, help="loop-only rounds")
    parser.add_argument("--iterations", type=int, default=500, help="steps per loop-only run")
    parser.add_argument("--process-rounds", type=int, default=3,
                        help="whole-process rounds (0: none)")
    parser.add_argument("--process-steps", type=int, default=2000)
    parser.add_argument("--log-every", type=int, default=None,
                        help="default: 250 (the CLI's 2-D default) for ring8, 50 for digits")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--profile", action="store_true", help="profile gankit's loop instead")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    WORKLOAD = args.workload
    log_every = args.log_every or LOG_EVERY[WORKLOAD]
    if args.child:
        child(args.child, args.process_steps, log_every, Path(args.out))
        return 0
    if "raw" not in args.variants:
        parser.error("the raw loop is the baseline; keep it in --variants.")
    warnings.filterwarnings("ignore")
    if args.profile:
        bare_cost(5000, 5)
        profile(args.iterations, log_every, top=25)
        return 0
    names = available(args.variants)
    start = time.perf_counter()
    loop: dict[tuple[str, str], list[float]] = {(v, c): [] for v in names for c in ("wall", "cpu")}
    proc: dict[tuple[str, str], list[float]] = {(v, c): [] for v in names for c in ("wall", "cpu")}
    with open(os.devnull, "w") as null, harness.out_dir(args.out) as tmp:
        for name in names:  # warm-up: lazy imports (matplotlib, the peers), first calls
            timed(name, 40, 20, null, Path(tmp, f"warm-{name}"))
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                wall, cpu = timed(name, args.iterations, log_every, null,
                                  Path(tmp, f"{name}-{r}"))
                loop[name, "wall"].append(args.iterations / wall)
                loop[name, "cpu"].append(args.iterations / cpu)
            if r == 0:
                same_work(names, [Path(tmp, f"{n}-0") for n in names])
            print(f"loop round {r + 1}/{args.rounds} steps/s wall/cpu: " + ", ".join(
                f"{n} {loop[n, 'wall'][-1]:.0f}/{loop[n, 'cpu'][-1]:.0f}" for n in names),
                file=sys.stderr, flush=True)
        for r in range(args.process_rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                wall, cpu = process_run(name, args.process_steps, log_every,
                                        Path(tmp, f"proc-{name}-{r}"))
                proc[name, "wall"].append(wall)
                proc[name, "cpu"].append(cpu)
            print(f"process round {r + 1}/{args.process_rounds} s wall/cpu: " + ", ".join(
                f"{n} {proc[n, 'wall'][-1]:.2f}/{proc[n, 'cpu'][-1]:.2f}" for n in names),
                file=sys.stderr, flush=True)
    rows = summarise(names, loop, proc)
    print(f"\n{DESCRIPTION[WORKLOAD]}, CPU, 1 thread; loop only: medians of {args.rounds} "
          f"rounds x {args.iterations} steps; whole process: medians of {args.process_rounds} "
          f"fresh processes x {args.process_steps} steps; log every {log_every}; "
          f"{time.perf_counter() - start:.0f} s in all")
    print("| variant | loop steps/s wall | ratio | loop steps/s CPU | ratio | us/step over raw "
          "(CPU) | per-round CPU ratio | process s wall | ratio | process s CPU | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, row in rows.items():
        cells = [f"{row['loop_wall']:.1f}", f"{row['loop_wall_ratio']:.3f}",
                 f"{row['loop_cpu']:.1f}", f"{row['loop_cpu_ratio']:.3f}",
                 f"{row['us_over_raw']:+.0f}", f"{row['paired_cpu_ratio']:.3f}"]
        if "process_wall" in row:
            cells += [f"{row['process_wall']:.2f}", f"{row['process_wall_ratio']:.3f}",
                      f"{row['process_cpu']:.2f}", f"{row['process_cpu_ratio']:.3f}"]
        else:
            cells += ["-"] * 4
        print(f"| {n} | " + " | ".join(cells) + " |")
    harness.write_json(args.json, {"workload": WORKLOAD, "rounds": args.rounds,
                                   "iterations": args.iterations, "log_every": log_every,
                                   "process_rounds": args.process_rounds,
                                   "process_steps": args.process_steps, "variants": rows})
    return 0


def summarise(names: list[str], loop: dict[tuple[str, str], list[float]],
              proc: dict[tuple[str, str], list[float]]) -> dict[str, dict[str, float]]:
    """Per variant: median loop speeds and their ratios to the raw loop's, the median of the
    per-round CPU ratios, and (when measured) the whole-process seconds and speed ratios."""
    lm = {k: statistics.median(v) for k, v in loop.items()}
    pm = {k: statistics.median(v) for k, v in proc.items() if v}
    rows = {}
    for n in names:
        # Each round ran the variants back to back under nearly the same load: the median of
        # the per-round ratios is the steadier figure on a shared machine.
        paired = statistics.median(a / b for a, b in zip(loop[n, "cpu"], loop["raw", "cpu"],
                                                         strict=True))
        row = {"loop_wall": lm[n, "wall"], "loop_wall_ratio": lm[n, "wall"] / lm["raw", "wall"],
               "loop_cpu": lm[n, "cpu"], "loop_cpu_ratio": lm[n, "cpu"] / lm["raw", "cpu"],
               "us_over_raw": 1e6 / lm[n, "cpu"] - 1e6 / lm["raw", "cpu"],
               "paired_cpu_ratio": paired}
        if pm:  # speeds (raw time / variant time), like the loop ratio
            row.update(process_wall=pm[n, "wall"],
                       process_wall_ratio=pm["raw", "wall"] / pm[n, "wall"],
                       process_cpu=pm[n, "cpu"],
                       process_cpu_ratio=pm["raw", "cpu"] / pm[n, "cpu"])
        rows[n] = row
    return rows


if __name__ == "__main__":
    sys.exit(main())
