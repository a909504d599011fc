"""A torn or damaged JSON-lines log (a kill mid-append, a crash) is read with a notice, never a
traceback: by read_log, and by a resumed run, which then rewrites the log whole."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from gankit.extensions.log_report import LogReport, read_log

ENTRIES = [{"iteration": 2, "loss": 0.5}, {"iteration": 4, "loss": 0.25}]
WHOLE = "".join(json.dumps(e) + "\n" for e in ENTRIES)


@pytest.mark.parametrize("tail", [
    b'{"iteration": 6, "lo',                 # the append a kill cut short
    b'{"iteration": 6, "loss": 0.1',         # all but the closing brace
    b"\x00\x00\x00\x00",                     # a crash: the size grew, the bytes never came
    b'{"iteration": 6, "loss": "\xc3',      # half of a two-byte character
])
def test_a_torn_last_line_is_skipped_with_a_notice(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(WHOLE.encode() + tail)
    with pytest.warns(UserWarning, match="skipped its last line, cut short by a killed writer"):
        assert read_log(path) == ENTRIES


def test_damaged_lines_inside_are_skipped_and_named(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps(ENTRIES[0]) + "\n[1, 2]\nnot json\n" + json.dumps(ENTRIES[1])
                    + "\n")
    with pytest.warns(UserWarning, match="skipped 2 unreadable line.s., the first line 2"):
        assert read_log(path) == ENTRIES


def test_a_whole_log_reads_without_a_notice(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(WHOLE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_log(path) == ENTRIES


def test_a_run_resumes_over_a_torn_log_and_rewrites_it_whole(make_trainer) -> None:
    trainer = make_trainer(stop=(4, "iteration"))
    trainer.extend(LogReport(trigger=(2, "iteration")))
    trainer.run()
    state = trainer.state_dict()
    log = trainer.out / "log.json"
    with open(log, "ab") as f:  # the entry a kill after the snapshot cut short, mid-character
        f.write(b'{"iteration": 6, "note": "\xc3')
    resumed = make_trainer(stop=(6, "iteration"))
    resumed.out = trainer.out
    resumed.extend(LogReport(trigger=(2, "iteration")))
    resumed.load_state_dict(state)
    with pytest.warns(UserWarning, match="log.json: skipped its last line, cut short"):
        resumed.run()
    assert log.read_bytes().endswith(b"}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # whole again: no notice
        assert [e["iteration"] for e in read_log(log)] == [2, 4, 6]
