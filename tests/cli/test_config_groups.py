"""TrainConfig's groups: flat names in and out (config.json unchanged), each option in one
group, the term table and the objective group in agreement, the parser's term flags from it."""

from __future__ import annotations

import dataclasses

import pytest

from gankit.cli.config import GROUP_OF, GROUPS, ObjectiveOptions, TrainConfig, filled
from gankit.cli.parser import build_parser
from gankit.cli.terms import PENALTY_TERMS, TERM_OPTIONS
from gankit.errors import GankitError


def test_flat_names_round_trip_through_the_groups() -> None:
    cfg = TrainConfig(data="ring8", epochs=3, lr_gen=1e-4, lecam=0.5, workers=2)
    assert (cfg.dataset.data, cfg.run.epochs, cfg.optim.lr_gen) == ("ring8", 3, 1e-4)
    assert (cfg.objective.lecam, cfg.dataset.workers) == (0.5, 2)
    flat = cfg.to_dict()
    assert set(flat) == set(GROUP_OF) and flat["lr_gen"] == 1e-4
    assert TrainConfig.from_dict(flat, "x") == cfg
    other = cfg.merged({"lr_gen": 2e-4})
    assert other.get("lr_gen") == 2e-4 and cfg.get("lr_gen") == 1e-4  # a copy
    with pytest.raises(GankitError, match="unknown option"):
        TrainConfig.from_dict({"lr": 1}, "x")


def test_every_option_lives_in_exactly_one_group() -> None:
    names = [f.name for cls in GROUPS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))


def test_each_group_validates_its_own_options() -> None:
    with pytest.raises(GankitError, match="--lecam must be a non-negative number"):
        ObjectiveOptions(lecam=-1.0).validate()
    ObjectiveOptions(lecam=0.5, penalty="r1r2").validate()
    with pytest.raises(GankitError, match="option width has no value"):
        filled(TrainConfig().model.width, "width")


def test_the_term_table_the_objective_group_and_the_parser_agree() -> None:
    fields = {f.name for f in dataclasses.fields(ObjectiveOptions)}
    assert {o.field for o in TERM_OPTIONS} <= fields
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.values()
                 if a.prog.endswith("train"))
    flags = {s for action in train._actions for s in action.option_strings}
    assert {o.flag for o in TERM_OPTIONS} <= flags
    penalty = next(a for a in train._actions if "--penalty" in a.option_strings)
    assert all(name in penalty.help for name in PENALTY_TERMS)
