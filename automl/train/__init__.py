"""One trial's training: the plain PyTorch loop, evaluation every epoch, and the checkpoints
that let a trial resume exactly and hand its best epoch to the export."""

from automl.train.evaluate import evaluate, macro_f1
from automl.train.loop import TrialResult, run_trial

__all__ = ["TrialResult", "evaluate", "macro_f1", "run_trial"]
