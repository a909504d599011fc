"""eval_mode: eval for every submodule inside, each submodule's own mode restored after."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.gan import generate, reconstruct, translate
from gankit.training import eval_mode


def _frozen_bn_model() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    model[1].eval()  # a frozen BatchNorm inside a training model
    return model


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_every_submodule_is_in_eval_mode_inside_and_keeps_its_mode_after():
    model, other = _frozen_bn_model(), nn.Sequential(nn.Linear(2, 2)).eval()
    before = _modes(model), _modes(other)
    with eval_mode(model, other):
        assert not any(_modes(model)) and not any(_modes(other))
    assert (_modes(model), _modes(other)) == before
    assert before[0] == [True, True, False, True]  # the frozen BN is still frozen


def test_modes_come_back_when_the_block_raises():
    model = _frozen_bn_model()
    before = _modes(model)
    with pytest.raises(ZeroDivisionError), eval_mode(model):
        raise ZeroDivisionError
    assert _modes(model) == before


class _Gen(nn.Module):
    n_classes = 0

    def __init__(self) -> None:
        super().__init__()
        self.net = _frozen_bn_model()

    def sample_z(self, n: int, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, 2, generator=generator).to(device)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert not any(_modes(self))
        return self.net(z)


class _Enc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _frozen_bn_model()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert not any(_modes(self))
        return self.net(x), x


@pytest.mark.parametrize("use", ["generate", "translate", "reconstruct"])
def test_sampling_helpers_restore_every_submodule(use):
    gen, enc = _Gen(), _Enc()
    before = _modes(gen), _modes(enc)
    if use == "generate":
        generate(gen, 4, seed=0)
    elif use == "translate":
        translate(gen.net, torch.ones(3, 2))
    else:
        reconstruct(enc, gen.net, torch.ones(3, 2))
    assert (_modes(gen), _modes(enc)) == before
