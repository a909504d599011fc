"""How well the VAE-GAN and CycleGAN recipes work on digits, with their default schedules.

Trains ``gankit train --recipe vaegan|cyclegan --data digits`` (or reuses finished runs) and
prints, each against a baseline measured in the same run:
- VAE-GAN: held-out reconstruction MSE of the trained model vs the same model untrained
  (its initial weights: same seed) and vs the best constant image (the training mean); how
  confidently a digit classifier recognises prior samples vs real held-out digits.
- CycleGAN: the share of translated held-out images that a classifier trained on the two
  domains assigns to the target domain (vs its accuracy on real held-out images), the share
  whose digit a digit classifier of the target domain agrees with the source label, and the
  share with both, against the identity map (keeps every digit, never the domain) and the
  exact transform (the ceiling); and the held-out cycle errors.

CycleGAN trains once per ``--seeds`` entry; the classifiers and baselines are shared.

Run: OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/recipes_quality.py [--out DIR]
     [--only vaegan|cyclegan] [--epochs N] [--reuse] [--seeds 0,1,2]
"""

from __future__ import annotations

import time
from pathlib import Path

import _harness as harness
import torch
import torch.nn.functional as F

from gankit.cli import main
from gankit.cli.runs import load_run, seed_everything
from gankit.data import load_dataset
from gankit.data.domains import make_domains, transform_images
from gankit.extensions.sample_grid import save_image_grid
from gankit.gan.cyclegan import translate
from gankit.gan.vaegan import reconstruct
from gankit.metrics.features import cached_classifier, train_classifier


def train(recipe: str, out: Path, epochs: int | None, reuse: bool, seed: int = 0) -> float:
    """Train (unless ``reuse`` and a finished run exists); the wall time in seconds."""
    if reuse and (out / "config.json").exists():
        return float("nan")
    argv = ["train", "--recipe", recipe, "--data", "digits", "--out", str(out), "--quiet",
            "--seed", str(seed)]
    if epochs:
        argv += ["--epochs", str(epochs)]
    start = time.perf_counter()
    if main(argv) != 0:
        raise SystemExit(f"training {recipe} failed")
    return time.perf_counter() - start


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(x[i:i + 500]).softmax(1) for i in range(0, len(x), 500)])


def digit_classifier(out: Path) -> torch.nn.Module:
    train, val = load_dataset("digits", "train"), load_dataset("digits", "val")
    model, acc = cached_classifier(train.x, train.y, val.x, val.y, n_classes=10,
                                   cache_dir=out / "cache")
    print(f"digit classifier: held-out accuracy {acc:.3f}")
    return model


def vaegan_figures(run: Path, digits: torch.nn.Module) -> None:
    cfg, recipe, trainer, train, _ = load_run(str(run), "cpu")
    val = load_dataset("digits", "val")
    models = trainer.updater.raw_models
    rec = F.mse_loss(reconstruct(models["enc"], models["dec"], val.x), val.x).item()
    seed_everything(cfg.run.seed)  # what the CLI does before building: the run's initial weights
    fresh = recipe.build(cfg, train).raw_models
    rec0 = F.mse_loss(reconstruct(fresh["enc"], fresh["dec"], val.x), val.x).item()
    rec_mean = F.mse_loss(train.x.mean(0, keepdim=True).expand_as(val.x), val.x).item()
    print(f"vaegan held-out reconstruction MSE ([-1, 1] pixels): trained {rec:.4f}, "
          f"untrained {rec0:.4f} ({rec0 / rec:.1f}x lower), mean image {rec_mean:.4f} "
          f"({rec_mean / rec:.1f}x lower)")
    samples = recipe.sample(trainer, 1000, seed=1)
    p_fake, p_real = predict(digits, samples), predict(digits, val.x)
    counts = torch.bincount(p_fake.argmax(1), minlength=10).tolist()
    print(f"vaegan prior samples: digit-classifier confidence {p_fake.max(1).values.mean():.3f} "
          f"(real held-out digits {p_real.max(1).values.mean():.3f}); "
          f"share with confidence > 0.9: {(p_fake.max(1).values > 0.9).float().mean():.3f} "
          f"(real {(p_real.max(1).values > 0.9).float().mean():.3f}); classes {counts}")
    x = val.x[:10]
    grid = torch.cat([x, reconstruct(models["enc"], models["dec"], x), samples[:80]])
    save_image_grid(grid, run / "quality_vaegan.png", nrow=10, scale=4)
    print(f"vaegan picture (held-out, reconstructions, 80 prior samples): "
          f"{run / 'quality_vaegan.png'}")


