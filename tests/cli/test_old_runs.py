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
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from gankit.cli import main

OLD = Path(__file__).parent.parent / "fixtures" / "old_runs"


def networks_digest(snapshot: Path) -> str:
    state = torch.load(snapshot, weights_only=True)
    h = hashlib.sha256()
    for net in sorted(state["updater"]["models"]):
        for key, t in sorted(state["updater"]["models"][net].items()):
            h.update(key.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", ["dcgan", "stylegan2"])
def test_a_run_from_before_terms_resumes_to_the_old_codes_numbers(tmp_path: Path,
                                                                  name: str) -> None:
    run = tmp_path / name
    shutil.copytree(OLD / name, run)
    assert main(["train", "--resume", str(run), "--iterations", "6", "--quiet"]) == 0
    want = json.loads((OLD / "iteration6_sha256.json").read_text())[name]
    assert networks_digest(run / "snapshot_iter_6.pt") == want
    state = torch.load(run / "snapshot_iter_6.pt", weights_only=True)["updater"]
    key = "dis/lecam" if name == "dcgan" else "gen/pl"
    assert key in state["terms"]  # the old state was read into the term and saved anew
