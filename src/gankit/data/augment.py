"""Differentiable augmentations of what the discriminator sees: DiffAugment and ADA.

A discriminator trained on a few hundred images memorises them; augmenting every batch it
sees, real and fake alike and in the generator's step too, keeps it from doing so without
leaking the augmentation into the generator (the generator is only ever judged through the
same augmentation). Every transform here is built from differentiable tensor ops, so the
generator's gradient flows back through it.

Randomness comes from torch's global RNG on the images' device, which Trainer snapshots save,
and ADA's strength ``p`` is state saved through :meth:`Augment.state_dict`, so a resumed run
augments exactly as the uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError
from gankit.training.distributed import is_distributed

__all__ = ["ADA", "DIFFAUG_OPS", "Augment", "DiffAugment", "get_augment"]

#: the DiffAugment policies, in the order they are applied
DIFFAUG_OPS = ("color", "translation", "cutout")


class Augment:
    """The interface GANUpdater uses: call it on a batch; ADA also watches D's real outputs."""

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def observe(self, real_out: Tensor) -> None:
        """Called with the discriminator's outputs on (augmented) reals at each D step."""

    def stats(self) -> dict[str, Tensor]:
        """Values to report with the discriminator step (tensors: no host sync)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def _gate(n: int, p: float | Tensor, device: torch.device) -> Tensor:
    """A per-sample boolean mask, True with probability ``p``."""
    return torch.rand(n, device=device) < p


def _per_sample(x: Tensor, values: Tensor) -> Tensor:
    return values.reshape(-1, *([1] * (x.dim() - 1)))


# ------------------------------------------------------------------------------ DiffAugment
class DiffAugment(Augment):
    """DiffAugment (Zhao et al. 2020): colour, translation and cutout, in that order.

    ``color``: brightness (+U[-0.5, 0.5]), saturation (×U[0, 2] around the channel mean; a
    no-op on one channel) and contrast (×U[0.5, 1.5] around the image mean). ``translation``:
    an integer shift of up to 1/8 of each side, zero padded. ``cutout``: a zeroed square of
    half the side at a random position. Each op acts on a sample with probability ``p``
    (1 in the paper; 0 gives the identity).
    """

    def __init__(self, policy: Sequence[str] = DIFFAUG_OPS, *, p: float = 1.0,
                 translation: float = 0.125, cutout: float = 0.5) -> None:
        unknown = [op for op in policy if op not in DIFFAUG_OPS]
        if unknown or not policy:
            raise GankitError(f"DiffAugment policy must be a non-empty subset of "
                             f"{', '.join(DIFFAUG_OPS)}, got {list(policy)!r}.")
        if not 0 <= p <= 1:
            raise GankitError(f"p must be in [0, 1], got {p!r}.")
        self.policy = tuple(op for op in DIFFAUG_OPS if op in policy)
        self.p = p
        self.translation_ratio = translation
        self.cutout_ratio = cutout

    def __call__(self, x: Tensor) -> Tensor:
        for op in self.policy:
            x = getattr(self, op)(x)
        return x

    def color(self, x: Tensor) -> Tensor:
        n, dev, p = x.shape[0], x.device, self.p
        b = torch.where(_gate(n, p, dev), torch.rand(n, device=dev) - 0.5, 0.0)
        x = x + _per_sample(x, b).to(x.dtype)
        s = torch.where(_gate(n, p, dev), torch.rand(n, device=dev) * 2.0, 1.0)
        # x + (x - mean)·(s - 1), not (x - mean)·s + mean: exactly x where s is 1.
        mean = x.mean(dim=1, keepdim=True)
        x = x + (x - mean) * _per_sample(x, s - 1).to(x.dtype)
        c = torch.where(_gate(n, p, dev), torch.rand(n, device=dev) + 0.5, 1.0)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return x + (x - mean) * _per_sample(x, c - 1).to(x.dtype)

    def translation(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        dev, gate = x.device, _gate(n, self.p, x.device)
        sh, sw = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        ty = torch.randint(-sh, sh + 1, (n,), device=dev) * gate
        tx = torch.randint(-sw, sw + 1, (n,), device=dev) * gate
        # out[i, :, r, c] = x[i, :, r + ty, c + tx], zero where that falls outside: index into
        # a one-pixel zero border, clamping every outside index onto it.
        rows = (torch.arange(h, device=dev)[None, :] + ty[:, None]).clamp(-1, h) + 1
        cols = (torch.arange(w, device=dev)[None, :] + tx[:, None]).clamp(-1, w) + 1
        padded = F.pad(x, [1, 1, 1, 1])
        batch = torch.arange(n, device=dev)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2).contiguous()

    def cutout(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        dev, gate = x.device, _gate(n, self.p, x.device)
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        cy = torch.randint(0, h + (1 - ch % 2), (n,), device=dev) - ch // 2
        cx = torch.randint(0, w + (1 - cw % 2), (n,), device=dev) - cw // 2
        r = torch.arange(h, device=dev)[None, :] - cy[:, None]
        c = torch.arange(w, device=dev)[None, :] - cx[:, None]
        inside = ((r >= 0) & (r < ch))[:, :, None] & ((c >= 0) & (c < cw))[:, None, :]
        keep = ~(inside & gate[:, None, None])
        return x * keep[:, None].to(x.dtype)


# -------------------------------------------------------------------------------------- ADA
def _eye(n: int, size: int, device: torch.device) -> Tensor:
    return torch.eye(size, device=device).expand(n, size, size).clone()


def _mat2(rows: list[list[Tensor | float]], n: int, device: torch.device) -> Tensor:
    """A batch of matrices from rows of per-sample tensors or constants."""
    cols = [torch.stack([torch.as_tensor(v, device=device, dtype=torch.float32).expand(n)
                         for v in row], dim=-1) for row in rows]
    return torch.stack(cols, dim=-2)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    n, d = tx.shape[0], tx.device
    return _mat2([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n, d)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    n, d = sx.shape[0], sx.device
    return _mat2([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n, d)


def _rotate2d(theta: Tensor) -> Tensor:
    n, d = theta.shape[0], theta.device
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat2([[c, -s, 0], [s, c, 0], [0, 0, 1]], n, d)


class ADA(Augment):
    """Adaptive discriminator augmentation (Karras et al. 2020), its 'bgc' pipeline.

    Geometric (one affine warp per sample, ``grid_sample`` with reflection padding): x-flip,
    90-degree rotation, integer translation (±1/8 of the side), isotropic scaling (log2-normal,
    σ 0.2), arbitrary rotation (twice, each with probability 1 - sqrt(1 - p)), anisotropic
    scaling, fractional translation (σ 1/8). Colour (one affine colour map per sample):
    brightness (+N(0, 0.2)), contrast (×log2-normal σ 0.5), luma flip, hue rotation (U[-π, π]
    about the grey axis), saturation (×log2-normal σ 1). Each is applied to a sample with
    probability ``p``. Images with one channel get the grey part of the colour map
    (brightness, contrast, luma flip; hue and saturation leave grey unchanged); other
    channel counts get that too.

    ``p`` starts at ``p`` and, every ``interval`` discriminator steps, moves by
    ``sign(r_t - target) · batch · interval / (kimg · 1000)`` where ``r_t = E[sign(D(real))]``
    over those steps: the paper's speed lets ``p`` go from 0 to 1 in ``kimg`` thousand real
    images. ``p`` is a tensor on the images' device, so adjusting it never syncs the host.
    ``target=None`` keeps ``p`` where it is set (no adaptation): the pipeline at a fixed or
    scheduled probability (``ScheduleHyperparameters({"augment.p": ...})``, as R3GAN does).
    """

    def __init__(self, target: float | None = 0.6, *, p: float = 0.0, interval: int = 4,
                 kimg: float = 500.0, geometric: bool = True, color: bool = True) -> None:
        if target is not None and not 0 < target < 1:
            raise GankitError(f"ADA target must be in (0, 1), got {target!r}.")
        if not 0 <= p <= 1:
            raise GankitError(f"p must be in [0, 1], got {p!r}.")
        if interval < 1 or kimg <= 0:
            raise GankitError("interval must be at least 1 and kimg positive.")
        self.target = target
        self.interval = interval
        self.kimg = kimg
        self.geometric = geometric
        self.color = color
        self.p = torch.tensor(float(p))
        self.rt = torch.tensor(0.0)
        self._sign_sum = torch.tensor(0.0)
        self._count = 0  # reals observed since the last adjustment
        self._steps = 0  # observations since the last adjustment

    # --------------------------------------------------------------------- adaptation
    def _on(self, device: torch.device) -> None:
        if self.p.device != device:
            self.p, self.rt = self.p.to(device), self.rt.to(device)
            self._sign_sum = self._sign_sum.to(device)

    def observe(self, real_out: Tensor) -> None:
        if self.target is None:
            return
        out = real_out.detach().float()
        self._on(out.device)
        self._sign_sum = self._sign_sum + out.sign().sum()
        self._count += out.numel()
        self._steps += 1
        if self._steps >= self.interval:
            # Under torch.distributed every rank adds its reals, so all ranks share one p that
            # moves at the paper's speed per image of the global batch.
            stat = torch.stack([self._sign_sum, torch.full_like(self._sign_sum, self._count)])
            if is_distributed():
                dist.all_reduce(stat)
            self.rt = stat[0] / stat[1]
            adjust = torch.sign(self.rt - self.target) * stat[1] / (self.kimg * 1000)
            self.p = (self.p + adjust).clamp(0.0, 1.0)
            self._sign_sum = torch.zeros_like(self._sign_sum)
            self._count = self._steps = 0

    def stats(self) -> dict[str, Tensor]:
        return {"aug/p": self.p, "aug/rt": self.rt}

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p.clone(), "rt": self.rt.clone(), "sign_sum": self._sign_sum.clone(),
                "count": self._count, "steps": self._steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        device = self.p.device
        self.p = state["p"].to(device).clone()
        self.rt = state["rt"].to(device).clone()
        self._sign_sum = state["sign_sum"].to(device).clone()
        self._count, self._steps = int(state["count"]), int(state["steps"])

    # -------------------------------------------------------------------- the pipeline
    def __call__(self, x: Tensor) -> Tensor:
        self._on(x.device)
        if self.geometric:
            x = self._geometric(x)
        if self.color:
            x = self._color(x)
        return x

    def _geometric(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        dev, p = x.device, self.p
        any_on = torch.zeros(n, dtype=torch.bool, device=dev)

        def gated(values: Tensor, identity: float, prob: Tensor = p) -> Tensor:
            nonlocal any_on
            on = _gate(n, prob, dev)
            any_on = any_on | on
            return torch.where(on, values, torch.full_like(values, identity))

        # The matrices map output pixels to input pixels, in pixel units about the centre.
        g = _eye(n, 3, dev)
        flip = gated(torch.randint(2, (n,), device=dev).float(), 0.0)
        g = g @ _scale2d(1 - 2 * flip, torch.ones_like(flip))
        quarter = gated(torch.randint(4, (n,), device=dev).float(), 0.0)
        g = g @ _rotate2d(-math.pi / 2 * quarter)
        on = _gate(n, p, dev)
        any_on = any_on | on
        t = (torch.rand(n, 2, device=dev) * 2 - 1) * 0.125 * on[:, None]
        g = g @ _translate2d(torch.round(t[:, 0] * w), torch.round(t[:, 1] * h))
        s = gated(torch.exp2(torch.randn(n, device=dev) * 0.2), 1.0)
        g = g @ _scale2d(s, s)
        p_rot = 1 - torch.sqrt((1 - p).clamp(0.0, 1.0))
        theta = gated((torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0, p_rot)
        g = g @ _rotate2d(-theta)
        s = gated(torch.exp2(torch.randn(n, device=dev) * 0.2), 1.0)
        g = g @ _scale2d(s, 1 / s)
        theta = gated((torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0, p_rot)
        g = g @ _rotate2d(-theta)
        on = _gate(n, p, dev)
        any_on = any_on | on
        t = torch.randn(n, 2, device=dev) * 0.125 * on[:, None]
        g = g @ _translate2d(t[:, 0] * w, t[:, 1] * h)

        # To grid_sample's normalised coordinates: theta = P^-1 G P, P = diag(w/2, h/2, 1).
        to_px = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=dev))
        to_norm = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=dev))
        theta_n = (to_norm @ g @ to_px)[:, :2, :].to(x.dtype)
        grid = F.affine_grid(theta_n, list(x.shape), align_corners=False)
        warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                               align_corners=False)
        # Samples no transform touched stay bit-for-bit themselves (p = 0 is the identity).
        return torch.where(_per_sample(x, any_on), warped, x)

    def _color(self, x: Tensor) -> Tensor:
        n, c = x.shape[:2]
        dev, p = x.device, self.p
        v = torch.full((3,), 1 / math.sqrt(3), device=dev)
        vv = torch.outer(v, v).expand(n, 3, 3)
        eye3 = _eye(n, 3, dev)
        m = _eye(n, 4, dev)

        def affine(lin: Tensor, off: Tensor | None = None) -> Tensor:
            out = _eye(n, 4, dev)
            out[:, :3, :3] = lin
            if off is not None:
                out[:, :3, 3] = off[:, None].expand(n, 3)
            return out

        gates = [_gate(n, p, dev) for _ in range(5)]
        b = torch.randn(n, device=dev) * 0.2 * gates[0]
        m = affine(eye3, b) @ m
        k = torch.where(gates[1], torch.exp2(torch.randn(n, device=dev) * 0.5), 1.0)
        m = affine(eye3 * k[:, None, None]) @ m
        flip = torch.randint(2, (n,), device=dev).float() * gates[2]
        m = affine(eye3 - 2 * vv * flip[:, None, None]) @ m
        theta = (torch.rand(n, device=dev) * 2 - 1) * math.pi * gates[3]
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        cross = torch.tensor([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]],
                             device=dev)
        m = affine(cos * eye3 + sin * cross + (1 - cos) * vv) @ m  # Rodrigues, about grey
        s = torch.where(gates[4], torch.exp2(torch.randn(n, device=dev)), 1.0)
        m = affine(vv + (eye3 - vv) * s[:, None, None]) @ m
        m = m.to(x.dtype)
        if c == 3:
            out = torch.einsum("nij,njhw->nihw", m[:, :3, :3], x) + m[:, :3, 3, None, None]
        else:
            # Grey images: what the map does to a grey pixel (r = g = b): a gain and an offset.
            grey = m[:, :3, :].mean(dim=1)
            gain, offset = grey[:, :3].sum(dim=1), grey[:, 3]
            out = x * _per_sample(x, gain) + _per_sample(x, offset)
        any_on = torch.stack(gates).any(dim=0)
        return torch.where(_per_sample(x, any_on), out, x)


def get_augment(spec: str) -> Augment | None:
    """``none``, ``diffaug[:color,translation,cutout]``, ``ada[:TARGET[:KIMG]]`` or
    ``ada:fixed`` -> an Augment.

    ``KIMG`` (default 500, the paper's) is ADA's speed: thousands of real images for p to go
    from 0 to 1; short runs need a smaller one for p to move at all. ``ada:fixed`` is ADA's
    pipeline with p held where it is set (0 until a schedule sets it).

    Raises GankitError naming the bad part (the words are the spec's, not a flag's).
    """
    kind, sep, arg = spec.strip().partition(":")
    if kind == "none" and not sep:
        return None
    if kind == "diffaug":
        ops = [o.strip() for o in arg.split(",") if o.strip()] if sep else list(DIFFAUG_OPS)
        bad = [o for o in ops if o not in DIFFAUG_OPS]
        if bad or not ops:
            raise GankitError(f"augmentation {spec!r}: DiffAugment ops are "
                              f"{','.join(DIFFAUG_OPS)} (comma-separated), got {arg!r}")
        return DiffAugment(ops)
    if kind == "ada" and arg == "fixed":
        return ADA(None)
    if kind == "ada":
        target, kimg = 0.6, 500.0
        if sep:
            first, sep2, second = arg.partition(":")
            target = _float_or_nan(first)
            if not 0 < target < 1:
                raise GankitError(f"augmentation {spec!r}: the ADA target must be a number in "
                                  "(0, 1), e.g. ada:0.6")
            if sep2:
                kimg = _float_or_nan(second)
                if not (kimg > 0 and math.isfinite(kimg)):
                    raise GankitError(f"augmentation {spec!r}: ADA's speed (thousands of real "
                                      "images for p to go 0 -> 1) must be positive, e.g. "
                                      "ada:0.6:500")
        return ADA(target, kimg=kimg)
    raise GankitError(f"augmentation {spec!r} is not none, diffaug[:OPS], ada[:TARGET[:KIMG]] "
                      "or ada:fixed")


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
