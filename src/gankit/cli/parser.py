"""The argument parser of ``gankit``: its subcommands, their options and value checks."""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn

import numpy as np

from gankit.cli.presets import PRESETS
from gankit.cli.terms import PENALTY_TERMS, TERM_OPTIONS
from gankit.gan.losses import LOSSES

_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$",
                              re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes "-1e-3" (and "-inf") for an option, not a value, and says "expected
        # one argument"; read every number as a value so that our checks name the problem.
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block; the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite, non-negative number")
    return value


def _weight(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return key, _number(value)


TRAIN_EPILOG = """\
a quick, cheap trial run:
  the held-out data is scored at every --sample-every and at the end; on a CPU one
  evaluation of 2,000 generated images by a large --arch takes minutes (each phase
  is timed on stderr and in the log as val_time/*). For a trial run, train a few
  iterations, evaluate only at the end and on fewer samples:
    gankit train --data shapes32 --iterations 20 --sample-every 1000 --eval-samples 200
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gankit", description="Train GANs and other multi-network setups.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a recipe on a data set",
                       argument_default=argparse.SUPPRESS, epilog=TRAIN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", help="TOML file of options (a [train] table or top-level keys)")
    t.add_argument("--resume", metavar="RUN",
                   help="continue the run in directory RUN (the original command with "
                        "--out RUN does the same)")
    t.add_argument("--data", help="digits | shapes32 | ring8 | grid25 | folder:PATH | npz:PATH "
                                  "(array x, labels y) | mnist-idx:DIR | stackedmnist:DIR | "
                                  "shards:PATH | zip:PATH")
    t.add_argument("--data-mode", help="auto | memory | lazy: decode a folder up front or per "
                                       "batch in the workers (auto: lazy above 1 GiB)")
    t.add_argument("--skip-corrupt", action="store_true",
                   help="skip (and count) corrupt files of a lazy source instead of stopping")
    t.add_argument("--recipe", help="dcgan | vaegan | cyclegan")
    t.add_argument("--arch", help="networks of the dcgan recipe: dcgan | resnet (SNGAN) | "
                                  "biggan | stylegan2 | r3gan, each with its paper's defaults")
    t.add_argument("--out", help="run directory (default runs/gankit)")
    t.add_argument("--epochs", type=_positive_int,
                   help="train for N passes over the data (default: the recipe's for the data)")
    t.add_argument("--iterations", type=_positive_int,
                   help="train for N updates instead of a number of epochs")
    t.add_argument("--batch-size", type=_positive_int,
                   help="samples per update (default: the recipe's for the data)")
    t.add_argument("--loss", help=" | ".join(LOSSES) + " (rpgan: relativistic pairing)")
    t.add_argument("--penalty", help=" | ".join(PENALTY_TERMS) + " (r1r2: R1 and R2, γ/2 each)")
    t.add_argument("--penalty-weight", type=_number, metavar="GAMMA",
                   help="weight of the discriminator's gradient penalty (default: the "
                        "recipe's)")
    t.add_argument("--penalty-every", type=_positive_int, metavar="N",
                   help="lazy regularisation: apply the penalty every N discriminator steps, "
                        "scaled by N")
    t.add_argument("--n-dis", type=_positive_int, help="discriminator steps per generator step")
    t.add_argument("--lr-gen", type=_number, metavar="LR",
                   help="the generator's Adam learning rate (VAE-GAN: the encoder's and "
                        "decoder's; default: the recipe's)")
    t.add_argument("--lr-dis", type=_number, metavar="LR",
                   help="the discriminator's Adam learning rate (default: the recipe's)")
    t.add_argument("--lr-decay", help="none | linear: decay the learning rates to 0 at the "
                                      "last iteration")
    t.add_argument("--lr-decay-start", type=_number, metavar="FRACTION",
                   help="fraction of the run at full rate before the linear decay (default 0)")
    t.add_argument("--lr-warmup", type=_non_negative_int, metavar="N",
                   help="ramp the learning rates up linearly over the first N iterations")
    t.add_argument("--beta1", type=_number, help="Adam's beta1, in [0, 1)")
    t.add_argument("--beta2", type=_number, help="Adam's beta2, in [0, 1)")
    t.add_argument("--z-dim", type=_positive_int, help="size of the generator's noise input")
    t.add_argument("--width", type=_positive_int, help="base channels / hidden units")
    t.add_argument("--norm", help="discriminator normalisation: batch | none | spectral | layer")
    t.add_argument("--ema", type=_number, help="EMA decay of the generator, reached through a ramp "
                        "min(decay, (1+t)/(10+t)) at update t (0: off)")
    t.add_argument("--preset", metavar="NAME",
                   help=f"a paper's recipe as one option: {', '.join(PRESETS)} (its values below "
                        "yours, its ramps of the learning rate, γ, beta2, the EMA half-life and "
                        "the augmentation probability over the run)")
    t.add_argument("--conditional", action="store_true", help="class-conditional networks")
    t.add_argument("--image-size", type=_positive_int, help="resize images to SIZE x SIZE")
    t.add_argument("--seed", type=_non_negative_int,
                   help="seed of the weights, the noise and the batch order (default 0)")
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    t.add_argument("--precision", help="fp32 | bf16 | fp16")
    t.add_argument("--compile", action="store_true", help="torch.compile the networks")
    t.add_argument("--workers", type=_non_negative_int, help="data loader worker processes")
    t.add_argument("--nproc", type=_positive_int,
                   help="training processes on this machine, started by torchrun's launcher "
                        "(--batch-size is per process)")
    t.add_argument("--max-restarts", type=_non_negative_int,
                   help="with --nproc: restart every process this many times after one fails "
                        "(each restart resumes from the newest snapshot)")
    t.add_argument("--log-every", help="N iterations or Ne epochs")
    t.add_argument("--sample-every", help="N iterations or Ne epochs")
    t.add_argument("--snapshot-every",
                   help="N iterations, Ne epochs, or wall-clock training time: 90s, 30m, 2h")
    t.add_argument("--keep-snapshots", type=_positive_int, metavar="K",
                   help="keep the newest K snapshots (default 3)")
    t.add_argument("--keep-samples", type=_positive_int, metavar="K",
                   help="keep the newest K sample grids in samples/ (default: all)")
    t.add_argument("--skip-nonfinite", action="store_true",
                   help="skip steps whose loss is NaN/Inf instead of stopping")
    t.add_argument("--augment", metavar="SPEC",
                   help="augment what D sees: none | diffaug[:color,translation,cutout] | "
                        "ada[:TARGET[:KIMG]] (adaptive; target 0.6, p 0->1 in 500k images)")
    for option in TERM_OPTIONS:
        t.add_argument(option.flag, type=_number, metavar="WEIGHT", help=option.help)
    t.add_argument("--train-fraction", type=_number, metavar="F",
                   help="train on a fixed, class-stratified fraction F of the training split")
    t.add_argument("--weight", dest="weights", type=_weight, action="append",
                   metavar="NAME=VALUE", help="a recipe's loss weight (repeatable)")
    t.add_argument("--quiet", action="store_true", help="no table, no progress bar")
    t.add_argument("--feature-net",
                   help="the evaluator's features: inception[:PATH] (FID Inception weights; "
                        "without PATH: GANKIT_INCEPTION_WEIGHTS, else gankit[inception]'s "
                        "file) or a network file")
    t.add_argument("--eval-samples", type=_int_at_least(2), metavar="N",
                   help="generated samples per evaluation, and at most N held-out ones "
                        "(default: 2000 images, 2500 points); fewer is faster and noisier")

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run", help="the run directory")
    s.add_argument("-n", type=_positive_int, default=64, help="number of samples")
    s.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the noise drawn (default 0)")
    s.add_argument("-o", "--output", required=True, help="out.npy (data range) or out.png")
    s.add_argument("--truncation", type=_number, metavar="PSI",
                   help="StyleGAN2's truncation: w = w_avg + PSI (w - w_avg) (default 1: off)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")

    e = sub.add_parser("eval", help="score a trained run (FID, KID, precision/recall, modes, IS)")
    e.add_argument("run", nargs="?", default=None, help="the run directory")
    e.add_argument("--metrics", default=None,
                   help="comma-separated: fid,kid,pr,modes,classes,is,stacked")
    e.add_argument("-n", type=_positive_int, default=None, help="samples to draw")
    e.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the generated samples and of the floor's subset (default 0)")
    e.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    e.add_argument("--feature-net", default=None,
                   help="inception:PATH (the FID Inception weights file; 'inception' reads "
                        "GANKIT_INCEPTION_WEIGHTS, else the file of gankit[inception], which "
                        "has no IS), or a TorchScript or torch.save'd module")
    e.add_argument("--resize", default=None, choices=("pytorch-fid", "tf1"),
                   help="how images reach Inception's 299x299 (default pytorch-fid)")
    e.add_argument("--ref-stats", default=None, metavar="NPZ",
                   help="score FID against these statistics (mu, sigma: pytorch-fid's layout)")
    e.add_argument("--save-stats", default=None, metavar="NPZ",
                   help="also write the held-out split's statistics (mu, sigma) to NPZ")
    e.add_argument("--compare", nargs=2, default=None, metavar=("A", "B"),
                   help="print two runs' scores side by side (only under one protocol)")

    p = sub.add_parser("prepare", help="decode an image folder once into an archive to train on")
    p.add_argument("src", help="the image folder")
    p.add_argument("-o", "--out", required=True, help="the archive to write (must not exist)")
    p.add_argument("--image-size", type=_positive_int, default=None,
                   help="center-crop and resize to SIZE x SIZE")
    p.add_argument("--workers", type=_positive_int, default=1, help="decoding processes")
    p.add_argument("--format", dest="fmt", default=None, choices=("shards", "zip"),
                   help="shards (a folder of uint8 .npy + index.json, fastest to read) or zip "
                        "(PNGs; the default for an output named *.zip, else shards)")
    p.add_argument("--quiet", action="store_true", help="no progress line")

    x = sub.add_parser("export", help="write a run's generator as a model file "
                                      "(.safetensors, or ONNX)")
    x.add_argument("run", help="the run directory")
    x.add_argument("-o", "--output", default=None,
                   help="FILE.safetensors or FILE.onnx (default: in the run directory, "
                        "generator_iter_N or best)")
    x.add_argument("--best", action="store_true",
                   help="the best model (best.safetensors: lowest held-out FID) instead of "
                        "the newest snapshot's generator")
    x.add_argument("--format", default=None, choices=("safetensors", "onnx"),
                   help="default: from the output's suffix, else safetensors; onnx needs "
                        "pip install 'gankit[onnx]'")
    x.add_argument("--device", default="cpu", help="where the generator is built (default cpu)")
    return parser
