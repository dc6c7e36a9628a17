"""The optimizers of training runs: Adam on a schedule. A converging run with enough validation
CAPTCHAs holds its rate and cuts it on plateaus (`plateau_optimizer`); a fixed recipe, or a run
whose budget decides, decays it on a cosine (`cosine_optimizer`); `choose_optimizer` picks."""

from __future__ import annotations

import math

from .stopping import Stopping, decisive


def choose_optimizer(
    learning_rate: float, stopping: Stopping, train_count: int, batch_size: int, validation_count: int
):
    """The optimizer of one converging run. With enough validation CAPTCHAs to decide, the rate
    holds and is cut on plateaus; with fewer (a fine-tune on a few hundred labelled CAPTCHAs) the
    validation score cannot decide, so the run goes through its whole budget, here on a cosine schedule
    (the low rates it ends with matter: measured on the real-recipe stand-in, 76.25% stopped at
    epoch 12 of 34, 79.5% run to the end), and the verdict says so."""
    steps = math.ceil(train_count / batch_size)
    if decisive(validation_count):
        return plateau_optimizer(learning_rate, int(stopping.warmup_epochs * steps))
    return cosine_optimizer(learning_rate, stopping.warmup_epochs, stopping.epochs(train_count), steps)


def plateau_optimizer(learning_rate: float, warmup_steps: int):
    """Adam whose rate warms up linearly over `warmup_steps`, then holds; `optimizer.rate_scale`
    (a variable; a resumed run sets it again from the number of cuts made) is what a plateau cuts."""
    import keras

    scale = keras.Variable(1.0, trainable=False, name="rate_scale")

    class WarmupThenHold(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            warm = keras.ops.minimum(1.0, (keras.ops.cast(step, "float32") + 1.0) / max(warmup_steps, 1))
            return learning_rate * warm * scale

        def get_config(self):
            return {"learning_rate": learning_rate, "warmup_steps": warmup_steps}

    optimizer = keras.optimizers.Adam(WarmupThenHold())
    optimizer.rate_scale = scale
    return optimizer


def cosine_optimizer(learning_rate: float, warmup_epochs: float, epochs: int, steps_per_epoch: int):
    """Adam with a short linear warm-up, then cosine decay to zero at the last epoch; a run that goes
    on past it (a budget run again, loop.more) starts the same cycle over."""
    import keras

    total = max(2, epochs * steps_per_epoch)
    warmup = min(total - 1, int(warmup_epochs * steps_per_epoch))
    cosine = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10 if warmup else learning_rate,
        decay_steps=total - warmup,
        alpha=0.0,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )

    class Restarting(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return cosine(keras.ops.mod(step, total))

        def get_config(self):
            return {"cycle": cosine.get_config(), "steps": total}

    return keras.optimizers.Adam(Restarting())
