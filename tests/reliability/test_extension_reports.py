"""A value reported by a ``make_extension`` function (default priority) reaches log.json."""

from __future__ import annotations

import gankit
from gankit.extensions import LogReport
from gankit.extensions.log_report import read_log
from gankit.training import PRIORITY_LOG, make_extension


def test_a_make_extension_reporter_reaches_the_log(make_trainer) -> None:
    trainer = make_trainer(stop=(6, "iteration"))

    @make_extension()
    def lr_probe(t: gankit.Trainer) -> None:
        gankit.report({"probe/value": float(t.updater.iteration)})

    assert lr_probe.priority > PRIORITY_LOG
    trainer.extend(LogReport(trigger=(3, "iteration")))  # registered first, runs after
    trainer.extend(lr_probe)
    trainer.run()
    log = read_log(trainer.out / "log.json")
    assert [e["probe/value"] for e in log] == [2.0, 5.0]  # means of 1..3 and 4..6
