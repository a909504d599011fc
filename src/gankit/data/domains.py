"""Two unpaired image domains cut from one data set, for image-to-image translation (CycleGAN).

Domain A is the images at even positions, unchanged; domain B is the images at odd positions,
transformed: their ink and paper swapped, say, or their strokes thickened. Those differ in
appearance, which CycleGAN learns; a geometric change (a quarter turn) it learns badly (the
figures are in benchmarks/RESULTS.md, 'Recipes: VAE-GAN and CycleGAN'). No source image
is in both domains, so a model cannot learn the mapping from pairs: it sees an ``a`` and an
unrelated ``b`` side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gankit.data.datasets import DataSource
from gankit.errors import GankitError

__all__ = ["DOMAIN_TRANSFORMS", "UnpairedDomains", "make_domains", "thicken",
           "transform_images"]

def thicken(x: Tensor) -> Tensor:
    """Strokes one pixel thicker: each pixel takes the most ink of itself and its four
    neighbours (a plus-shaped dilation; paper, -1, past the border), which keeps 8x8 digits
    apart where a 3x3 square dilation merges their strokes (docs/studies/cyclegan.md)."""
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    h, w = x.shape[-2:]
    shifts = [padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
              for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    return torch.stack(shifts).amax(0)


DOMAIN_TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    # A quarter turn counter-clockwise: the translation must move every pixel, so a
    # generator with a purely local receptive field cannot do it.
    "rot90": lambda x: torch.rot90(x, 1, dims=(-2, -1)),
    # Ink and paper swap: a per-pixel map, the easy case.
    "invert": lambda x: -x,
    # Bolder strokes: a local change, to be learnt from a 3x3 neighbourhood.
    "thicken": thicken,
    "flip": lambda x: torch.flip(x, dims=(-1,)),
}


def transform_images(x: Tensor, transform: str) -> Tensor:
    """``x`` (N, C, H, W) in [-1, 1] under the named transform of ``DOMAIN_TRANSFORMS``."""
    if transform not in DOMAIN_TRANSFORMS:
        raise GankitError(f"unknown domain transform {transform!r}; choose one of: "
                          f"{', '.join(DOMAIN_TRANSFORMS)}.")
    return DOMAIN_TRANSFORMS[transform](x).contiguous()


class UnpairedDomains(Dataset[Any]):
    """Images of domain A and of domain B, as ``(a, b)`` batches; ``a[i]`` and ``b[i]`` are
    different source images.

    ``len`` is the size of the smaller domain. ``__getitems__`` returns the batch already
    stacked, so pair it with ``gankit.data.make_loader`` (which uses ``collate_batched``).
    """

    def __init__(self, a: Tensor, b: Tensor, *, name: str = "", split: str = "all",
                 transform: str = "", a_labels: Tensor | None = None,
                 b_labels: Tensor | None = None) -> None:
        if a.dim() != 4 or b.dim() != 4 or a.shape[1:] != b.shape[1:]:
            raise GankitError(f"domains need images of one shape, got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")
        n = min(len(a), len(b))
        self.a, self.b = a[:n].float().contiguous(), b[:n].float().contiguous()
        self.a_labels = None if a_labels is None else a_labels[:n]
        self.b_labels = None if b_labels is None else b_labels[:n]
        self.name, self.split, self.transform = name, split, transform

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one image, e.g. ``(1, 8, 8)``."""
        return tuple(self.a.shape[1:])

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.a[i], self.b[i]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return self.a[idx], self.b[idx]

    def __repr__(self) -> str:
        return (f"UnpairedDomains({self.name!r}, split={self.split!r}, {len(self)} pairs of "
                f"{self.shape}, B = {self.transform}(A))")


def make_domains(data: DataSource, transform: str = "invert") -> UnpairedDomains:
    """Even-indexed images of ``data`` as domain A, odd-indexed ones transformed as domain B.

    The domains are held in memory: a lazily read source is read whole here.
    """
    if data.kind != "image":
        raise GankitError(f"data {data.name!r} holds points, not images; image-to-image "
                          "translation needs image data such as digits.")
    if len(data) < 2:
        raise GankitError(f"data {data.name!r} ({data.split}) has {len(data)} image(s); two "
                          "domains need at least two.")
    x = data.unit()  # the transforms ("invert": -x) work in [-1, 1]
    b = transform_images(x[1::2], transform)
    y = data.y
    return UnpairedDomains(
        x[0::2], b, name=data.name, split=data.split, transform=transform,
        a_labels=None if y is None else y[0::2], b_labels=None if y is None else y[1::2],
    )
