"""SampleGrid: a PNG of model outputs at each trigger (an image grid or a 2D scatter)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from gankit.errors import GankitError
from gankit.extensions.ema import sampling_model
from gankit.gan.sampling import generate
from gankit.training.checkpoint import fault_point, write_atomic
from gankit.training.extension import PRIORITY_READER, Extension

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer
    from gankit.training.triggers import TriggerLike


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1,
               scale: int = 1) -> Image.Image:
    """Images in [-1, 1], shape (N, C, H, W), C in 1 or 3, tiled into one PIL image."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = pixels.permute(0, 2, 3, 1).numpy()
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top:top + h, left:left + w] = arr[i]
    img = Image.fromarray(grid[..., 0] if c == 1 else grid, "L" if c == 1 else "RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None,
                    scale: int = 1) -> None:
    buffer = io.BytesIO()
    image_grid(images, nrow, scale=scale).save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())


def save_scatter(points: torch.Tensor, path: str | Path, real: torch.Tensor | None = None,
                 title: str = "") -> None:
    """2D samples (orange) over real data (grey)."""
    # matplotlib is imported here, not at module level: it costs ~0.5 s to import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if real is not None:
        r = real.detach().float().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="0.6", alpha=0.5, label="real")
    p = points.detach().float().cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=2, c="tab:orange", alpha=0.6, label="generated")
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())


class SampleGrid(Extension):
    """Saves ``make_samples(trainer)`` to ``out/filename`` at each trigger.

    ``make_samples`` returns images (N, C, H, W) in [-1, 1], tiled into a grid, or points
    (N, 2), drawn as a scatter over ``real``. It runs under ``no_grad``; keep its inputs
    fixed (a seeded noise batch) so the pictures show training progress, not noise.
    ``keep`` bounds the folder: after each write only the newest ``keep`` files that this
    extension's ``filename`` pattern names are kept (``None``, the default, keeps all).
    """

    trigger: TriggerLike = (1, "epoch")
    priority = PRIORITY_READER
    name = "SampleGrid"

    def __init__(
        self,
        make_samples: Callable[[Trainer], torch.Tensor],
        filename: str = "samples/iter_{iteration:07d}.png",
        *,
        nrow: int | None = None,
        scale: int = 4,
        real: torch.Tensor | None = None,
        trigger: TriggerLike | None = None,
        keep: int | None = None,
    ) -> None:
        if trigger is not None:
            self.trigger = trigger
        if keep is not None and keep < 1:
            raise GankitError(f"keep must be at least 1 or None, got {keep}.")
        self.keep = keep
        self.make_samples = make_samples
        self.filename = filename
        self.nrow = nrow
        self.scale = scale
        self.real = real

    def __call__(self, trainer: Trainer) -> None:
        if not trainer.is_main_process:
            return
        with torch.no_grad():
            samples = self.make_samples(trainer)
        path = trainer.out / self.filename.format(iteration=trainer.updater.iteration)
        path.parent.mkdir(parents=True, exist_ok=True)
        if samples.dim() == 2:
            save_scatter(samples, path, self.real, f"iteration {trainer.updater.iteration}")
        else:
            save_image_grid(samples, path, self.nrow, self.scale)
        if self.keep is not None:
            self._prune(trainer.out, self.keep)

    def _prune(self, out: Path, keep: int) -> None:
        # The files this pattern names, by iteration: "samples/iter_{iteration:07d}.png".
        head, _, tail = self.filename.partition("{iteration")
        tail = tail.partition("}")[2]
        rel = Path(head + "0" + tail)
        prefix, suffix = Path(head).name if not head.endswith("/") else "", tail
        found = []
        for p in (out / rel.parent).glob(f"{prefix}*{suffix}"):
            middle = p.name[len(prefix):len(p.name) - len(suffix)]
            if middle.isdigit():
                found.append((int(middle), p))
        for _, p in sorted(found)[:-keep]:
            fault_point("unlink", p)
            p.unlink(missing_ok=True)


def fixed_noise_samples(n: int = 64, seed: int = 0,
                        source: str = "gen") -> Callable[[Trainer], torch.Tensor]:
    """For SampleGrid: the same ``n`` noise vectors every time, through the EMA if present."""

    def make(trainer: Trainer) -> torch.Tensor:
        gen = sampling_model(trainer, source)
        return generate(gen, n, seed=seed, device=trainer.updater.device)

    return make
