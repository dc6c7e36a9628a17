"""Training, one job a module: when a run stops and the verdict on it (stopping.py), its
optimizers (optimizers.py), checkpoints and the training lock (checkpoints.py), the semi-supervised
teacher (teacher.py), the epoch loop with its two entry points (loop.py: `train_until_converged`
and `train_recipe`), and the one converging fit every trainable attacker calls (fit.py:
`fit_converging`, and `fit_declared` for attackers that declare their model, targets and loss).
"""

from .checkpoints import check_resumable, checkpoint_dir, training_lock
from .fit import DECLARED_DEFAULTS, captcha_score, fit_converging, fit_declared, fresh_seed, learning_rate
from .loop import Run, run_record, train_recipe, train_until_converged
from .optimizers import choose_optimizer, cosine_optimizer, plateau_optimizer
from .stopping import MIN_VALIDATION, UNDERFIT, Stopping, convergence, decisive, stopping_for, validation_size
from .teacher import PseudoLabelling, TeacherStage, confident, mean_teacher

__all__ = [
    "check_resumable",
    "checkpoint_dir",
    "training_lock",
    "DECLARED_DEFAULTS",
    "captcha_score",
    "fit_converging",
    "fit_declared",
    "fresh_seed",
    "learning_rate",
    "Run",
    "run_record",
    "train_recipe",
    "train_until_converged",
    "choose_optimizer",
    "cosine_optimizer",
    "plateau_optimizer",
    "MIN_VALIDATION",
    "UNDERFIT",
    "Stopping",
    "convergence",
    "decisive",
    "stopping_for",
    "validation_size",
    "PseudoLabelling",
    "TeacherStage",
    "confident",
    "mean_teacher",
]
