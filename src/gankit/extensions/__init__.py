"""Extensions, one per file."""

from gankit.extensions.fail_on_non_finite import FailOnNonFinite, NonFiniteError
from gankit.extensions.gan_evaluator import GANEvaluator
from gankit.extensions.log_report import LogReport
from gankit.extensions.lr_scheduler import LRScheduler, ObserveLR
from gankit.extensions.plot_report import PlotReport
from gankit.extensions.print_report import PrintReport
from gankit.extensions.progress_bar import ProgressBar
from gankit.extensions.snapshot import Snapshot
from gankit.extensions.tensorboard import TensorBoard

__all__ = [
    "FailOnNonFinite", "GANEvaluator", "LRScheduler", "LogReport", "NonFiniteError", "ObserveLR",
    "PlotReport", "PrintReport", "ProgressBar", "Snapshot", "TensorBoard",
]