def cyclegan_figures(runs: dict[int, Path], digits: torch.nn.Module) -> None:
    """The figures of the CycleGAN runs ``{seed: run}`` (one recipe), the classifiers and
    the baselines measured once for all of them."""
    _, recipe, _, _, _ = load_run(str(next(iter(runs.values()))), "cpu")
    transform = recipe.transform
    train, val = load_dataset("digits", "train"), load_dataset("digits", "val")
    train_d, val_d = make_domains(train, transform), make_domains(val, transform)

    def ab(d):  # images of both domains, labelled 0 (A) and 1 (B)
        labels = torch.cat([torch.zeros(len(d.a)), torch.ones(len(d.b))]).long()
        return torch.cat([d.a, d.b]), labels

    domain_clf, acc = train_classifier(*ab(train_d), *ab(val_d), n_classes=2, epochs=10)
    # Whether a translation keeps its digit: a digit classifier of the target domain (trained
    # on the whole train split under the transform) against the source image's label.
    digits_b, acc_b = train_classifier(transform_images(train.x, transform), train.y,
                                       transform_images(val.x, transform), val.y,
                                       n_classes=10)
    print(f"cyclegan ({transform}) A-vs-B classifier: held-out accuracy on real images "
          f"{acc:.3f}; digit classifier of domain B: {acc_b:.3f}")

    def scores(to_b: torch.Tensor, to_a: torch.Tensor) -> tuple[float, ...]:
        """(judged B, kept digit, both) for translations of val A, then the same for val B."""
        out = []
        for x, domain, clf, labels in ((to_b, 1, digits_b, val_d.a_labels),
                                       (to_a, 0, digits, val_d.b_labels)):
            judged = predict(domain_clf, x).argmax(1) == domain
            kept = predict(clf, x).argmax(1) == labels
            out += [judged.float().mean().item(), kept.float().mean().item(),
                    (judged & kept).float().mean().item()]
        return tuple(out)

    rows = []
    translations = {}
    for seed, run in runs.items():
        _, _, trainer, _, _ = load_run(str(run), "cpu")
        models = trainer.updater.raw_models
        g, f = models["gen_ab"], models["gen_ba"]
        fake_b, fake_a = translate(g, val_d.a), translate(f, val_d.b)
        translations[seed] = (run, g, f, fake_b, fake_a)
        rows.append((f"CycleGAN, seed {seed}", scores(fake_b, fake_a)))
    rows += [
        ("baseline: identity map", scores(val_d.a, val_d.b)),
        ("ceiling: the exact transform", scores(transform_images(val_d.a, transform),
                                                transform_images(val_d.b, transform))),
    ]
    print(f"cyclegan translations of {len(val_d)} held-out images each way; 'both' = judged "
          "the target domain AND the digit kept:")
    print(f"{'':30} {'G(a) as B':>9} {'kept':>6} {'both':>6} | {'F(b) as A':>9} "
          f"{'kept':>6} {'both':>6}")
    for name, v in rows:
        print(f"{name:30} {v[0]:9.3f} {v[1]:6.3f} {v[2]:6.3f} | {v[3]:9.3f} {v[4]:6.3f} "
              f"{v[5]:6.3f}")
    worst = min(min(v[2], v[5]) for _, v in rows[:len(runs)])
    print(f"cyclegan worst 'both' over {len(runs)} seed(s) and the two ways: {worst:.3f}")
    for seed, (run, g, f, fake_b, fake_a) in translations.items():
        aba, bab = translate(f, fake_b), translate(g, fake_a)
        for name, rec, x in (("F(G(a)) vs a", aba, val_d.a), ("G(F(b)) vs b", bab, val_d.b)):
            print(f"cyclegan seed {seed} cycle error {name}: L1 {F.l1_loss(rec, x).item():.4f}, "
                  f"MSE {F.mse_loss(rec, x).item():.4f} (a blank image: L1 "
                  f"{F.l1_loss(torch.full_like(x, -1.0), x).item():.4f})")
        grid = torch.cat([val_d.a[:10], fake_b[:10], aba[:10],
                          transform_images(val_d.a[:10], transform)])
        save_image_grid(grid, run / "quality_cyclegan.png", nrow=10, scale=4)
        print(f"cyclegan seed {seed} picture (a, G(a), F(G(a)), the exact {transform} of a): "
              f"{run / 'quality_cyclegan.png'}")


def run_main() -> None:
    # CycleGAN seeds: seed 0 in OUT/cyclegan, seed S in OUT/cyclegan_seedS
    parser = harness.parser(__doc__.splitlines()[0], out_default="runs/bench_recipes",
                            seeds="1", json_out=False)
    parser.add_argument("--only", choices=("vaegan", "cyclegan"))
    parser.add_argument("--epochs", type=int, default=None, help="override the default")
    parser.add_argument("--reuse", action="store_true", help="measure finished runs again")
    args = parser.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    digits = digit_classifier(out)
    if args.only != "cyclegan":
        seconds = train("vaegan", out / "vaegan", args.epochs, args.reuse)
        print(f"== vaegan: trained in {seconds:.1f} s wall (nan: reused)")
        vaegan_figures(out / "vaegan", digits)
    if args.only != "vaegan":
        runs = {}
        for seed in args.seeds:
            run = out / ("cyclegan" if seed == 0 else f"cyclegan_seed{seed}")
            seconds = train("cyclegan", run, args.epochs, args.reuse, seed)
            print(f"== cyclegan seed {seed}: trained in {seconds:.1f} s wall (nan: reused)")
            runs[seed] = run
        cyclegan_figures(runs, digits)
    print(f"total wall time {time.perf_counter() - start:.1f} s; "
          f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    run_main()
