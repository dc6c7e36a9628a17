"""The import path plugins were shown for the training loop's parts (docs/attackers.md); they live
in the training package now (captchalab/training/), and these names keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .training import (
    PseudoLabelling,
    Run,
    Stopping,
    TeacherStage,
    captcha_score,
    convergence,
    fit_declared,
    fresh_seed,
    train_recipe,
    train_until_converged,
)


def fit_loop(
    model,
    optimizer,
    *,
    seed: int,
    train_count: int,
    epochs: int = 0,
    patience: int = 0,
    epoch_batches: Callable[[np.random.Generator], Iterable[tuple]],
    step: Callable,
    validate: Callable[[], float | None],
    checkpoint: Path,
    config: dict,
    resume: bool = False,
    verbose: int = 0,
    on_epoch: Callable[[int, dict], None] | None = None,
    stopping: Stopping | None = None,
    train_score: Callable[[], float | None] | None = None,
    validation_count: int | None = None,
    teacher=None,
    epoch_notes: Callable[[], dict] | None = None,
) -> dict:
    """The loop with your own step: until it converges with `stopping`, else a fixed recipe of
    `epochs` (training.loop.train_until_converged and train_recipe, which take a training.Run)."""
    run = Run(
        model,
        optimizer,
        seed,
        train_count,
        epoch_batches,
        step,
        validate,
        checkpoint,
        config,
        resume,
        verbose,
        on_epoch,
        teacher,
        epoch_notes,
    )
    if stopping is not None:
        return train_until_converged(run, stopping, validation_count, train_score)
    return train_recipe(run, epochs, patience, train_score)
