"""The command line's defaults train the same numbers as gankit did before the GAN step became
terms and TrainConfig was grouped (issue 23: behaviour unchanged where not named).

The pinned values are the last log line of each command below as gankit at commit 84cd95f
(the last commit before that work) printed it, with OMP_NUM_THREADS=1 on the CPU:

    gankit train --data digits --iterations 8 --log-every 8 --seed 0 --quiet --out OUT
    gankit train --data ring8 --iterations 60 --log-every 60 --seed 0 --quiet --out OUT

(short runs of the image and the 2-D defaults: DCGAN with EMA; MLPs with R1, the linear
learning-rate decay and EMA). The training keys only: the evaluation's keys have since
changed on purpose (val_time/*). A change that alters them on purpose updates them here and
says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gankit.cli import main

PINNED = {
    "digits": (["--iterations", "8", "--log-every", "8"], {
        "dis/fake": 0.03243670612573624, "dis/loss": 1.1818591356277466,
        "dis/real": 0.5526307821273804, "gen/loss": 0.6975383758544922,
    }),
    "ring8": (["--iterations", "60", "--log-every", "60"], {
        "dis/fake": -0.020589691400527955, "dis/loss": 1.3640384674072266,
        "dis/lr": 0.0007416666666666671, "dis/r1": 0.046145296096801756,
        "dis/real": 0.029698652029037476, "gen/loss": 0.7165756225585938,
        "gen/lr": 0.0007416666666666671,
    }),
}


@pytest.mark.parametrize("data", sorted(PINNED))
def test_the_defaults_end_on_the_same_training_numbers(data: str, tmp_path: Path) -> None:
    length, want = PINNED[data]
    out = tmp_path / data
    assert main(["train", "--data", data, *length, "--seed", "0", "--quiet",
                 "--out", str(out)]) == 0
    last = json.loads((out / "log.json").read_text().splitlines()[-1])
    assert {k: last[k] for k in want} == pytest.approx(want, rel=1e-6)
