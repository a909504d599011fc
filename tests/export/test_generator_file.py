"""Generator files (gankit.export): every arch round-trips to a ready module, StyleGAN2
keeps its truncation, and a missing, truncated, damaged or foreign file is one GankitError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import gankit
from gankit import GankitError, load_generator
from gankit.export import (
    GeneratorInfo,
    GeneratorSpec,
    generator_bytes,
    generator_info,
    read_generator,
    save_generator,
)
from gankit.gan.sampling import generate

SPECS = {
    "mlp": GeneratorSpec("dcgan", (2,), 4, 8, norm="none"),
    "dcgan": GeneratorSpec("dcgan", (1, 8, 8), 8, 4, n_classes=10, norm="batch"),
    "resnet": GeneratorSpec("resnet", (3, 32, 32), 8, 4, norm="spectral"),
    "biggan": GeneratorSpec("biggan", (3, 32, 32), 8, 2, n_classes=4, norm="spectral"),
    "stylegan2": GeneratorSpec("stylegan2", (3, 16, 16), 8, 2, norm="none"),
}


def _trained_looking(spec: GeneratorSpec) -> torch.nn.Module:
    """A generator whose every tensor differs from a fresh build's (running stats, spectral
    norm's u and v, StyleGAN2's w_avg included), so a load that kept the init would show."""
    torch.manual_seed(1)
    gen = spec.build()
    with torch.no_grad():
        for t in gen.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.rand_like(t) * 0.1)
            else:
                t.add_(3)
    return gen


@pytest.mark.parametrize("name", list(SPECS))
def test_every_arch_round_trips_to_an_eval_module(tmp_path: Path, name: str) -> None:
    spec = SPECS[name]
    gen = _trained_looking(spec)
    path = tmp_path / "g.safetensors"
    info = GeneratorInfo(spec, {"kind": "points" if len(spec.shape) == 1 else "image",
                                "low": 0.0, "high": 16.0, "name": "x"},
                         run={"iteration": 7, "ema": True}, metrics={"val/fid": 3.5},
                         protocol={"feature_net": "f", "seed": 0})
    save_generator(path, gen, info)
    loaded = gankit.load_generator(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    got, want = loaded.state_dict(), gen.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert torch.equal(generate(loaded, 6, seed=2), generate(gen, 6, seed=2))
    back = generator_info(path)
    assert back.spec == spec and back.run == {"iteration": 7, "ema": True}
    assert back.metrics == {"val/fid": 3.5} and back.protocol == {"feature_net": "f", "seed": 0}
    assert back.data["high"] == 16.0 and back.gankit_version == gankit.__version__


def test_the_file_is_the_generator_alone(tmp_path: Path) -> None:
    gen = SPECS["biggan"].build()
    data = generator_bytes(gen, GeneratorInfo(SPECS["biggan"]))
    weights = sum(t.numel() * t.element_size() for t in gen.state_dict().values())
    assert weights < len(data) < weights + 64 * 1024  # the weights plus a header


def test_stylegan2_keeps_w_avg_and_truncates(tmp_path: Path) -> None:
    gen = _trained_looking(SPECS["stylegan2"]).eval()
    path = tmp_path / "g.safetensors"
    save_generator(path, gen, GeneratorInfo(SPECS["stylegan2"]))
    loaded = load_generator(path)
    assert torch.equal(loaded.w_avg, gen.w_avg) and bool(gen.w_avg.abs().sum() > 0)
    plain = generate(loaded, 4, seed=0)
    loaded.truncation_psi = gen.truncation_psi = 0.7
    truncated = generate(loaded, 4, seed=0)
    assert torch.equal(truncated, generate(gen, 4, seed=0))
    assert not torch.allclose(truncated, plain)


def test_a_spec_that_does_not_rebuild_the_weights_is_refused_and_nothing_written(
        tmp_path: Path) -> None:
    path = tmp_path / "g.safetensors"
    save_generator(path, SPECS["dcgan"].build(), GeneratorInfo(SPECS["dcgan"]))
    before = path.read_bytes()
    wrong = GeneratorSpec("dcgan", (1, 8, 8), 8, 16, n_classes=10)
    with pytest.raises(GankitError, match="does not match its description"):
        save_generator(path, SPECS["dcgan"].build(), GeneratorInfo(wrong))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "g.safetensors"]


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.safetensors"
    save_generator(path, _trained_looking(SPECS["dcgan"]), GeneratorInfo(SPECS["dcgan"]))
    return path


def _corrupted(good: Path, name: str, data: bytes) -> Path:
    path = good.with_name(name)
    path.write_bytes(data)
    return path


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match=r"generator file .*nope\.safetensors does not exist"):
        load_generator(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1])
def test_a_truncated_file_is_named_corrupt(good_file: Path, keep: int) -> None:
    data = good_file.read_bytes()
    path = _corrupted(good_file, "cut.safetensors", data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(GankitError, match=r"cut\.safetensors is corrupt \("):
        load_generator(path)


def test_a_flipped_tensor_byte_is_named_corrupt(good_file: Path) -> None:
    data = bytearray(good_file.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes: safetensors itself cannot tell
    path = _corrupted(good_file, "flip.safetensors", bytes(data))
    with pytest.raises(GankitError, match="do not match the digest stored with them"):
        load_generator(path)


def test_garbage_and_foreign_files_are_named(good_file: Path, tmp_path: Path) -> None:
    junk = _corrupted(good_file, "junk.safetensors", b"\xff" * 64)
    with pytest.raises(GankitError, match="is corrupt"):
        load_generator(junk)
    foreign = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(3)}, str(foreign))
    with pytest.raises(GankitError, match="is not a gankit generator file"):
        load_generator(foreign)


def test_damaged_metadata_and_a_newer_version_are_named(good_file: Path) -> None:
    info, tensors = read_generator(good_file)
    meta = info.metadata()
    from gankit.training.checkpoint import state_digest

    meta["sha256"] = state_digest(dict(sorted(tensors.items())))
    broken = {**meta, "generator": json.dumps({"arch": "dcgan"})}
    path = good_file.with_name("meta.safetensors")
    save_file(tensors, str(path), metadata=broken)
    with pytest.raises(GankitError, match="its metadata is incomplete"):
        load_generator(path)
    save_file(tensors, str(path), metadata={**meta, "version": "99"})
    with pytest.raises(GankitError, match="format version 99, newer than"):
        load_generator(path)


def test_the_onnx_form_of_the_modulated_conv_computes_the_same() -> None:
    from gankit.export.onnx import PerSampleModulatedConv2d
    from gankit.models.layers import ModulatedConv2d

    torch.manual_seed(0)
    for demodulate, up, k in [(True, False, 3), (True, True, 3), (False, False, 1)]:
        conv = ModulatedConv2d(6, 5, k, 8, demodulate=demodulate, up=up)
        with torch.no_grad():
            conv.affine.bias.add_(torch.randn_like(conv.affine.bias))
        x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 8)
        want, got = conv(x, w), PerSampleModulatedConv2d(conv)(x, w)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_building_and_loading_leave_the_global_rng_alone(tmp_path: Path) -> None:
    # BestModel checks its spec inside a training run, whose resume must stay bitwise.
    path = tmp_path / "g.safetensors"
    torch.manual_seed(5)
    before = torch.get_rng_state()
    save_generator(path, SPECS["resnet"].build(), GeneratorInfo(SPECS["resnet"]))
    load_generator(path)
    assert torch.equal(torch.get_rng_state(), before)
