"""Property: any combination of option values trains one iteration or exits 2 with a message."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankit import cli

NUMBERS = st.one_of(st.integers(-3, 3).map(str), st.sampled_from(
    ["0.5", "-0.5", "nan", "inf", "1e400", "abc", "", "1e-4", "0"]))
OPTIONS = {
    "--data": st.sampled_from(["digits", "ring8", "grid25", "nope", "folder:/nowhere", "npz:"]),
    "--loss": st.sampled_from(["ns", "hinge", "wgan", "lsgan", "minimax", "bogus"]),
    "--penalty": st.sampled_from(["none", "r1", "r2", "gp", "r3"]),
    "--batch-size": st.sampled_from(["1", "2", "16", "0", "-8", "999999", "x"]),
    "--lr-gen": NUMBERS,
    "--lr-dis": NUMBERS,
    "--beta1": NUMBERS,
    "--n-dis": NUMBERS,
    "--penalty-weight": NUMBERS,
    "--ema": NUMBERS,
    "--z-dim": NUMBERS,
    "--norm": st.sampled_from(["batch", "none", "spectral", "layer", "weird"]),
    "--log-every": st.sampled_from(["1", "1e", "0", "x", "-2"]),
    "--precision": st.sampled_from(["fp32", "bf16", "fp64"]),
    "--recipe": st.sampled_from(["dcgan", "dcgan", "nope"]),
    "--augment": st.sampled_from(["none", "diffaug", "diffaug:cutout", "ada", "ada:0.6:5",
                                  "bogus", "ada:2", "diffaug:flip"]),
    "--lecam": NUMBERS,
    "--bcr": NUMBERS,
    "--train-fraction": NUMBERS,
}


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=OPTIONS))
def test_every_option_combination_trains_or_exits_2(capsys: pytest.CaptureFixture[str],
                                                    options: dict[str, str]) -> None:
    out = Path(tempfile.mkdtemp(prefix="gankit-prop-")) / "run"
    argv = ["train", "--iterations", "1", "--width", "4", "--quiet", "--out", str(out)]
    for flag, value in options.items():
        argv += [flag, value]
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse rejected a value before main's body ran
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "error" in lines[0], (argv, err)
    assert "Traceback" not in err
