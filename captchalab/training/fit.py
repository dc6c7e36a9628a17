"""One converging fit that every trainable attacker calls: the stopping rule, the optimizer, the
run's config, validation by the CAPTCHA-level score and the underfitting check (`fit_converging`);
and `fit_declared`, the whole of `fit` for an attacker that declares its model (`build`), its
targets and its loss: plugins get the loop, checkpoints, resume and epoch lines without writing
any of it."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CaptchalabError
from ..kinds import get_kind
from .loop import Run, run_record, train_until_converged
from .optimizers import choose_optimizer
from .stopping import stopping_for

# defaults of the declared-model loop when neither the settings nor the hyper-parameters say
DECLARED_DEFAULTS = {"budget": 200_000, "batch_size": 64, "learning_rate": 1e-3, "patience": 3}


def captcha_score(attacker, examples: list, limit: int = 1000) -> float | None:
    """The share of (prepared, answer) examples the attacker passes (its kind's rule: the exact
    answer for text and grids, within tolerance for sliders and rotations): the CAPTCHA-level
    score every training run is judged by (a crop or character score would hide what the cuts
    cost)."""
    if not examples:
        return None
    chosen = examples[:limit]
    readings = attacker.read_prepared([p for p, _ in chosen])
    passes = get_kind(attacker.kind).correct  # exact for text and grids, within tolerance for sliders
    return float(np.mean([passes(t, r.text) for r, (_, t) in zip(readings, chosen)]))


def fresh_seed(rng: np.random.Generator) -> int:
    """The generation seed of one epoch's fresh CAPTCHAs, drawn from the epoch's generator (seeded
    by the run's seed and the epoch), so a resumed run draws the same ones."""
    return int(rng.integers(2**31 - 1))


def learning_rate(settings, default: float) -> float:
    """The peak rate of a run: the user's, else the attacker's `default`, halved for a fine-tune."""
    return settings.learning_rate or default * (0.5 if settings.fine_tune else 1)


def fit_converging(
    attacker,
    settings,
    train: list,
    validation: list,
    *,
    train_count: int,
    budget: int,
    small_set_budget: int,
    batch_size: int,
    rate: float,
    make_step: Callable,
    epoch_batches: Callable,
    checkpoint: Path,
    resume: bool = False,
    on_epoch: Callable[[int, dict], None] | None = None,
    config: dict | None = None,
    patience: int | None = None,
    warmup_epochs: float = 0.5,
    stage=None,
) -> dict:
    """Train `attacker.model` until its CAPTCHA-level validation score converges; returns the loop
    state. `train_count` examples make an epoch (its batches from `epoch_batches(rng)`); the
    stopping rule comes from `settings` and the attacker's hyper-parameters (`budget`, or
    `small_set_budget` where too few CAPTCHAs are held out to decide), the optimizer from
    optimizers.choose_optimizer, and `make_step(optimizer)` gives the training step. `train` is
    what the underfitting check reads; `config` adds to what must match for a resume; a
    `TeacherStage` (`stage`, started) is checkpointed and noted with the run."""
    hparams = attacker.hparams if patience is None else {**attacker.hparams, "patience": patience}
    stopping = stopping_for(
        settings, hparams, train_count, len(validation), budget, small_set_budget, warmup_epochs=warmup_epochs
    )
    optimizer = choose_optimizer(rate, stopping, train_count, batch_size, len(validation))
    run = Run(
        attacker.model,
        optimizer,
        settings.seed,
        train_count,
        epoch_batches,
        make_step(optimizer),
        validate=lambda: captcha_score(attacker, validation, len(validation)),
        checkpoint=checkpoint,
        config={
            "hyperparameters": attacker.hparams,
            "stopping": asdict(stopping),
            "batch_size": batch_size,
            "learning_rate": rate,
            "seed": settings.seed,
            **(config or {}),
        },
        resume=resume,
        on_epoch=on_epoch,
        teacher=stage and stage.teacher,
        epoch_notes=stage and stage.epoch_notes,
    )
    return train_until_converged(run, stopping, len(validation), lambda: captcha_score(attacker, train))


def fit_declared(
    attacker,
    train: list,
    validation: list,
    settings,
    checkpoint: Path,
    resume: bool = False,
    on_epoch: Callable[[int, dict], None] | None = None,
    fresh: Callable[[int], list] | None = None,
) -> dict:
    """Train `attacker.model` in place through the shared loop, from what the attacker declares:
    `inputs(prepared) -> array` (the model's input batch), `targets(texts) -> array` (what the
    loss compares outputs with), `loss(targets, outputs) -> per-example loss` (Keras ops), and
    optionally `augment(inputs, rng)`. It trains until the CAPTCHA-level validation score (the
    share of held-out CAPTCHAs whose `read_prepared` text equals the truth) converges.

    Budget, batch size, learning rate and patience come from the settings, else from the
    attacker's hyper-parameters of those names, else from DECLARED_DEFAULTS; an `epochs`
    hyper-parameter caps the passes; a fine-tune halves the default learning rate. With `fresh`
    every epoch trains on the examples `fresh(seed)` draws instead (see `fresh_seed`)."""
    h = attacker.hparams

    def setting(name):
        chosen = getattr(settings, name, None)
        return chosen if chosen is not None else h.get(name, DECLARED_DEFAULTS[name])

    batch_size = setting("batch_size")
    rate = learning_rate(settings, h.get("learning_rate", DECLARED_DEFAULTS["learning_rate"]))
    x, y = declared_arrays(attacker, train)
    augment = getattr(attacker, "augment", None)

    def epoch_batches(rng):
        ex, ey = declared_arrays(attacker, fresh(fresh_seed(rng))) if fresh else (x, y)
        order = rng.permutation(len(ex))
        for first in range(0, len(order), batch_size):
            batch = order[first : first + batch_size]
            inputs = ex[batch]
            yield (augment(inputs, rng) if augment else inputs), ey[batch]

    budget = h.get("budget", DECLARED_DEFAULTS["budget"])
    state = fit_converging(
        attacker,
        settings,
        train,
        validation,
        train_count=len(x),
        budget=budget,
        small_set_budget=max(budget // 15, 30 * len(x)),
        batch_size=batch_size,
        rate=rate,
        make_step=partial(declared_step, attacker),
        epoch_batches=epoch_batches,
        checkpoint=checkpoint,
        resume=resume,
        on_epoch=on_epoch,
        patience=setting("patience"),
        config={"count": len(x), "fresh": fresh is not None},
    )
    return {**run_record(state), "batch_size": batch_size, "learning_rate": rate}


def declared_arrays(attacker, examples: list) -> tuple[np.ndarray, np.ndarray]:
    """The declared model's input and target batches for `examples`, one row per CAPTCHA."""
    x = np.asarray(attacker.inputs([p for p, _ in examples]))
    y = np.asarray(attacker.targets([t for _, t in examples]))
    if len(x) != len(y) or not len(x):
        raise CaptchalabError(
            f"attacker {attacker.name!r}: inputs() and targets() must give one row per "
            f"training CAPTCHA (got {len(x)} and {len(y)})"
        )
    return x, y


def declared_step(attacker, optimizer):
    """One training step on the declared loss (the declared loop does not decode training batches)."""
    import tensorflow as tf

    model = attacker.model
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = tf.reduce_mean(tf.cast(attacker.loss(targets, outputs), tf.float32))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss, None

    return step
