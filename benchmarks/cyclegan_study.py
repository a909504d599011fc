"""Which CycleGAN settings keep the digit: short runs of variants over several seeds.

Trains ``gankit train --recipe cyclegan --data digits`` with each variant of the translator
(its stride-2 levels ``down`` and residual blocks) and of the CLI options, for a few seeds,
and prints for each run the share of held-out translations that an A-vs-B classifier judges
the target domain AND whose digit a digit classifier of the target domain agrees with the
source label (the figure of benchmarks/recipes_quality.py), both ways.

Run: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/cyclegan_study.py [--out DIR]
     [--iterations N] [--seeds 0,1,2] [--variants NAME,...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from gankit.cli import main
from gankit.cli.recipes.cyclegan import CycleGANRecipe
from gankit.cli.runs import load_run
from gankit.data import load_dataset
from gankit.data.domains import make_domains, transform_images
from gankit.gan.cyclegan import translate
from gankit.metrics.features import train_classifier

# name -> (recipe attributes, extra command-line options)
VARIANTS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "down1-b3": ({"down": 1, "n_blocks": 3}, []),
    "down0-b0": ({"down": 0, "n_blocks": 0}, []),
    "down0-b1": ({"down": 0, "n_blocks": 1}, []),
    "down0-b3": ({"down": 0, "n_blocks": 3}, []),
    "down0-b0-idt": ({"down": 0, "n_blocks": 0}, ["--weight", "identity=0.5"]),
    "down0-b1-idt": ({"down": 0, "n_blocks": 1}, ["--weight", "identity=0.5"]),
}


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])


def classifiers(out: Path, transform: str) -> dict[str, torch.nn.Module]:
    """A-vs-B classifier and the digit classifiers of both domains (cached under ``out``)."""
    path = out / f"classifiers_{transform}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    train, val = load_dataset("digits", "train"), load_dataset("digits", "val")
    td, vd = make_domains(train, transform), make_domains(val, transform)

    def ab(d: Any) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.cat([torch.zeros(len(d.a)), torch.ones(len(d.b))]).long()
        return torch.cat([d.a, d.b]), labels

    domain, acc = train_classifier(*ab(td), *ab(vd), n_classes=2, epochs=10)
    digits_a, acc_a = train_classifier(train.x, train.y, val.x, val.y, n_classes=10)
    digits_b, acc_b = train_classifier(transform_images(train.x, transform), train.y,
                                       transform_images(val.x, transform), val.y, n_classes=10)
    print(f"classifiers ({transform}): A vs B {acc:.3f}, digits of A {acc_a:.3f}, of B "
          f"{acc_b:.3f}")
    clfs = {"domain": domain, "a": digits_a, "b": digits_b}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(clfs, path)
    return clfs


def both(run: Path, clfs: dict[str, torch.nn.Module]) -> tuple[float, float]:
    """Shares of val A and val B translations judged the target domain with the digit kept."""
    _, recipe, trainer, _, _ = load_run(str(run), "cpu")
    d = make_domains(load_dataset("digits", "val"), recipe.transform)
    models = trainer.updater.raw_models
    out = []
    for net, x, domain, clf, labels in ((models["gen_ab"], d.a, 1, clfs["b"], d.a_labels),
                                        (models["gen_ba"], d.b, 0, clfs["a"], d.b_labels)):
        y = translate(net, x)
        ok = (predict(clfs["domain"], y) == domain) & (predict(clf, y) == labels)
        out.append(ok.float().mean().item())
    return out[0], out[1]


def run_main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/cyclegan_study")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--transform", default="invert")
    args = parser.parse_args()
    out = Path(args.out)
    clfs = classifiers(out, args.transform)
    seeds = [int(s) for s in args.seeds.split(",")]
    CycleGANRecipe.transform = args.transform
    print(f"{'variant':24} {'seed':>4} {'G(a) both':>9} {'F(b) both':>9} {'wall s':>7}")
    for name in args.variants.split(","):
        attrs, argv = VARIANTS[name]
        for key, value in {"down": 1, "n_blocks": 3, **attrs}.items():
            setattr(CycleGANRecipe, key, value)
        results = []
        for seed in seeds:
            run = out / args.transform / f"{name}_s{seed}_i{args.iterations}"
            start = time.perf_counter()
            if not (run / "config.json").exists():
                code = main(["train", "--recipe", "cyclegan", "--data", "digits", "--out",
                             str(run), "--quiet", "--seed", str(seed), "--iterations",
                             str(args.iterations), *argv])
                if code != 0:
                    raise SystemExit(f"training {name} seed {seed} failed")
            g, f = both(run, clfs)
            results.append(min(g, f))
            print(f"{name:24} {seed:4d} {g:9.3f} {f:9.3f} {time.perf_counter() - start:7.1f}",
                  flush=True)
        print(f"{name:24} worst seed, worse way: {min(results):.3f}", flush=True)


if __name__ == "__main__":
    run_main()
