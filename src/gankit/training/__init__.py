"""The training engine: it knows nothing about GANs."""

from gankit.training.checkpoint import latest_snapshot, list_snapshots, load_state, save_state
from gankit.training.eval_mode import eval_mode
from gankit.training.evaluator import Evaluator
from gankit.training.extension import (
    PRIORITY_EDITOR,
    PRIORITY_LOG,
    PRIORITY_READER,
    PRIORITY_SNAPSHOT,
    PRIORITY_WRITER,
    Extension,
    make_extension,
)
from gankit.training.reporter import DictSummary, report, report_scope
from gankit.training.trainer import Trainer
from gankit.training.triggers import (
    BestValueTrigger,
    IntervalTrigger,
    ManualScheduleTrigger,
    MaxValueTrigger,
    MinValueTrigger,
    StopTrigger,
    Trigger,
    get_trigger,
)
from gankit.training.updater import Updater, resolve_device, to_device

__all__ = [
    "PRIORITY_EDITOR",
    "PRIORITY_LOG",
    "PRIORITY_READER",
    "PRIORITY_SNAPSHOT",
    "PRIORITY_WRITER",
    "BestValueTrigger",
    "DictSummary",
    "Evaluator",
    "Extension",
    "IntervalTrigger",
    "ManualScheduleTrigger",
    "MaxValueTrigger",
    "MinValueTrigger",
    "StopTrigger",
    "Trainer",
    "Trigger",
    "Updater",
    "eval_mode",
    "get_trigger",
    "latest_snapshot",
    "list_snapshots",
    "load_state",
    "make_extension",
    "report",
    "report_scope",
    "resolve_device",
    "save_state",
    "to_device",
]
