"""Extensions, one per file; every public class is importable from here."""

from gankit.extensions.ema import EMA, sampling_model
from gankit.extensions.fail_on_non_finite import FailOnNonFinite, NonFiniteError
from gankit.extensions.gan_evaluator import GANEvaluator
from gankit.extensions.log_report import LogReport
from gankit.extensions.lr_scheduler import LR_DECAYS, LRSchedule, LRScheduler, ObserveLR, lr_factor
from gankit.extensions.plot_report import PlotReport
from gankit.extensions.print_report import PrintReport
from gankit.extensions.progress_bar import ProgressBar
from gankit.extensions.sample_grid import SampleGrid, fixed_noise_samples
from gankit.extensions.snapshot import Snapshot
from gankit.extensions.tensorboard import TensorBoard

__all__ = [
    "EMA", "LR_DECAYS", "FailOnNonFinite", "GANEvaluator", "LRSchedule", "LRScheduler",
    "LogReport", "NonFiniteError", "ObserveLR", "PlotReport", "PrintReport", "ProgressBar",
    "SampleGrid", "Snapshot", "TensorBoard", "fixed_noise_samples", "lr_factor",
    "sampling_model",
]
