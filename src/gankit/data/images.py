"""Decoding one image file with Pillow: what every image source (folders, zips, shards being
prepared, lazy readers) shares."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from gankit.errors import GankitError

__all__ = ["GRAY_MODES", "IMAGE_SUFFIXES", "PIL_ERRORS", "read_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
#: Pillow modes that hold one channel: a source made of these alone is loaded as grayscale
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
#: What Pillow raises on a file it cannot decode (UnidentifiedImageError is an OSError).
PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def read_image(f: Path | IO[bytes], mode: str, image_size: int | None,
                what: str | None = None) -> np.ndarray:
    """Decode one image (a path or an open file) to (H, W) or (H, W, 3) uint8."""
    try:
        with Image.open(f) as im:
            im = im.convert(mode)  # decodes the pixels; a truncated file fails here
            if image_size is not None:
                wd, ht = im.size
                s = min(wd, ht)
                left, top = (wd - s) // 2, (ht - s) // 2
                im = im.crop((left, top, left + s, top + s))
                if s != image_size:
                    im = im.resize((image_size, image_size), Image.Resampling.LANCZOS)
            return np.asarray(im, dtype=np.uint8)
    except PIL_ERRORS as e:
        raise GankitError(f"cannot read image '{what or f}' ({e}); delete or replace the "
                          f"file") from e
