"""Run directories written before the GAN step became terms still resume, bit for bit.

tests/fixtures/old_runs holds two runs made by gankit at commit 84cd95f (before terms), at
iteration 4 of 6: a DCGAN with R1 and LeCam (whose anchors the old updater saved under
"lecam") and a StyleGAN2 with the path-length term (its mean under "path_length_mean").
iteration6_sha256.json holds the digest of their networks after the old code ran both to
iteration 6 uninterrupted. Made by, in a checkout of that commit:

    gankit train --data digits --iterations 4 --batch-size 8 --z-dim 4 --width 8 --seed 0 \\
        --sample-every 2 --snapshot-every 2 --keep-snapshots 1 --quiet --out OUT \\
        --lecam 0.1 --penalty r1 --penalty-weight 0.1
    gankit train --data digits --image-size 16 --arch stylegan2 --iterations 4 \\
        --batch-size 4 --z-dim 4 --width 8 --seed 0 --sample-every 2 --snapshot-every 2 \\
        --keep-snapshots 1 --quiet --out OUT --path-length 2

(and the same with --iterations 6 for the digests).

The DCGAN run must continue to the old code's digest. The StyleGAN2 digest no longer applies:
gankit's StyleGAN2 has since moved to the paper's resampling layout (the up-sampling
convolution as a stride-2 transposed convolution plus blur, the down-sampling one after the
blur at stride 2, zeros outside the image), which computes other numbers from the same
parameters. That run must still load (its parameters exactly the snapshot's), train on with
finite losses and continue bitwise: 4 -> 5 -> 6 equals 4 -> 6 under the current code.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import torch

from gankit.cli import main
from gankit.cli.runs import load_run

OLD = Path(__file__).parent.parent / "fixtures" / "old_runs"


def networks_digest(snapshot: Path) -> str:
    state = torch.load(snapshot, weights_only=True)
    h = hashlib.sha256()
    for net in sorted(state["updater"]["models"]):
        for key, t in sorted(state["updater"]["models"][net].items()):
            h.update(key.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def test_the_dcgan_run_from_before_terms_resumes_to_the_old_codes_numbers(
        tmp_path: Path) -> None:
    run = tmp_path / "dcgan"
    shutil.copytree(OLD / "dcgan", run)
    assert main(["train", "--resume", str(run), "--iterations", "6", "--quiet"]) == 0
    want = json.loads((OLD / "iteration6_sha256.json").read_text())["dcgan"]
    assert networks_digest(run / "snapshot_iter_6.pt") == want
    state = torch.load(run / "snapshot_iter_6.pt", weights_only=True)["updater"]
    assert "dis/lecam" in state["terms"]  # the old state was read into the term and saved anew


def test_the_stylegan2_run_from_before_terms_loads_and_resumes_bitwise(
        tmp_path: Path) -> None:
    old = torch.load(OLD / "stylegan2" / "snapshot_iter_4.pt", weights_only=True)["updater"]
    loaded = shutil.copytree(OLD / "stylegan2", tmp_path / "loaded")
    updater = load_run(str(loaded), device="cpu").trainer.updater
    assert updater.iteration == 4
    assert sorted(updater.raw_models) == sorted(old["models"])
    for net, module in updater.raw_models.items():
        state = module.state_dict()
        assert sorted(state) == sorted(old["models"][net])
        for key, t in state.items():
            assert torch.equal(t, old["models"][net][key]), f"{net}.{key}"

    straight = shutil.copytree(OLD / "stylegan2", tmp_path / "straight")
    assert main(["train", "--resume", str(straight), "--iterations", "6", "--quiet"]) == 0
    state = torch.load(straight / "snapshot_iter_6.pt", weights_only=True)["updater"]
    assert "gen/pl" in state["terms"]  # the old state was read into the term and saved anew
    logged = [json.loads(line) for line in (straight / "log.json").read_text().splitlines()]
    after = [r for r in logged if r["iteration"] > 4]
    assert after and all(math.isfinite(r[k]) for r in after
                         for k in ("gen/loss", "dis/loss", "gen/pl"))

    stepped = shutil.copytree(OLD / "stylegan2", tmp_path / "stepped")
    assert main(["train", "--resume", str(stepped), "--iterations", "5", "--snapshot-every",
                 "1", "--quiet"]) == 0
    assert main(["train", "--resume", str(stepped), "--iterations", "6", "--quiet"]) == 0
    assert networks_digest(stepped / "snapshot_iter_6.pt") == networks_digest(
        straight / "snapshot_iter_6.pt")
