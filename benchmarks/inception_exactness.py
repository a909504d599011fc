"""gankit's FID Inception against torch-fidelity's, with the same random weights.

    pip install --no-deps --target .test-deps torch-fidelity==0.4.0
    PYTHONPATH=src python benchmarks/inception_exactness.py

Prints the largest absolute difference at the resize step, the 2048-d pool features and the
1008 logits (the tests assert 1e-4), and the seconds per image of each implementation.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "metrics"))
from test_inception import _torch_fidelity, _uint8, random_inception_state

from gankit.metrics.inception import load_inception


def main() -> None:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.pth"
        torch.save(random_inception_state(), path)
        ref = _torch_fidelity("feature_extractor_inceptionv3").FeatureExtractorInceptionV3(
            "ref", ["2048", "logits"], feature_extractor_weights_path=str(path))
        ours = load_inception(path, resize="tf1", sha256_prefix=None)
    interp = _torch_fidelity("interpolate_compat_tensorflow")
    images = torch.randint(0, 256, (8, 3, 32, 32)).float() / 127.5 - 1
    with torch.no_grad():
        start = time.perf_counter()
        pool_ref, logits_ref = ref(_uint8(images))
        t_ref = (time.perf_counter() - start) / len(images)
        start = time.perf_counter()
        pool = ours(images)
        t_ours = (time.perf_counter() - start) / len(images)
        logits = ours.fc(pool)
        resized_ref = (interp.interpolate_bilinear_2d_like_tensorflow1x(
            _uint8(images).float(), size=(299, 299), align_corners=False) - 128) / 128
    print(f"8 random 32x32 images, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"max |diff| resize step  {(ours.prepare(images) - resized_ref).abs().max():.3g}")
    print(f"max |diff| pool 2048    {(pool - pool_ref).abs().max():.3g} "
          f"(features up to {pool_ref.abs().max():.3g})")
    print(f"max |diff| logits 1008  {(logits - logits_ref).abs().max():.3g}")
    print(f"seconds per image       gankit {t_ours:.3f}, torch-fidelity {t_ref:.3f} "
          f"(ratio {t_ours / t_ref:.2f})")


if __name__ == "__main__":
    main()
