"""shapes32: coloured shapes on textured backgrounds, 32x32 RGB, generated (never downloaded).

Four shapes (circle, square, triangle, cross) in four colours (red, green, blue, yellow) make
16 labelled classes, ``label = 4 * shape + colour``. Each image draws its shape's centre,
size and rotation, its colour's exact shade, and a background of two random sinusoidal
gratings plus pixel noise in a muted tint, all from a fixed seed: every machine makes the same
images, bit for bit. Shapes are drawn at 64x64 and averaged down to 32x32, so edges are
anti-aliased. The split is fixed too: "train" and "val" come from separate seeds, with
``SHAPES_TRAIN_PER_CLASS`` and ``SHAPES_VAL_PER_CLASS`` images of every class.

The point of it: the RGB networks (``--arch resnet|biggan|stylegan2``) have data to learn from
on any machine, with labels, so the feature classifier scores it like the digits.
"""

from __future__ import annotations

from functools import cache
from typing import cast

import numpy as np
import torch

from gankit.data.datasets import ArrayDataset, check_split, resize_images, uint8_to_unit

__all__ = ["SHAPES", "SHAPES_COLOURS", "SHAPES_TRAIN_PER_CLASS", "SHAPES_VAL_PER_CLASS",
           "load_shapes32"]

SHAPES = ("circle", "square", "triangle", "cross")
SHAPES_COLOURS = {"red": (220, 45, 40), "green": (40, 190, 60), "blue": (45, 80, 230),
                  "yellow": (235, 215, 40)}
SHAPES_TRAIN_PER_CLASS = 250
SHAPES_VAL_PER_CLASS = 50
SHAPES_SEED = 3232
_SIDE, _SUPER = 32, 2  # drawn at 64x64, averaged down


def _masks(kind: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray,
           theta: np.ndarray) -> np.ndarray:
    """(N, 64, 64) float coverage of each image's shape at the super-sampled resolution."""
    s = _SIDE * _SUPER
    grid = (np.arange(s) + 0.5) / _SUPER  # pixel centres in 32x32 units
    x = grid[None, None, :] - cx[:, None, None]
    y = grid[None, :, None] - cy[:, None, None]
    c, sn = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u, v = c * x + sn * y, -sn * x + c * y  # coordinates in the shape's rotated frame
    rr = r[:, None, None]
    circle = x * x + y * y <= rr * rr
    square = (np.abs(u) <= 0.8 * rr) & (np.abs(v) <= 0.8 * rr)
    # An equilateral triangle of circumradius r: inside three half-planes at distance r/2.
    triangle = np.ones_like(circle)
    for k in range(3):
        a = np.pi / 2 + 2 * np.pi * k / 3
        triangle &= u * np.cos(a) + v * np.sin(a) <= 0.5 * rr
    arm = rr / 3
    cross = ((np.abs(u) <= rr) & (np.abs(v) <= arm)) | ((np.abs(v) <= rr) & (np.abs(u) <= arm))
    kinds = kind[:, None, None]
    mask = np.where(kinds == 0, circle,
                    np.where(kinds == 1, square, np.where(kinds == 2, triangle, cross)))
    return cast(np.ndarray, mask.astype(np.float32))


def _draw(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 images (N, 3, 32, 32) for ``labels``, every random draw taken from ``rng``."""
    n = len(labels)
    kind, colour = labels // len(SHAPES_COLOURS), labels % len(SHAPES_COLOURS)
    r = rng.uniform(7.0, 11.0, n)
    cx = rng.uniform(r + 1.0, _SIDE - r - 1.0)
    cy = rng.uniform(r + 1.0, _SIDE - r - 1.0)
    theta = rng.uniform(0.0, 2 * np.pi, n)
    # Background: a muted tint, two gratings of random frequency and direction, pixel noise.
    grid = np.arange(_SIDE, dtype=np.float32)
    base = rng.uniform(70, 150, (n, 1, 1, 1)) + rng.uniform(-15, 15, (n, 3, 1, 1))
    texture = np.zeros((n, 1, _SIDE, _SIDE), np.float32)
    for _ in range(2):
        freq = rng.uniform(0.15, 0.9, n)[:, None, None, None]
        ang = rng.uniform(0, np.pi, n)[:, None, None, None]
        phase = rng.uniform(0, 2 * np.pi, n)[:, None, None, None]
        amp = rng.uniform(8, 22, n)[:, None, None, None]
        proj = np.cos(ang) * grid[None, None, None, :] + np.sin(ang) * grid[None, None, :, None]
        texture += amp * np.sin(freq * proj + phase)
    background = base + texture + rng.normal(0, 6, (n, 3, _SIDE, _SIDE))
    palette = np.array(list(SHAPES_COLOURS.values()), np.float32)
    shade = palette[colour][:, :, None, None] * rng.uniform(0.85, 1.0, (n, 1, 1, 1))
    fine = _masks(kind, cx, cy, r, theta)
    cover = fine.reshape(n, _SIDE, _SUPER, _SIDE, _SUPER).mean(axis=(2, 4))[:, None]
    img = background * (1 - cover) + shade * cover
    return cast(np.ndarray, np.clip(np.rint(img), 0, 255).astype(np.uint8))


@cache
def _shapes_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    per_class = SHAPES_TRAIN_PER_CLASS if split == "train" else SHAPES_VAL_PER_CLASS
    n_classes = len(SHAPES) * len(SHAPES_COLOURS)
    # Separate streams for the two splits: neither moves when the other's size changes.
    seq = np.random.SeedSequence(SHAPES_SEED).spawn(2)[0 if split == "train" else 1]
    rng = np.random.default_rng(seq)
    labels = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    images = np.concatenate([_draw(labels[i:i + 500], rng) for i in range(0, len(labels), 500)])
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_shapes32(split: str = "train", *, image_size: int | None = None) -> ArrayDataset:
    """shapes32 as ``(N, 3, 32, 32)`` images in [-1, 1] (or ``image_size`` square), labelled:
    4,000 train / 800 val, balanced over the 16 classes (the "all" split is both)."""
    check_split(split)
    parts = ("train", "val") if split == "all" else (split,)
    images = np.concatenate([_shapes_arrays(p)[0] for p in parts])
    labels = np.concatenate([_shapes_arrays(p)[1] for p in parts])
    return ArrayDataset(
        x=resize_images(uint8_to_unit(images), image_size),
        y=torch.from_numpy(labels.astype(np.int64)),
        kind="image",
        name="shapes32",
        n_classes=len(SHAPES) * len(SHAPES_COLOURS),
        low=0.0,
        high=255.0,
        split=split,
    )
